"""Building a prepared store: selection, parallel decoding into chunks, resumable (see :mod:`spiralarms.data.store`)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from spiralarms import __version__
from spiralarms.data.images import load_image_uint8
from spiralarms.data.store.layout import (
    CHUNKS_DIR,
    IMAGES_FILE,
    INDEX_FILE,
    REPORT_FILE,
    SETTINGS_FILE,
    STORE_FORMAT,
    STORE_VERSION,
    read_settings,
)
from spiralarms.data.transforms import center_crop
from spiralarms.errors import ImageReadError, SpiralArmsError
from spiralarms.io.atomic import write_json
from spiralarms.io.locks import hold_output
from spiralarms.io.tables import write_table

__all__ = ["build_store", "prepare_store"]

#: Reason recorded for a selected galaxy that has no image path at all.
NO_IMAGE = "no image file for this galaxy (not in the mapping, or missing from the image folder)"

#: Settings that must agree between a store on disk and a request to (re)build it.
_COMPARED = ("format", "version", "crop", "grey", "classes", "n", "shape", "chunk_size", "rows_sha256")

def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise SpiralArmsError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check_free_space(out: Path, needed: int) -> None:
    """Refuse to start a store the disk cannot hold (naming what it needs and has)."""
    free = shutil.disk_usage(out).free
    if free < needed * 1.02 + 2**20:
        raise SpiralArmsError(
            f"{out}: the store needs {needed / 2**30:.2f} GiB and the disk has {free / 2**30:.2f} GiB free; "
            "free space, choose another OUT, or a smaller --crop"
        )


def _reserve(images_path: Path) -> None:
    """Allocate every block of the image file now (``posix_fallocate``).

    Writing through a memory map into a sparse file that the disk can no longer
    back kills the process with SIGBUS, with no message and no chance to save the
    finished chunks; reserving the blocks up front turns a full disk into an
    ordinary, reported error before any work.
    """
    if not hasattr(os, "posix_fallocate"):
        return
    try:
        with open(images_path, "rb+") as fh:
            os.posix_fallocate(fh.fileno(), 0, os.fstat(fh.fileno()).st_size)
    except OSError as exc:
        from spiralarms.io.atomic import disk_error

        raise disk_error(images_path, exc) from None



def _rows_digest(table: pd.DataFrame) -> str:
    """SHA-256 over the rows' ids, labels and files: a store holds these rows, in this order."""
    digest = hashlib.sha256()
    for galaxy, label, path in zip(table["id"], table["label_index"], table["file"], strict=True):
        digest.update(f"{galaxy}\t{int(label)}\t{'' if _no_path(path) else path}\n".encode())
    return digest.hexdigest()


def _no_path(path) -> bool:
    if isinstance(path, (str, os.PathLike)):
        return str(path).strip() == ""
    return path is None or bool(pd.isna(path))


def _process_chunk(images_path: str, start: int, files: Sequence, crop: int, grey: bool) -> dict[int, str]:
    """Decode, centre-crop and write rows ``start ..`` of the store; return the failures.

    Runs in a worker process: opens the memory map itself (``r+``) so no pixels cross
    the process boundary. Writes to a shared mapping land in the page cache at once,
    so the chunk's done-marker (written after this returns) never precedes its data
    even if the process is killed; no per-chunk ``msync`` is needed, which would make
    preparation wait on the disk. The file is synced once, when the store is finished.
    """
    array = np.load(images_path, mmap_mode="r+")
    errors: dict[int, str] = {}
    try:
        for offset, path in enumerate(files):
            row = start + offset
            if _no_path(path):
                errors[row] = NO_IMAGE
                array[row] = 0
                continue
            try:
                array[row] = center_crop(load_image_uint8(path, grey=grey), crop)
            except ImageReadError as exc:
                errors[row] = exc.reason
                array[row] = 0
            except SpiralArmsError as exc:  # e.g. an image smaller than the crop
                errors[row] = str(exc)
                array[row] = 0
    finally:
        del array
    return errors


def _chunk_bounds(n: int, chunk_size: int) -> list[tuple[int, int]]:
    return [(start, min(start + chunk_size, n)) for start in range(0, n, chunk_size)]


def _marker(out: Path, k: int) -> Path:
    return out / CHUNKS_DIR / f"{k:06d}.json"


def _write_marker(out: Path, k: int, start: int, stop: int, errors: dict[int, str]) -> None:
    write_json(
        _marker(out, k),
        {"chunk": k, "start": start, "stop": stop, "errors": {str(r): e for r, e in errors.items()}, "done": _now()},
    )


