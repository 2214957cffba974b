"""Configuration: one validated settings layer (pydantic) for training, reproduction and prediction.

- :mod:`spiralarms.config.base`: :class:`Settings`, YAML files, dotted overrides and
  the one error format;
- :mod:`spiralarms.config.training`: the training run's ``data``, ``model``,
  ``augment`` and ``train`` sections.

The reproduction settings (:mod:`spiralarms.experiments.settings`) and the
prediction settings (:class:`spiralarms.predictions.PredictionSettings`) are
:class:`Settings` too.
"""

from spiralarms.config.base import Settings, available_configs, config_dirs, parse_override, read_yaml, resolve_config_path
from spiralarms.config.training import (
    CAP_SCOPES,
    MONITORS,
    RUNTIME_KEYS,
    AugmentConfig,
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
    apply_overrides,
    config_hash,
    flatten,
    load_config,
    save_config,
)

__all__ = [
    "Settings",
    "AugmentConfig",
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "ExperimentConfig",
    "MONITORS",
    "RUNTIME_KEYS",
    "CAP_SCOPES",
    "load_config",
    "save_config",
    "config_hash",
    "apply_overrides",
    "flatten",
    "available_configs",
    "config_dirs",
    "parse_override",
    "read_yaml",
    "resolve_config_path",
]
