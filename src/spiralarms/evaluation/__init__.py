"""Metrics, confusion matrices and evaluation reports (paper section 4.1)."""

from spiralarms.evaluation.metrics import classification_metrics, normalised_confusion, repeat_statistics

__all__ = ["classification_metrics", "normalised_confusion", "repeat_statistics"]
