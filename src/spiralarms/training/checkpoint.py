"""Read self-describing training checkpoints back into a classifier.

A checkpoint written by :func:`spiralarms.training.train.train` is a Lightning
checkpoint with, under the ``"spiralarms"`` key, the class names and how to rebuild
the network (backbone name, grey, crop, hidden width, frozen). The architecture is
built with random weights (``pretrained=False``: no download, no hub) and the trained
weights, backbone included, come from the checkpoint's state dict.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from spiralarms.errors import SpiralArmsError
from spiralarms.models.backbones import build_classifier
from spiralarms.models.classifier import ArmClassifier
from spiralarms.training.module import CHECKPOINT_KEY

__all__ = ["read_checkpoint", "checkpoint_info", "load_classifier"]


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint file onto the CPU.

    Tries ``weights_only=True`` first (tensors and plain containers only) and falls
    back to a full unpickling for checkpoints holding other objects; load only
    checkpoints you trust.

    Raises
    ------
    SpiralArmsError
        If the file is missing or is not a PyTorch checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise SpiralArmsError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        pass
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise SpiralArmsError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None


def checkpoint_info(checkpoint: dict[str, Any], source: str = "checkpoint") -> dict[str, Any]:
    """The model description stored in a loaded checkpoint.

    Raises
    ------
    SpiralArmsError
        If the checkpoint was not written by spiralarms training, or lacks a key.
    """
    info = checkpoint.get(CHECKPOINT_KEY) if isinstance(checkpoint, dict) else None
    if not isinstance(info, dict):
        raise SpiralArmsError(f"{source}: not a spiralarms checkpoint (no {CHECKPOINT_KEY!r} entry)")
    for key in ("backbone", "classes", "n_classes", "hidden", "frozen", "grey", "crop"):
        if key not in info:
            raise SpiralArmsError(f"{source}: checkpoint description lacks {key!r}")
    return dict(info)


def load_classifier(
    checkpoint_path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[ArmClassifier, dict[str, Any]]:
    """Rebuild the trained classifier from a checkpoint, without the configuration.

    Parameters
    ----------
    checkpoint_path : str or path-like
        ``best.ckpt`` or ``last.ckpt`` of a run folder, or the run folder itself
        (its ``checkpoints/best.ckpt``).
    map_location : str or torch.device, default "cpu"
        Device of the returned model.

    Returns
    -------
    model : ArmClassifier
        In eval mode; apply it to images in [0, 1] cropped to ``info["crop"]`` (one
        grey channel when ``info["grey"]``).
    info : dict
        ``classes``, ``n_classes``, ``backbone``, ``grey``, ``crop``, ``hidden``,
        ``frozen`` and more, plus ``epoch`` (of the checkpoint) and ``checkpoint``
        (its path).

    Raises
    ------
    SpiralArmsError
        If the file is missing, not a spiralarms checkpoint, or its weights do not
        fit the described architecture.
    """
    path = Path(checkpoint_path)
    if path.is_dir():  # a run folder: its best checkpoint is the final model
        path = path / "checkpoints" / "best.ckpt"
        if not path.is_file():
            raise SpiralArmsError(f"{checkpoint_path}: a folder without checkpoints/best.ckpt; is it a run folder?")
    checkpoint = read_checkpoint(path)
    info = checkpoint_info(checkpoint, source=str(path))
    model = build_classifier(
        info["backbone"],
        int(info["n_classes"]),
        hidden=int(info["hidden"]),
        frozen=bool(info["frozen"]),
        grey=bool(info["grey"]),
        pretrained=False,
    )
    state = {k[len("model.") :]: v for k, v in checkpoint.get("state_dict", {}).items() if k.startswith("model.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:300]
        raise SpiralArmsError(f"{path}: weights do not fit backbone {info['backbone']!r}: {first}") from None
    info["classes"] = [str(c) for c in info["classes"]]
    info["epoch"] = checkpoint.get("epoch")
    info["checkpoint"] = str(path)
    return model.to(map_location).eval(), info
