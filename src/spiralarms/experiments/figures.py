"""Figures 6 and 13 of the reproduction report.

- Figure 6 (section 4.2.2): galaxies per class in the full and the down-sampled data
  sets, ours beside the paper's (section 2.1's counts, each capped at 300).
- Figure 13 (section 6): m = 2 galaxies that the V2M model predicts as m = 1 (left)
  and as m = 3 (right). The paper draws them from its predictions over the whole
  sample; a reproduction has the validation predictions of its runs
  (``val_predictions.csv``), so they come from there, most confident first.

Figures are :class:`matplotlib.figure.Figure` objects built outside pyplot's registry
(nothing to close); the report saves them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from spiralarms.errors import SpiralArmsError
from spiralarms.io.run_folder import RunFolder

__all__ = ["plot_figure6", "figure13_galaxies", "plot_figure13", "FIGURE13_TRUE", "FIGURE13_PREDICTED"]

#: Figure 13: true class and the two wrong predictions shown (left, right).
FIGURE13_TRUE = "2"
FIGURE13_PREDICTED: tuple[str, ...] = ("1", "3")


def plot_figure6(
    ours: Mapping[str, Mapping[str, int]],
    paper: Mapping[str, Mapping[str, int]] | None = None,
    classes: Sequence[str] | None = None,
) -> Figure:
    """Figure 6: galaxies per class in the full and down-sampled sets (log scale).

    Parameters
    ----------
    ours : mapping
        ``{"full": {class: n}, "down-sampled": {class: n}}`` (either may be missing).
    paper : mapping, optional
        The same for the paper, drawn in a second panel.
    classes : sequence of str, optional
        Bar order; default: the classes of ``ours["full"]``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    panels = [("ours", ours)] + ([("the paper", paper)] if paper else [])
    classes = list(classes) if classes is not None else list(next(iter(ours.values()), {}))
    fig = Figure(figsize=(4.2 * len(panels) + 0.6, 3.6), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    x = np.arange(len(classes))
    for ax, (title, sets) in zip(axes, panels, strict=True):
        width = 0.8 / max(1, len(sets))
        for k, (name, counts) in enumerate(sets.items()):
            heights = [counts.get(c, 0) for c in classes]
            bars = ax.bar(x + (k - (len(sets) - 1) / 2) * width, heights, width, label=name)
            ax.bar_label(bars, fontsize=7, padding=1)
        ax.set_xticks(x, [f"m={c}" for c in classes])
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("galaxies")
    fig.suptitle("Number of galaxy images of the full and down-sampled data sets (Figure 6)", fontsize=10)
    return fig


def figure13_galaxies(
    predictions: pd.DataFrame,
    split: pd.DataFrame,
    n: int = 4,
    true: str = FIGURE13_TRUE,
    predicted: Sequence[str] = FIGURE13_PREDICTED,
) -> dict[str, pd.DataFrame]:
    """The galaxies of class ``true`` predicted as each class of ``predicted``.

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``val_predictions.csv``: ``id``, ``label``, ``pred``, ``p_<class>``.
    split : pandas.DataFrame
        ``split.csv``: ``id`` and ``file`` of every galaxy of the run.
    n : int, default 4
        Galaxies per predicted class, most confident (highest ``p_<pred>``) first.
    true : str, default "2"
    predicted : sequence of str, default ("1", "3")

    Returns
    -------
    dict of str to pandas.DataFrame
        Per predicted class: ``id``, ``file``, ``prob`` (at most ``n`` rows), and
        ``attrs["total"]``, the number of such galaxies in all.

    Raises
    ------
    SpiralArmsError
        If a column is missing.
    """
    for name, table, columns in ((RunFolder.VAL_PREDICTIONS, predictions, ("id", "label", "pred")),
                                 (RunFolder.SPLIT, split, ("id", "file"))):
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise SpiralArmsError(f"{name}: no column {missing[0]!r}")
    files = dict(zip(split["id"].astype(str), split["file"].astype(str), strict=False))
    chosen = {}
    for pred in predicted:
        rows = predictions[(predictions["label"].astype(str) == true) & (predictions["pred"].astype(str) == pred)]
        prob = rows[f"p_{pred}"].astype(float) if f"p_{pred}" in rows.columns else pd.Series(np.nan, rows.index)
        frame = pd.DataFrame({"id": rows["id"].astype(str), "prob": prob})
        frame["file"] = frame["id"].map(files)
        frame = frame.sort_values("prob", ascending=False, kind="stable").head(n).reset_index(drop=True)
        frame.attrs["total"] = int(len(rows))
        chosen[pred] = frame[["id", "file", "prob"]]
    return chosen


def plot_figure13(
    chosen: Mapping[str, pd.DataFrame], crop: int | None, model: str, true: str = FIGURE13_TRUE
) -> Figure:
    """Figure 13: one column per wrong prediction, most confident galaxy on top.

    Parameters
    ----------
    chosen : mapping
        :func:`figure13_galaxies` output.
    crop : int or None
        Centre crop shown (the run's: what the model saw).
    model : str
        Model label, for the title.
    true : str, default "2"

    Returns
    -------
    matplotlib.figure.Figure
    """
    from spiralarms.explain.figures import to_display
    from spiralarms.explain.galleries import load_images

    n_rows = max(1, max((len(frame) for frame in chosen.values()), default=1))
    fig = Figure(figsize=(2.1 * len(chosen) + 0.4, 2.2 * n_rows + 0.5), layout="constrained")
    axes = fig.subplots(n_rows, len(chosen), squeeze=False)
    for j, (pred, frame) in enumerate(chosen.items()):
        images = load_images(frame["file"].tolist(), crop=crop, grey=False) if len(frame) else []
        for i in range(n_rows):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"m={true} predicted as m={pred}\n({frame.attrs.get('total', len(frame))} in all)",
                             fontsize=8)
            if i >= len(frame):
                ax.set_facecolor("0.92")
                if i == 0:
                    ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes, fontsize=8)
                continue
            ax.imshow(to_display(images[i]))
            ax.set_xlabel(f"{frame['id'][i]}  p={frame['prob'][i]:.2f}", fontsize=6.5)
    fig.suptitle(f"Validation galaxies with m={true} misclassified by {model} (Figure 13)", fontsize=9)
    return fig
