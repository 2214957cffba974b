"""What to predict on: a folder, a catalogue or a prepared store, listed once to disk.

A prediction run first streams its input into a *listing*, a Parquet file with one
row per input (``id``, ``file``, ``store_row``, ``error``), whose row groups are the
run's shards (the unit of work, of writing and of resumption). Listing takes one pass
over the input and holds one chunk in memory, however many rows there are; workers
then read their shard's rows back by row group, in O(1). The listing's digest is the
input fingerprint that a resumed run compares against (:mod:`.output`).

Inputs:

- a folder of cutouts (JPEG, PNG, FITS, ...): every visible entry gets a row, in
  name order (directory by directory with ``recursive``); entries that are not
  readable files (a sub-folder, a dangling link, a link loop, a FIFO) keep their row
  with the reason;
- a catalogue (CSV, CSV.gz, Parquet, FITS) with a path column, or ids plus an image
  folder or a GZ2 mapping table (:class:`~spiralarms.catalog.readers.ImagePathResolver`),
  read in chunks;
- a prepared store (``spiralarms prepare``): its decoded crops, without decoding;
- one cutout file (JPEG, PNG, or a FITS file with an image and no table): one row.
"""

from __future__ import annotations

import hashlib
import os
import stat
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from spiralarms.catalog import schema as sch
from spiralarms.catalog.readers import ImagePathResolver, id_column_hint, iter_table_chunks, table_columns
from spiralarms.data.images import IMAGE_SUFFIXES
from spiralarms.errors import SpiralArmsError
from spiralarms.io.atomic import atomic_path
from spiralarms.io.tables import table_format

__all__ = ["Listing", "build_listing", "LISTING_SCHEMA", "NO_FILE", "INPUT_KINDS"]

#: Reason recorded for a catalogue row whose image path could not be resolved.
NO_FILE = "no image file for this row"

#: What an input can be.
INPUT_KINDS = ("folder", "catalog", "store", "table", "file")

#: Columns of a listing.
LISTING_SCHEMA = pa.schema(
    [("id", pa.string()), ("file", pa.string()), ("store_row", pa.int64()), ("error", pa.string())]
)

#: Id columns tried in a catalogue given to predict, in order.
PREDICTION_ID_COLUMNS: tuple[str, ...] = sch.PREDICTION_ID_COLUMNS


