"""Classification metrics of section 4.1, in the ``metrics.json`` contract (docs/contract.md, "Files").

Per-class precision, recall, F1 and support; accuracy; macro F1; the confusion
matrix (rows: true class, columns: predicted class): :func:`classification_metrics`,
defined in :mod:`spiralarms.models.metrics` (training writes them too) and exported
here. Over repeated runs: mean, standard deviation and coefficient of variation of F1.
"""

from __future__ import annotations

import numpy as np

from spiralarms.errors import SpiralArmsError
from spiralarms.models.metrics import classification_metrics

__all__ = ["classification_metrics", "normalised_confusion", "repeat_statistics"]


def normalised_confusion(matrix) -> np.ndarray:
    """Row-normalise a confusion matrix (each true class sums to 1; empty rows stay 0)."""
    m = np.asarray(matrix, dtype=float)
    rows = m.sum(axis=1, keepdims=True)
    return np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)


def repeat_statistics(values) -> dict:
    """Mean, standard deviation and coefficient of variation over repeated runs.

    The paper chooses the crop size with the lowest coefficient of variation
    ``sigma / mu`` of F1 (section 4.2.1). The standard deviation is the sample
    one (``ddof=1``), the usual choice for a handful of runs; with a single run
    it is 0.

    Parameters
    ----------
    values : sequence of float
        One value per run (e.g. macro F1).

    Returns
    -------
    dict
        ``{"n", "mean", "std", "cv"}``; ``cv`` is ``nan`` when the mean is 0.
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or len(x) == 0:
        raise SpiralArmsError("repeat_statistics: give a non-empty 1-d sequence of values")
    if not np.all(np.isfinite(x)):
        raise SpiralArmsError("repeat_statistics: values must be finite")
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if len(x) > 1 else 0.0
    cv = std / mean if mean != 0 else float("nan")
    return {"n": int(len(x)), "mean": mean, "std": std, "cv": cv}
