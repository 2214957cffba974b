"""Explanation maps of the paper's section 5.3: feature maps, Grad-CAM++ and SmoothGrad.

* Feature maps (Figure 8): what a lower, a middle and an upper convolutional layer
  return for one galaxy.
* Grad-CAM++ (Chattopadhay et al. 2018; Figures 9 and 10): the last convolutional
  stage's feature maps weighted by the positive gradients of the class score, with
  pytorch-grad-cam's :class:`~pytorch_grad_cam.GradCAMPlusPlus`.
* SmoothGrad (Smilkov et al. 2017): the gradient of the class score with respect to
  the input pixels, averaged over copies of the image with Gaussian noise, with
  captum's ``NoiseTunnel(Saliency(model))``.

Images are ``(N, C, H, W)`` (or one ``(C, H, W)``) tensors in [0, 1], grey or colour,
as the classifier takes them; maps come back as NumPy ``(N, H, W)`` arrays in [0, 1].
The class explained (``target``) defaults to the predicted class, and the score is
the class logit, before the softmax.

The model is left exactly as it was: it runs in eval mode (fixed batch-norm
statistics, no dropout) and its parameters are neither changed nor given gradients.
For the duration of a call every parameter has ``requires_grad`` turned off and the
input has it turned on, so gradients flow to the input (and to every feature map on
the way) whether the backbone is frozen or not; the flags, the ``.grad`` attributes
and the train/eval modes are restored afterwards, also on error.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from spiralarms.errors import SpiralArmsError
from spiralarms.explain.layers import (
    LAYER_ROLES,
    eval_mode,
    feature_layers,
    last_conv_stage,
    model_device,
    resolve_layer,
)

__all__ = ["gradcam_pp", "smoothgrad", "feature_maps", "predict_targets", "as_image_batch"]

#: Tolerance on the [0, 1] range of input images (JPEG round-off, interpolation).
_RANGE_TOLERANCE = 1e-3


def as_image_batch(images, name: str = "images") -> torch.Tensor:
    """Validate images and return them as a float32 ``(N, C, H, W)`` tensor.

    Parameters
    ----------
    images : torch.Tensor or numpy.ndarray
        ``(N, C, H, W)`` or a single ``(C, H, W)`` image, values in [0, 1].
    name : str
        How to call the argument in error messages.

    Returns
    -------
    torch.Tensor
        ``(N, C, H, W)`` float32, detached from any graph.

    Raises
    ------
    SpiralArmsError
        On a wrong type or shape, an empty batch, non-finite values or values
        outside [0, 1] (the classifiers normalise internally and take [0, 1] pixels).
    """
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise SpiralArmsError(f"{name}: expected a torch tensor or NumPy array, got {type(images).__name__}")
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4 or images.shape[0] == 0 or images.shape[1] not in (1, 3):
        raise SpiralArmsError(
            f"{name}: expected (N, C, H, W) or (C, H, W) with C = 1 or 3 and N >= 1, got shape {tuple(images.shape)}"
        )
    images = images.detach().to(torch.float32)
    if not torch.isfinite(images).all():
        raise SpiralArmsError(f"{name}: contains NaN or infinite values")
    low, high = float(images.min()), float(images.max())
    if low < -_RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
        raise SpiralArmsError(
            f"{name}: values must be in [0, 1] (the model normalises internally), got [{low:.3g}, {high:.3g}]"
        )
    return images


@contextlib.contextmanager
def _explaining(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode, gradients on, no parameter gradients; everything restored on exit."""
    if not isinstance(model, nn.Module):
        raise SpiralArmsError(f"model must be a torch nn.Module, got {type(model).__name__}")
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    grads = [p.grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        with eval_mode(model), torch.enable_grad():
            yield model
    finally:
        # pytorch-grad-cam calls model.zero_grad(); put back whatever .grad held.
        for p, flag, grad in zip(params, flags, grads, strict=True):
            p.requires_grad_(flag)
            p.grad = grad


def _n_classes(logits: torch.Tensor) -> int:
    if logits.ndim != 2:
        raise SpiralArmsError(f"the model must return (N, k) class scores, got shape {tuple(logits.shape)}")
    return int(logits.shape[1])


@torch.no_grad()
def predict_targets(model: nn.Module, images, target=None, batch_size: int = 32) -> np.ndarray:
    """The class index to explain for each image.

    Parameters
    ----------
    model : nn.Module
        Returns class scores ``(N, k)``.
    images : torch.Tensor
        ``(N, C, H, W)`` or ``(C, H, W)`` in [0, 1].
    target : int, sequence of int or None
        ``None``: the predicted class of each image; an int: that class for all;
        a sequence: one class per image.
    batch_size : int, default 32

    Returns
    -------
    numpy.ndarray of int64, shape (N,)

    Raises
    ------
    SpiralArmsError
        If a class index is out of range or the sequence has the wrong length.
    """
    batch = as_image_batch(images)
    n = batch.shape[0]
    device = model_device(model)
    with eval_mode(model):
        first = model(batch[:1].to(device))
        k = _n_classes(first)
        if target is None:
            chunks = [model(batch[i : i + batch_size].to(device)).argmax(dim=1).cpu() for i in range(0, n, batch_size)]
            return torch.cat(chunks).numpy().astype(np.int64)
    if isinstance(target, numbers.Integral) and not isinstance(target, bool):
        targets = np.full(n, int(target), dtype=np.int64)
    else:
        targets = np.asarray(target)
        if targets.ndim != 1 or len(targets) != n or not np.issubdtype(targets.dtype, np.integer):
            raise SpiralArmsError(f"target: give None, one class index or {n} class indices, got {target!r}")
        targets = targets.astype(np.int64)
    if targets.min() < 0 or targets.max() >= k:
        raise SpiralArmsError(f"target: class indices must be in 0..{k - 1}, got {sorted(set(targets.tolist()))}")
    return targets


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise SpiralArmsError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _unit_range(maps: np.ndarray) -> np.ndarray:
    """Clean library output to finite float32 values in [0, 1]."""
    return np.clip(np.nan_to_num(maps.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)


def gradcam_pp(
    model: nn.Module,
    images,
    target=None,
    layer: str | nn.Module | None = None,
    batch_size: int = 16,
) -> np.ndarray:
    """Grad-CAM++ heat maps of the class score on the last convolutional stage.

    Parameters
    ----------
    model : nn.Module
        A classifier taking images in [0, 1] (an :class:`~spiralarms.models.classifier.ArmClassifier`
        or any CNN returning class scores ``(N, k)``); frozen or trainable.
    images : torch.Tensor
        ``(N, C, H, W)`` or ``(C, H, W)`` in [0, 1]; grey (C = 1) or colour (C = 3).
    target : int, sequence of int or None
        Class to explain; default the predicted class of each image.
    layer : str, nn.Module or None
        Layer whose feature maps are weighted; default :func:`~spiralarms.explain.layers.last_conv_stage`
        (``backbone.bn2`` for a timm EfficientNet: ``conv_head`` with its batch norm and
        activation, what the head pools).
    batch_size : int, default 16
        Images per backward pass.

    Returns
    -------
    numpy.ndarray
        ``(N, H, W)`` float32 in [0, 1]: pytorch-grad-cam's map (ReLU of the weighted
        feature maps, bilinearly resized to the image and min-max scaled per image).

    Raises
    ------
    SpiralArmsError
        On bad images, targets or layer.
    """
    from pytorch_grad_cam import GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    batch = as_image_batch(images)
    batch_size = _check_positive_int(batch_size, "batch_size")
    targets = predict_targets(model, batch, target)
    device = model_device(model)
    name, module = last_conv_stage(model, batch[:1]) if layer is None else resolve_layer(model, layer)
    out = []
    with _explaining(model):
        cam = GradCAMPlusPlus(model=model, target_layers=[module])
        try:
            for start in range(0, batch.shape[0], batch_size):
                # The input asks for gradients so that they reach the feature maps even
                # when every parameter is frozen.
                x = batch[start : start + batch_size].to(device).requires_grad_(True)
                chunk = targets[start : start + batch_size]
                try:
                    maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in chunk])
                except IndexError as exc:  # no gradient reached the layer
                    raise SpiralArmsError(f"Grad-CAM++ on layer {name!r}: no gradient reached it ({exc})") from None
                out.append(np.asarray(maps, dtype=np.float32).reshape(len(chunk), *batch.shape[2:]))
        finally:
            cam.activations_and_grads.release()
    return _unit_range(np.concatenate(out))


