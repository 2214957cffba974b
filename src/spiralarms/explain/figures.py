"""Figures of the explanations: feature maps (Figure 8), galleries (Figures 9, 10), deletion curves.

Figures are built as :class:`matplotlib.figure.Figure` objects, outside pyplot's
registry of open figures (nothing to close, no global state), and returned; the
caller saves them. Heat maps use the jet colour map as in the paper: red = high
importance, yellow and green = moderate, blue = little or none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from spiralarms.errors import SpiralArmsError
from spiralarms.explain.faithfulness import trapezoid_area

__all__ = [
    "GalleryPanel",
    "GalleryRow",
    "to_display",
    "overlay",
    "plot_feature_maps",
    "plot_gallery",
    "plot_deletion_curves",
]

#: Colour map of the heat maps (the paper's red-to-blue scale).
HEATMAP_CMAP = "jet"


def to_display(image) -> np.ndarray:
    """An image as an (H, W, 3) float32 RGB array in [0, 1] for drawing.

    Parameters
    ----------
    image : array-like or torch.Tensor
        A torch tensor ``(C, H, W)`` (C = 1 or 3, as the model takes it), or an array
        ``(C, H, W)``, ``(H, W, C)`` or ``(H, W)``.

    Returns
    -------
    numpy.ndarray
    """
    if hasattr(image, "detach"):  # a torch tensor is (C, H, W), as the model takes it
        array = image.detach().cpu().numpy().astype(np.float32)
        channels_first = array.ndim == 3
    else:
        array = np.asarray(image, dtype=np.float32)
        channels_first = array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[2] not in (1, 3)
    if channels_first:
        array = array.transpose(1, 2, 0)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise SpiralArmsError(f"cannot display an image of shape {np.shape(image)}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.clip(array, 0.0, 1.0)


def overlay(image, heatmap: np.ndarray, image_weight: float = 0.5) -> np.ndarray:
    """A Grad-CAM++ map laid over its image (pytorch-grad-cam's ``show_cam_on_image``).

    Parameters
    ----------
    image : array-like
        The input image (see :func:`to_display`).
    heatmap : numpy.ndarray
        ``(H, W)`` in [0, 1].
    image_weight : float, default 0.5
        Weight of the image in the blend.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8 RGB.
    """
    from pytorch_grad_cam.utils.image import show_cam_on_image

    rgb = to_display(image)
    heat = np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, 1.0)
    if heat.shape != rgb.shape[:2]:
        raise SpiralArmsError(f"heat map of shape {heat.shape} does not fit the image {rgb.shape[:2]}")
    return show_cam_on_image(rgb, heat, use_rgb=True, image_weight=image_weight)


def _top_channels(maps: np.ndarray, n: int) -> np.ndarray:
    """Channels with the largest mean activation, strongest first."""
    means = maps.reshape(maps.shape[0], -1).mean(axis=1)
    return np.argsort(-means, kind="stable")[:n]


def plot_feature_maps(
    image,
    maps: Mapping[str, np.ndarray],
    channels: int = 8,
    title: str | None = None,
) -> Figure:
    """The input galaxy and, per layer, its most active channels (Figure 8).

    Parameters
    ----------
    image : array-like
        The input as the model saw it (``(C, H, W)``).
    maps : mapping
        ``{row label: (C, h, w) array}``, e.g. ``{"lower\nbackbone.conv_stem": ...}``,
        top to bottom.
    channels : int, default 8
        Channels shown per layer: those with the largest mean activation, each
        scaled to its own range (viridis: bright = strong).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not maps:
        raise SpiralArmsError("plot_feature_maps: no layers to show")
    n_cols = max(2, min(int(channels), max(m.shape[0] for m in maps.values())))
    fig = Figure(figsize=(1.5 * (n_cols + 1), 1.6 * len(maps) + 0.6), layout="constrained")
    grid = fig.add_gridspec(len(maps), n_cols + 1)
    ax = fig.add_subplot(grid[:, 0])
    ax.imshow(to_display(image))
    ax.set_title("input", fontsize=9)
    ax.axis("off")
    for row, (label, values) in enumerate(maps.items()):
        values = np.asarray(values, dtype=np.float32)
        for col, channel in enumerate(_top_channels(values, n_cols)):
            ax = fig.add_subplot(grid[row, col + 1])
            ax.imshow(values[channel], cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"ch {channel}", fontsize=7)
            if col == 0:
                ax.set_ylabel(f"{label}\n{values.shape[1]}x{values.shape[2]}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


@dataclass
class GalleryPanel:
    """One galaxy of a gallery: its image, maps and labels.

    Attributes
    ----------
    id : str
    image : array-like
        ``(C, H, W)`` input in [0, 1].
    gradcam : numpy.ndarray
        ``(H, W)`` Grad-CAM++ map.
    smoothgrad : numpy.ndarray
        ``(H, W)`` SmoothGrad map.
    label : str or None
        True class, if known.
    pred : str
        Predicted class.
    prob : float
        Probability of the predicted class.
    """

    id: str
    image: object
    gradcam: np.ndarray
    smoothgrad: np.ndarray
    label: str | None
    pred: str
    prob: float

    def caption(self) -> str:
        """``true m=2 -> m=3 (0.87)`` or ``m=3 (0.87)`` when the truth is unknown."""
        guess = f"m={self.pred} ({self.prob:.2f})"
        return guess if self.label is None else f"true m={self.label} \u2192 {guess}"


@dataclass
class GalleryRow:
    """A gallery row: a label, its galaxies, and what to say when there are none.

    Attributes
    ----------
    label : str
        Row label (``"m=2"``).
    panels : list of GalleryPanel
    empty_text : str
        Written across the row when ``panels`` is empty.
    """

    label: str
    panels: list[GalleryPanel]
    empty_text: str = ""


def plot_gallery(rows: Sequence[GalleryRow], title: str | None = None) -> Figure:
    """Galaxies with their Grad-CAM++ overlay and SmoothGrad map (Figures 9 and 10).

    Parameters
    ----------
    rows : sequence of GalleryRow
        One row per class, top to bottom. Each galaxy takes three columns: the image
        (captioned with true class, predicted class and probability), the Grad-CAM++
        map over the image, and the SmoothGrad map.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not rows:
        raise SpiralArmsError("plot_gallery: no rows")
    n_galaxies = max(1, max(len(r.panels) for r in rows))
    n_cols = 3 * n_galaxies
    fig = Figure(figsize=(1.45 * n_cols + 0.4, 1.65 * len(rows) + 0.5), layout="constrained")
    grid = fig.add_gridspec(len(rows), n_cols)
    for r, row in enumerate(rows):
        if not row.panels:
            ax = fig.add_subplot(grid[r, :])
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            ax.set_ylabel(row.label, fontsize=9, rotation=0, ha="right", va="center")
            ax.text(0.5, 0.5, row.empty_text, ha="center", va="center", fontsize=9, color="0.4", transform=ax.transAxes)
            continue
        for g, panel in enumerate(row.panels):
            views = (
                (to_display(panel.image), None, panel.caption()),
                (overlay(panel.image, panel.gradcam), None, "Grad-CAM++"),
                (panel.smoothgrad, HEATMAP_CMAP, "SmoothGrad"),
            )
            for v, (picture, cmap, caption) in enumerate(views):
                ax = fig.add_subplot(grid[r, 3 * g + v])
                ax.imshow(picture, cmap=cmap, vmin=0.0 if cmap else None, vmax=1.0 if cmap else None)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(caption, fontsize=6.5)
                if g == 0 and v == 0:
                    ax.set_ylabel(row.label, fontsize=9, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_deletion_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    title: str | None = None,
) -> Figure:
    """Mean deletion curves: class probability against the fraction of pixels removed.

    Parameters
    ----------
    curves : mapping
        ``{name: (fraction, probabilities)}``, probabilities ``(n_galaxies, steps + 1)``
        (their mean is drawn, with the interquartile range shaded) or ``(steps + 1,)``.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = Figure(figsize=(4.6, 3.4), layout="constrained")
    ax = fig.add_subplot()
    for name, (fraction, probs) in curves.items():
        probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
        mean = probs.mean(axis=0)
        auc = trapezoid_area(mean, fraction)
        (line,) = ax.plot(fraction, mean, label=f"{name} (AUC {auc:.3f})")
        if probs.shape[0] > 1:
            low, high = np.percentile(probs, [25, 75], axis=0)
            ax.fill_between(fraction, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("fraction of pixels deleted")
    ax.set_ylabel("probability of the predicted class")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return fig
