"""Which layers to explain: the last convolutional stage, and a lower, middle and upper conv layer.

Layers are found by running the network once on the image to be explained and
recording, in execution order, what every module returns; that works for any CNN
(timm or hand-made) without a table of architectures.

The Grad-CAM++ layer (:func:`last_conv_stage`) is the *top* of the convolutional part:
the last module, in execution order, that returns a 4-D feature map with more than one
pixel. For a timm EfficientNet that is ``backbone.bn2``: the 1x1 ``conv_head``
convolution followed by its batch norm and activation, i.e. exactly the feature maps
that the paper's head averages over (Keras calls this layer ``top_activation``, the
usual Grad-CAM layer for its EfficientNets). It is preferred over

* ``conv_head`` alone: its raw output still goes through a per-channel affine map and
  an activation before the head sees it, so its channel weights would be taken on maps
  the classifier never pools;
* the last block of ``blocks``: it comes before ``conv_head``, which mixes its
  channels into the 1280 (B0) features the head reads.

For a ResNet the same rule picks ``layer4`` (the last stage, ReLU included).

The feature-map layers of the paper's Figure 8 (:func:`feature_layers`) are chosen
among the ``nn.Conv2d`` modules whose output has more than one pixel (squeeze-and-
excitation convolutions, which act on a 1x1 summary, are left out): ``lower`` is the
first (the stem), ``middle`` the one half way along, ``upper`` the last (``conv_head``
for an EfficientNet).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from spiralarms.errors import SpiralArmsError

__all__ = [
    "LAYER_ROLES",
    "TracedLayer",
    "trace_layers",
    "resolve_layer",
    "last_conv_stage",
    "conv_layers",
    "feature_layers",
    "eval_mode",
    "model_device",
]

#: Depth names of the paper's Figure 8 and how :func:`feature_layers` reads them.
LAYER_ROLES: tuple[str, ...] = ("lower", "middle", "upper")


@dataclass(frozen=True)
class TracedLayer:
    """One module call recorded by :func:`trace_layers`.

    Attributes
    ----------
    name : str
        Qualified module name inside the model (``"backbone.conv_head"``).
    module : nn.Module
    shape : tuple of int
        Shape of the tensor it returned (``(N, C, h, w)`` for a feature map).
    """

    name: str
    module: nn.Module
    shape: tuple[int, ...]

    @property
    def is_feature_map(self) -> bool:
        """A 4-D output with more than one pixel: a map that can be shown or weighted."""
        return len(self.shape) == 4 and self.shape[2] * self.shape[3] > 1


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block and give back its previous mode.

    Parameters
    ----------
    model : nn.Module

    Yields
    ------
    nn.Module
        ``model`` itself, in eval mode.
    """
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        # Per module: a frozen backbone stays in eval mode inside a training model.
        for module, mode in modes.items():
            module.training = mode


def _single_batch(image: torch.Tensor) -> torch.Tensor:
    if not isinstance(image, torch.Tensor):
        raise SpiralArmsError(f"expected a torch tensor image, got {type(image).__name__}")
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4:
        raise SpiralArmsError(f"expected a (C, H, W) or (N, C, H, W) image tensor, got shape {tuple(image.shape)}")
    return image[:1]


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter or buffer (CPU for a model with neither)."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def trace_layers(model: nn.Module, image: torch.Tensor) -> list[TracedLayer]:
    """Every module call of one forward pass, in the order the calls finish.

    Parameters
    ----------
    model : nn.Module
        The network; run in eval mode (its mode is given back afterwards).
    image : torch.Tensor
        One image ``(C, H, W)`` or a batch ``(N, C, H, W)`` (only the first is used).

    Returns
    -------
    list of TracedLayer
        A module called several times is listed once, at its last call. A container
        finishes after its children, so it comes after them.
    """
    image = _single_batch(image).to(model_device(model))
    names = {module: name for name, module in model.named_modules() if name}
    calls: dict[nn.Module, TracedLayer] = {}

    def record(module: nn.Module, _inputs, output) -> None:
        if isinstance(output, torch.Tensor):
            calls.pop(module, None)  # keep the last call, at the end of the order
            calls[module] = TracedLayer(names[module], module, tuple(output.shape))

    handles = [module.register_forward_hook(record) for module in names]
    try:
        with eval_mode(model):
            model(image)
    finally:
        for handle in handles:
            handle.remove()
    return list(calls.values())


