"""Per-epoch training history as a CSV file that survives kills and resumes.

One row per epoch: ``epoch`` (0-based), ``train_loss`` (mean over the epoch's
training images), ``val_loss``, ``val_accuracy``, ``val_macro_f1`` and
``epoch_seconds``. The row of an epoch is written when its validation ends, before
Lightning saves that epoch's checkpoints, and every write first drops rows of this
epoch and later ones: a run killed between the two and resumed rewrites the epoch
instead of listing it twice.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import lightning as L
import pandas as pd
import torch
from spiralarms.io.tables import write_table

__all__ = ["HistoryCallback", "HISTORY_COLUMNS", "read_history"]

HISTORY_COLUMNS: tuple[str, ...] = (
    "epoch",
    "train_loss",
    "val_loss",
    "val_accuracy",
    "val_macro_f1",
    "epoch_seconds",
)


def read_history(path: str | os.PathLike) -> pd.DataFrame:
    """The history table at ``path`` (empty, with the columns, if there is none)."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=list(HISTORY_COLUMNS))
    return pd.read_csv(path)


class HistoryCallback(L.Callback):
    """Write ``history.csv`` at the end of every validation epoch.

    Parameters
    ----------
    path : str or path-like
        The CSV file (created with its folder).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._start = time.perf_counter()
        self._loss_sum: torch.Tensor | float = 0.0
        self._count = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()
        self._loss_sum, self._count = 0.0, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        n = len(batch[1])
        self._loss_sum = self._loss_sum + loss.detach() * n
        self._count += n

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        totals = torch.tensor([float(self._loss_sum), float(self._count)], device=pl_module.device)
        totals = trainer.strategy.reduce(totals, reduce_op="sum")
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics

        def value(name: str) -> float:
            v = metrics.get(name)
            return float(v) if v is not None else math.nan

        row = {
            "epoch": int(trainer.current_epoch),
            "train_loss": float(totals[0] / totals[1]) if float(totals[1]) > 0 else math.nan,
            "val_loss": value("val_loss"),
            "val_accuracy": value("val_accuracy"),
            "val_macro_f1": value("val_macro_f1"),
            "epoch_seconds": time.perf_counter() - self._start,
        }
        history = read_history(self.path)
        history = history[history["epoch"] < row["epoch"]] if len(history) else history
        history = pd.concat([history, pd.DataFrame([row])], ignore_index=True) if len(history) else pd.DataFrame([row])
        write_table(history[list(HISTORY_COLUMNS)], self.path)
