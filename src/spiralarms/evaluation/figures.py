"""Confusion-matrix figures (counts and row-normalised), as in the paper's Figure 7."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are written to files; no screen is assumed
import matplotlib.pyplot as plt
import numpy as np

from spiralarms.evaluation.metrics import normalised_confusion


def plot_confusion_matrix(
    matrix,
    classes: Sequence[str],
    *,
    normalise: bool = False,
    title: str | None = None,
    ax=None,
):
    """Draw a confusion matrix with its values written in each cell.

    Parameters
    ----------
    matrix : array-like of int, shape (k, k)
        Counts; rows are true classes, columns predicted classes.
    classes : sequence of str
        Class names in order.
    normalise : bool, default False
        Show row-normalised fractions (recall on the diagonal) instead of counts.
    title : str, optional
    ax : matplotlib Axes, optional
        Draw into this axes; a new figure is made otherwise.

    Returns
    -------
    matplotlib.figure.Figure
    """
    counts = np.asarray(matrix)
    values = normalised_confusion(counts) if normalise else counts
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(classes), 0.6 + 0.75 * len(classes)))
    else:
        fig = ax.figure
    vmax = 1.0 if normalise else max(int(counts.max()), 1)
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=vmax)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(classes)), labels=[f"m={c}" for c in classes], rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), labels=[f"m={c}" for c in classes])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    for i in range(len(classes)):
        for j in range(len(classes)):
            text = f"{values[i, j]:.2f}" if normalise else f"{int(values[i, j])}"
            dark = values[i, j] > 0.6 * vmax
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_title(title or ("confusion matrix (row-normalised)" if normalise else "confusion matrix (counts)"))
    fig.tight_layout()
    return fig


def save_confusion_figures(metrics: dict, out_dir: str | Path, prefix: str = "confusion") -> list[Path]:
    """Write ``<prefix>_counts.png`` and ``<prefix>_normalised.png`` from metrics.

    Parameters
    ----------
    metrics : dict
        A ``metrics.json`` dict (needs ``classes`` and ``confusion_matrix``).
    out_dir : path
        Folder to write into (created if needed).
    prefix : str, default "confusion"

    Returns
    -------
    list of Path
        The two files written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for normalise, suffix in ((False, "counts"), (True, "normalised")):
        fig = plot_confusion_matrix(metrics["confusion_matrix"], metrics["classes"], normalise=normalise)
        path = out_dir / f"{prefix}_{suffix}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths
