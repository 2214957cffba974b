"""Training: the Lightning module and data modules, the embedding cache, and runs.

Public entry points:

- :func:`train` (config, run folder) -> :class:`TrainResult`;
- :class:`GalaxyDataModule`, :class:`ImageDataModule`, :class:`FeatureDataModule`,
  :class:`EmbeddingCache` for custom loops (the LightningModule itself is
  :class:`spiralarms.models.module.ArmClassifierModule`, loading is in
  :mod:`spiralarms.models.loading`).
"""

from spiralarms.training.datamodule import FeatureDataModule, GalaxyDataModule, ImageDataModule
from spiralarms.training.embedding_cache import CachedFeatures, EmbeddingCache
from spiralarms.training.train import TrainResult, train

__all__ = [
    "CachedFeatures",
    "EmbeddingCache",
    "FeatureDataModule",
    "GalaxyDataModule",
    "ImageDataModule",
    "TrainResult",
    "train",
]
