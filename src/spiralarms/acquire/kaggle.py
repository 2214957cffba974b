"""Import the Kaggle "Galaxy Zoo - The Galaxy Challenge" training files.

Kaggle serves these files only to signed-in users who accepted the competition rules,
so there is no address to download from: the user downloads them (from the page in
:data:`spiralarms.acquire.sources.KAGGLE_COMPETITION`, or with the ``kaggle`` command
line) and :func:`import_kaggle` takes the folder they are in. It accepts, in that
folder:

- the solutions table ``training_solutions_rev1.csv`` (or ``.csv.gz``, or zipped as
  Kaggle serves it: ``training_solutions_rev1.zip`` / ``.csv.zip``, whose CSV is
  extracted to ``ROOT``);
- the images, as the unpacked folder ``images_training_rev1/`` (used in place) or
  its zip ``images_training_rev1.zip`` (extracted once to ``ROOT/images/``).

It writes ``ROOT/catalog.parquet`` (the Kaggle schema, ``GalaxyID``, ``Class1.1`` ...,
plus ``file``), ``ROOT/missing.csv`` and ``ROOT/manifest.json``, as
:func:`spiralarms.acquire.gz2.fetch_gz2` does; a rerun with everything in place does
nothing.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pandas as pd

from spiralarms.acquire import sources
from spiralarms.acquire.archive import extract_images
from spiralarms.data.images import IMAGE_SUFFIXES
from spiralarms.acquire.gz2 import summary_of
from spiralarms.acquire.manifest import (
    IMAGES_DIR,
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
from spiralarms.catalog.readers import read_catalog
from spiralarms.errors import SpiralArmsError
from spiralarms.io.atomic import atomic_path

__all__ = ["import_kaggle", "build_kaggle_catalog", "NO_SOURCE_MESSAGE"]

#: Said when ``--source`` is missing: there is nothing to download from.
NO_SOURCE_MESSAGE = (
    "the Kaggle Galaxy Challenge files have no public download address: sign in at "
    f"{sources.KAGGLE_COMPETITION}, accept the competition rules, download "
    "training_solutions_rev1.zip and images_training_rev1.zip (or run 'kaggle competitions "
    "download -c galaxy-zoo-the-galaxy-challenge' and unzip it), then pass their folder with --source DIR"
)

_SOLUTIONS_CSV = "training_solutions_rev1.csv"


def _find(folder: Path, names: tuple[str, ...], what: str) -> Path:
    for name in names:
        if (folder / name).exists():
            return folder / name
    raise SpiralArmsError(f"--source {folder}: no {what} there (looked for {', '.join(names)})")


def _extract_csv(archive: Path, dest: Path) -> Path:
    """Extract the single CSV member of a zip to ``dest`` (through a temporary name)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [i for i in zf.infolist() if i.filename.lower().endswith(".csv") and "__MACOSX" not in i.filename]
            if len(members) != 1:
                raise SpiralArmsError(f"{archive}: expected one CSV member, found {len(members)}")
            with atomic_path(dest) as tmp, zf.open(members[0]) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
    except zipfile.BadZipFile as exc:
        raise SpiralArmsError(f"{archive}: not a readable zip archive ({exc})") from exc
    return dest


