"""Training: the Lightning module and data modules, the embedding cache, and runs.

Public entry points:

- :func:`train` (config, run folder) -> :class:`TrainResult`;
- :func:`load_classifier` (checkpoint) -> ``(ArmClassifier, info)``;
- :class:`ArmClassifierModule`, :class:`GalaxyDataModule`, :class:`ImageDataModule`,
  :class:`FeatureDataModule`, :class:`EmbeddingCache` for custom loops.
"""

from spiralarms.training.checkpoint import load_classifier
from spiralarms.training.datamodule import FeatureDataModule, GalaxyDataModule, ImageDataModule
from spiralarms.training.embedding_cache import CachedFeatures, EmbeddingCache
from spiralarms.training.module import ArmClassifierModule
from spiralarms.training.train import TrainResult, train

__all__ = [
    "ArmClassifierModule",
    "CachedFeatures",
    "EmbeddingCache",
    "FeatureDataModule",
    "GalaxyDataModule",
    "ImageDataModule",
    "TrainResult",
    "load_classifier",
    "train",
]
