"""Atomic writes: a file under its final name is always whole.

Every output is written to a temporary name in the same folder (so the rename stays
on one filesystem) and renamed over the final name only once it is complete and
flushed. A crash, a kill or a full disk leaves at most a ``.tmp`` file behind, never a
truncated file under the final name, and never destroys a good earlier version.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from spiralarms.errors import SpiralArmsError, first_line

__all__ = ["atomic_dir", "atomic_path", "write_bytes", "write_json", "write_text", "disk_error", "save_tensors",
           "save_figure", "save_array", "refuse_input_as_output"]


def refuse_input_as_output(out: str | os.PathLike, *inputs: Any) -> None:
    """Refuse an output that is one of a command's input files: writing it would replace the input.

    Parameters
    ----------
    out : path
    *inputs : path, or anything else (ignored: an in-memory table, None)

    Raises
    ------
    SpiralArmsError
        If ``out`` names the same file as one of ``inputs`` (through links too).
    """
    out = Path(out).expanduser()
    if not out.exists():  # a new output replaces nothing
        return
    for given in inputs:
        if not isinstance(given, (str, os.PathLike)) or not Path(given).expanduser().exists():
            continue
        if os.path.samefile(out, Path(given).expanduser()):
            raise SpiralArmsError(f"{out}: is the input {given}; writing there would replace it; give another output")


def disk_error(path: str | os.PathLike, exc: OSError) -> SpiralArmsError:
    """A one-line error for a failed write, naming the file (and a full disk as such)."""
    if exc.errno == errno.ENOSPC:
        return SpiralArmsError(f"{path}: no space left on the device")
    if exc.errno == errno.EDQUOT:
        return SpiralArmsError(f"{path}: disk quota exceeded")
    return SpiralArmsError(f"{path}: cannot write: {exc.strerror or first_line(exc)}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """A temporary path to write ``path`` through; renamed over ``path`` on success.

    Parameters
    ----------
    path : path
        The final file. Its parent folder is created.
    fsync : bool, default True
        Flush the file to disk before the rename, so that a power cut cannot leave
        an empty file under the final name.

    Yields
    ------
    pathlib.Path
        ``.<name>.<pid>.tmp`` in the same folder, keeping the final name's suffixes
        (``.csv.gz`` stays compressed, ``.parquet`` stays Parquet).

    Raises
    ------
    SpiralArmsError
        If the folder cannot be created or the file cannot be written (a full disk
        is named as such); the temporary file is removed.
    """
    path = Path(path)
    suffixes = "".join(path.suffixes[-2:]) if path.name.lower().endswith(".gz") else path.suffix
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffixes}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise SpiralArmsError(f"{path}: its folder {path.parent} is a file") from None
    except OSError as exc:
        raise disk_error(path.parent, exc) from None
    try:
        yield tmp
        if fsync and tmp.is_file():
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise disk_error(path, exc) from None
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: Path) -> None:
    """Remove a temporary file if it is there; on a read-only filesystem even a missing one's unlink fails."""
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder to fill; it replaces ``path`` (and any folder there) on success.

    Parameters
    ----------
    path : path
        The final folder. Its parent is created.

    Yields
    ------
    pathlib.Path
        ``.<name>.<random>.tmp`` beside ``path``.

    Raises
    ------
    SpiralArmsError
        If the folder cannot be created or written (a full disk is named as such); the
        temporary folder is removed and an earlier folder under ``path`` is kept.
    """
    import shutil
    import tempfile

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise disk_error(path, exc) from None
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise disk_error(path, exc) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = True) -> Path:
    """Write a file's bytes atomically; return its path (``fsync`` as :func:`atomic_path`)."""
    path = Path(path)
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file (UTF-8) atomically; return its path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Write JSON (indented, newline-terminated) atomically; return its path."""
    return write_text(path, json.dumps(payload, indent=2) + "\n")


def save_figure(figure: Any, path: str | os.PathLike, **options: Any) -> Path:
    """``figure.savefig(path, **options)`` atomically (the format from the suffix); return its path."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, **options)
    return Path(path)


def save_array(path: str | os.PathLike, array: Any = None, **arrays: Any) -> Path:
    """One array as ``.npy`` (``array``) or named arrays as compressed ``.npz``, atomically."""
    import numpy as np

    with atomic_path(path) as tmp:
        if arrays:
            np.savez_compressed(tmp, **arrays)
        else:
            np.save(tmp, array)
    return Path(path)


def save_tensors(payload: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` atomically; a full disk is a one-line error, not a RuntimeError.

    torch reports a write that runs out of space from inside its zip writer as a
    ``RuntimeError`` ("unexpected pos ..."), not an ``OSError``; it is named here.
    """
    import shutil

    import torch

    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
    except RuntimeError as exc:
        free = shutil.disk_usage(path.parent).free if path.parent.exists() else 0
        reason = "no space left on the device" if free < 2**20 else f"cannot write: {first_line(exc)}"
        raise SpiralArmsError(f"{path}: {reason}") from None
    return path
