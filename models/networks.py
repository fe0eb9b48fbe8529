"""Networks built from ``spatial_dims``, ``in_channels`` and ``out_channels``.

Segmentation: MONAI ``UNet``, ``UNETR``, ``SwinUNETR``. Classification:
MONAI ``DenseNet121``, MONAI ``ViT`` (wrapped so that it returns logits only,
without MONAI's default ``Tanh`` on the head) and :class:`VGG16`, written
here from MONAI layer factories because MONAI has no VGG. Every network works
in 2-D and 3-D.

Architectures named in registered protocols that MONAI lacks (U-Mamba,
UNETR++) are not built here; :data:`STAND_INS` says what is used instead
and :func:`build_network` refuses the missing name with that message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.networks.layers.factories import Conv, Norm, Pool
from torch import nn

SEGMENTATION_ARCHS = ("UNet", "UNETR", "SwinUNETR")
CLASSIFICATION_ARCHS = ("DenseNet121", "ViT", "VGG16")
ARCHS = SEGMENTATION_ARCHS + CLASSIFICATION_ARCHS

STAND_INS = {
    "UMamba": "U-Mamba is not in MONAI (it needs the mamba-ssm CUDA kernels); residual UNet stands in",
    "UNETR++": "UNETR++ is not in MONAI; UNETR (and SwinUNETR) stand in",
}

# VGG-16 layout (Simonyan & Zisserman 2015, configuration D); "M" is a max-pool.
VGG16_LAYOUT = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)


class VGG16(nn.Module):
    """VGG-16 (configuration D) for 2-D or 3-D inputs, from MONAI layer factories.

    Simonyan K, Zisserman A. Very deep convolutional networks for large-scale
    image recognition. ICLR 2015. arXiv:1409.1556.

    Parameters
    ----------
    spatial_dims : int
        2 or 3.
    in_channels : int
        Input channels.
    out_channels : int
        Number of classes (logits).
    width : float
        Multiplier of the channel numbers (1.0 = the published widths; the
        smoke tests use a small width).
    hidden : int
        Width of the two hidden fully connected layers (4096 published).
    norm : bool
        Batch normalisation after each convolution (VGG-16-BN).
    dropout : float
        Dropout of the classifier.
    pool_size : int
        Side of the adaptive average pool before the classifier (7 published
        for 224² inputs; 1 keeps 3-D models small).

    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        *,
        width: float = 1.0,
        hidden: int = 4096,
        norm: bool = True,
        dropout: float = 0.5,
        pool_size: int = 1,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, found {spatial_dims!r}")
        conv_t = Conv[Conv.CONV, spatial_dims]
        pool_t = Pool[Pool.MAX, spatial_dims]
        norm_t = Norm[Norm.BATCH, spatial_dims]
        layers: list[nn.Module] = []
        c_in = in_channels
        for item in VGG16_LAYOUT:
            if item == "M":
                layers.append(pool_t(kernel_size=2, stride=2, ceil_mode=True))
                continue
            c_out = max(1, round(int(item) * width))
            layers.append(conv_t(c_in, c_out, kernel_size=3, padding=1))
            if norm:
                layers.append(norm_t(c_out))
            layers.append(nn.ReLU(inplace=True))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = Pool[Pool.ADAPTIVEAVG, spatial_dims](pool_size)
        n_flat = c_in * pool_size**spatial_dims
        self.classifier = nn.Sequential(
            nn.Linear(n_flat, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits, shape ``(N, out_channels)``."""
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class ViTClassifier(nn.Module):
    """MONAI ViT with a linear classification head returning logits only.

    MONAI's ``ViT(classification=True)`` returns ``(logits, hidden_states)``
    and puts a ``Tanh`` on the head by default; here the head is linear and
    the forward pass returns the logits, like the other classifiers.
    """

    def __init__(
        self, spatial_dims: int, in_channels: int, out_channels: int, **kwargs: Any
    ) -> None:
        super().__init__()
        from monai.networks.nets import ViT

        kwargs.setdefault("post_activation", None)
        self.vit = ViT(
            in_channels=in_channels,
            spatial_dims=spatial_dims,
            classification=True,
            num_classes=out_channels,
            **kwargs,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits, shape ``(N, out_channels)``."""
        return self.vit(x)[0]


def _did_you_mean(name: str, options: Sequence[str]) -> str:
    import difflib

    near = difflib.get_close_matches(name, options, n=1)
    return f"; did you mean {near[0]!r}?" if near else ""


def build_network(
    arch: str,
    *,
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    **kwargs: Any,
) -> nn.Module:
    """Build a network by name.

    Parameters
    ----------
    arch : str
        One of :data:`ARCHS`: ``UNet``, ``UNETR``, ``SwinUNETR`` (segmentation:
        output ``(N, out_channels, *spatial)`` logits) or ``DenseNet121``,
        ``ViT``, ``VGG16`` (classification: output ``(N, out_channels)`` logits).
    spatial_dims, in_channels, out_channels : int
        Dimensionality (2 or 3), input channels, output channels / classes.
    **kwargs
        Passed to the network's constructor (e.g. ``channels`` and ``strides``
        for UNet, ``img_size`` for UNETR and ViT).

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    ValueError
        Unknown name (with the near match), an architecture MONAI lacks (with
        its stand-in), or ``spatial_dims`` other than 2 or 3.

    """
    from monai.networks import nets

    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, found {spatial_dims!r}")
    key = arch.replace("-", "").replace("_", "")
    for missing, why in STAND_INS.items():
        if key.lower() == missing.lower().replace("-", ""):
            raise ValueError(f"architecture {arch!r} is not available: {why}")
    if arch not in ARCHS:
        raise ValueError(
            f"unknown architecture {arch!r}; allowed: {', '.join(ARCHS)}{_did_you_mean(arch, ARCHS)}"
        )
    common = {"in_channels": in_channels, "out_channels": out_channels}
    if arch == "UNet":
        kwargs.setdefault("channels", (16, 32, 64, 128))
        kwargs.setdefault("strides", (2, 2, 2))
        return nets.UNet(spatial_dims=spatial_dims, **common, **kwargs)
    if arch == "UNETR":
        return nets.UNETR(spatial_dims=spatial_dims, **common, **kwargs)
    if arch == "SwinUNETR":
        return nets.SwinUNETR(spatial_dims=spatial_dims, **common, **kwargs)
    if arch == "DenseNet121":
        return nets.DenseNet121(spatial_dims=spatial_dims, **common, **kwargs)
    if arch == "ViT":
        return ViTClassifier(spatial_dims, in_channels, out_channels, **kwargs)
    return VGG16(spatial_dims, in_channels, out_channels, **kwargs)