def _done_chunks(out: Path, bounds: list[tuple[int, int]]) -> dict[int, dict]:
    """Markers of the finished chunks (a marker that does not fit the bounds is ignored)."""
    done = {}
    folder = out / CHUNKS_DIR
    if not folder.is_dir():
        return done
    for k, (start, stop) in enumerate(bounds):
        path = _marker(out, k)
        if path.is_file():
            try:
                marker = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # a marker cut short: redo the chunk
            if marker.get("start") == start and marker.get("stop") == stop:
                done[k] = marker
    return done


def _run_chunks(out, images_path, table, bounds, todo, crop, grey, workers, bar) -> None:
    """Process the chunks in ``todo``, writing each one's marker as it finishes."""
    files = table["file"].tolist()

    def finished(k: int, errors: dict[int, str]) -> None:
        start, stop = bounds[k]
        _write_marker(out, k, start, stop, errors)
        bar.update(stop - start)

    if workers == 1:
        for k in todo:
            start, stop = bounds[k]
            finished(k, _process_chunk(str(images_path), start, files[start:stop], crop, grey))
        return
    pending: dict = {}
    queue = list(todo)
    try:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            try:
                # A bounded window of submitted chunks: memory does not grow with N.
                while queue or pending:
                    while queue and len(pending) < 2 * workers:
                        k = queue.pop(0)
                        start, stop = bounds[k]
                        future = pool.submit(_process_chunk, str(images_path), start, files[start:stop], crop, grey)
                        pending[future] = k
                    complete, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in complete:
                        finished(pending.pop(future), future.result())
            except BaseException:
                # Interrupted: do not start the queued chunks; the finished ones keep their markers.
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    except BrokenProcessPool as exc:
        raise SpiralArmsError(
            f"{out}: a worker process died ({exc}); the finished chunks are kept: run again to resume "
            f"(with fewer --workers if memory ran out)"
        ) from exc


def _check_same(existing: dict, wanted: dict, out: Path) -> None:
    for key in _COMPARED:
        if key == "rows_sha256" and existing.get(key) != wanted.get(key):
            raise SpiralArmsError(
                f"{out}: holds a store of other galaxies (the selected ids, labels or image paths differ); "
                f"use a new OUT folder, or delete this one"
            )
        if existing.get(key) != wanted.get(key):
            raise SpiralArmsError(
                f"{out}: holds a store prepared with other settings ({key}: {existing.get(key)!r} there, "
                f"{wanted.get(key)!r} now); use a new OUT folder, or delete this one"
            )


def _summary(out: Path, settings: dict, index: pd.DataFrame, chunks_reused: int, seconds: float, up_to_date: bool):
    ok = index["ok"].to_numpy()
    classes = list(settings["classes"])
    counts = np.bincount(index.loc[ok, "label_index"].to_numpy(np.int64), minlength=len(classes))
    n_done = int(len(index)) if up_to_date else int(settings.get("n_processed", len(index)))
    return {
        "out": str(out),
        "n": int(len(index)),
        "n_ok": int(ok.sum()),
        "n_failed": int((~ok).sum()),
        "classes": classes,
        "counts": {name: int(c) for name, c in zip(classes, counts, strict=True)},
        "shape": list(settings["shape"]),
        "bytes": int((out / IMAGES_FILE).stat().st_size),
        "chunks": int(settings["n_chunks"]),
        "chunks_reused": int(chunks_reused),
        "seconds": round(float(seconds), 3),
        "images_per_second": round(n_done / seconds, 1) if seconds > 0 and not up_to_date else None,
        "up_to_date": bool(up_to_date),
        "report": str(out / REPORT_FILE),
    }


