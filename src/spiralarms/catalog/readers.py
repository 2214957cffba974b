"""Read and write galaxy catalogues (GZ2 and Kaggle Galaxy Challenge schemas).

Catalogues are read from CSV (optionally gzip-compressed), Parquet or FITS into a
:class:`pandas.DataFrame` with one row per galaxy. Reading validates what the
clean-sample cuts need (the id column and the vote columns of
:func:`spiralarms.catalog.schema.gz2_required_columns` or
:func:`~spiralarms.catalog.schema.kaggle_required_columns`) and keeps every other
column. Galaxy ids stay exact: SDSS object ids such as ``8647474690312307154`` do not
fit in a double, so an id column is never converted to floating point.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from spiralarms.catalog import schema as sch
from spiralarms.errors import SpiralArmsError, first_line
from spiralarms.io import tables
# write_table and WRITE_SUFFIXES are re-exported: callers import them from here too.
from spiralarms.io.tables import TABLE_SUFFIXES, WRITE_SUFFIXES, table_format, write_table  # noqa: F401
from spiralarms.io.tables import fits_warnings_if_read

#: Catalogue formats, by file-name ending: the package's one suffix table.
CATALOG_SUFFIXES = TABLE_SUFFIXES

#: Columns that may already give each galaxy's image path, in order of preference.
FILE_COLUMNS: tuple[str, ...] = ("file", "path", "image_path", "filename")

#: Columns holding class names ("1", "2", "5+", ...): read from CSV as text, not numbers.
TEXT_COLUMNS: tuple[str, ...] = ("label", "label_original", "true_class")

SCHEMAS: tuple[str, ...] = ("gz2", "kaggle")

_INTEGER_TEXT = re.compile(r"^\s*[+-]?\d+\s*$")


def id_columns(schema: str) -> tuple[str, ...]:
    """Id columns accepted for a schema, in order of preference.

    Parameters
    ----------
    schema : {"gz2", "kaggle"}
        Catalogue schema.

    Returns
    -------
    tuple of str
        ``("dr7objid", "objid")`` for GZ2, ``("GalaxyID",)`` for Kaggle.
    """
    if schema == "gz2":
        return sch.GZ2_ID_COLUMNS
    if schema == "kaggle":
        return (sch.KAGGLE_ID,)
    raise SpiralArmsError(f"schema {schema!r}: choose gz2, kaggle or auto")


def required_columns(schema: str) -> list[str]:
    """Vote columns that the clean-sample cuts read for a schema (id excluded).

    Parameters
    ----------
    schema : {"gz2", "kaggle"}
        Catalogue schema.

    Returns
    -------
    list of str
    """
    if schema == "gz2":
        return sch.gz2_required_columns()
    if schema == "kaggle":
        return sch.kaggle_required_columns()
    raise SpiralArmsError(f"schema {schema!r}: choose gz2, kaggle or auto")


def require_vote_columns(columns, schema: str, source: str) -> list[str]:
    """The vote columns the cuts read for a schema, checked against a table's columns.

    Parameters
    ----------
    columns : iterable of str
        The table's columns.
    schema : {"gz2", "kaggle"}
        Catalogue schema.
    source : str
        What the table is, for the message (``"catalog PATH"``).

    Returns
    -------
    list of str
        :func:`required_columns` of ``schema``.

    Raises
    ------
    SpiralArmsError
        Naming the first absent column and how many are absent.
    """
    needed = required_columns(schema)
    present = set(columns)
    absent = [c for c in needed if c not in present]
    if absent:
        raise SpiralArmsError(
            f"{source}: missing column {absent[0]!r} "
            f"({len(absent)} of the {len(needed)} columns the {schema} cuts read are missing)"
        )
    return needed


def detect_schema(columns, source: str = "catalog") -> str:
    """Tell the catalogue schema from its column names.

    Parameters
    ----------
    columns : iterable of str
        Column names.
    source : str, optional
        Name used in the error message (the file).

    Returns
    -------
    str
        ``"gz2"`` if a GZ2 id column (``dr7objid`` or ``objid``) is present,
        ``"kaggle"`` if ``GalaxyID`` is. When both are present, the schema whose
        vote columns are all present wins, GZ2 if both or neither are.

    Raises
    ------
    SpiralArmsError
        If no id column of either schema is present.
    """
    columns = set(columns)
    found = [s for s in SCHEMAS if columns.intersection(id_columns(s))]
    if not found:
        raise SpiralArmsError(
            f"{source}: cannot tell the schema: no id column "
            f"(dr7objid or objid for gz2, GalaxyID for kaggle)"
        )
    if len(found) == 1:
        return found[0]
    complete = [s for s in found if columns.issuperset(required_columns(s))]
    return complete[0] if len(complete) == 1 else "gz2"


def _row_label(position: int, fmt: str) -> str:
    # CSV data rows start on line 2, after the header.
    if fmt == "csv":
        return f"row {position + 1} (line {position + 2})"
    return f"row {position + 1}"


def _normalise_ids(values: pd.Series, source: str, column: str, fmt: str) -> pd.Series:
    """Ids as exact int64, or as text when they are not all integers; never float."""
    missing = values.isna().to_numpy()
    if missing.any():
        where = _row_label(int(np.flatnonzero(missing)[0]), fmt)
        raise SpiralArmsError(f"catalog {source}: {where} has no id in column {column!r}")
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise SpiralArmsError(f"catalog {source}: id column {column!r} holds booleans, not ids")
    if pd.api.types.is_integer_dtype(dtype):
        if pd.api.types.is_unsigned_integer_dtype(dtype) and values.max() > np.iinfo(np.int64).max:
            return values.astype(str)
        return values.astype(np.int64)
    if pd.api.types.is_float_dtype(dtype):
        array = values.to_numpy(dtype=np.float64)
        # Beyond 2**53 a double has already rounded the id away.
        if np.all(np.mod(array, 1) == 0) and np.all(np.abs(array) < 2**53):
            return pd.Series(array.astype(np.int64), index=values.index, name=values.name)
        raise SpiralArmsError(
            f"catalog {source}: id column {column!r} is stored as floating point, which "
            f"cannot hold ids such as SDSS objids exactly; store it as integers or text"
        )
    text = values.astype(str).str.strip()
    if text.str.match(_INTEGER_TEXT).all():
        try:
            return text.astype(np.int64)
        except (OverflowError, ValueError):
            return text
    return text


def _as_numeric(values: pd.Series, source: str, column: str, fmt: str) -> pd.Series:
    """A vote column as a NumPy numeric dtype, NaN for empty cells."""
    dtype = values.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        if isinstance(dtype, np.dtype):
            return values
        # Nullable extension types (masked FITS columns, Arrow): float with NaN.
        return values.astype(np.float64)
    numeric = pd.to_numeric(values, errors="coerce")
    bad = (numeric.isna() & values.notna()).to_numpy()
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise SpiralArmsError(
            f"catalog {source}: column {column!r} has a non-numeric value "
            f"{values.iloc[position]!r} in {_row_label(position, fmt)}"
        )
    return numeric.astype(np.float64) if not isinstance(numeric.dtype, np.dtype) else numeric


def read_table(path) -> pd.DataFrame:
    """Read any table with :func:`spiralarms.io.tables.read_table`, catalogue ids as text.

    For inputs that are not vote catalogues, such as prediction lists: id and
    class-name columns of a CSV stay exact text (see :func:`read_catalog`); errors
    are those of :func:`spiralarms.io.tables.read_table`.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    pandas.DataFrame
    """
    return tables.read_table(path, text_columns=(*sch.CATALOG_ID_COLUMNS, *TEXT_COLUMNS))


def _checked_table_path(path) -> tuple[Path, str]:
    """The path and format of a table to read, or a one-line error."""
    return tables.checked_table_path(path, "catalog")


def table_columns(path) -> list[str]:
    """A table's column names, read from its header only.

    Raises
    ------
    SpiralArmsError
        If the file cannot be read; a CSV whose one column holds ``;`` or tabs is
        named as such (spiralarms reads comma-separated files).
    """
    path, fmt = _checked_table_path(path)
    try:
        if fmt == "csv":
            columns = [str(c) for c in pd.read_csv(path, nrows=0).columns]
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            columns = list(pq.ParquetFile(path).schema_arrow.names)
        else:
            from astropy.io import fits

            with fits_warnings_if_read(), fits.open(path, memmap=True) as hdus:
                table = next((h for h in hdus if isinstance(h, (fits.BinTableHDU, fits.TableHDU))), None)
                if table is None:
                    raise SpiralArmsError(f"catalog {path}: no table extension in this FITS file")
                columns = list(table.columns.names)
    except SpiralArmsError:
        raise
    except Exception as exc:  # pandas, pyarrow and astropy each raise their own error types
        raise SpiralArmsError(f"catalog {path}: cannot read it as {fmt}: {first_line(exc)}") from exc
    if fmt == "csv" and len(columns) == 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if sep in columns[0]:
                raise SpiralArmsError(
                    f"catalog {path}: one column {columns[0][:60]!r}: the file seems separated by {name}; "
                    "spiralarms reads comma-separated CSV"
                )
    return columns


def iter_table_chunks(path, columns=None, chunk_rows: int = 65536):
    """Read a table in chunks of rows, so that memory holds one chunk at a time.

    CSV and CSV.gz are parsed in chunks by pandas, Parquet is scanned by row batches
    with pyarrow, and FITS tables are memory-mapped (astropy) and sliced. Id and
    class-name columns are read as text (as :func:`read_table` does for CSV).

    Parameters
    ----------
    path : str or path-like
    columns : sequence of str, optional
        Columns to read (all by default).
    chunk_rows : int, default 65536

    Yields
    ------
    pandas.DataFrame
        Consecutive chunks; the index counts rows from 0 over the whole table.

    Raises
    ------
    SpiralArmsError
        If the file cannot be read (naming it, and the row where parsing failed).
    """
    path, fmt = _checked_table_path(path)
    names = table_columns(path)
    wanted = list(columns) if columns is not None else names
    missing = [c for c in wanted if c not in names]
    if missing:
        raise SpiralArmsError(f"catalog {path}: no column {missing[0]!r}")
    text = {c: str for c in wanted if c in (*sch.CATALOG_ID_COLUMNS, "id", *TEXT_COLUMNS, *FILE_COLUMNS)}
    start = 0
    try:
        if fmt == "csv":
            reader = pd.read_csv(path, usecols=wanted, dtype=text, chunksize=chunk_rows)
            for chunk in reader:
                chunk.index = pd.RangeIndex(start, start + len(chunk))
                start += len(chunk)
                yield chunk[wanted]
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=wanted):
                chunk = batch.to_pandas()
                chunk.index = pd.RangeIndex(start, start + len(chunk))
                start += len(chunk)
                yield chunk
        else:
            from astropy.io import fits

            with fits.open(path, memmap=True) as hdus:
                data = next(h for h in hdus if isinstance(h, (fits.BinTableHDU, fits.TableHDU))).data
                n = 0 if data is None else len(data)
                for lo in range(0, n, chunk_rows):
                    part = data[lo : lo + chunk_rows]
                    chunk = pd.DataFrame(
                        {c: [v.strip() if isinstance(v, str) else v for v in part[c].tolist()] for c in wanted},
                        index=pd.RangeIndex(lo, lo + len(part)),
                    )
                    yield chunk
    except SpiralArmsError:
        raise
    except Exception as exc:  # pandas, pyarrow and astropy each raise their own error types
        raise SpiralArmsError(f"catalog {path}: cannot read it as {fmt} after row {start}: {first_line(exc)}") from exc


def read_catalog(path, schema: str = "auto", return_schema: bool = False):
    """Read a GZ2 or Kaggle Galaxy Challenge catalogue and validate its columns.

    Parameters
    ----------
    path : str or path-like
        The catalogue: ``.csv``, ``.csv.gz`` (any ``.gz`` is read as compressed CSV),
        ``.parquet``/``.pq``, or ``.fits``/``.fit``/``.fits.gz``.
    schema : {"auto", "gz2", "kaggle"}, default "auto"
        Catalogue schema; ``"auto"`` tells it from the id column (see
        :func:`detect_schema`).
    return_schema : bool, default False
        Also return the resolved schema name.

    Returns
    -------
    table : pandas.DataFrame
        Every column of the file, one row per galaxy, index ``0..n-1``. The id column
        is int64 (or text when the ids are not all integers). A GZ2 table whose id
        column is ``objid`` (Willett et al. 2013) gets it renamed to ``dr7objid``.
        The vote columns the cuts read are numeric; empty cells are NaN. Class-name
        columns (``label``, ``label_original``, ``true_class``) are text.
    schema : str
        ``"gz2"`` or ``"kaggle"``, only when ``return_schema`` is true.

    Raises
    ------
    SpiralArmsError
        If the file is missing, has an unknown suffix or cannot be read; if a column
        the cuts read is missing or holds a non-numeric value (the message names the
        column and row); if an id is missing or repeated.
    """
    if schema not in ("auto", *SCHEMAS):
        raise SpiralArmsError(f"schema {schema!r}: choose gz2, kaggle or auto")
    path = Path(path)
    table = read_table(path)
    fmt = table_format(path, CATALOG_SUFFIXES)
    resolved = detect_schema(table.columns, f"catalog {path}") if schema == "auto" else schema

    present = [c for c in id_columns(resolved) if c in table.columns]
    if not present:
        raise SpiralArmsError(
            f"catalog {path}: missing id column {' or '.join(map(repr, id_columns(resolved)))} "
            f"for the {resolved} schema"
        )
    id_column = present[0]
    needed = require_vote_columns(table.columns, resolved, f"catalog {path}")

    table = table.reset_index(drop=True)
    table[id_column] = _normalise_ids(table[id_column], str(path), id_column, fmt)
    for column in needed:
        table[column] = _as_numeric(table[column], str(path), column, fmt)

    repeated = table[id_column].duplicated(keep=False).to_numpy()
    if repeated.any():
        rows = np.flatnonzero(repeated)
        first = table[id_column].iloc[rows[0]]
        same = rows[(table[id_column].iloc[rows] == first).to_numpy()]
        raise SpiralArmsError(
            f"catalog {path}: duplicate id {first} in column {id_column!r} "
            f"(data rows {int(same[0]) + 1} and {int(same[1]) + 1})"
        )
    if resolved == "gz2" and id_column != sch.GZ2_ID:
        table = table.rename(columns={id_column: sch.GZ2_ID})
    return (table, resolved) if return_schema else table


def _read_mapping(mapping) -> pd.DataFrame:
    if isinstance(mapping, pd.DataFrame):
        frame, source = mapping.copy(), "mapping table"
    else:
        source = Path(mapping)
        fmt = table_format(source, CATALOG_SUFFIXES)
        if not source.is_file():
            raise SpiralArmsError(f"mapping {source}: no such file")
        if fmt not in ("csv", "parquet"):
            raise SpiralArmsError(f"mapping {source}: use a .csv, .csv.gz or .parquet file")
        try:
            frame = (
                pd.read_csv(source, dtype={"objid": str, "asset_id": str})
                if fmt == "csv"
                else pd.read_parquet(source)
            )
        except Exception as exc:  # pandas and pyarrow raise many error types
            raise SpiralArmsError(f"mapping {source}: cannot read it: {first_line(exc)}") from exc
    for column in ("objid", "asset_id"):
        if column not in frame.columns:
            raise SpiralArmsError(f"mapping {source}: missing column {column!r}")
    frame = frame.dropna(subset=["objid", "asset_id"])
    frame["objid"] = _normalise_ids(frame["objid"], str(source), "objid", "csv")
    frame["asset_id"] = _normalise_ids(frame["asset_id"], str(source), "asset_id", "csv").astype(str)
    return frame


def id_column_hint(columns) -> str:
    """``"; if 'galaxy_id' holds the ids, name it with --id-column galaxy_id"``, or ``""``.

    The first column whose name ends in ``id`` (case-insensitively) is the likely one.
    """
    likely = next((c for c in columns if str(c).lower().endswith("id")), None)
    return f"; if {likely!r} holds the ids, name it with --id-column {likely}" if likely else ""


def _join_path(folder: Path, name) -> str | None:
    if name is None or (isinstance(name, float) and np.isnan(name)) or str(name).strip() == "":
        return None
    return os.path.abspath(folder / str(name).strip())


class ImagePathResolver:
    """Finds each catalogue row's image file; set up once, applied to any number of chunks.

    The path comes, in this order of preference, from:

    1. a GZ2 ``mapping`` table (``gz2_filename_mapping.csv``: ``objid``, ``sample``,
       ``asset_id``): file ``<image_dir>/<asset_id>.jpg``, matched on the id (and on
       ``sample`` too where both tables have it and an id maps to several assets);
    2. a path column already in the table (``file``, ``path``, ``image_path`` or
       ``filename``): relative paths are taken relative to the catalogue's folder;
    3. the id: ``<image_dir>/<dr7objid>.jpg`` (GZ2, the layout ``spiralarms synth``
       writes) or ``<image_dir>/<GalaxyID>.jpg`` (Kaggle); also ``id`` for plain lists.

    Parameters
    ----------
    catalog_path : str or path-like
        The catalogue's file; its folder anchors relative paths.
    columns : iterable of str
        The catalogue's columns (to choose the rule above once).
    mapping : str, path-like or pandas.DataFrame, optional
        GZ2 filename mapping table (read once, here).
    image_dir : str or path-like, optional
        Folder of the image files for cases 1 and 3; default ``<catalogue folder>/images``.
    id_columns : sequence of str, optional
        Id columns tried for case 3, in order; default the GZ2 and Kaggle ids.

    Attributes
    ----------
    id_column : str or None
        The id column used (also the one prediction writes as ``id``).
    file_column : str or None
        The path column used, if any.

    Raises
    ------
    SpiralArmsError
        If the mapping table lacks ``objid`` or ``asset_id``, or no column can name
        the image files.
    """

    def __init__(self, catalog_path, columns, mapping=None, image_dir=None, id_columns=None):
        columns = list(columns)
        self.catalog_dir = Path(catalog_path).resolve().parent
        self.image_dir = Path(image_dir) if image_dir is not None else self.catalog_dir / "images"
        ids = tuple(id_columns) if id_columns is not None else sch.CATALOG_ID_COLUMNS
        self.id_column = next((c for c in ids if c in columns), None)
        self.file_column = next((c for c in FILE_COLUMNS if c in columns), None)
        self._by_id = self._by_pair = None
        if mapping is not None:
            if self.id_column is None:
                raise SpiralArmsError(f"{catalog_path}: no id column (dr7objid or objid) to match the mapping")
            lookup = _read_mapping(mapping)
            lookup["objid"] = lookup["objid"].astype(str)
            self._by_id = lookup.drop_duplicates("objid").set_index("objid")["asset_id"]
            if "sample" in lookup.columns and lookup["objid"].duplicated().any():
                self._by_pair = lookup.drop_duplicates(["objid", "sample"]).set_index(["objid", "sample"])["asset_id"]
        elif self.file_column is None and self.id_column is None:
            named = ", ".join(ids)
            raise SpiralArmsError(
                f"{catalog_path}: no image path column ({', '.join(FILE_COLUMNS)}) and no id column "
                f"({named}) to name the image files{id_column_hint(columns)}"
            )

    def __call__(self, table: pd.DataFrame) -> list[str | None]:
        """Absolute image paths of ``table``'s rows (``None`` where none resolves)."""
        if self._by_id is not None:
            ids = table[self.id_column].astype(str).str.strip()
            assets = ids.map(self._by_id)
            if self._by_pair is not None and "sample" in table.columns:
                pairs = pd.MultiIndex.from_arrays([ids, table["sample"].astype(str)])
                exact = pd.Series(self._by_pair.reindex(pairs).to_numpy(), index=table.index)
                assets = exact.where(exact.notna(), assets)
            return [_join_path(self.image_dir, f"{a}.jpg" if pd.notna(a) else None) for a in assets]
        if self.file_column is not None:
            return [_join_path(self.catalog_dir, p) for p in table[self.file_column]]
        return [_join_path(self.image_dir, f"{i}.jpg" if pd.notna(i) else None) for i in table[self.id_column]]