def resolve_layer(model: nn.Module, layer: str | nn.Module) -> tuple[str, nn.Module]:
    """A layer given by qualified name or as a module, checked to belong to ``model``.

    Parameters
    ----------
    model : nn.Module
    layer : str or nn.Module
        ``"backbone.conv_head"`` or the module itself.

    Returns
    -------
    name : str
    module : nn.Module

    Raises
    ------
    SpiralArmsError
        If no such submodule exists.
    """
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer:
                return name, module
        raise SpiralArmsError(f"layer {type(layer).__name__} is not a submodule of the model")
    if not isinstance(layer, str) or not layer:
        raise SpiralArmsError(f"layer must be a module name or an nn.Module, got {layer!r}")
    try:
        return layer, model.get_submodule(layer)
    except AttributeError:
        raise SpiralArmsError(f"layer {layer!r}: no such submodule (see model.named_modules() for names)") from None


def last_conv_stage(model: nn.Module, image: torch.Tensor) -> tuple[str, nn.Module]:
    """The Grad-CAM++ layer: the last module returning a feature map (see the module docstring).

    Parameters
    ----------
    model : nn.Module
    image : torch.Tensor
        An input of the size to be explained (``(C, H, W)`` or a batch).

    Returns
    -------
    name : str
    module : nn.Module

    Raises
    ------
    SpiralArmsError
        If no module returns a 4-D feature map (not a convolutional network).
    """
    traced = trace_layers(model, image)
    maps = [t for t in traced if t.is_feature_map]
    if not maps:
        # Images so small that the last stage is 1x1: still usable, just coarse.
        maps = [t for t in traced if len(t.shape) == 4]
    if not maps:
        raise SpiralArmsError("no module of the model returns a 4-D feature map; is it a convolutional network?")
    return maps[-1].name, maps[-1].module


def conv_layers(model: nn.Module, image: torch.Tensor) -> list[TracedLayer]:
    """The model's 2-D convolutions that return a feature map, in execution order.

    Parameters
    ----------
    model : nn.Module
    image : torch.Tensor
        An input of the size to be explained.

    Returns
    -------
    list of TracedLayer
        ``nn.Conv2d`` calls whose output has more than one pixel.
    """
    return [t for t in trace_layers(model, image) if isinstance(t.module, nn.Conv2d) and t.is_feature_map]


def feature_layers(model: nn.Module, image: torch.Tensor, layers: Sequence[str] = LAYER_ROLES) -> dict[str, str]:
    """Module names for a lower, middle and upper convolutional layer (Figure 8).

    Parameters
    ----------
    model : nn.Module
    image : torch.Tensor
        An input of the size to be explained.
    layers : sequence of str, default ("lower", "middle", "upper")
        Depth names (see :data:`LAYER_ROLES`) or qualified module names, in any mix.

    Returns
    -------
    dict
        ``{requested: module name}`` in the order requested; a module name maps to
        itself.

    Raises
    ------
    SpiralArmsError
        If the model has no convolution, a name is not a submodule, or ``layers`` is
        empty.
    """
    if isinstance(layers, str) or not len(layers):
        raise SpiralArmsError(f"layers must be a non-empty sequence of names, got {layers!r}")
    convs: list[TracedLayer] | None = None
    chosen: dict[str, str] = {}
    for layer in layers:
        if layer in LAYER_ROLES:
            if convs is None:
                convs = conv_layers(model, image)
                if not convs:
                    raise SpiralArmsError("the model has no 2-D convolution with a spatial output")
            index = {"lower": 0, "middle": len(convs) // 2, "upper": len(convs) - 1}[layer]
            chosen[layer] = convs[index].name
        else:
            chosen[layer] = resolve_layer(model, layer)[0]
    return chosen
