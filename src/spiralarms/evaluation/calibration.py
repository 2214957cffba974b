"""Probabilities that mean what they say: calibration, abstention and the ordinal view.

- :func:`fit_temperature`: temperature scaling (Guo et al. 2017), one parameter
  ``T`` that divides the logits, fitted on the validation set by minimising the
  negative log-likelihood (scipy); it changes the confidences, never the labels.
  The fitted ``T`` is stored in the model card and applied by ``spiralarms predict``.
- :func:`expected_calibration_error` and :func:`reliability_table`: the top-label
  expected calibration error over equal-width confidence bins.
- :func:`coverage_accuracy`: keep the most confident fraction of galaxies and see
  how accurate the kept labels are (``predict --min-confidence`` is the tool).
- :func:`ordinal_metrics`: arm number is a count, so an m=2 called m=3 is a smaller
  error than one called m=5+: mean absolute arm-number error and within-one accuracy
  over the counted classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from spiralarms.errors import SpiralArmsError
from spiralarms.models.temperature import apply_temperature, check_probabilities, fit_temperature

__all__ = [
    "fit_temperature",
    "apply_temperature",
    "expected_calibration_error",
    "reliability_table",
    "coverage_accuracy",
    "ordinal_metrics",
    "arm_number",
    "calibration_summary",
    "N_BINS",
]

#: Confidence bins of the calibration error and the reliability diagram.
N_BINS = 15

_EPS = 1e-12

def reliability_table(probs, labels, n_bins: int = N_BINS) -> pd.DataFrame:
    """Galaxies, mean confidence and accuracy of the top label in each confidence bin.

    Returns
    -------
    pandas.DataFrame
        ``lower``, ``upper``, ``n``, ``confidence``, ``accuracy`` (NaN in empty bins).
    """
    p, y = check_probabilities(probs, labels)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        sel = which == b
        rows.append({
            "lower": edges[b], "upper": edges[b + 1], "n": int(sel.sum()),
            "confidence": float(confidence[sel].mean()) if sel.any() else np.nan,
            "accuracy": float(correct[sel].mean()) if sel.any() else np.nan,
        })
    return pd.DataFrame(rows)


def expected_calibration_error(probs, labels, n_bins: int = N_BINS) -> float:
    """Top-label ECE: the galaxy-weighted mean of |accuracy - confidence| over bins.

    Written out because scikit-learn's ``calibration_curve`` is binary only; this is
    the multi-class top-label form of Guo et al. (2017).
    """
    table = reliability_table(probs, labels, n_bins)
    used = table[table["n"] > 0]
    return float((used["n"] * (used["accuracy"] - used["confidence"]).abs()).sum() / used["n"].sum())


def coverage_accuracy(probs, labels, coverages: Sequence[float] | None = None) -> pd.DataFrame:
    """Accuracy of the most confident fraction of galaxies, for each kept fraction.

    Parameters
    ----------
    probs, labels
    coverages : sequence of float, optional
        Kept fractions in (0, 1]; default 0.1, 0.2, ..., 1.0.

    Returns
    -------
    pandas.DataFrame
        ``coverage``, ``n_kept``, ``threshold`` (the lowest confidence kept: the
        ``--min-confidence`` that keeps this fraction), ``accuracy``.
    """
    p, y = check_probabilities(probs, labels)
    coverages = np.round(np.arange(1, 11) / 10, 10) if coverages is None else np.asarray(coverages, dtype=float)
    if np.any((coverages <= 0) | (coverages > 1)):
        raise SpiralArmsError("coverages must be in (0, 1]")
    confidence = p.max(axis=1)
    order = np.argsort(-confidence, kind="stable")
    correct = (p.argmax(axis=1) == y)[order]
    rows = []
    for c in coverages:
        k = max(1, int(round(c * len(p))))
        rows.append({"coverage": float(c), "n_kept": k, "threshold": float(confidence[order][k - 1]),
                     "accuracy": float(correct[:k].mean())})
    return pd.DataFrame(rows)


def arm_number(name: str) -> float | None:
    """The arm count a class stands for: ``"2"`` -> 2, ``"5+"`` -> 5, ``"3,4"`` -> 3.5, ``"?"`` -> None."""
    members = [m for m in str(name).split(",") if m != "?"]
    if not members or len(members) != len(str(name).split(",")):
        return None
    return float(np.mean([5.0 if m == "5+" else float(m) for m in members]))


def ordinal_metrics(y_true, y_pred, classes: Sequence[str]) -> dict:
    """Mean absolute arm-number error and within-one accuracy over the counted classes.

    Galaxies whose true or predicted class is ``?`` are left out (there is no count
    to compare); ``5+`` counts as 5, a merged class as the mean of its members.

    Parameters
    ----------
    y_true, y_pred : sequence of int
        Class indices.
    classes : sequence of str

    Returns
    -------
    dict
        ``{"n", "mean_abs_error", "within_one"}`` (NaN where no galaxy is counted).
    """
    values = np.array([arm_number(c) if arm_number(c) is not None else np.nan for c in classes])
    t = values[np.asarray(y_true, dtype=np.int64)]
    p = values[np.asarray(y_pred, dtype=np.int64)]
    counted = ~(np.isnan(t) | np.isnan(p))
    if not counted.any():
        return {"n": 0, "mean_abs_error": float("nan"), "within_one": float("nan")}
    err = np.abs(t[counted] - p[counted])
    return {"n": int(counted.sum()), "mean_abs_error": float(err.mean()), "within_one": float((err <= 1).mean())}


def calibration_summary(probs, labels, *, folds: int = 2, seed: int = 0) -> dict:
    """Temperature, and ECE before and after scaling, measured honestly.

    The temperature reported is fitted on all the galaxies given; the ECE after
    scaling is cross-fitted (fitted on ``folds - 1`` parts, measured on the
    left-out part), so it is not flattered by fitting and measuring on the same
    galaxies.

    Returns
    -------
    dict
        ``{"temperature", "ece_before", "ece_after", "nll_before", "nll_after"}``.
    """
    p, y = check_probabilities(probs, labels)
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(p)) % max(folds, 2)
    scaled = np.empty_like(p)
    for f in np.unique(fold):
        fit, held = fold != f, fold == f
        t = fit_temperature(p[fit], y[fit]) if fit.any() else 1.0
        scaled[held] = apply_temperature(p[held], t)

    def nll(q):
        return float(-np.log(np.clip(q[np.arange(len(y)), y], _EPS, 1.0)).mean())

    return {
        "temperature": fit_temperature(p, y),
        "ece_before": expected_calibration_error(p, y),
        "ece_after": expected_calibration_error(scaled, y),
        "nll_before": nll(p),
        "nll_after": nll(scaled),
    }
