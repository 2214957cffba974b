"""The record of what a data folder holds: ``ROOT/manifest.json``, and atomic writes.

The manifest lists every input file (its source, path, size, checksums and when it
was fetched), the extracted images and the catalogue written from them. It is
rewritten after every step through :mod:`spiralarms.io.atomic`, so an
interrupted run leaves the record of the steps already done, and a rerun repeats
none of them. A file whose size and modification time still match its entry is not
read again.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from spiralarms import __version__
from spiralarms.acquire.download import accepted, file_checksums, verify_checksums
from spiralarms.catalog.readers import write_table
from spiralarms.errors import SpiralArmsError
from spiralarms.io.atomic import write_json

__all__ = [
    "MANIFEST",
    "CATALOG",
    "MISSING",
    "IMAGES_DIR",
    "read_manifest",
    "write_manifest",
    "write_json_atomic",
    "stat_record",
    "unchanged",
    "local_file_record",
    "outputs_up_to_date",
    "write_catalog_outputs",
]

MANIFEST = "manifest.json"
CATALOG = "catalog.parquet"
MISSING = "missing.csv"
IMAGES_DIR = "images"


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json_atomic(path, payload) -> Path:
    """Write JSON atomically (:func:`spiralarms.io.atomic.write_json`).

    Parameters
    ----------
    path : str or path-like
        Destination.
    payload : object
        JSON-serialisable value.

    Returns
    -------
    pathlib.Path
    """
    return write_json(path, payload)


def read_manifest(root, dataset: str) -> dict:
    """Read ``ROOT/manifest.json``, or start an empty one.

    Parameters
    ----------
    root : str or path-like
        The data folder.
    dataset : {"gz2", "kaggle"}
        What the folder holds; a manifest of another dataset is refused.

    Returns
    -------
    dict
        ``{"dataset", "spiralarms_version", "files": {...}, ...}``.

    Raises
    ------
    SpiralArmsError
        If the manifest is not valid JSON or belongs to another dataset, or if there
        is no manifest but a ``catalog.parquet`` or ``missing.csv`` is there: a file
        this package did not write, which writing the catalogue would replace.
    """
    path = Path(root) / MANIFEST
    if not path.exists():
        for name in (CATALOG, MISSING):
            theirs = Path(root) / name
            if theirs.exists():
                raise SpiralArmsError(
                    f"{theirs}: exists, and no {MANIFEST} says 'spiralarms data' wrote it; "
                    "writing the catalogue would replace it; give a new or empty folder"
                )
        return {"dataset": dataset, "spiralarms_version": __version__, "files": {}}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpiralArmsError(f"{path}: cannot read it as JSON ({exc}); delete it to start afresh") from exc
    if manifest.get("dataset") != dataset:
        raise SpiralArmsError(
            f"{path}: this folder holds {manifest.get('dataset')!r} data, not {dataset!r}; use another ROOT"
        )
    manifest.setdefault("files", {})
    return manifest


def write_manifest(root, manifest: dict) -> Path:
    """Write ``ROOT/manifest.json`` atomically (see :func:`write_json_atomic`).

    Parameters
    ----------
    root : str or path-like
    manifest : dict

    Returns
    -------
    pathlib.Path
    """
    manifest["spiralarms_version"] = __version__
    manifest["updated"] = now()
    return write_json_atomic(Path(root) / MANIFEST, manifest)


def stat_record(path) -> dict:
    """``{"size", "mtime_ns"}`` of a file: what :func:`unchanged` compares."""
    st = Path(path).stat()
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def unchanged(path, record: dict | None) -> bool:
    """Whether ``path`` exists with the size and modification time in ``record``.

    Parameters
    ----------
    path : str or path-like
    record : dict or None
        An entry with ``size`` and ``mtime_ns``.

    Returns
    -------
    bool
    """
    if not record or "size" not in record or "mtime_ns" not in record:
        return False
    try:
        return stat_record(path) == {"size": record["size"], "mtime_ns": record["mtime_ns"]}
    except OSError:
        return False


def local_file_record(path, expected=None, previous: dict | None = None, progress: bool = False, accept=()) -> dict:
    """Checksum a local input file (or reuse its earlier record) and verify it.

    Parameters
    ----------
    path : str or path-like
        The file, used where it is (nothing is copied).
    expected : RemoteFile, optional
        Known size and checksums to verify against.
    previous : dict, optional
        The file's earlier manifest entry; reused without reading the file when the
        path, size and modification time are unchanged.
    progress : bool, default False
        Show a bar while checksumming.
    accept : iterable of str
        Checksums accepted besides the expected ones (``"md5:HEX"``, ``"sha256:HEX"``).

    Returns
    -------
    dict
        ``{"source", "path", "size", "mtime_ns", "md5", "sha256", "fetched"}``, plus
        ``"accepted": true`` where the file matched only an accepted checksum.

    Raises
    ------
    SpiralArmsError
        If the file differs from the expected size or checksum.
    """
    path = Path(path).resolve()
    if previous and previous.get("path") == str(path) and unchanged(path, previous):
        return previous
    found = file_checksums(path, progress=progress)
    record = {"source": str(path), "path": str(path), **found, **stat_record(path), "fetched": now()}
    if expected is not None:
        mismatch = verify_checksums(str(path), found, expected.size, expected.md5, expected.sha256)
        if mismatch is not None and not accepted(found, accept):
            raise SpiralArmsError(
                f"{mismatch}: a damaged or different copy; fetch it again, or accept it with "
                f"--accept-checksum md5:{found['md5']}"
            )
        if mismatch is not None:
            record["accepted"] = True
    return record


def outputs_up_to_date(root, manifest: dict) -> bool:
    """Whether the catalogue, missing list and images recorded in the manifest are in place.

    Parameters
    ----------
    root : str or path-like
    manifest : dict

    Returns
    -------
    bool
        True when ``catalog.parquet`` and ``missing.csv`` are unchanged since they
        were written and the image extraction (or image folder) was recorded complete.
    """
    root = Path(root)
    catalog = manifest.get("catalog") or {}
    images = manifest.get("images") or {}
    image_dir = Path(images.get("dir", IMAGES_DIR))
    return (
        bool(images.get("complete"))
        and (image_dir if image_dir.is_absolute() else root / image_dir).is_dir()
        and unchanged(root / CATALOG, catalog.get("catalog"))
        and unchanged(root / MISSING, catalog.get("missing_list"))
    )


def write_catalog_outputs(root, table: pd.DataFrame, missing: pd.DataFrame) -> dict:
    """Write ``catalog.parquet`` and ``missing.csv`` atomically and describe them.

    Parameters
    ----------
    root : str or path-like
    table : pandas.DataFrame
        The catalogue with its ``file`` column (missing where no image was found).
    missing : pandas.DataFrame
        ``id`` and ``reason`` of every galaxy without an image.

    Returns
    -------
    dict
        The manifest's ``catalog`` entry: rows, images found, missing, when, and the
        size and modification time of both files.
    """
    root = Path(root)
    write_table(table, root / CATALOG)
    write_table(missing, root / MISSING)
    return {
        "rows": int(len(table)),
        "images_found": int(table["file"].notna().sum()),
        "missing": int(len(missing)),
        "written": now(),
        "catalog": stat_record(root / CATALOG),
        "missing_list": stat_record(root / MISSING),
    }
