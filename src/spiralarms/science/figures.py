"""Figures 11 and 12: stellar-mass distributions by arm-number class.

Figure 11: one panel per source (labels, then each model), the whole sample's
density-normalised mass histogram (grey, filled, with its step outline) under the
step outlines of the classes holding more than 1 % of the sample.

Figure 12: one panel per source, a violin per class of its masses trimmed at the
class's 5th and 99th percentiles (the paper's "threshold of 5% for the lower and 1%
for the upper data"), each violin scaled to the same width, the class mean as a
dotted line and the whole sample's mean as a dashed one.

Figures are drawn on :class:`matplotlib.figure.Figure` with the Agg canvas: no
pyplot state, no display needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from spiralarms.errors import SpiralArmsError
from spiralarms.io.atomic import save_figure
from spiralarms.science.statistics import TABLE4_CLASSES

#: Matched-table columns the figures read.
MASS_COLUMN = "lgm_tot_p50"
CLASS_COLUMN = "class"
SOURCE_COLUMN = "source"

#: Mass axis label (MPA-JHU total stellar mass, Kroupa IMF).
MASS_LABEL = r"$\log_{10}(M_\ast / M_\odot)$"

_COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink")


def class_colours(class_order: tuple[str, ...] = TABLE4_CLASSES) -> dict[str, str]:
    """A fixed colour per class, the same in both figures.

    Parameters
    ----------
    class_order : tuple of str

    Returns
    -------
    dict of str to str
    """
    return {name: _COLOURS[i % len(_COLOURS)] for i, name in enumerate(class_order)}


def _check(matched: pd.DataFrame) -> None:
    missing = [c for c in (SOURCE_COLUMN, CLASS_COLUMN, MASS_COLUMN) if c not in matched.columns]
    if missing:
        raise SpiralArmsError(f"figures: matched table has no column {missing[0]!r}")


def _sources(matched: pd.DataFrame, sources) -> list[str]:
    if sources is not None:
        return [str(s) for s in sources]
    return list(dict.fromkeys(matched[SOURCE_COLUMN].astype(str)))


def _save(figure: Figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    save_figure(figure, path, dpi=150)
    return path


def _bin_edges(masses: np.ndarray, bin_width: float) -> np.ndarray:
    if len(masses) == 0:
        return np.arange(8.0, 12.0 + bin_width / 2, bin_width)
    low = np.floor(masses.min() / bin_width) * bin_width
    high = np.ceil(masses.max() / bin_width) * bin_width
    if high <= low:
        high = low + bin_width
    return np.arange(low, high + bin_width / 2, bin_width)


def plotted_classes(classes, class_order=TABLE4_CLASSES, min_fraction: float = 0.01) -> list[str]:
    """The classes that Figure 11 draws: those holding more than ``min_fraction`` of the sample.

    Parameters
    ----------
    classes : array-like of str
        Every galaxy's class (one source).
    class_order : tuple of str
    min_fraction : float, default 0.01
        The paper's 1 %; strict.

    Returns
    -------
    list of str
        In class order.
    """
    classes = np.asarray(classes, dtype=object)
    if len(classes) == 0:
        return []
    return [c for c in class_order if np.count_nonzero(classes == c) / len(classes) > min_fraction]


def _source_panels(axes, matched: pd.DataFrame, names: list[str]):
    """Each panel with its source's masses and classes, titled with the source and its count."""
    for ax, name in zip(axes, names or ["(no source)"], strict=False):
        rows = matched[matched[SOURCE_COLUMN].astype(str) == name]
        ax.set_title(f"{name} (N = {len(rows)})", fontsize=10)
        yield ax, rows[MASS_COLUMN].to_numpy(dtype=np.float64), rows[CLASS_COLUMN].astype(str).to_numpy(dtype=object)


