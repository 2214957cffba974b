"""The model's softmax temperature (Guo et al. 2017): fitted on validation probabilities.

One parameter ``T`` divides the logits; it changes the confidences, never the labels.
``train.calibrate`` fits it after training and stores it in the model card, and every
prediction applies it (:meth:`~spiralarms.models.module.ArmClassifierModule.predict_proba`).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from spiralarms.errors import SpiralArmsError

__all__ = ["fit_temperature", "apply_temperature", "check_probabilities"]

_EPS = 1e-12


def check_probabilities(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    """``(N, k)`` probabilities and ``N`` class indices as arrays, checked.

    Raises
    ------
    SpiralArmsError
        On mismatched shapes, no galaxies, or a label outside the classes.
    """
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    if p.ndim != 2 or p.shape[1] < 2:
        raise SpiralArmsError(f"probabilities must be (N, k) with k >= 2, got shape {p.shape}")
    if y.shape != (len(p),) or y.dtype.kind not in "iu":
        raise SpiralArmsError(f"labels must be {len(p)} class indices")
    if len(p) == 0:
        raise SpiralArmsError("no galaxies to calibrate on")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise SpiralArmsError(f"label index outside 0..{p.shape[1] - 1}")
    return p, y.astype(np.int64)


def apply_temperature(probs, temperature: float) -> np.ndarray:
    """Probabilities after dividing the logits by ``temperature``.

    Only probabilities are needed: ``log p`` equals the logits up to a constant per
    galaxy, which the softmax ignores.
    """
    if not temperature > 0:
        raise SpiralArmsError(f"temperature must be positive, got {temperature!r}")
    logp = np.log(np.clip(np.asarray(probs, dtype=np.float64), _EPS, 1.0))
    return np.exp(log_softmax(logp / float(temperature), axis=1))


def fit_temperature(probs, labels, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature that minimises the negative log-likelihood of the labels.

    Parameters
    ----------
    probs : array-like, (N, k)
        Validation probabilities at temperature 1.
    labels : array-like of int, (N,)
        True class indices.
    bounds : (float, float)
        Search range of ``T`` (searched on ``log T``).

    Returns
    -------
    float
    """
    p, y = check_probabilities(probs, labels)
    logp = np.log(np.clip(p, _EPS, 1.0))

    def nll(log_t: float) -> float:
        return float(-log_softmax(logp / np.exp(log_t), axis=1)[np.arange(len(y)), y].mean())

    result = minimize_scalar(nll, bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded")
    return float(np.exp(result.x))
