"""How faithful are the maps? Mask energy fractions and deletion curves (beyond the paper).

The paper reads its Grad-CAM++ and SmoothGrad maps by eye. Two measures make the
reading quantitative:

* **Mask energy fraction.** On synthetic galaxies the renderer knows where the disc
  and the spiral arms are (:class:`~spiralarms.data.synthetic.GalaxyMasks`). The share
  of a map's total value that falls inside a mask, set against the share of the image
  the mask covers, says whether the map points at the galaxy (or its arms) more than
  a uniform map would: a ratio above 1 is concentration, 1 is chance.
* **Deletion curve** (Petsiuk et al. 2018, "RISE"). Remove the pixels the map calls
  most important first, in ``steps`` equal slices, and follow the probability of the
  explained class. If the map is faithful the probability falls early and the area
  under the curve (AUC, fraction removed on the x axis, both axes in [0, 1]) is small.
  The same deletion in a random pixel order is the baseline: a map is informative
  when its AUC is below the random one.

Removed pixels are replaced by a blurred copy of the image by default (``baseline=
"blur"``, Gaussian, sigma 5 % of the image side), not by 0 (``"sky"``). Zeroing carves
sharp dark holes that a CNN never saw in training: the probability then drops because
the image stops looking like a galaxy, whichever pixels go, and the random order,
which peppers holes over the whole image, suffers most. Blurring removes what a pixel
adds to the structure (an arm against the disc around it) while keeping the local
brightness, so what the curve measures is lost evidence rather than lost realism.
The blur is wider than an arm (about 10 px in a 224 crop of a GZ2 cutout), so arms
melt into the disc.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from spiralarms.errors import SpiralArmsError
from spiralarms.explain.layers import eval_mode, model_device
from spiralarms.explain.maps import as_image_batch, predict_targets

__all__ = [
    "DELETION_BASELINES",
    "DeletionCurve",
    "mask_energy_fraction",
    "deletion_curve",
    "blurred",
    "trapezoid_area",
]

#: What replaces a deleted pixel: a blurred copy of the image, or 0 (dark sky).
DELETION_BASELINES: tuple[str, ...] = ("blur", "sky")

#: Default blur of the ``"blur"`` baseline, as a fraction of the image side.
BLUR_FRACTION = 0.05


def mask_energy_fraction(maps, mask) -> float | np.ndarray:
    """Share of a map's total value that lies inside a mask.

    Parameters
    ----------
    maps : array-like
        One map ``(H, W)`` or a stack ``(N, H, W)`` of non-negative values
        (Grad-CAM++ or SmoothGrad output).
    mask : array-like of bool
        ``(H, W)`` (the same mask for every map) or ``(N, H, W)``.

    Returns
    -------
    float or numpy.ndarray
        ``sum(map * mask) / sum(map)`` in [0, 1]: a float for one map, ``(N,)`` for a
        stack; NaN for an all-zero map. Compare with ``mask.mean()``, the share a
        uniform map would give.

    Raises
    ------
    SpiralArmsError
        On shapes that do not match, negative or non-finite map values, or a mask that
        is not boolean (0/1 values are accepted).
    """
    values = np.asarray(maps, dtype=np.float64)
    where = np.asarray(mask)
    if values.ndim not in (2, 3):
        raise SpiralArmsError(f"maps: expected (H, W) or (N, H, W), got shape {values.shape}")
    if where.dtype != bool:
        if not np.isin(where, (0, 1)).all():
            raise SpiralArmsError("mask: expected a boolean array (or 0/1 values)")
        where = where.astype(bool)
    if where.shape != values.shape[-2:] and where.shape != values.shape:
        raise SpiralArmsError(f"mask of shape {where.shape} does not fit maps of shape {values.shape}")
    if not np.isfinite(values).all() or (values < 0).any():
        raise SpiralArmsError("maps: values must be finite and non-negative")
    total = values.sum(axis=(-2, -1))
    inside = (values * where).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan)
    return float(fraction) if values.ndim == 2 else fraction


def trapezoid_area(y, x) -> float:
    """Area under ``y(x)`` by the trapezoid rule (``numpy.trapezoid``, spelled out for NumPy 1.x).

    Parameters
    ----------
    y, x : array-like
        Same length; ``x`` increasing.

    Returns
    -------
    float
    """
    y, x = np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


def blurred(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """A Gaussian-blurred copy of a ``(C, H, W)`` image (edges extended, not mirrored).

    Parameters
    ----------
    image : torch.Tensor
        ``(C, H, W)``.
    sigma : float
        Standard deviation in pixels.

    Returns
    -------
    torch.Tensor
        Same shape and dtype.
    """
    array = image.detach().cpu().numpy()
    smooth = ndimage.gaussian_filter(array, sigma=(0.0, float(sigma), float(sigma)), mode="nearest")
    return torch.from_numpy(smooth.astype(array.dtype, copy=False))


@dataclass(frozen=True)
class DeletionCurve:
    """Class probability as the most salient pixels are removed.

    Attributes
    ----------
    fraction : numpy.ndarray
        ``(steps + 1,)`` fraction of pixels removed, 0 to 1.
    probability : numpy.ndarray
        ``(steps + 1,)`` softmax probability of ``target`` at each step.
    auc : float
        Trapezoidal area under ``probability`` against ``fraction`` (lower: the map
        found the evidence sooner).
    target : int
        Class index followed.
    order : str
        ``"salient"`` (the map's order) or ``"random"``.
    baseline : str
        ``"blur"`` or ``"sky"``.
    """

    fraction: np.ndarray
    probability: np.ndarray
    auc: float
    target: int
    order: str
    baseline: str


def _deletion_order(saliency: np.ndarray | None, n_pixels: int, rng: np.random.Generator) -> np.ndarray:
    """Pixel indices, most salient first; ties (flat zero regions of a map) in random order."""
    tie_break = rng.permutation(n_pixels)
    if saliency is None:
        return tie_break
    # lexsort sorts by the last key first: by decreasing saliency, then by the random key.
    return np.lexsort((tie_break, -saliency.ravel()))


@torch.no_grad()
def deletion_curve(
    model: nn.Module,
    image,
    saliency,
    target: int | None = None,
    steps: int = 20,
    baseline: str = "blur",
    blur_sigma: float | None = None,
    seed: int = 0,
    batch_size: int = 32,
) -> DeletionCurve:
    """Delete pixels in order of a map's saliency and follow the class probability.

    Parameters
    ----------
    model : nn.Module
        Classifier taking images in [0, 1]; run in eval mode (its mode is restored).
    image : torch.Tensor
        One image ``(C, H, W)`` (or ``(1, C, H, W)``) in [0, 1].
    saliency : array-like or None
        ``(H, W)`` map, higher = more important; ``None`` deletes in a random order
        (the baseline a faithful map should beat).
    target : int, optional
        Class whose probability is followed; default the predicted class.
    steps : int, default 20
        Number of equal slices of pixels; the curve has ``steps + 1`` points, from the
        intact image to the fully replaced one.
    baseline : {"blur", "sky"}, default "blur"
        Replacement of a deleted pixel: the Gaussian-blurred image or 0 (see the
        module docstring for why blur is the default).
    blur_sigma : float, optional
        Blur width in pixels; default 5 % of the image side.
    seed : int, default 0
        Seed of the random order (and of ties in the map's order).
    batch_size : int, default 32
        Images per forward pass.

    Returns
    -------
    DeletionCurve

    Raises
    ------
    SpiralArmsError
        On a bad image, map shape, baseline, steps or target.
    """
    batch = as_image_batch(image, name="image")
    if batch.shape[0] != 1:
        raise SpiralArmsError(f"image: deletion_curve takes one image, got a batch of {batch.shape[0]}")
    height, width = batch.shape[-2:]
    if baseline not in DELETION_BASELINES:
        raise SpiralArmsError(f"baseline {baseline!r}: choose {' or '.join(DELETION_BASELINES)}")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise SpiralArmsError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise SpiralArmsError(f"batch_size must be a positive integer, got {batch_size!r}")
    if saliency is not None:
        saliency = np.asarray(saliency, dtype=np.float64)
        if saliency.shape != (height, width):
            raise SpiralArmsError(f"saliency of shape {saliency.shape} does not fit the image ({height}, {width})")
        if not np.isfinite(saliency).all():
            raise SpiralArmsError("saliency: contains NaN or infinite values")
    target = int(predict_targets(model, batch, target)[0])

    x = batch[0]
    if baseline == "sky":
        fill = torch.zeros_like(x)
    else:
        sigma = BLUR_FRACTION * max(height, width) if blur_sigma is None else float(blur_sigma)
        if not sigma > 0:
            raise SpiralArmsError(f"blur_sigma must be positive, got {blur_sigma!r}")
        fill = blurred(x, sigma)
    n_pixels = height * width
    order = _deletion_order(saliency, n_pixels, np.random.default_rng(seed))
    counts = np.rint(np.linspace(0.0, 1.0, steps + 1) * n_pixels).astype(np.int64)
    rank = np.empty(n_pixels, dtype=np.int64)
    rank[order] = np.arange(n_pixels)
    rank = torch.from_numpy(rank.reshape(height, width))

    device = model_device(model)
    probabilities = []
    with eval_mode(model):
        for start in range(0, steps + 1, batch_size):
            chunk = torch.from_numpy(counts[start : start + batch_size])
            deleted = (rank[None] < chunk[:, None, None]).unsqueeze(1).to(x.dtype)  # (b, 1, H, W)
            views = x[None] * (1 - deleted) + fill[None] * deleted
            logits = model(views.to(device))
            probabilities.append(torch.softmax(logits.float(), dim=1)[:, target].cpu())
    probability = torch.cat(probabilities).numpy().astype(np.float64)
    fraction = counts / n_pixels
    auc = trapezoid_area(probability, fraction)
    return DeletionCurve(
        fraction=fraction,
        probability=probability,
        auc=auc,
        target=target,
        order="random" if saliency is None else "salient",
        baseline=baseline,
    )
