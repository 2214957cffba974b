"""Confusion-matrix figures (counts and row-normalised), as in the paper's Figure 7."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are written to files; no screen is assumed
import matplotlib.pyplot as plt
import numpy as np

from spiralarms.evaluation.metrics import normalised_confusion
from spiralarms.io.atomic import save_figure


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
        save_figure(fig, path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_example_grid(predictions, classes: Sequence[str], *, n_per_class: int = 4, crop: int | None = 224, seed: int = 0):
    """A grid of example galaxies per true class, with their predicted probabilities.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Columns ``file``, ``true_label``, ``label`` and ``p_<class>`` (as written by
        :func:`spiralarms.evaluation.evaluate.evaluate_run`).
    classes : sequence of str
        Class order: one row of the grid per class.
    n_per_class : int, default 4
        Galaxies per row, drawn at random (seeded); a class with fewer shows fewer.
    crop : int or None, default 224
        Show the centre crop the model saw.
    seed : int, default 0

    Returns
    -------
    matplotlib.figure.Figure
    """
    from spiralarms.data.images import load_image
    from spiralarms.data.transforms import center_crop

    classes = [str(c) for c in classes]
    fig, axes = plt.subplots(
        len(classes), n_per_class, figsize=(2.1 * n_per_class, 2.3 * len(classes)), squeeze=False
    )
    for row, name in enumerate(classes):
        members = predictions[predictions["true_label"].astype(str) == name]
        if len(members) > n_per_class:
            members = members.sample(n_per_class, random_state=seed)
        for col in range(n_per_class):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(f"true m={name}", fontsize=10)
            if col >= len(members):
                ax.set_facecolor("0.92")
                if col == 0:
                    ax.text(0.5, 0.5, "no galaxies", ha="center", va="center", transform=ax.transAxes)
                continue
            galaxy = members.iloc[col]
            image = load_image(galaxy["file"])
            if crop is not None and min(image.shape[:2]) >= crop:
                image = center_crop(image, crop)
            ax.imshow(image)
            p = float(galaxy[f"p_{galaxy['label']}"])
            correct = str(galaxy["label"]) == name
            ax.set_title(
                f"pred m={galaxy['label']} ({p:.2f})", fontsize=9, color="green" if correct else "red"
            )
    fig.suptitle("Validation galaxies per true class, with the predicted class and its probability")
    fig.tight_layout()
    return fig


def plot_reliability(tables: dict, title: str = "reliability diagram"):
    """Accuracy against confidence per bin, one line per set of probabilities.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        ``{"before scaling": table, "after scaling": table}`` of
        :func:`~spiralarms.evaluation.calibration.reliability_table`.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
        A perfectly calibrated model lies on the diagonal; below it, over-confident.
    """
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5.0, 5.8), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="calibrated")
    for i, (name, table) in enumerate(tables.items()):
        used = table[table["n"] > 0]
        ax.plot(used["confidence"], used["accuracy"], marker="o", ms=4, label=name)
        centres = (table["lower"] + table["upper"]) / 2
        width = float((table["upper"] - table["lower"]).iloc[0]) / (len(tables) + 0.5)
        hist.bar(centres + (i - (len(tables) - 1) / 2) * width, table["n"], width=width, label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy of the top label")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    hist.set_xlabel("confidence (top probability)")
    hist.set_ylabel("galaxies")
    fig.tight_layout()
    return fig


def plot_coverage(curves: dict, title: str = "accuracy of the most confident galaxies"):
    """Accuracy of the kept labels against the fraction kept (abstention).

    Parameters
    ----------
    curves : dict of str to pandas.DataFrame
        Tables of :func:`~spiralarms.evaluation.calibration.coverage_accuracy`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    for name, curve in curves.items():
        ax.plot(curve["coverage"], curve["accuracy"], marker="o", ms=4, label=name)
    ax.set_xlabel("fraction of galaxies kept (most confident first)")
    ax.set_ylabel("accuracy of the kept labels")
    ax.set_xlim(0, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