def build_store(
    table: pd.DataFrame,
    out,
    *,
    classes: Sequence[str],
    crop: int = 224,
    grey: bool = False,
    workers: int | None = None,
    chunk_size: int = 256,
    progress: bool = True,
    source: dict | None = None,
) -> dict:
    """Decode and crop the images of ``table`` into a prepared store at ``out``.

    The lower-level half of :func:`prepare_store`, for tables that do not come from a
    vote catalogue (e.g. benchmarks on unlabelled cutouts).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per galaxy with columns ``id``, ``label`` (class name),
        ``label_index`` (position in ``classes``) and ``file`` (image path; missing
        for a galaxy without an image).
    out : str or path-like
        Store folder: new, empty, or a store with the same settings (which is then
        resumed, or left as it is when complete).
    classes : sequence of str
        Class names, in index order.
    crop : int, default 224
        Side of the stored centre crop (see the module notes for larger crops).
    grey : bool, default False
        Store one luminance channel (Pillow ``"L"``, as :func:`load_image` does).
    workers : int, optional
        Worker processes; default one per available core. ``1`` works in-process.
    chunk_size : int, default 256
        Rows per chunk: the unit of parallel work and of resumption.
    progress : bool, default True
        Show a tqdm bar in images.
    source : dict, optional
        Recorded under ``source`` in ``store.json`` (the catalogue it came from).

    Returns
    -------
    dict
        ``{"out", "n", "n_ok", "n_failed", "classes", "counts" (usable rows per
        class), "shape", "bytes", "chunks", "chunks_reused", "seconds",
        "images_per_second", "up_to_date", "report"}``.

    Raises
    ------
    SpiralArmsError
        If ``table`` lacks a column or is empty, ``out`` is a non-empty folder that is
        not a store, or holds a store with other settings or rows.
    """
    started = time.perf_counter()
    missing = [c for c in ("id", "label", "label_index", "file") if c not in table.columns]
    if missing:
        raise SpiralArmsError(f"store table: missing column {missing[0]!r}")
    if len(table) == 0:
        raise SpiralArmsError("no galaxy to store: the selection is empty")
    crop = _positive_int(crop, "crop")
    chunk_size = _positive_int(chunk_size, "chunk_size")
    workers = _default_workers() if workers is None else _positive_int(workers, "workers")
    classes = [str(c) for c in classes]
    table = table.reset_index(drop=True)
    out = Path(out).expanduser()

    n = len(table)
    bounds = _chunk_bounds(n, chunk_size)
    settings = {
        "format": STORE_FORMAT,
        "version": STORE_VERSION,
        "crop": crop,
        "grey": bool(grey),
        "classes": classes,
        "n": n,
        "shape": [n, crop, crop, 1 if grey else 3],
        "dtype": "uint8",
        "layout": "NHWC",
        "chunk_size": chunk_size,
        "n_chunks": len(bounds),
        "rows_sha256": _rows_digest(table),
        "source": source or {},
        "created": _now(),
        "spiralarms_version": __version__,
        "complete": False,
    }
    # A second prepare into this store would resume the first's chunks as they are written.
    with hold_output(out, "prepare run"):
        return _build(out, table, settings, bounds, crop, grey, workers, progress, started)


def _build(out: Path, table: pd.DataFrame, settings: dict, bounds, crop: int, grey: bool, workers: int, progress: bool,
           started: float) -> dict:
    """The work of :func:`build_store`, while the store is held."""
    n = len(table)
    settings_path = out / SETTINGS_FILE
    images_path = out / IMAGES_FILE
    if settings_path.is_file():
        existing = read_settings(settings_path)
        _check_same(existing, settings, out)
        if existing.get("complete") and (out / INDEX_FILE).is_file() and images_path.is_file():
            index = pd.read_parquet(out / INDEX_FILE)
            return _summary(out, existing, index, len(bounds), time.perf_counter() - started, True)
        settings["created"] = existing.get("created", settings["created"])
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SpiralArmsError(f"{out}: exists and is not a spiralarms store; choose a new or empty OUT folder")

    (out / CHUNKS_DIR).mkdir(parents=True, exist_ok=True)
    if not images_path.is_file() or list(np.load(images_path, mmap_mode="r").shape) != settings["shape"]:
        _check_free_space(out, int(np.prod(settings["shape"])))
        array = np.lib.format.open_memmap(images_path, mode="w+", dtype=np.uint8, shape=tuple(settings["shape"]))
        del array
        shutil.rmtree(out / CHUNKS_DIR)
        (out / CHUNKS_DIR).mkdir()
    _reserve(images_path)
    write_json(settings_path, settings)

    done = _done_chunks(out, bounds)
    todo = [k for k in range(len(bounds)) if k not in done]
    n_reused_rows = sum(bounds[k][1] - bounds[k][0] for k in done)
    from spiralarms.runtime import progress_bar

    with progress_bar(enabled=progress, total=n, initial=n_reused_rows, desc="preparing store", unit="img") as bar:
        _run_chunks(out, images_path, table, bounds, todo, crop, grey, min(workers, max(len(todo), 1)), bar)

    index = _finish(out, table, bounds, settings)
    settings["n_processed"] = n - n_reused_rows
    return _summary(out, settings, index, len(done), time.perf_counter() - started, False)


