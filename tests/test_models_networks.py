"""Tests for studyval.models.networks and studyval.models.config.

Every shipped config is smoke-tested: loaded, validated, built with its tiny
``smoke`` overrides, run forward and backward on synthetic data, with the
output shape its ``metadata.json`` promises. Each classifier is built in 2-D
and 3-D from ``spatial_dims`` / ``in_channels`` / ``out_channels``.
"""

from __future__ import annotations

import json
import shutil

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from studyval.models.config import ConfigError, available_configs, load_config  # noqa: E402
from studyval.models.networks import VGG16, build_network  # noqa: E402

CONFIGS = available_configs()


def test_configs_shipped():
    assert set(CONFIGS) >= {
        "unet3d_vertebra_seg",
        "unetr_vertebra_seg",
        "swinunetr_vertebra_seg",
        "unet2d_l3_muscle",
        "densenet121_ovcf",
        "vit_ovcf",
        "vgg16_ovcf",
        "densenet121_ovcf_2d",
    }


@pytest.mark.parametrize("name", CONFIGS)
def test_config_smoke(name):
    cfg = load_config(name)
    meta = cfg.metadata
    assert meta["intended_use"] and meta["changelog"][meta["version"]]
    assert meta["weights"]["sha256"] is None  # no released weights: a checkpoint is required
    fmt = meta["network_data_format"]
    assert fmt["inputs"]["image"]["num_channels"] == cfg.in_channels
    assert fmt["outputs"]["pred"]["num_channels"] == cfg.out_channels
    assert list(fmt["inputs"]["image"]["spatial_shape"]) == list(cfg.roi_size)
    small = cfg.smoke_version()
    torch.manual_seed(0)
    net = small.build_network()
    x = torch.rand(2, cfg.in_channels, *small.roi_size)
    y = net(x)
    if cfg.task == "segmentation":
        assert tuple(y.shape) == (2, cfg.out_channels, *small.roi_size)
    else:
        assert tuple(y.shape) == (2, cfg.out_channels)
    y.float().mean().backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize(
    ("arch", "kwargs"),
    [
        pytest.param(
            "DenseNet121",
            {"init_features": 8, "growth_rate": 4, "block_config": (1, 1, 1, 1)},
            id="densenet",
        ),
        pytest.param(
            "ViT",
            {
                "img_size": 32,
                "patch_size": 16,
                "hidden_size": 32,
                "mlp_dim": 64,
                "num_layers": 1,
                "num_heads": 2,
            },
            id="vit",
        ),
        pytest.param("VGG16", {"width": 0.0625, "hidden": 16}, id="vgg16"),
    ],
)
def test_classifiers_2d_and_3d(arch, kwargs, dims):
    net = build_network(arch, spatial_dims=dims, in_channels=2, out_channels=3, **kwargs)
    out = net(torch.rand(2, 2, *([32] * dims)))
    assert tuple(out.shape) == (2, 3)


def test_vgg16_has_published_layout():
    net = VGG16(2, 3, 1000, width=1.0, hidden=4096, norm=False, pool_size=7)
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 13 and len(net.classifier) == 7  # 13 conv + 3 fully connected = 16
    assert [c.out_channels for c in convs] == [
        64,
        64,
        128,
        128,
        256,
        256,
        256,
        512,
        512,
        512,
        512,
        512,
        512,
    ]
    assert (
        sum(p.numel() for p in net.parameters()) == 138_357_544
    )  # torchvision vgg16 parameter count


@pytest.mark.parametrize(
    ("arch", "match"),
    [
        pytest.param("U-Mamba", "U-Mamba is not in MONAI.*UNet", id="umamba"),
        pytest.param("UNETR++", "UNETR\\+\\+ is not in MONAI.*UNETR", id="unetrpp"),
        pytest.param("Unet", "did you mean 'UNet'", id="typo"),
    ],
)
def test_unavailable_architectures(arch, match):
    with pytest.raises(ValueError, match=match):
        build_network(arch, spatial_dims=3, in_channels=1, out_channels=2)


def test_bad_spatial_dims():
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3"):
        build_network("UNet", spatial_dims=4, in_channels=1, out_channels=2)


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'vit_ovcf'"):
        load_config("vit_ovfc")
    src = load_config("vit_ovcf").source
    dst = tmp_path / "vit_ovcf"
    shutil.copytree(src, dst)
    text = (dst / "config.yml").read_text()
    (dst / "config.yml").write_text(text.replace("hu_window:", "hu_windows:"))
    with pytest.raises(ConfigError, match="unknown key 'hu_windows'; did you mean 'hu_window'"):
        load_config(dst)
    (dst / "config.yml").write_text(text.replace("positive_class: acute", "positive_class: Acute"))
    with pytest.raises(ConfigError, match="positive_class 'Acute' is not one of the classes"):
        load_config(dst)
    (dst / "config.yml").write_text(text)
    meta = json.loads((dst / "metadata.json").read_text())
    del meta["intended_use"]
    (dst / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="missing key 'intended_use'"):
        load_config(dst)
