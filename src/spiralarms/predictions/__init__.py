"""Predictions: one inference layer, from a laptop to a cluster.

- :func:`predict`: a folder, catalogue or prepared store of cutouts -> a table (or a
  Parquet dataset) of class probabilities, streamed, resumable, distributed;
- :func:`predict_arrays`: in-memory batches (a DataLoader or tensors) -> probabilities,
  for evaluation, explanations and training's own validation predictions;
- :func:`load_model` and :func:`export_model`: models from checkpoints, run folders,
  exported folders and the Hugging Face hub, and hub-ready exports.

Every path runs :meth:`spiralarms.models.module.ArmClassifierModule.predict_step`
under ``lightning.Trainer.predict``.
"""

from spiralarms.models.loading import LoadedModel, export_model, load_model
from spiralarms.predictions.engine import PredictionSettings, PredictionSummary, predict
from spiralarms.predictions.inference import predict_arrays

__all__ = [
    "LoadedModel",
    "PredictionSettings",
    "PredictionSummary",
    "export_model",
    "load_model",
    "predict",
    "predict_arrays",
]
