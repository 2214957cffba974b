"""Reading a prepared store: :class:`PreparedStore` and its torch Dataset (see :mod:`spiralarms.data.store`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from torch.utils.data import Dataset

from spiralarms.data.store.layout import IMAGES_FILE, INDEX_FILE, SETTINGS_FILE, STORE_FORMAT, read_settings
from spiralarms.data.transforms import ToTensor
from spiralarms.errors import SpiralArmsError

__all__ = ["PreparedStore", "StoreDataset", "is_prepared_store"]

# load_image scales by this float32 factor; using the same one gives identical floats.
_SCALE = np.float32(1.0 / 255.0)


def is_prepared_store(path) -> bool:
    """Whether ``path`` is a complete prepared store.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    bool
        True for a folder with ``store.json`` (of this format, marked complete),
        ``images.npy`` and ``index.parquet``; never raises.
    """
    path = Path(path)
    try:
        settings = json.loads((path / SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(settings, dict)
        and settings.get("format") == STORE_FORMAT
        and bool(settings.get("complete"))
        and (path / IMAGES_FILE).is_file()
        and (path / INDEX_FILE).is_file()
    )


class StoreDataset(Dataset):
    """``(image, label_index)`` items from a prepared store, as GalaxyDataset gives them.

    Each item is ``transform(x)`` where ``x`` is the stored row as an (H, W, C)
    float32 array in [0, 1] (uint8 / 255, with the same float32 factor as
    :func:`~spiralarms.data.images.load_image`), so a transform built for
    :class:`~spiralarms.data.dataset.GalaxyDataset` gives identical tensors.
    The memory map is opened lazily in each process (and is not pickled), so the
    dataset works with DataLoader workers.

    Parameters
    ----------
    images_path : str or path-like
        The store's ``images.npy``.
    rows : sequence of int
        Store rows served, in order.
    labels : sequence of int
        Class index of each served row.
    classes : sequence of str
        Class names.
    transform : callable, optional
        (H, W, C) float32 in [0, 1] -> tensor; default conversion to a (C, H, W)
        tensor only.
    files : sequence of str, optional
        Original image path of each served row (for reports).

    Attributes
    ----------
    rows, labels : numpy.ndarray
        int64.
    classes : tuple of str
    files : list of str
    """

    def __init__(self, images_path, rows, labels, classes, transform: Callable | None = None, files=None):
        self.images_path = str(images_path)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        if self.rows.shape != self.labels.shape:
            raise SpiralArmsError("StoreDataset: rows and labels differ in length")
        self.classes = tuple(str(c) for c in classes)
        self.transform = transform if transform is not None else ToTensor()
        self.files = list(files) if files is not None else [f"{self.images_path}[{r}]" for r in self.rows]
        self._images = None

    def source_files(self) -> list[str]:
        """The files whose bytes the items are read from: the store's image array."""
        return [self.images_path]

    def _array(self) -> np.ndarray:
        if self._images is None:
            self._images = np.load(self.images_path, mmap_mode="r")
        return self._images

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def __getitem__(self, index: int):
        image = np.multiply(self._array()[self.rows[index]], _SCALE, dtype=np.float32)
        return self.transform(image), int(self.labels[index])

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_images"] = None  # a memmap would pickle as its full contents
        return state

    def __repr__(self) -> str:
        return f"StoreDataset(n={len(self)}, classes={self.classes}, transform={self.transform!r})"


