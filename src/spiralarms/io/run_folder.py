"""The files of a run folder, named once.

``spiralarms train`` writes a run folder; ``evaluate``, ``explain``, ``predict``,
``export`` and the reproduction read it. Every module names its files through
:class:`RunFolder` rather than spelling them (the layout is in docs/contract.md,
"Files").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

__all__ = ["RunFolder"]


@dataclass(frozen=True)
class RunFolder:
    """A run folder and the paths of its files.

    Parameters
    ----------
    path : str or path-like
        The folder ``spiralarms train --out`` wrote.
    """

    path: Path

    #: File names, relative to the folder.
    CONFIG = "config.yaml"
    SPLIT = "split.csv"
    HISTORY = "history.csv"
    METRICS = "metrics.json"
    METRICS_MD = "metrics.md"
    VAL_PREDICTIONS = "val_predictions.csv"
    PREDICTIONS = "predictions.csv"
    TRAIN_SUMMARY = "train_summary.json"
    CHECKPOINTS = "checkpoints"
    BEST = "best.ckpt"
    LAST = "last.ckpt"

    #: The files that a fresh (not resumed) training run replaces; the cache is kept.
    TRAINING_FILES: ClassVar[tuple[str, ...]] = (CONFIG, SPLIT, HISTORY, METRICS, VAL_PREDICTIONS, TRAIN_SUMMARY)

    def __init__(self, path: str | os.PathLike):
        object.__setattr__(self, "path", Path(path))

    @property
    def config(self) -> Path:
        """The resolved training configuration (``config.yaml``)."""
        return self.path / self.CONFIG

    @property
    def split(self) -> Path:
        """The train/validation split (``split.csv``)."""
        return self.path / self.SPLIT

    def require_split(self) -> Path:
        """``split.csv``, or a one-line error saying why this is not a run folder.

        Raises
        ------
        SpiralArmsError
            If the path is missing, is a file (a checkpoint, say) or has no ``split.csv``.
        """
        from spiralarms.errors import SpiralArmsError

        if not self.path.exists():
            raise SpiralArmsError(f"{self.path}: no such run folder")
        if not self.path.is_dir():
            raise SpiralArmsError(f"{self.path}: is a file; give the run folder that 'spiralarms train --out' wrote")
        if not self.split.is_file():
            raise SpiralArmsError(f"{self.path}: no split.csv; is this a run folder from 'spiralarms train'?")
        return self.split

    @property
    def history(self) -> Path:
        """Per-epoch losses and metrics (``history.csv``)."""
        return self.path / self.HISTORY

    @property
    def metrics(self) -> Path:
        """Validation metrics (``metrics.json``)."""
        return self.path / self.METRICS

    @property
    def metrics_md(self) -> Path:
        """The metrics as a Markdown table (``metrics.md``, written by ``evaluate``)."""
        return self.path / self.METRICS_MD

    @property
    def val_predictions(self) -> Path:
        """Validation predictions written by training (``val_predictions.csv``)."""
        return self.path / self.VAL_PREDICTIONS

    @property
    def predictions(self) -> Path:
        """Validation predictions written by ``evaluate`` (``predictions.csv``)."""
        return self.path / self.PREDICTIONS

    @property
    def train_summary(self) -> Path:
        """Epochs, timings and the checkpoint chosen (``train_summary.json``)."""
        return self.path / self.TRAIN_SUMMARY

    @property
    def checkpoints(self) -> Path:
        """The checkpoint folder."""
        return self.path / self.CHECKPOINTS

    @property
    def best_checkpoint(self) -> Path:
        """The best epoch's weights (``checkpoints/best.ckpt``)."""
        return self.checkpoints / self.BEST

    @property
    def last_checkpoint(self) -> Path:
        """The latest epoch, to resume from (``checkpoints/last.ckpt``)."""
        return self.checkpoints / self.LAST
