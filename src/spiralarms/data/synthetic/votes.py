"""Simulated Galaxy Zoo 2 volunteer votes (GZ2 schema) for a synthetic galaxy."""

from __future__ import annotations

import math

import numpy as np

from spiralarms.catalog.classes import ARM_CLASSES
from spiralarms.catalog.schema import FEATURES_OR_DISK, NOT_EDGE_ON, SPIRAL, T11_ANSWERS
from spiralarms.data.synthetic.parameters import GalaxyParams, _check_rng
from spiralarms.errors import SpiralArmsError

# The other answers of the tasks whose cuts the paper applies (docs/catalogues.md), so
# that each task's fractions sum to one as in a real GZ2 table.
SMOOTH = "t01_smooth_or_features_a01_smooth"
STAR_OR_ARTIFACT = "t01_smooth_or_features_a03_star_or_artifact"
EDGE_ON = "t02_edgeon_a04_yes"
NO_SPIRAL = "t04_spiral_a09_no_spiral"
_T01 = (SMOOTH, FEATURES_OR_DISK, STAR_OR_ARTIFACT)
_T02 = (EDGE_ON, NOT_EDGE_ON)
_T04 = (SPIRAL, NO_SPIRAL)


def _weighted_counts(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Vote weights after GZ2's down-weighting of inconsistent volunteers."""
    # Most volunteers keep weight 1; a few percent of votes are down-weighted.
    return counts * rng.uniform(0.9, 1.0, size=counts.shape)


def _task_columns(
    answers: tuple[str, ...], counts: np.ndarray, weights: np.ndarray, debiased: np.ndarray
) -> dict[str, float]:
    """GZ2 columns ``_count``, ``_weight``, ``_fraction``, ``_weighted_fraction``, ``_debiased``."""
    total, weight_total = counts.sum(), weights.sum()
    fraction = counts / total if total > 0 else np.zeros_like(weights)
    weighted = weights / weight_total if weight_total > 0 else np.zeros_like(weights)
    out: dict[str, float] = {}
    for k, answer in enumerate(answers):
        out[f"{answer}_count"] = int(counts[k])
        out[f"{answer}_weight"] = round(float(weights[k]), 3)
        out[f"{answer}_fraction"] = round(float(fraction[k]), 3)
        out[f"{answer}_weighted_fraction"] = round(float(weighted[k]), 3)
        out[f"{answer}_debiased"] = round(float(debiased[k]), 3)
    return out


def _debias(weighted: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible debiasing: a mild, monotone power transform renormalised to one.

    Hart et al. (2016) correct the fractions for the redshift bias; on real tables the
    debiased fractions stay within a few hundredths of the weighted ones and keep
    their order. Zero-vote tasks stay zero.
    """
    if weighted.sum() <= 0:
        return np.zeros_like(weighted)
    sharpened = weighted ** rng.uniform(0.9, 1.25)
    return sharpened / sharpened.sum()


def simulate_gz2_votes(params: GalaxyParams, rng: np.random.Generator) -> dict[str, float]:
    """Simulate Galaxy Zoo 2 volunteer votes for a synthetic galaxy.

    Volunteers (40 to 60) answer T01 (smooth / features / star), those who saw
    features answer T02 (edge-on?), those who said not edge-on answer T04 (spiral?),
    and those who saw a spiral answer T11 (how many arms?). T11 votes are multinomial
    with a probability vector peaked at the true class with a random confidence, the
    rest going mostly to neighbouring arm numbers and ``?``. Highly inclined, faint or
    small galaxies get less confident answers.

    Parameters
    ----------
    params : GalaxyParams
        The galaxy (its class, inclination and ``?`` reason shape the answers).
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    dict
        ``total_classifications``, ``total_votes`` and for every answer of T01, T02,
        T04 and T11 the columns ``_count``, ``_weight``, ``_fraction``,
        ``_weighted_fraction`` and ``_debiased`` (names as in docs/catalogues.md).
    """
    if not isinstance(params, GalaxyParams):
        raise SpiralArmsError(f"params must be GalaxyParams, not {type(params).__name__}")
    rng = _check_rng(rng)
    n_volunteers = int(rng.integers(40, 61))
    hard = params.cant_tell_reason in ("faint", "small")
    cos_i = math.cos(math.radians(params.inclination_deg))

    # T01: smooth, features or disc, star or artefact.
    p_features = rng.beta(9.0, 1.6) if not hard else rng.beta(6.0, 1.8)
    p_artifact = rng.uniform(0.0, 0.03)
    p_t01 = np.array([(1 - p_features) * (1 - p_artifact), p_features * (1 - p_artifact), p_artifact])
    t01 = rng.multinomial(n_volunteers, p_t01)
    # T02: edge-on? More inclined discs draw more "yes".
    p_not_edge_on = np.clip(rng.beta(14.0, 0.9) - 0.35 * (1 - cos_i) ** 1.5, 0.0, 1.0)
    t02 = rng.multinomial(t01[1], [1 - p_not_edge_on, p_not_edge_on])
    # T04: spiral?
    p_spiral = rng.beta(12.0, 0.9) if not hard else rng.beta(7.0, 1.2)
    t04 = rng.multinomial(t02[1], [p_spiral, 1 - p_spiral])
    # T11: how many arms? Confidence in the true class, the rest spread around it.
    true_index = ARM_CLASSES.index(params.true_class)
    confidence = 1.0 - rng.beta(1.3, 14.0)
    spread = np.full(len(ARM_CLASSES), 0.05)
    if params.true_class == "?":
        spread[:5] = (0.1, 0.4, 0.2, 0.1, 0.2)
    else:
        for step, share in ((1, 0.35), (-1, 0.35)):
            if 0 <= true_index + step < 5:
                spread[true_index + step] = share
        spread[-1] = 0.25
    spread[true_index] = 0.0
    p_t11 = (1 - confidence) * spread / spread.sum()
    p_t11[true_index] = confidence
    t11 = rng.multinomial(t04[0], p_t11 / p_t11.sum())

    out: dict[str, float] = {
        "total_classifications": n_volunteers,
        "total_votes": int(t01.sum() + t02.sum() + t04.sum() + t11.sum()),
    }
    for answers, counts in ((_T01, t01), (_T02, t02), (_T04, t04), (T11_ANSWERS, t11)):
        weights = _weighted_counts(counts.astype(float), rng)
        weighted = weights / weights.sum() if weights.sum() > 0 else np.zeros_like(weights)
        if answers is _T01:
            # Debiasing raises the features fraction (distant discs look smooth).
            debiased = weighted.copy()
            boost = rng.uniform(0.0, 0.08) * (1 - weighted[1])
            debiased[1] += boost
            rest = weighted[[0, 2]].sum()
            if rest > 0:
                debiased[[0, 2]] *= (rest - boost) / rest
        else:
            debiased = _debias(weighted, rng)
        out.update(_task_columns(answers, counts, weights, debiased))
    return out

