"""Probabilities of in-memory batches, through the same ``predict_step`` as survey prediction.

For what fits in memory: a run's validation set (images or cached features), the few
hundred galaxies of an explanation gallery, tensors already loaded. Surveys go
through :func:`spiralarms.predictions.predict`, which streams to disk instead.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from spiralarms.runtime import build_trainer, call_trainer, quiet_lightning
from spiralarms.models.module import ArmClassifierModule

__all__ = ["predict_arrays"]


def _device_of(module: torch.nn.Module) -> torch.device:
    try:
        return next(module.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def predict_arrays(
    module: ArmClassifierModule,
    data: DataLoader | Dataset | torch.Tensor,
    *,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    precision: str = "32-true",
) -> np.ndarray:
    """Class probabilities ``(N, k)`` of in-memory data, in order.

    Parameters
    ----------
    module : ArmClassifierModule
    data : DataLoader, Dataset or torch.Tensor
        A loader or dataset of ``(x, ...)`` items, or a tensor of images
        ``(N, C, H, W)`` (uint8 or [0, 1] floats) or of pooled features ``(N, C)``.
    batch_size : int, default 64
        For a dataset or a tensor.
    device : str or torch.device, optional
        Where to run; default the device the module is on.
    precision : str, default "32-true"
        Lightning precision.

    Returns
    -------
    numpy.ndarray
        float32 probabilities, one row per item.
    """
    if isinstance(data, torch.Tensor):
        data = TensorDataset(data)
    loader = data if isinstance(data, DataLoader) else DataLoader(data, batch_size=batch_size, shuffle=False)
    device = torch.device(device) if device is not None else _device_of(module)
    was_training = module.training
    with quiet_lightning():
        return _predict(module, loader, device, precision, was_training)


def _predict(module, loader, device, precision, was_training) -> np.ndarray:
    trainer = build_trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=[device.index or 0] if device.type == "cuda" else 1,
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    try:
        batches = call_trainer(trainer.predict, module, dataloaders=loader, return_predictions=True)
    finally:
        module.train(was_training)  # also after an error or Ctrl-C: the caller may go on training
    if not batches:
        return np.zeros((0, len(module.classes)), dtype=np.float32)
    return torch.cat([b.float().cpu() for b in batches]).numpy()