def smoothgrad(
    model: nn.Module,
    images,
    target=None,
    noise: float = 0.1,
    samples: int = 25,
    batch_size: int | None = None,
    seed: int | None = 0,
) -> np.ndarray:
    """SmoothGrad saliency maps: input gradients averaged over noisy copies of the image.

    Parameters
    ----------
    model : nn.Module
        A classifier taking images in [0, 1]; frozen or trainable.
    images : torch.Tensor
        ``(N, C, H, W)`` or ``(C, H, W)`` in [0, 1]; grey or colour.
    target : int, sequence of int or None
        Class to explain; default the predicted class of each image.
    noise : float, default 0.1
        Standard deviation of the Gaussian noise, in units of the [0, 1] pixel range
        (SmoothGrad's noise level sigma / (x_max - x_min); Smilkov et al. find 10-20 %
        works best). The noisy copies are not clipped, as in the method's definition.
    samples : int, default 25
        Noisy copies per image (captum's ``nt_samples``; the paper of SmoothGrad uses 50,
        beyond which the maps hardly change).
    batch_size : int, optional
        Noisy copies per backward pass; default all ``samples`` at once.
    seed : int or None, default 0
        Seed of the noise, drawn from a forked generator (the global random state is
        left untouched); ``None`` draws from the global state.

    Returns
    -------
    numpy.ndarray
        ``(N, H, W)`` float32 in [0, 1]: the mean absolute gradient (captum
        ``Saliency(abs=True)`` under ``NoiseTunnel(nt_type="smoothgrad")``), its
        maximum over colour channels, divided by its maximum per image.

    Raises
    ------
    SpiralArmsError
        On bad images, targets, noise or samples.
    """
    from captum.attr import NoiseTunnel, Saliency

    batch = as_image_batch(images)
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not 0 <= float(noise) <= 1:
        raise SpiralArmsError(
            f"noise must be a standard deviation in [0, 1] (fraction of the pixel range), got {noise!r}"
        )
    samples = _check_positive_int(samples, "samples")
    chunk_size = samples if batch_size is None else _check_positive_int(batch_size, "batch_size")
    targets = predict_targets(model, batch, target)
    device = model_device(model)
    tunnel = NoiseTunnel(Saliency(model))
    out = []
    if seed is None:
        rng = contextlib.nullcontext()
    else:
        rng = torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])
    with _explaining(model), rng:
        if seed is not None:
            torch.manual_seed(int(seed))
        for i in range(batch.shape[0]):  # one image at a time: memory = samples copies
            grads = tunnel.attribute(
                batch[i : i + 1].to(device),
                nt_type="smoothgrad",
                nt_samples=samples,
                nt_samples_batch_size=chunk_size,
                stdevs=float(noise),
                target=int(targets[i]),
                abs=True,
            )
            saliency = grads.detach().abs().amax(dim=1)[0].cpu().numpy()
            peak = float(saliency.max())
            out.append(saliency / peak if peak > 0 else np.zeros_like(saliency))
    return _unit_range(np.stack(out))