def resolve_image_paths(
    table: pd.DataFrame,
    catalog_path,
    mapping=None,
    image_dir=None,
    check_exists: bool = False,
) -> pd.DataFrame:
    """Give each galaxy the absolute path of its image file, in a ``file`` column.

    The rules are those of :class:`ImagePathResolver`. Galaxies whose file cannot be
    resolved (no mapping row, an empty path cell, or, with ``check_exists``, a file
    that is not there) keep a missing ``file`` value: they are never dropped, so
    later steps can report them.

    Parameters
    ----------
    table : pandas.DataFrame
        Catalogue as returned by :func:`read_catalog`.
    catalog_path : str or path-like
        The catalogue's file; its folder anchors relative paths.
    mapping : str, path-like or pandas.DataFrame, optional
        GZ2 filename mapping table.
    image_dir : str or path-like, optional
        Folder of the image files; default ``<catalogue folder>/images``.
    check_exists : bool, default False
        Also blank the paths of files that do not exist (one ``stat`` per galaxy).

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with an absolute ``file`` column.

    Raises
    ------
    SpiralArmsError
        As :class:`ImagePathResolver`.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"resolve_image_paths expects a pandas.DataFrame, not {type(table).__name__}")
    files = ImagePathResolver(catalog_path, table.columns, mapping=mapping, image_dir=image_dir)(table)
    if check_exists:
        files = [f if f is not None and os.path.isfile(f) else None for f in files]
    out = table.copy()
    out["file"] = pd.Series(files, index=out.index, dtype=object)
    return out
