"""A torch Dataset over a selected catalogue of galaxy cutouts.

Training must not lose galaxies silently: by default an unreadable image raises
:class:`~spiralarms.errors.ImageReadError` naming the file, and
:meth:`GalaxyDataset.validate` lists every bad file up front. Prediction must keep one
output row per input: with ``on_error="report"`` an unreadable image yields a zero
tensor and its error string, and :func:`collate_with_errors` carries the strings into
the batch::

    ds = GalaxyDataset(table, classes, transform=build_eval_transform(),
                       label_column=None, on_error="report")
    loader = DataLoader(ds, batch_size=64, num_workers=4, collate_fn=collate_with_errors)
    for images, _, errors in loader:
        ...  # predict on images; rows where errors[i] != "" get an `error` entry

The dataset holds only file names and label indices (no open files, no decoded
images), so it pickles cheaply and works with ``num_workers > 0``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, default_collate

from spiralarms.data.images import load_image, scan_images
from spiralarms.data.transforms import ToTensor
from spiralarms.errors import ImageReadError, SpiralArmsError

__all__ = ["GalaxyDataset", "collate_with_errors", "ON_ERROR", "UNLABELLED"]

#: What to do with an unreadable image: raise (training) or report (prediction).
ON_ERROR: tuple[str, ...] = ("raise", "report")

#: Label returned for unlabelled items (``label_column=None``).
UNLABELLED = -1


class GalaxyDataset(Dataset):
    """Images and class indices of the galaxies in a catalogue table.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per galaxy, with a file column and (for training) a label column.
    classes : sequence of str
        Class names in order; a label's index is its position here (e.g.
        ``arm_classes("3,4")``). Labels are compared as strings, so ``2`` read from a
        CSV as an integer matches class ``"2"``.
    transform : callable, optional
        Maps an (H, W, C) float32 image in [0, 1] to a (C, H, W) float32 tensor
        (:func:`~spiralarms.data.transforms.build_eval_transform` or
        :func:`~spiralarms.data.transforms.build_train_transform`). Default: conversion
        to a tensor only, no crop.
    grey : bool, default False
        Read images as one luminance channel.
    label_column : str or None, default "label"
        Column of class names; ``None`` for unlabelled prediction (label -1).
    image_root : str or path-like, optional
        Folder that relative paths in the file column are relative to. Without it,
        relative paths are relative to the working directory.
    file_column : str, default "file"
        Column of image paths.
    on_error : {"raise", "report"}, default "raise"
        ``"raise"``: an unreadable image raises ImageReadError (for training).
        ``"report"``: items become ``(tensor, label, error)``, where an unreadable
        image gives a zero tensor and its error string, and readable ones give ``""``
        (for prediction; batch with :func:`collate_with_errors`).
    placeholder_size : int, default 424
        Side of the blank image passed through ``transform`` to shape the zero tensor
        of an unreadable file in ``"report"`` mode (GZ2 cutouts are 424 pixels).

    Attributes
    ----------
    files : list of str
        Image path of each item (joined to ``image_root`` where relative).
    labels : numpy.ndarray
        Class index of each item (int64; -1 when unlabelled).
    classes : tuple of str
        The class names, in index order.

    Raises
    ------
    SpiralArmsError
        If a column is missing, a label is missing or not in ``classes``, ``classes``
        is empty or repeats a name, or ``on_error`` is unknown.
    """

    def __init__(
        self,
        table: pd.DataFrame,
        classes: Sequence[str],
        transform: Callable | None = None,
        grey: bool = False,
        label_column: str | None = "label",
        image_root: str | os.PathLike | None = None,
        file_column: str = "file",
        on_error: str = "raise",
        placeholder_size: int = 424,
    ):
        if not isinstance(table, pd.DataFrame):
            raise SpiralArmsError(f"expected a pandas DataFrame, got {type(table).__name__}")
        if on_error not in ON_ERROR:
            raise SpiralArmsError(f"on_error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
        self.classes = tuple(str(c) for c in classes)
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise SpiralArmsError(f"classes must be non-empty and distinct, got {list(classes)!r}")
        for column in (file_column, label_column):
            if column is not None and column not in table.columns:
                raise SpiralArmsError(
                    f"no column {column!r} in the table (columns: {', '.join(map(str, table.columns))})"
                )
        self.files = _resolve_files(table[file_column], image_root, file_column)
        self.labels = (
            np.full(len(table), UNLABELLED, dtype=np.int64)
            if label_column is None
            else _label_indices(table[label_column], self.classes, label_column)
        )
        self.transform = transform if transform is not None else ToTensor()
        self.grey = bool(grey)
        self.label_column = label_column
        self.on_error = on_error
        self.placeholder_size = int(placeholder_size)
        self._placeholder: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.files)

    def source_files(self) -> list[str]:
        """The files whose bytes the items are decoded from: the image files."""
        return [str(f) for f in self.files]

    def __getitem__(self, index: int):
        path = self.files[index]
        label = int(self.labels[index])
        try:
            image = self.transform(load_image(path, grey=self.grey))
        except ImageReadError as exc:
            if self.on_error == "raise":
                raise
            return self.placeholder().clone(), label, exc.reason
        if self.on_error == "report":
            return image, label, ""
        return image, label

    def placeholder(self) -> torch.Tensor:
        """The zero tensor that stands in for an unreadable image in ``"report"`` mode.

        Returns
        -------
        torch.Tensor
            Zeros shaped like ``transform`` output for a blank
            ``placeholder_size`` square image (computed once per process).
        """
        if self._placeholder is None:
            channels = 1 if self.grey else 3
            blank = np.zeros((self.placeholder_size, self.placeholder_size, channels), dtype=np.float32)
            self._placeholder = torch.zeros_like(torch.as_tensor(self.transform(blank), dtype=torch.float32))
        return self._placeholder

    def validate(self, progress: bool = False, workers: int = 1) -> pd.DataFrame:
        """Decode every image and list the ones that fail.

        Parameters
        ----------
        progress : bool, default False
            Show a progress bar.
        workers : int, default 1
            Decoding threads.

        Returns
        -------
        pandas.DataFrame
            Columns ``row`` (position in the dataset), ``file`` and ``error``; empty
            when every image reads.
        """
        report = scan_images(self.files, workers=workers, progress=progress)
        report.insert(0, "row", np.arange(len(report)))
        bad = report.loc[~report["ok"], ["row", "file", "error"]]
        return bad.reset_index(drop=True)

    def __repr__(self) -> str:
        return (
            f"GalaxyDataset(n={len(self)}, classes={self.classes}, grey={self.grey}, "
            f"on_error={self.on_error!r}, transform={self.transform!r})"
        )


def _resolve_files(files: pd.Series, image_root: str | os.PathLike | None, column: str) -> list[str]:
    """Paths as strings, joined to ``image_root`` when relative; refuse empty entries."""
    missing = files.isna() | (files.astype(str).str.strip() == "")
    if missing.any():
        first = int(np.flatnonzero(missing.to_numpy())[0])
        raise SpiralArmsError(f"{int(missing.sum())} row(s) without a path in column {column!r}, first at row {first}")
    root = Path(image_root) if image_root is not None else None
    out = []
    for value in files.astype(str):
        path = Path(value).expanduser()
        if root is not None and not path.is_absolute():
            path = root / path
        out.append(str(path))
    return out


def _label_indices(labels: pd.Series, classes: tuple[str, ...], column: str) -> np.ndarray:
    """Class index of each label, by position in ``classes``."""
    lookup = {name: i for i, name in enumerate(classes)}
    out = np.empty(len(labels), dtype=np.int64)
    for row, value in enumerate(labels.to_numpy()):
        if pd.isna(value):
            raise SpiralArmsError(f"missing label in column {column!r} at row {row}")
        index = lookup.get(str(value))
        if index is None:
            raise SpiralArmsError(
                f"label {value!r} at row {row} is not one of the classes {', '.join(classes)}"
            )
        out[row] = index
    return out


def collate_with_errors(batch: list[tuple]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Collate ``(image, label, error)`` items, keeping every row and its error string.

    Parameters
    ----------
    batch : list of tuple
        Items from a :class:`GalaxyDataset` with ``on_error="report"``.

    Returns
    -------
    images : torch.Tensor
        (N, C, H, W); rows of unreadable images are zeros.
    labels : torch.Tensor
        (N,) int64.
    errors : list of str
        One entry per row: ``""`` if the image was read, else the reason.

    Raises
    ------
    SpiralArmsError
        If the items are not ``(image, label, error)`` triples.
    """
    if not batch or any(not isinstance(item, tuple) or len(item) != 3 for item in batch):
        raise SpiralArmsError("collate_with_errors expects (image, label, error) items: use on_error='report'")
    images, labels, errors = zip(*batch)
    good = [img for img, err in zip(images, errors) if not err]
    if good:
        # A placeholder may differ in shape from real images of another size when no
        # transform fixes the size; re-shape it like the readable images in the batch.
        images = tuple(img if not err else torch.zeros_like(good[0]) for img, err in zip(images, errors))
    return default_collate(list(images)), torch.as_tensor(labels, dtype=torch.int64), list(errors)
