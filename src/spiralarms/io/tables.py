"""The one table reader and writer, and the one table of file suffixes.

Tables are CSV (optionally gzip-compressed), Parquet or FITS, told apart by the file
name's ending (:data:`TABLE_SUFFIXES`). Every module that reads or writes a table
goes through :func:`read_table` / :func:`write_table` (catalogues add their schema
checks on top, in :mod:`spiralarms.catalog.readers`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from spiralarms.errors import SpiralArmsError, first_line

__all__ = ["TABLE_SUFFIXES", "WRITE_SUFFIXES", "checked_table_path", "fits_warnings_if_read", "read_table", "table_format", "table_stem", "write_table"]

#: Table formats, by file-name ending (matched case-insensitively, longest first).
TABLE_SUFFIXES: dict[str, str] = {
    ".fits.gz": "fits",
    ".fit.gz": "fits",
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv.gz": "csv",
    ".csv": "csv",
    ".gz": "csv",
}

#: The formats :func:`write_table` writes, by file-name ending.
WRITE_SUFFIXES: dict[str, str] = {
    ".csv.gz": "csv",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def table_format(path: str | Path, suffixes: dict[str, str] = TABLE_SUFFIXES) -> str | None:
    """The format that a file name's ending names in ``suffixes``, or ``None``."""
    name = Path(path).name.lower()
    for suffix, fmt in suffixes.items():
        if name.endswith(suffix):
            return fmt
    return None


def table_stem(path: str | Path) -> str:
    """The file name without its table suffix (``a.csv.gz`` -> ``a``)."""
    path = Path(path)
    name = path.name
    for suffix in TABLE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def checked_table_path(path, what: str = "catalog") -> tuple[Path, str]:
    """The path and format of a table to read, or a one-line error.

    Parameters
    ----------
    path : str or path-like
    what : str, default "catalog"
        The word that starts the error message (``catalog``, ``mpajhu``, ...).

    Returns
    -------
    (pathlib.Path, str)
        The path and its format: ``csv``, ``parquet`` or ``fits``.

    Raises
    ------
    SpiralArmsError
        If the file is missing, is a folder or has an unknown suffix.
    """
    path = Path(path)
    if not path.exists():
        raise SpiralArmsError(f"{what} {path}: no such file")
    if path.is_dir():
        raise SpiralArmsError(f"{what} {path}: is a folder, not a file")
    fmt = table_format(path)
    if fmt is None:
        raise SpiralArmsError(f"{what} {path}: unknown file type; use one of {', '.join(TABLE_SUFFIXES)}")
    return path, fmt


@contextmanager
def fits_warnings_if_read() -> Iterator[None]:
    """Hold back the warnings raised while a FITS file is opened; show them only if it opened.

    astropy prints several lines of ``VerifyWarning`` for a damaged file before the
    error that says it cannot be read: the user should see that one-line error alone.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:  # not reached when the body raised
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def _read_fits(path: Path) -> pd.DataFrame:
    from astropy.table import Table

    with fits_warnings_if_read():
        table = Table.read(path, format="fits")
    # pandas holds one value per cell: vector-valued FITS columns are left out.
    flat = [name for name in table.colnames if table[name].ndim == 1]
    frame = table[flat].to_pandas()
    for name in frame.columns:
        if frame[name].dtype == object and frame[name].map(lambda v: isinstance(v, bytes)).any():
            frame[name] = frame[name].map(
                lambda v: v.decode("utf-8", "replace").strip() if isinstance(v, bytes) else v
            )
    return frame


def read_table(
    path, *, text_columns: Iterable[str] = (), what: str = "catalog", empty_is_text: bool = False
) -> pd.DataFrame:
    """Read a whole table (CSV, CSV.gz, Parquet, FITS) without a schema check.

    Parameters
    ----------
    path : str or path-like
    text_columns : iterable of str
        Columns a CSV holds as text (ids stay exact, class names stay names).
    what : str, default "catalog"
        The word that starts an error message.
    empty_is_text : bool, default False
        In a CSV, only empty cells are missing values (``"NA"`` stays a string).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    SpiralArmsError
        If the file is missing, has an unknown suffix, cannot be read, or repeats a
        column name.
    """
    path, fmt = checked_table_path(path, what)
    text_columns = set(text_columns)
    try:
        if fmt == "csv":
            header = pd.read_csv(path, nrows=0).columns
            options = {"keep_default_na": False, "na_values": [""]} if empty_is_text else {}
            table = pd.read_csv(path, dtype={c: str for c in header if c in text_columns}, **options)
        elif fmt == "parquet":
            table = pd.read_parquet(path)
        else:
            table = _read_fits(path)
    except Exception as exc:  # pandas, pyarrow and astropy each raise their own error types
        raise SpiralArmsError(f"{what} {path}: cannot read it as {fmt}: {first_line(exc)}") from exc
    if table.columns.duplicated().any():
        name = table.columns[table.columns.duplicated()][0]
        raise SpiralArmsError(f"{what} {path}: column {name!r} appears twice")
    return table


def write_table(df: pd.DataFrame, path) -> Path:
    """Write a table as CSV or Parquet, chosen by the file suffix.

    Parameters
    ----------
    df : pandas.DataFrame
        The table; its index is not written.
    path : str or path-like
        ``.csv``, ``.csv.gz`` or ``.parquet``/``.pq``. Missing parent folders are
        created. Written under a temporary name and renamed when whole.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    SpiralArmsError
        If the suffix is not one of these, or the file cannot be written.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"write_table expects a pandas.DataFrame, not {type(df).__name__}")
    path = Path(path)
    fmt = table_format(path, WRITE_SUFFIXES)
    if fmt is None:
        raise SpiralArmsError(f"{path}: unknown table type; use one of {', '.join(WRITE_SUFFIXES)}")
    if path.is_dir():
        raise SpiralArmsError(f"{path}: is a folder; give a file name")
    from spiralarms.io.atomic import atomic_path

    with atomic_path(path) as tmp:  # a full disk never leaves half a table under the final name
        if fmt == "csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
    return path