def figure11(
    matched: pd.DataFrame,
    path,
    *,
    sources=None,
    class_order: tuple[str, ...] = TABLE4_CLASSES,
    min_fraction: float = 0.01,
    bin_width: float = 0.1,
) -> Path:
    """Stellar-mass histograms per class over the whole sample, one panel per source.

    Parameters
    ----------
    matched : pandas.DataFrame
        Columns ``source``, ``class`` and ``lgm_tot_p50`` (finite masses).
    path : path
        The image file (PNG by suffix).
    sources : sequence of str, optional
        Panels, top to bottom; default the sources in order of appearance.
    class_order : tuple of str
        Class order and colours.
    min_fraction : float, default 0.01
        A class is drawn only if it holds more than this share of its source.
    bin_width : float, default 0.1
        Histogram bin width in dex, the same bins for every panel.

    Returns
    -------
    pathlib.Path
    """
    _check(matched)
    names = _sources(matched, sources)
    colours = class_colours(class_order)
    masses_all = matched[MASS_COLUMN].to_numpy(dtype=np.float64)
    edges = _bin_edges(masses_all[np.isfinite(masses_all)], bin_width)
    figure = Figure(figsize=(7.0, 2.6 * max(len(names), 1) + 0.6))
    axes = figure.subplots(max(len(names), 1), 1, sharex=True, squeeze=False)[:, 0]
    for ax, masses, classes in _source_panels(axes, matched, names):
        ax.set_ylabel("density")
        if len(masses) == 0:
            ax.text(0.5, 0.5, "no matched galaxies", ha="center", va="center", transform=ax.transAxes)
            continue
        ax.hist(masses, bins=edges, density=True, histtype="stepfilled", color="0.8", label="whole sample")
        ax.hist(masses, bins=edges, density=True, histtype="step", color="0.35", linewidth=1.0)
        shown = plotted_classes(classes, class_order, min_fraction)
        for c in shown:
            ax.hist(
                masses[classes == c],
                bins=edges,
                density=True,
                histtype="step",
                color=colours[c],
                linewidth=1.6,
                label=f"m = {c} (n = {np.count_nonzero(classes == c)})",
            )
        hidden = [c for c in class_order if c not in shown]
        if hidden:
            ax.text(
                0.01,
                0.97,
                f"not drawn (≤ {min_fraction:.0%} of the sample): " + ", ".join(f"m = {c}" for c in hidden),
                ha="left",
                va="top",
                fontsize=7,
                transform=ax.transAxes,
            )
        ax.legend(fontsize=7, loc="best", frameon=False)
    axes[-1].set_xlabel(MASS_LABEL)
    figure.tight_layout()
    return _save(figure, path)


def trim(values, lower: float = 5.0, upper: float = 99.0) -> np.ndarray:
    """The values between their ``lower`` and ``upper`` percentiles (inclusive).

    Parameters
    ----------
    values : array-like of float
    lower, upper : float, default 5 and 99
        Percentiles (the paper's Figure 12 thresholds).

    Returns
    -------
    numpy.ndarray
    """
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return values
    low, high = np.percentile(values, [lower, upper])
    return values[(values >= low) & (values <= high)]


def figure12(
    matched: pd.DataFrame,
    path,
    *,
    sources=None,
    class_order: tuple[str, ...] = TABLE4_CLASSES,
    lower: float = 5.0,
    upper: float = 99.0,
) -> Path:
    """Violin plots of the stellar mass per class, one panel per source.

    Parameters
    ----------
    matched : pandas.DataFrame
        Columns ``source``, ``class`` and ``lgm_tot_p50``.
    path : path
        The image file.
    sources : sequence of str, optional
        Panels, left to right; default the sources in order of appearance.
    class_order : tuple of str
        Violins, left to right.
    lower, upper : float, default 5 and 99
        Each class's masses are trimmed to these percentiles before its violin is
        drawn. A class with fewer than two distinct trimmed values gets no violin,
        only its mean (if it has galaxies).

    Returns
    -------
    pathlib.Path
    """
    _check(matched)
    names = _sources(matched, sources)
    colours = class_colours(class_order)
    figure = Figure(figsize=(3.4 * max(len(names), 1) + 0.6, 4.2))
    axes = figure.subplots(1, max(len(names), 1), sharey=True, squeeze=False)[0]
    positions = np.arange(1, len(class_order) + 1)
    for ax, masses, classes in _source_panels(axes, matched, names):
        labels = []
        if len(masses):
            ax.axhline(masses.mean(), color="0.4", linestyle="--", linewidth=1.0, label="whole-sample mean")
        for position, c in zip(positions, class_order, strict=True):
            values = masses[classes == c]
            labels.append(f"{c}\nn={len(values)}")
            if len(values) == 0:
                continue
            trimmed = trim(values, lower, upper)
            if len(np.unique(trimmed)) >= 2:
                parts = ax.violinplot([trimmed], positions=[position], widths=0.8, showextrema=False)
                for body in parts["bodies"]:
                    body.set_facecolor(colours[c])
                    body.set_edgecolor(colours[c])
                    body.set_alpha(0.5)
            ax.hlines(values.mean(), position - 0.4, position + 0.4, colors=colours[c], linestyles=":", linewidth=1.8)
        ax.set_xticks(positions)
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_xlabel("m")
        if len(masses) == 0:
            ax.text(0.5, 0.5, "no matched galaxies", ha="center", va="center", transform=ax.transAxes)
    axes[0].set_ylabel(MASS_LABEL)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=7, loc="lower left", frameon=False)
    figure.tight_layout()
    return _save(figure, path)