class PreparedStore:
    """Read-only access to a store written by :func:`prepare_store`.

    Parameters
    ----------
    path : str or path-like
        The store folder.

    Attributes
    ----------
    path : pathlib.Path
    settings : dict
        ``store.json``.
    table : pandas.DataFrame
        ``index.parquet``: ``row``, ``id``, ``label``, ``label_index``, ``file``,
        ``ok``, ``error``.
    classes : tuple of str
    crop : int
    grey : bool

    Raises
    ------
    SpiralArmsError
        If ``path`` is not a store, or an unfinished one (run prepare again).
    """

    def __init__(self, path):
        self.path = Path(path).expanduser()
        settings_path = self.path / SETTINGS_FILE
        if not settings_path.is_file():
            raise SpiralArmsError(f"{self.path}: not a prepared store (no {SETTINGS_FILE})")
        self.settings = read_settings(settings_path)
        if self.settings.get("format") != STORE_FORMAT:
            raise SpiralArmsError(f"{settings_path}: not a spiralarms store")
        if not is_prepared_store(self.path):
            raise SpiralArmsError(f"{self.path}: the store is unfinished; run 'spiralarms prepare' again to finish it")
        self.table = pd.read_parquet(self.path / INDEX_FILE)
        self.classes = tuple(self.settings["classes"])
        self.crop = int(self.settings["crop"])
        self.grey = bool(self.settings["grey"])
        self._images = None

    @property
    def images(self) -> np.ndarray:
        """The read-only memory map of all rows, (N, crop, crop, C) uint8."""
        if self._images is None:
            self._images = np.load(self.path / IMAGES_FILE, mmap_mode="r")
        return self._images

    @property
    def labels(self) -> np.ndarray:
        """Class index of every row (int64)."""
        return self.table["label_index"].to_numpy(np.int64)

    @property
    def ok(self) -> np.ndarray:
        """Whether each row holds a decoded image (bool)."""
        return self.table["ok"].to_numpy(bool)

    def __len__(self) -> int:
        return int(len(self.table))

    def image(self, i: int) -> np.ndarray:
        """Row ``i`` as stored.

        Parameters
        ----------
        i : int
            Store row, 0 to ``len(self) - 1``.

        Returns
        -------
        numpy.ndarray
            (crop, crop, C) uint8, a copy. Rows with ``ok`` False are zeros.

        Raises
        ------
        IndexError
            If ``i`` is out of range.
        """
        if not -len(self) <= int(i) < len(self):
            raise IndexError(f"store row {i} out of range (0..{len(self) - 1})")
        return np.array(self.images[int(i)])

    def as_dataset(self, transform: Callable | None = None, rows=None) -> StoreDataset:
        """A torch Dataset of the usable rows, a drop-in for GalaxyDataset.

        Parameters
        ----------
        transform : callable, optional
            As for :class:`~spiralarms.data.dataset.GalaxyDataset`, e.g.
            ``build_eval_transform(crop=224, grey=False)`` (a crop equal to the stored
            one is a no-op) or ``build_train_transform(...)``.
        rows : sequence of int, optional
            Store rows to serve, in this order (e.g. a training split); default every
            row with ``ok`` True.

        Returns
        -------
        StoreDataset
            Items ``(tensor, label_index)``.

        Raises
        ------
        SpiralArmsError
            If a requested row is out of range or was not readable (the message gives
            its file and reason).
        """
        ok = self.ok
        if rows is None:
            chosen = np.flatnonzero(ok)
        else:
            chosen = np.asarray(list(rows), dtype=np.int64)
            if chosen.size and (chosen.min() < 0 or chosen.max() >= len(self)):
                raise SpiralArmsError(f"{self.path}: row {int(chosen.max())} out of range (0..{len(self) - 1})")
            bad = chosen[~ok[chosen]]
            if bad.size:
                row = self.table.iloc[int(bad[0])]
                raise SpiralArmsError(f"{self.path}: row {int(bad[0])} ({row['file']}) is not usable: {row['error']}")
        files = self.table["file"].to_numpy(dtype=object)[chosen]
        return StoreDataset(
            self.path / IMAGES_FILE,
            chosen,
            self.labels[chosen],
            self.classes,
            transform=transform,
            files=[str(f) for f in files],
        )

    def __repr__(self) -> str:
        return (
            f"PreparedStore({str(self.path)!r}, n={len(self)}, ok={int(self.ok.sum())}, crop={self.crop}, "
            f"grey={self.grey}, classes={self.classes})"
        )
