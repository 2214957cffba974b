"""Losses for imbalanced arm-number classes, and for soft (vote-fraction) labels.

The paper trains with categorical cross-entropy on down-sampled classes (at most 300
per class). The options here keep all the data instead:

- ``"weighted"``: cross-entropy with class weights inversely proportional to the
  training counts (normalised to a mean of 1 over the classes present);
- ``"focal"``: the focal loss of Lin et al. (2017), ``-(1 - p_t)^gamma log p_t``,
  which down-weights the galaxies the model already gets right;
- any of them with soft targets: the T11 vote fractions instead of the argmax label
  (``F.cross_entropy`` takes class probabilities as targets).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from spiralarms.errors import SpiralArmsError

__all__ = ["LOSSES", "class_weights_from_counts", "focal_loss", "classification_loss"]

#: Loss names of ``train.loss``.
LOSSES = ("cross_entropy", "weighted", "focal")


def class_weights_from_counts(counts: Sequence[int]) -> list[float]:
    """Weights ``n / (k * n_c)`` (scikit-learn's "balanced"), for the classes present.

    A class without training galaxies gets weight 0: it has no term in the loss.
    """
    counts = [int(c) for c in counts]
    present = [c for c in counts if c > 0]
    if not present:
        raise SpiralArmsError("class weights: no training galaxies")
    total, k = sum(present), len(present)
    return [total / (k * c) if c > 0 else 0.0 for c in counts]


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean softmax focal loss for class indices or class-probability targets.

    Written out because torchvision's ``sigmoid_focal_loss`` is the binary (sigmoid)
    form; this is the multi-class softmax form of Lin et al. (2017).
    """
    logp = F.log_softmax(logits.float(), dim=1)
    soft = target if target.ndim == 2 else F.one_hot(target, logits.shape[1]).to(logp.dtype)
    per_class = -soft * (1.0 - logp.exp()).pow(gamma) * logp
    if weight is not None:
        per_class = per_class * weight.to(per_class.dtype)
    return per_class.sum(dim=1).mean()


def classification_loss(
    logits: torch.Tensor, target: torch.Tensor, name: str = "cross_entropy",
    weight: torch.Tensor | None = None, gamma: float = 2.0,
) -> torch.Tensor:
    """The training loss: ``name`` in :data:`LOSSES`, hard (indices) or soft (probabilities) targets."""
    if name == "focal":
        return focal_loss(logits, target, gamma=gamma, weight=weight)
    if name not in LOSSES:
        raise SpiralArmsError(f"train.loss must be one of {', '.join(LOSSES)}, got {name!r}")
    return F.cross_entropy(logits.float(), target, weight=weight if name == "weighted" else None)
