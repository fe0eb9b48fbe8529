"""Model configs in a MONAI-bundle-like layout.

Each model lives in ``models/configs/<name>/``:

* ``config.yml`` -- network (architecture, ``spatial_dims``, ``in_channels``,
  ``out_channels`` and constructor arguments), input preprocessing (HU
  window, spacing, orientation, ROI / crop size), output (classes, positive
  class), training settings, and a ``smoke`` section with tiny overrides
  that CI uses to build and run every config on synthetic data;
* ``metadata.json`` -- as MONAI model-zoo ``configs/metadata.json``: version
  and changelog, intended use, the input/output contract
  (``network_data_format``) and the weights file with its SHA-256 (``null``
  while no weights are released: inference then requires a checkpoint).

:func:`load_config` validates both files and returns a frozen
:class:`ModelConfig`; unknown keys are errors, with the near match named.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from studyval.errors import StudyvalError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
TASKS = ("segmentation", "classification")
_TOP_KEYS = {"name", "model_name", "task", "network", "input", "output", "training", "smoke"}
_NETWORK_KEYS = {"arch", "spatial_dims", "in_channels", "out_channels", "kwargs"}
_INPUT_KEYS = {"hu_window", "spacing", "orientation", "roi_size"}
_OUTPUT_KEYS = {"classes", "positive_class"}
_TRAINING_KEYS = {"seed", "learning_rate", "batch_size", "max_epochs", "amp", "deterministic"}
_SMOKE_KEYS = {"network_kwargs", "roi_size"}
_METADATA_KEYS = {"version", "changelog", "task", "intended_use", "network_data_format", "weights"}


class ConfigError(StudyvalError):
    """A model config or its metadata breaks the layout."""


@dataclass(frozen=True)
class ModelConfig:
    """One model's configuration (``config.yml``) and metadata (``metadata.json``).

    Attributes
    ----------
    name : str
        Config name (the directory name).
    model_name : str
        Name written to the prediction table's ``model_name`` (as the plan
        names it, e.g. ``DenseNet-121``).
    task : str
        ``"segmentation"`` or ``"classification"``.
    arch, spatial_dims, in_channels, out_channels, network_kwargs
        Arguments of :func:`studyval.models.networks.build_network`.
    hu_window : tuple of float
        ``(low, high)`` HU window mapped to [0, 1].
    spacing : tuple of float
        Voxel size in mm the model expects.
    orientation : str
        Axis codes, ``"RAS"``.
    roi_size : tuple of int
        Sliding-window ROI (segmentation) or crop size (classification).
    classes : tuple of str
        Names of the output channels / classes, in order.
    positive_class : str or None
        Class whose probability is the prediction table's ``score``
        (classification only).
    training : dict
        ``seed``, ``learning_rate``, ``batch_size``, ``max_epochs``, ``amp``,
        ``deterministic``.
    metadata : dict
        Parsed ``metadata.json``.
    source : str
        Directory of the config.

    """

    name: str
    model_name: str
    task: str
    arch: str
    spatial_dims: int
    in_channels: int
    out_channels: int
    network_kwargs: dict[str, Any]
    hu_window: tuple[float, float]
    spacing: tuple[float, ...]
    orientation: str
    roi_size: tuple[int, ...]
    classes: tuple[str, ...]
    positive_class: str | None
    training: dict[str, Any] = field(default_factory=dict)
    smoke: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def build_network(self):
        """Build the (untrained) network of this config."""
        from studyval.models.networks import build_network

        kwargs = dict(self.network_kwargs)
        if self.arch in ("UNETR", "ViT"):
            kwargs.setdefault("img_size", self.roi_size)
        return build_network(
            self.arch,
            spatial_dims=self.spatial_dims,
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            **kwargs,
        )

    def smoke_version(self) -> ModelConfig:
        """Return this config with the tiny ``smoke`` overrides (network size, ROI)."""
        kwargs = {**self.network_kwargs, **self.smoke.get("network_kwargs", {})}
        roi = tuple(int(v) for v in self.smoke.get("roi_size", self.roi_size))
        return replace(self, network_kwargs=kwargs, roi_size=roi)


def _check_keys(found: dict, allowed: set[str], where: str) -> None:
    for key in found:
        if key not in allowed:
            near = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")


def available_configs() -> tuple[str, ...]:
    """Names of the configs shipped in ``models/configs``."""
    return tuple(sorted(p.name for p in CONFIG_DIR.iterdir() if (p / "config.yml").is_file()))


def load_config(name_or_path: str | Path) -> ModelConfig:
    """Load and validate a model config directory.

    Parameters
    ----------
    name_or_path : str or Path
        A name from :func:`available_configs` or a directory holding
        ``config.yml`` and ``metadata.json``.

    Returns
    -------
    ModelConfig

    Raises
    ------
    ConfigError
        Missing file, unknown key, missing key or an invalid value, naming
        the file.

    """
    path = Path(name_or_path)
    if not (path / "config.yml").is_file():
        names = available_configs()
        if str(name_or_path) not in names:
            near = difflib.get_close_matches(str(name_or_path), names, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(
                f"no model config {str(name_or_path)!r}; available: {', '.join(names)}{hint}"
            )
        path = CONFIG_DIR / str(name_or_path)
    cfg_file, meta_file = path / "config.yml", path / "metadata.json"
    if not meta_file.is_file():
        raise ConfigError(
            f"{meta_file}: file does not exist (every config needs its metadata.json)"
        )
    raw = yaml.safe_load(cfg_file.read_text(encoding="utf-8"))
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ConfigError(f"{cfg_file}: must be a YAML mapping")
    _check_keys(raw, _TOP_KEYS, str(cfg_file))
    _check_keys(
        meta,
        _METADATA_KEYS | {"schema", "authors", "description", "references", "monai_version"},
        str(meta_file),
    )
    for key in ("name", "model_name", "task", "network", "input", "output"):
        if key not in raw:
            raise ConfigError(f"{cfg_file}: missing key {key!r}")
    for key in _METADATA_KEYS:
        if key not in meta:
            raise ConfigError(f"{meta_file}: missing key {key!r}")
    net, inp, out = raw["network"], raw["input"], raw["output"]
    _check_keys(net, _NETWORK_KEYS, f"{cfg_file}: network")
    _check_keys(inp, _INPUT_KEYS, f"{cfg_file}: input")
    _check_keys(out, _OUTPUT_KEYS, f"{cfg_file}: output")
    _check_keys(raw.get("training", {}), _TRAINING_KEYS, f"{cfg_file}: training")
    _check_keys(raw.get("smoke", {}), _SMOKE_KEYS, f"{cfg_file}: smoke")
    if raw["task"] not in TASKS:
        raise ConfigError(
            f"{cfg_file}: task must be one of {', '.join(TASKS)}, found {raw['task']!r}"
        )
    if raw["name"] != path.name:
        raise ConfigError(
            f"{cfg_file}: name {raw['name']!r} differs from the directory name {path.name!r}"
        )
    dims = int(net["spatial_dims"])
    spacing = tuple(float(v) for v in inp["spacing"])
    roi = tuple(int(v) for v in inp["roi_size"])
    if len(spacing) != dims or len(roi) != dims:
        raise ConfigError(
            f"{cfg_file}: input spacing and roi_size need {dims} values (spatial_dims)"
        )
    classes = tuple(str(c) for c in out["classes"])
    if len(classes) != int(net["out_channels"]):
        raise ConfigError(
            f"{cfg_file}: {len(classes)} classes for out_channels {net['out_channels']}"
        )
    positive = out.get("positive_class")
    if raw["task"] == "classification" and positive not in classes:
        raise ConfigError(
            f"{cfg_file}: positive_class {positive!r} is not one of the classes {list(classes)}"
        )
    hu = tuple(float(v) for v in inp["hu_window"])
    if len(hu) != 2 or not hu[0] < hu[1]:
        raise ConfigError(f"{cfg_file}: hu_window must be [low, high] with low < high")
    return ModelConfig(
        name=str(raw["name"]),
        model_name=str(raw["model_name"]),
        task=str(raw["task"]),
        arch=str(net["arch"]),
        spatial_dims=dims,
        in_channels=int(net["in_channels"]),
        out_channels=int(net["out_channels"]),
        network_kwargs=dict(net.get("kwargs") or {}),
        hu_window=(hu[0], hu[1]),
        spacing=spacing,
        orientation=str(inp.get("orientation", "RAS")),
        roi_size=roi,
        classes=classes,
        positive_class=None if positive is None else str(positive),
        training=dict(raw.get("training") or {}),
        smoke=dict(raw.get("smoke") or {}),
        metadata=meta,
        source=str(path),
    )