@dataclass(frozen=True)
class Listing:
    """A listed input.

    Attributes
    ----------
    path : Path
        The listing's Parquet file.
    kind : {"folder", "catalog", "store"}
    source : str
        The input as given (absolute).
    n_rows : int
    shard_rows : int
        Rows per shard (row group); the last shard may be shorter.
    fingerprint : str
        Digest of every row's id, file and kind: equal inputs, equal digests.
    store : str or None
        The store's ``images.npy`` when ``kind`` is ``"store"``.
    """

    path: Path
    kind: str
    source: str
    n_rows: int
    shard_rows: int
    fingerprint: str
    store: str | None = None

    @property
    def n_shards(self) -> int:
        """Number of shards."""
        return -(-self.n_rows // self.shard_rows)

    def shard_bounds(self, k: int) -> tuple[int, int]:
        """First and one-past-last input row of shard ``k``."""
        return k * self.shard_rows, min((k + 1) * self.shard_rows, self.n_rows)


def _stem(name: str) -> str:
    """A cutout's id from its file name: the name without its ending (both parts of ``.fits.gz``)."""
    if name.lower().endswith((".fits.gz", ".fits.fz")):
        return name[: -len(".fits.gz")]
    return Path(name).stem


def _is_single_cutout(source: Path) -> bool:
    """Whether a file given as input is one cutout: a JPEG or PNG, or a FITS file with no table.

    A FITS file that cannot be opened counts as a catalogue, whose reader then says why.
    """
    name = source.name.lower()
    if name.endswith(IMAGE_SUFFIXES):  # FITS is told by its content below
        return True
    if table_format(source) != "fits" and not name.endswith(".fits.fz"):
        return False
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a damaged file's warnings: its reader reports the error
            with fits.open(source, memmap=True) as hdus:
                return not any(isinstance(h, (fits.BinTableHDU, fits.TableHDU)) for h in hdus)
    except Exception:  # astropy raises OSError, ValueError, ... for a damaged file
        return False


def _entry_row(entry: os.DirEntry) -> tuple[str, str, str]:
    """``(id, absolute path, error)`` for a folder entry that is not descended into."""
    path = os.path.abspath(entry.path)
    stem = _stem(entry.name)
    try:
        mode = os.stat(entry.path).st_mode  # follows links
    except FileNotFoundError:
        return stem, path, "broken symbolic link (its target does not exist)"
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            return stem, path, "symbolic link loop"
        return stem, path, f"cannot stat: {exc.strerror or exc}"
    if stat.S_ISDIR(mode):
        return stem, path, "a folder, not an image file"
    if not stat.S_ISREG(mode):
        return stem, path, "not a regular file (device, FIFO or socket)"
    return stem, path, ""


def _walk_folder(folder: Path, recursive: bool, exclude: frozenset[str] = frozenset()) -> Iterator[tuple[str, str | None, str]]:
    """Rows of a folder: visible entries in name order, sub-folders in place when recursive.

    Symbolic links to folders are followed; a folder met twice (a link loop) keeps one
    row with the reason instead of being walked again. Entries whose path, with every
    link resolved, is in ``exclude`` (the run's own output inside the folder, resolved
    alike) are not inputs, however the folder and the output were named.
    """
    seen: set[tuple[int, int]] = set()

    def walk(directory: str) -> Iterator[tuple[str, str | None, str]]:
        info = os.stat(directory)
        seen.add((info.st_dev, info.st_ino))
        try:
            with os.scandir(directory) as it:
                entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        except OSError as exc:
            yield Path(directory).name, os.path.abspath(directory), f"cannot list folder: {exc.strerror or exc}"
            return
        real = os.path.realpath(directory) if exclude else ""  # once per folder, not per file
        for entry in entries:
            if exclude and os.path.join(real, entry.name) in exclude:
                continue
            if recursive:
                try:
                    is_dir = entry.is_dir(follow_symlinks=True)
                except OSError:
                    is_dir = False
                if is_dir:
                    try:
                        target = os.stat(entry.path)
                    except OSError:
                        yield _entry_row(entry)
                        continue
                    if (target.st_dev, target.st_ino) in seen:
                        yield entry.name, os.path.abspath(entry.path), "symbolic link loop (folder already listed)"
                        continue
                    yield from walk(entry.path)
                    continue
            yield _entry_row(entry)

    yield from walk(str(folder))


def _catalog_rows(
    path: Path, image_dir, mapping, chunk_rows: int, id_column: str | None = None
) -> Iterator[list[tuple[str, str | None, str]]]:
    """Chunks of ``(id, file, error)`` rows of a catalogue."""
    columns = table_columns(path)
    if id_column is not None and id_column not in columns:
        raise SpiralArmsError(f"{path}: no column {id_column!r} for --id-column (columns: {', '.join(map(str, columns[:12]))})")
    ids = (id_column,) if id_column is not None else PREDICTION_ID_COLUMNS
    resolver = ImagePathResolver(path, columns, mapping=mapping, image_dir=image_dir, id_columns=ids)
    if resolver.id_column is None:
        warnings.warn(
            f"{path}: no id column ({', '.join(PREDICTION_ID_COLUMNS)}): the rows are numbered from 0 in 'id'"
            + (id_column_hint(columns) or "; name one with --id-column"),
            stacklevel=2,
        )
    wanted = [c for c in (resolver.id_column, resolver.file_column, "sample") if c is not None and c in columns]
    for chunk in iter_table_chunks(path, columns=list(dict.fromkeys(wanted)), chunk_rows=chunk_rows):
        files = resolver(chunk)
        if resolver.id_column is not None:
            ids = ["" if v is None or v != v else str(v).strip() for v in chunk[resolver.id_column].tolist()]
        else:
            ids = [str(i) for i in chunk.index]
        yield [(i, f, "" if f is not None else NO_FILE) for i, f in zip(ids, files)]


class _ListingWriter:
    """Writes listing rows shard by shard and hashes them as they pass."""

    def __init__(self, path: Path, kind: str, shard_rows: int):
        self.writer = pq.ParquetWriter(path, LISTING_SCHEMA, compression="zstd")
        self.shard_rows = shard_rows
        self.digest = hashlib.sha256(f"{kind}\n".encode())
        self.buffer: list[tuple] = []
        self.n = 0

    def add(self, rows) -> None:
        self.buffer.extend(rows)
        while len(self.buffer) >= self.shard_rows:
            self._flush(self.buffer[: self.shard_rows])
            self.buffer = self.buffer[self.shard_rows :]

    def _flush(self, rows: list[tuple]) -> None:
        ids, files, store_rows, errors = (list(c) for c in zip(*rows))
        self.digest.update("\n".join(f"{i}\t{f}\t{s}" for i, f, s in zip(ids, files, store_rows)).encode("utf-8", "surrogateescape"))
        self.digest.update(b"\n")
        table = pa.table({"id": ids, "file": files, "store_row": store_rows, "error": errors}, schema=LISTING_SCHEMA)
        self.writer.write_table(table, row_group_size=self.shard_rows)
        self.n += len(rows)

    def close(self) -> None:
        if self.buffer:
            self._flush(self.buffer)
            self.buffer = []
        self.writer.close()


def build_listing(
    input_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    shard_rows: int = 4096,
    recursive: bool = False,
    image_dir: str | os.PathLike | None = None,
    mapping: str | os.PathLike | None = None,
    id_column: str | None = None,
    progress: bool = False,
    exclude: Iterable[str | os.PathLike] = (),
) -> Listing:
    """Stream an input into a listing file (written atomically).

    Parameters
    ----------
    input_path : path or pandas.DataFrame
        A folder of cutouts, a catalogue file, a prepared store folder, one cutout
        file, or a table in memory with ``file`` and ``id`` (or ``id_column``) columns.
    out : path
        The listing file to write (Parquet).
    shard_rows : int, default 4096
        Rows per shard.
    recursive : bool, default False
        Descend into sub-folders of a folder input.
    image_dir, mapping : optional
        Where a catalogue's images are (see
        :class:`~spiralarms.catalog.readers.ImagePathResolver`).
    id_column : str, optional
        The column of a catalogue or in-memory table to take the ids from
        (default: a catalogue's first of ``id``, ``dr7objid``, ``objid``,
        ``GalaxyID``, its rows numbered where it has none; a table's ``id``).
    progress : bool, default False
        Show a counter while listing.
    exclude : iterable of path
        Paths that a folder's listing leaves out: the run's own output files, when
        they are written into the folder of cutouts (else a rerun would list them
        and see other inputs).

    Returns
    -------
    Listing

    Raises
    ------
    SpiralArmsError
        If the input is missing, unreadable, or has no rows, or ``id_column`` is
        given for an input that is not a catalogue or is not among its columns.
    """
    import pandas as pd

    from spiralarms.data.store import PreparedStore

    if isinstance(input_path, pd.DataFrame):
        return _list_table(input_path, Path(out), shard_rows, id_column or "id")
    source = Path(input_path).expanduser()
    if not source.exists():
        raise SpiralArmsError(f"{source}: no such file or folder")
    if shard_rows < 1:
        raise SpiralArmsError(f"shard size must be positive, got {shard_rows}")
    store_images = None
    if source.is_dir() and (source / "store.json").is_file():
        store = PreparedStore(source)  # raises for an unfinished store, naming it
        kind, store_images = "store", str(store.path / "images.npy")
    elif source.is_dir():
        kind = "folder"
    elif _is_single_cutout(source):
        kind = "file"
    else:
        kind = "catalog"
    if id_column is not None and kind != "catalog":
        raise SpiralArmsError(f"{source}: --id-column names a catalogue's column; this input is a {kind}")
    out = Path(out)
    bar = None
    if progress:
        from spiralarms.runtime import progress_bar

        bar = progress_bar(desc="listing inputs", unit=" rows", leave=False, delay=2.0)
    with atomic_path(out, fsync=False) as tmp:
        writer = _ListingWriter(tmp, kind, shard_rows)
        try:
            if kind == "folder":
                rows = []
                skip = frozenset(os.path.realpath(Path(p).expanduser()) for p in exclude)
                for i, f, e in _walk_folder(source, recursive, skip):
                    rows.append((i, f, None, e))
                    if len(rows) >= shard_rows:
                        writer.add(rows)
                        bar is not None and bar.update(len(rows))
                        rows = []
                writer.add(rows)
            elif kind == "file":
                writer.add([(_stem(source.name), os.path.abspath(source), None, "")])
            elif kind == "catalog":
                for chunk in _catalog_rows(source, image_dir, mapping, max(shard_rows, 65536), id_column):
                    writer.add([(i, f, None, e) for i, f, e in chunk])
                    bar is not None and bar.update(len(chunk))
            else:
                table = store.table
                ok = table["ok"].to_numpy(bool)
                errors = ["" if good else str(err) for good, err in zip(ok, table["error"].tolist())]
                writer.add(
                    list(zip(table["id"].astype(str).tolist(), table["file"].astype(str).tolist(),
                             table["row"].astype("int64").tolist(), errors))
                )
        finally:
            writer.close()
            if bar is not None:
                bar.close()
        if writer.n == 0:
            what = {"folder": "no visible files", "catalog": "no rows", "store": "no rows"}[kind]
            raise SpiralArmsError(f"{source}: {what} to predict on")
    return Listing(
        path=out,
        kind=kind,
        source=str(source.resolve()),
        n_rows=writer.n,
        shard_rows=int(shard_rows),
        fingerprint=writer.digest.hexdigest()[:16],
        store=store_images,
    )


def _list_table(table, out: Path, shard_rows: int, id_column: str = "id") -> Listing:
    """A listing of an in-memory table with ``file`` and ``id_column`` columns."""
    for column in (id_column, "file"):
        if column not in table.columns:
            raise SpiralArmsError(f"prediction table: no column {column!r}")
    if len(table) == 0:
        raise SpiralArmsError("prediction table: no rows to predict on")
    files = [None if f is None or f != f or str(f).strip() == "" else os.path.abspath(str(f)) for f in table["file"]]
    with atomic_path(out, fsync=False) as tmp:
        writer = _ListingWriter(tmp, "table", shard_rows)
        writer.add([(str(i), f, None, "" if f is not None else NO_FILE) for i, f in zip(table[id_column], files)])
        writer.close()
    return Listing(path=out, kind="table", source="<table>", n_rows=writer.n, shard_rows=int(shard_rows),
                   fingerprint=writer.digest.hexdigest()[:16])