@torch.no_grad()
def feature_maps(
    model: nn.Module,
    image,
    layers: Sequence[str] = LAYER_ROLES,
) -> dict[str, np.ndarray]:
    """Activation maps of chosen convolutional layers for one image (Figure 8).

    Parameters
    ----------
    model : nn.Module
        The classifier (any CNN taking images in [0, 1]).
    image : torch.Tensor
        ``(C, H, W)`` or ``(1, C, H, W)`` in [0, 1].
    layers : sequence of str, default ("lower", "middle", "upper")
        Depth names, chosen by :func:`~spiralarms.explain.layers.feature_layers`
        (first, middle and last convolution), or qualified module names.

    Returns
    -------
    dict
        ``{module name: (C, h, w) float32 array}``, in the order of ``layers``: each
        layer's output (for ``nn.Conv2d``, before batch norm and activation).

    Raises
    ------
    SpiralArmsError
        On a bad image or layer name, or a layer that returns no feature map.
    """
    batch = as_image_batch(image, name="image")
    if batch.shape[0] != 1:
        raise SpiralArmsError(f"image: feature_maps takes one image, got a batch of {batch.shape[0]}")
    names = list(dict.fromkeys(feature_layers(model, batch, layers).values()))
    captured: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(_module, _inputs, output) -> None:
            if isinstance(output, torch.Tensor):
                # A copy: an in-place activation after this layer would change it.
                captured[name] = output.detach()[0].float().cpu().clone()

        return hook

    handles = [resolve_layer(model, name)[1].register_forward_hook(keep(name)) for name in names]
    try:
        with eval_mode(model):
            model(batch.to(model_device(model)))
    finally:
        for handle in handles:
            handle.remove()
    out = {}
    for name in names:
        value = captured.get(name)
        if value is None or value.ndim != 3:
            shape = None if value is None else tuple(value.shape)
            raise SpiralArmsError(f"layer {name!r} returns no (C, h, w) feature map (got {shape})")
        out[name] = value.numpy().astype(np.float32)
    return out