def _finish(out: Path, table: pd.DataFrame, bounds, settings: dict) -> pd.DataFrame:
    """Gather the chunk markers into index.parquet and report.csv; mark the store complete."""
    done = _done_chunks(out, bounds)
    if len(done) != len(bounds):
        raise SpiralArmsError(f"{out}: {len(bounds) - len(done)} chunks unfinished; run again to resume")
    with open(out / IMAGES_FILE, "rb+") as fh:
        os.fsync(fh.fileno())  # the pixels reach the disk before the store is marked complete
    n = len(table)
    ok = np.ones(n, dtype=bool)
    errors: list[str | None] = [None] * n
    for marker in done.values():
        for row, reason in marker["errors"].items():
            ok[int(row)] = False
            errors[int(row)] = reason
    files = [None if _no_path(f) else str(f) for f in table["file"]]
    index = pd.DataFrame(
        {
            "row": np.arange(n, dtype=np.int64),
            "id": table["id"].to_numpy(),
            "label": table["label"].astype(str).to_numpy(),
            "label_index": table["label_index"].to_numpy(np.int64),
            "file": pd.Series(files, dtype=object),
            "ok": ok,
            "error": pd.Series(errors, dtype=object),
        }
    )
    write_table(index, out / INDEX_FILE)
    write_table(index.loc[~ok, ["row", "id", "file", "error"]], out / REPORT_FILE)
    settings.update(complete=True, n_ok=int(ok.sum()), n_failed=int((~ok).sum()), finished=_now())
    write_json(out / SETTINGS_FILE, settings)
    shutil.rmtree(out / CHUNKS_DIR, ignore_errors=True)
    return index


def prepare_store(
    catalog,
    out,
    crop: int = 224,
    grey: bool = False,
    merge=None,
    schema: str = "auto",
    workers: int | None = None,
    image_dir=None,
    mapping=None,
    chunk_size: int = 256,
    progress: bool = True,
) -> dict:
    """Select the clean sample of a catalogue and store its images decoded and cropped.

    Runs :func:`~spiralarms.catalog.readers.read_catalog`,
    :func:`~spiralarms.catalog.selection.select_clean_sample` and
    :func:`~spiralarms.catalog.readers.resolve_image_paths`, then
    :func:`build_store` (see the module notes for the layout and the choices).

    Parameters
    ----------
    catalog : str or path-like
        GZ2 or Kaggle catalogue (e.g. ``ROOT/catalog.parquet`` of ``spiralarms data``).
    out : str or path-like
        Store folder (new, empty, or an unfinished store with the same settings).
    crop : int, default 224
        Side of the stored centre crop, the paper's 224 of 424 by default.
    grey : bool, default False
        Store one luminance channel (for the greyscale Zoobot backbone).
    merge : str, optional
        Class merge, ``"3,4"`` or ``"4,5+"``.
    schema : {"auto", "gz2", "kaggle"}, default "auto"
        Catalogue schema.
    workers : int, optional
        Worker processes; default one per available core.
    image_dir, mapping : str or path-like, optional
        Passed to :func:`~spiralarms.catalog.readers.resolve_image_paths`.
    chunk_size : int, default 256
        Rows per chunk (the unit of parallel work and of resumption).
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    dict
        The summary of :func:`build_store`, plus ``catalog`` and ``n_selected``.

    Raises
    ------
    SpiralArmsError
        On a bad catalogue, an empty selection, a folder that is not a store, or a
        store prepared with other settings (use a new ``out``).
    """
    from spiralarms.acquire.download import file_checksums
    from spiralarms.catalog.readers import id_columns
    from spiralarms.catalog.selection import read_clean_sample

    catalog = Path(catalog).expanduser()
    _positive_int(crop, "crop")
    selection = read_clean_sample(
        catalog, schema=schema, merge=merge, resolve_images=True, mapping=mapping, image_dir=image_dir
    )
    selected, resolved = selection.selected, selection.schema
    id_column = next((c for c in id_columns(resolved) if c in selected.columns), None)
    rows = pd.DataFrame(
        {
            "id": selected[id_column].to_numpy() if id_column else np.arange(len(selected)),
            "label": selected["label"].astype(str).to_numpy(),
            "label_index": selected["label_index"].to_numpy(np.int64),
            "file": pd.Series(selected["file"].tolist(), dtype=object),
        }
    )
    stat = catalog.stat()
    source = {
        "catalog": str(catalog.resolve()),
        "schema": resolved,
        "merge": merge,
        "size": int(stat.st_size),
        "mtime": datetime.fromtimestamp(stat.st_mtime, timezone.utc).isoformat(timespec="seconds"),
        "sha256": file_checksums(catalog)["sha256"],
        "n_input": int(selection.n_input),
        "image_dir": None if image_dir is None else str(Path(image_dir).resolve()),
        "mapping": None if mapping is None or isinstance(mapping, pd.DataFrame) else str(Path(mapping).resolve()),
    }
    if rows.empty:
        raise SpiralArmsError(f"{catalog}: no galaxy passes the clean-sample cuts; nothing to store")
    summary = build_store(
        rows,
        out,
        classes=selection.classes,
        crop=crop,
        grey=grey,
        workers=workers,
        chunk_size=chunk_size,
        progress=progress,
        source=source,
    )
    return {"catalog": str(catalog), "n_selected": int(selection.n_selected), **summary}