def import_kaggle(root, source, *, progress: bool = True) -> dict:
    """Bring the Kaggle Galaxy Challenge training set into ``root`` and write its catalogue.

    Parameters
    ----------
    root : str or path-like
        Data folder (created).
    source : str or path-like
        Folder holding the files the user downloaded from Kaggle (see the module
        notes for the accepted names).
    progress : bool, default True
        Show progress bars.

    Returns
    -------
    dict
        See :func:`spiralarms.acquire.gz2.summary_of`.

    Raises
    ------
    SpiralArmsError
        If ``source`` is not given (the message says how to get the files), is not a
        folder, or lacks the solutions table or the images; if a file cannot be read.
    """
    if source is None:
        raise SpiralArmsError(NO_SOURCE_MESSAGE)
    root = Path(root).expanduser()
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise SpiralArmsError(f"--source {source}: no such folder; {NO_SOURCE_MESSAGE}")
    root.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(root, "kaggle")
    if outputs_up_to_date(root, manifest):
        return summary_of(root, manifest, up_to_date=True)
    files = manifest["files"]

    solutions = _find(folder, sources.KAGGLE_SOLUTIONS, "Kaggle solutions table")
    files[solutions.name] = local_file_record(solutions, previous=files.get(solutions.name), progress=progress)
    if solutions.name.endswith(".zip"):
        table_path = root / _SOLUTIONS_CSV
        extracted = manifest.get("solutions_csv")
        if not (extracted and extracted.get("from_sha256") == files[solutions.name]["sha256"]
                and unchanged(table_path, extracted)):
            _extract_csv(solutions, table_path)
            manifest["solutions_csv"] = {
                "from_sha256": files[solutions.name]["sha256"],
                **stat_record(table_path),
            }
    else:
        table_path = solutions
    write_manifest(root, manifest)

    images = _find(folder, sources.KAGGLE_IMAGES, "Kaggle training images")
    if images.is_dir():
        n_files = sum(
            1 for e in os.scandir(images) if e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES)
        )
        manifest["images"] = {"dir": str(images.resolve()), "n_files": n_files, "complete": True, "in_place": True}
        image_dir = images.resolve()
    else:
        files[images.name] = local_file_record(images, previous=files.get(images.name), progress=progress)
        image_dir = root / IMAGES_DIR
        previous = manifest.get("images", {})
        if not (previous.get("complete") and previous.get("archive_sha256") == files[images.name]["sha256"]
                and image_dir.is_dir()):
            counts = extract_images(images, image_dir, progress=progress)
            manifest["images"] = {
                "dir": IMAGES_DIR,
                "archive": images.name,
                "archive_sha256": files[images.name]["sha256"],
                "n_files": counts["n_files"],
                "complete": True,
                "extracted": now(),
            }
    write_manifest(root, manifest)

    table, missing = build_kaggle_catalog(table_path, image_dir, root)
    manifest["catalog"] = write_catalog_outputs(root, table, missing)
    write_manifest(root, manifest)
    return summary_of(root, manifest, up_to_date=False)


def build_kaggle_catalog(table_path, image_dir, root) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give each galaxy of the Kaggle solutions table its image ``<GalaxyID>.jpg``.

    Parameters
    ----------
    table_path : str or path-like
        ``training_solutions_rev1.csv`` (or ``.csv.gz``).
    image_dir : str or path-like
        Folder of the images.
    root : str or path-like
        Folder the catalogue is written to; image paths inside it are stored relative
        to it, others as absolute paths.

    Returns
    -------
    table : pandas.DataFrame
        Every row of the table, in order, with a ``file`` column (missing where the
        image is not in ``image_dir``).
    missing : pandas.DataFrame
        ``id`` and ``reason`` of the galaxies without an image.

    Raises
    ------
    SpiralArmsError
        If the table cannot be read or lacks the Kaggle columns.
    """
    root = Path(root).resolve()
    image_dir = Path(image_dir).resolve()
    table = read_catalog(table_path, schema="kaggle")
    available = {entry.name for entry in os.scandir(image_dir) if entry.is_file()} if image_dir.is_dir() else set()
    relative = os.path.relpath(image_dir, root)
    prefix = Path(relative).as_posix() if not relative.startswith("..") else image_dir.as_posix()
    names = [f"{galaxy}.jpg" for galaxy in table[sch.KAGGLE_ID]]
    found = [name in available for name in names]
    out = table.copy()
    out["file"] = pd.Series([f"{prefix}/{n}" if ok else None for n, ok in zip(names, found, strict=True)],
                            index=out.index, dtype=object)
    lost = [not ok for ok in found]
    missing = pd.DataFrame(
        {
            "id": table.loc[lost, sch.KAGGLE_ID].to_numpy(),
            "reason": [f"no image {n} in {image_dir.name}" for n, ok in zip(names, found, strict=True) if not ok],
        }
    )
    return out, missing
