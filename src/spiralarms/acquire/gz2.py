"""Fetch the paper's Galaxy Zoo 2 data and join the vote table to its images.

:func:`fetch_gz2` puts into ``ROOT``:

- a GZ2 vote table, ``gz2_filename_mapping.csv`` and ``images_gz2.zip`` (addresses in
  :mod:`spiralarms.acquire.sources`), downloaded with resume and checksum checks, or
  read in place from a local folder (``source=DIR``). The vote table is the paper's,
  the Willett et al. (2013) main sample ``zoo2MainSpecz.csv.gz`` (``table="willett13"``,
  the default), or the Hart et al. (2016) ``gz2_hart16.csv.gz`` (``table="hart16"``);
- ``images/<asset_id>.jpg``: the images, extracted once;
- ``catalog.parquet``: the vote table in the GZ2 schema with a ``file`` column
  (``images/<asset_id>.jpg``, relative to ``ROOT`` so that the folder can move).
  Galaxies without an image keep their row with an empty ``file``: the clean-sample
  cuts still see them, and :func:`spiralarms.data.store.prepare_store` reports them;
- ``missing.csv``: ``id`` and ``reason`` of every galaxy without an image (no row in
  the mapping, or its image is not in the archive; the Galaxy Zoo team notes that
  about 0.08 % of the table has no image);
- ``manifest.json``: source, size, checksums and time of every file, the vote table
  chosen (``"table": {"name", "file", "reference"}``), the extraction and the
  catalogue (see :mod:`spiralarms.acquire.manifest`).

A second run with everything in place (and the same table) reads only the manifest
and the sizes and times of two files: it opens no network connection. Asking for the
other table fetches it and rebuilds ``catalog.parquet``; the images are reused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from spiralarms.acquire import sources
from spiralarms.acquire.archive import extract_images
from spiralarms.acquire.download import PART_SUFFIX, accepted, download, file_checksums, verify_checksums
from spiralarms.acquire.manifest import (
    CATALOG,
    MANIFEST,
    IMAGES_DIR,
    MISSING,
    local_file_record,
    now,
    outputs_up_to_date,
    read_manifest,
    stat_record,
    unchanged,
    write_catalog_outputs,
    write_manifest,
)
from spiralarms.catalog import schema as sch
from spiralarms.catalog.readers import read_catalog, resolve_image_paths
from spiralarms.errors import SpiralArmsError

__all__ = ["fetch_gz2", "build_gz2_catalog", "summary_of", "recorded_vote_table", "check_table"]

_URL_SCHEMES = ("http://", "https://", "file://")


def _is_url(source: str) -> bool:
    return str(source).lower().startswith(_URL_SCHEMES)


def check_table(table: str) -> str:
    """``table`` if it names a GZ2 vote table of :data:`~spiralarms.acquire.sources.GZ2_TABLES`.

    Raises
    ------
    SpiralArmsError
        Otherwise, naming the choices.
    """
    if table not in sources.GZ2_TABLES:
        raise SpiralArmsError(f"--table {table!r}: choose {' or '.join(sources.GZ2_TABLES)}")
    return table


def _remote_files(source, table: str) -> tuple[sources.RemoteFile, ...]:
    if source is None:
        return sources.gz2_files(table)
    return tuple(f.at(str(source)) for f in sources.gz2_files(table))


def _local_folder(source, table: str) -> Path:
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise SpiralArmsError(
            f"--source {source}: no such folder (give a folder holding "
            f"{', '.join(f.filename for f in sources.gz2_files(table))}, or an http(s):// mirror)"
        )
    return folder


def recorded_vote_table(catalog) -> str | None:
    """The vote table named in the manifest beside a catalogue (``willett13``, ``hart16``).

    Parameters
    ----------
    catalog : str or path-like
        ``ROOT/catalog.parquet`` (or any file or folder whose folder may hold a
        ``manifest.json`` of ``spiralarms data gz2``).

    Returns
    -------
    str or None
        ``None`` when there is no readable GZ2 manifest there, or it names no table.
    """
    path = Path(catalog).expanduser()
    folder = path if path.is_dir() else path.parent
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("dataset") != "gz2":
        return None
    table = manifest.get("table")
    return table.get("name") if isinstance(table, dict) else None


def _obtain_remote(
    remote: sources.RemoteFile, root: Path, previous: dict | None, progress: bool, accept=(), **options
) -> tuple[dict, bool]:
    """The file at ``ROOT/<filename>``: reuse, verify a copy found there, or download.

    Returns the manifest entry and whether it was downloaded now.
    """
    dest = root / remote.filename
    if previous and previous.get("path") == remote.filename and unchanged(dest, previous):
        return previous, False
    if dest.is_file():
        # A copy put there by hand (or by a run whose manifest was lost): check, no network.
        found = file_checksums(dest, progress=progress)
        mismatch = verify_checksums(str(dest), found, remote.size, remote.md5, remote.sha256)
        if mismatch is not None and not accepted(found, accept):
            raise SpiralArmsError(
                f"{mismatch}: delete it and run again to download it, or accept it with --accept-checksum md5:{found['md5']}"
            )
        record, fetched = {"source": "found in ROOT", **found, "fetched": now()}, False
        if mismatch is not None:
            record["accepted"] = True
    else:
        record = download(
            remote.url, dest, size=remote.size, md5=remote.md5, sha256=remote.sha256, progress=progress,
            accept=accept, **options
        )
        record.pop("file")
        fetched = True
    return {"path": remote.filename, **record, **stat_record(dest)}, fetched


def _file_path(root: Path, record: dict) -> Path:
    path = Path(record["path"])
    return path if path.is_absolute() else root / path


def summary_of(root, manifest: dict, up_to_date: bool, downloaded=()) -> dict:
    """The JSON summary of a data folder, from its manifest.

    Parameters
    ----------
    root : str or path-like
    manifest : dict
    up_to_date : bool
        Whether this run found everything in place and did nothing.
    downloaded : iterable of str, optional
        Files downloaded by this run.

    Returns
    -------
    dict
        ``{"root", "dataset", "table", "catalog", "missing_list", "rows",
        "images_found", "missing", "images", "up_to_date", "downloaded", "files"}``.
    """
    root = Path(root)
    catalog = manifest.get("catalog", {})
    return {
        "root": str(root),
        "dataset": manifest.get("dataset"),
        "table": (manifest.get("table") or {}).get("name"),
        "catalog": str(root / CATALOG),
        "missing_list": str(root / MISSING),
        "rows": int(catalog.get("rows", 0)),
        "images_found": int(catalog.get("images_found", 0)),
        "missing": int(catalog.get("missing", 0)),
        "images": int(manifest.get("images", {}).get("n_files", 0)),
        "up_to_date": bool(up_to_date),
        "downloaded": list(downloaded),
        "files": {
            name: {k: rec.get(k) for k in ("source", "size", "md5", "sha256", "fetched")}
            for name, rec in manifest.get("files", {}).items()
        },
    }


def fetch_gz2(
    root,
    source=None,
    *,
    table: str = sources.DEFAULT_GZ2_TABLE,
    progress: bool = True,
    remove_archive: bool = False,
    accept=(),
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60.0,
) -> dict:
    """Fetch the GZ2 table, mapping and images into ``root`` and write its catalogue.

    Parameters
    ----------
    root : str or path-like
        Data folder (created). Everything is written here.
    source : str or path-like, optional
        Where the three files come from: ``None`` for the public addresses of
        :mod:`spiralarms.acquire.sources`; an ``http(s)://`` or ``file://`` base
        address of a mirror serving ``BASE/<filename>``; or a local folder holding
        the three files, which are then used in place (checksummed and recorded with
        their path, not copied: the 3 GB archive is not duplicated).
    table : {"willett13", "hart16"}, default "willett13"
        The vote table: the paper's Willett et al. (2013) ``zoo2MainSpecz.csv.gz``,
        or the Hart et al. (2016) ``gz2_hart16.csv.gz``. Recorded in the manifest;
        a folder built from the other table gets its catalogue rebuilt.
    progress : bool, default True
        Show progress bars (bytes for downloads and checksums, files for extraction).
    remove_archive : bool, default False
        Delete a downloaded ``images_gz2.zip`` once its images are extracted (saves
        its size on disk; the manifest keeps its checksum). Local sources are never
        deleted.
    accept : iterable of str
        Checksums to accept besides the published ones, ``"md5:HEX"`` or
        ``"sha256:HEX"`` (``--accept-checksum``): for a file whose published checksum
        is stale. A download that matches neither is kept as ``<name>.unverified``
        and the message says what was expected and found; the manifest records an
        accepted file with ``"accepted": true``.
    retries, backoff, timeout
        Passed to :func:`spiralarms.acquire.download.download`.

    Returns
    -------
    dict
        See :func:`summary_of`.

    Raises
    ------
    SpiralArmsError
        If a source file is missing, a download fails or a checksum differs (the
        message names the file), or the table cannot be read.
    """
    table = check_table(table)
    accept = [str(a).strip() for a in accept or ()]
    for item in accept:
        algorithm, _, value = item.partition(":")
        if algorithm not in ("md5", "sha256") or not value or any(c not in "0123456789abcdefABCDEF" for c in value):
            raise SpiralArmsError(f"--accept-checksum {item!r}: give md5:HEX or sha256:HEX")
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(root, "gz2")
    same_table = (manifest.get("table") or {}).get("name") == table
    if same_table and outputs_up_to_date(root, manifest):
        return summary_of(root, manifest, up_to_date=True)

    files = manifest["files"]
    local = source is not None and not _is_url(str(source))
    folder = _local_folder(source, table) if local else None
    images = manifest.get("images", {})
    downloaded = []
    for remote in _remote_files(None if local else source, table):
        name = remote.filename
        if name == sources.GZ2_IMAGES.filename and images.get("complete") and (root / IMAGES_DIR).is_dir():
            continue  # extracted already: the archive is not needed again
        if local:
            path = folder / name
            if not path.is_file():
                raise SpiralArmsError(f"--source {folder}: no file {name} there")
            files[name] = local_file_record(
                path, expected=remote, previous=files.get(name), progress=progress, accept=accept
            )
        else:
            files[name], fetched = _obtain_remote(
                remote, root, files.get(name), progress, accept=accept, retries=retries, backoff=backoff, timeout=timeout
            )
            if fetched:
                downloaded.append(name)
        write_manifest(root, manifest)

    image_dir = root / IMAGES_DIR
    if not (images.get("complete") and image_dir.is_dir()):
        archive = _file_path(root, files[sources.GZ2_IMAGES.filename])
        counts = extract_images(archive, image_dir, progress=progress)
        manifest["images"] = {
            "dir": IMAGES_DIR,
            "archive": sources.GZ2_IMAGES.filename,
            "archive_sha256": files[sources.GZ2_IMAGES.filename]["sha256"],
            "n_files": counts["n_files"],
            "complete": True,
            "extracted": now(),
        }
        write_manifest(root, manifest)
        if remove_archive and not local:
            (root / sources.GZ2_IMAGES.filename).unlink(missing_ok=True)
            (root / (sources.GZ2_IMAGES.filename + PART_SUFFIX)).unlink(missing_ok=True)

    vote_table = sources.GZ2_TABLES[table]
    catalog, missing = build_gz2_catalog(
        _file_path(root, files[vote_table.filename]),
        _file_path(root, files[sources.GZ2_MAPPING.filename]),
        image_dir,
        root,
    )
    manifest["catalog"] = write_catalog_outputs(root, catalog, missing)
    manifest["table"] = {
        "name": table,
        "file": vote_table.filename,
        "reference": sources.GZ2_TABLE_REFERENCES[table],
    }
    write_manifest(root, manifest)
    return summary_of(root, manifest, up_to_date=False, downloaded=downloaded)


def _read_mapping(path: Path) -> pd.DataFrame:
    try:
        mapping = pd.read_csv(path, dtype={"objid": str, "sample": str, "asset_id": str})
    except Exception as exc:  # pandas raises many error types for a bad file
        raise SpiralArmsError(f"mapping {path}: cannot read it as CSV: {exc}") from exc
    for column in ("objid", "asset_id"):
        if column not in mapping.columns:
            raise SpiralArmsError(f"mapping {path}: missing column {column!r}")
    mapping["asset_id"] = mapping["asset_id"].str.strip()
    return mapping


def build_gz2_catalog(table_path, mapping_path, image_dir, root) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Join the GZ2 vote table to its image files through the filename mapping.

    A galaxy gets the first mapping row (matched on ``dr7objid`` = ``objid``, and on
    ``sample`` where an id has several) whose image is in ``image_dir``; so an id
    listed with several assets of which only one was released still finds its image.

    Parameters
    ----------
    table_path : str or path-like
        ``zoo2MainSpecz.csv.gz``, ``gz2_hart16.csv.gz`` (or any GZ2-schema table).
    mapping_path : str or path-like
        ``gz2_filename_mapping.csv``.
    image_dir : str or path-like
        Folder of the extracted ``<asset_id>.jpg`` files.
    root : str or path-like
        Folder the catalogue is written to; paths inside it are stored relative to it.

    Returns
    -------
    table : pandas.DataFrame
        Every row of the vote table, in order, with a ``file`` column (missing where
        no image was found).
    missing : pandas.DataFrame
        ``id`` and ``reason`` of the galaxies without an image.

    Raises
    ------
    SpiralArmsError
        If the table or mapping cannot be read or lacks a needed column.
    """
    root = Path(root).resolve()
    image_dir = Path(image_dir).resolve()
    table = read_catalog(table_path, schema="gz2")
    mapping = _read_mapping(Path(mapping_path))
    available = {entry.name for entry in os.scandir(image_dir) if entry.is_file()} if image_dir.is_dir() else set()
    present = (mapping["asset_id"] + ".jpg").isin(available)

    anchor = root / CATALOG
    joined = resolve_image_paths(table, anchor, mapping=mapping[present], image_dir=image_dir)
    wanted = resolve_image_paths(table, anchor, mapping=mapping, image_dir=image_dir)
    found = joined["file"].notna().to_numpy()

    files = []
    for path in joined["file"]:
        if path is None or (isinstance(path, float) and pd.isna(path)):
            files.append(None)
            continue
        relative = os.path.relpath(path, root)
        files.append(path if relative.startswith("..") else Path(relative).as_posix())
    out = table.copy()
    out["file"] = pd.Series(files, index=out.index, dtype=object)

    reasons = [
        f"image {Path(w).name} not in {sources.GZ2_IMAGES.filename}"
        if isinstance(w, str)
        else f"no row in {sources.GZ2_MAPPING.filename}"
        for w in wanted["file"][~found]
    ]
    missing = pd.DataFrame({"id": table.loc[~found, sch.GZ2_ID].to_numpy(), "reason": reasons})
    return out, missing
