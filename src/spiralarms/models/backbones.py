"""Backbones by name, created through timm (a small registry in timm's style).

Minimal first version: any timm model name, random weights only when asked for
explicitly (``pretrained=False``). The named paper backbones and real weight
loading are added on top of this interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import timm
from torch import nn

from spiralarms.errors import SpiralArmsError
from spiralarms.models.classifier import DEFAULT_HIDDEN, ArmClassifier


@dataclass
class Backbone:
    """A feature extractor and how to feed it.

    Attributes
    ----------
    name : str
        Registry or timm name.
    model : nn.Module
        timm model with ``num_classes=0`` (``forward_features`` gives feature maps).
    mean, std : tuple of float or None
        Input normalisation applied to [0, 1] images; ``None`` feeds [0, 1] as is.
    frozen : bool
        Whether the paper trains this backbone frozen (feature extraction).
    grey : bool
        Whether the backbone takes one greyscale channel.
    """

    name: str
    model: nn.Module
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    frozen: bool
    grey: bool


def create_backbone(
    name: str,
    *,
    grey: bool = False,
    weights: str | Path | None = None,
    pretrained: bool = True,
) -> Backbone:
    """Create a backbone by name.

    Parameters
    ----------
    name : str
        A timm model name.
    grey : bool, default False
        One input channel instead of three.
    weights : path, optional
        A local weights file.
    pretrained : bool, default True
        Load pretrained weights; ``False`` gives random weights, on request only.
    """
    if pretrained and weights is None:
        raise SpiralArmsError(
            f"backbone {name!r}: no pretrained weights known here; pass a local weights file or pretrained=False"
        )
    if name not in timm.list_models():
        raise SpiralArmsError(f"backbone {name!r}: not a timm model name")
    model = timm.create_model(name, pretrained=False, num_classes=0, in_chans=1 if grey else 3)
    cfg = model.pretrained_cfg or {}
    mean = cfg.get("mean")
    std = cfg.get("std")
    if grey and mean is not None:
        mean, std = (sum(mean) / len(mean),), (sum(std) / len(std),)
    return Backbone(name=name, model=model, mean=mean, std=std, frozen=False, grey=grey)


def build_classifier(
    backbone: str,
    n_classes: int,
    *,
    hidden: int = DEFAULT_HIDDEN,
    frozen: bool | None = None,
    grey: bool = False,
    weights: str | Path | None = None,
    pretrained: bool = True,
) -> ArmClassifier:
    """Build the paper's classifier on a named backbone.

    Parameters
    ----------
    backbone : str
        Backbone name (see :func:`create_backbone`).
    n_classes : int
        Number of classes.
    hidden : int, default 1024
        Head width.
    frozen : bool, optional
        Freeze the backbone; ``None`` takes the backbone's paper default.
    grey, weights, pretrained
        Passed to :func:`create_backbone`.
    """
    bb = create_backbone(backbone, grey=grey, weights=weights, pretrained=pretrained)
    return ArmClassifier(
        bb.model,
        n_classes,
        hidden=hidden,
        frozen=bb.frozen if frozen is None else frozen,
        mean=bb.mean,
        std=bb.std,
    )
