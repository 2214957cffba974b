"""Checkpoints that are whole under their final name, on a full disk too.

Lightning's ``TorchCheckpointIO`` writes through an fsspec transaction whose
temporary file lives in another folder and is then copied: a disk that fills during
the copy leaves a truncated ``best.ckpt``. :class:`AtomicCheckpointIO` writes to a
temporary file in the checkpoint's own folder, flushes it to disk and renames it
(:func:`spiralarms.io.atomic.atomic_path`), so a checkpoint under its final name is
always complete and a failed write leaves the previous one intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from spiralarms.errors import SpiralArmsError, first_line
from spiralarms.io.atomic import save_tensors

__all__ = ["AtomicCheckpointIO", "checkpoint_progress", "store_temperature"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Save Lightning checkpoints by rename-on-completion in their own folder."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        save_tensors(checkpoint, Path(path))


def checkpoint_progress(path: str | Path) -> tuple[int, bool]:
    """Epochs completed by a checkpoint, and whether early stopping had ended the run.

    Raises
    ------
    SpiralArmsError
        If the checkpoint is damaged (a kill or a full disk with an older version of
        spiralarms), saying how to go on.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        raise SpiralArmsError(
            f"{path}: damaged checkpoint, cannot resume from it ({first_line(exc)}); "
            "remove it to resume from an earlier one, or start afresh with --no-resume"
        ) from None
    stopped = any(
        name.startswith("EarlyStopping") and int(state.get("stopped_epoch", 0)) > 0
        for name, state in checkpoint.get("callbacks", {}).items()
    )
    return int(checkpoint.get("epoch", -1)) + 1, stopped


def store_temperature(path: str | Path, temperature: float) -> None:
    """Write a fitted softmax temperature into a checkpoint's model card, in place.

    Prediction reads the card, so every later ``spiralarms predict`` and
    ``evaluate`` of this checkpoint applies it.
    """
    from spiralarms.models.loading import read_checkpoint

    checkpoint = read_checkpoint(path)
    checkpoint["hyper_parameters"]["card"]["temperature"] = float(temperature)
    save_tensors(checkpoint, Path(path))
