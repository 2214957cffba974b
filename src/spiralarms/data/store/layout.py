"""The files of a prepared store and its format marker (see :mod:`spiralarms.data.store`)."""

from __future__ import annotations

import json
from pathlib import Path

from spiralarms.errors import SpiralArmsError

__all__ = ["CHUNKS_DIR", "IMAGES_FILE", "INDEX_FILE", "REPORT_FILE", "SETTINGS_FILE", "STORE_FORMAT",
           "STORE_VERSION", "read_settings"]

STORE_FORMAT = "spiralarms-store"
STORE_VERSION = 1
IMAGES_FILE = "images.npy"
INDEX_FILE = "index.parquet"
SETTINGS_FILE = "store.json"
REPORT_FILE = "report.csv"
CHUNKS_DIR = "chunks"


def read_settings(path: Path) -> dict:
    """A store's ``store.json``; an unreadable one is a one-line error naming the file.

    Parameters
    ----------
    path : pathlib.Path
        The ``store.json`` file.

    Returns
    -------
    dict
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpiralArmsError(f"{path}: cannot read it as JSON ({exc})") from exc
