"""The MPA-JHU stellar-mass catalogue: reading and the paper's reliability cuts.

Fetching it (the DR7 files, or the DR10 tables from SkyServer) is
:mod:`spiralarms.acquire.mpajhu`.

The paper (section 6) takes total stellar masses ``LGM_TOT_P50`` (log10 of the median
of the mass likelihood, Kroupa IMF) from the MPA-JHU catalogue of SDSS DR10, where it
lives in the SkyServer tables ``galSpecExtra`` (masses) and ``galSpecInfo``
(positions, redshift, flags), and keeps the rows with

``RELIABLE != 0``, ``Z_WARNING == 0``, ``LGM_TOT_P50 != -9999`` and ``Z > 0``.

Two forms of the catalogue are read, from local files (FITS, CSV, CSV.gz, Parquet;
column names in any case):

* one table holding the columns of ``galSpecInfo`` joined with ``galSpecExtra``
  (a SkyServer/CasJobs query result, or
  :func:`~spiralarms.acquire.mpajhu.fetch_mpajhu_skyserver`'s output):
  ``Z``, ``Z_WARNING``, ``RELIABLE``, ``LGM_TOT_P50``, and an object id
  (``DR7OBJID``, ``OBJID`` or ``BESTOBJID``) and/or ``RA``, ``DEC``;
* the DR7 pair ``gal_info_dr7_v5_2.fit`` + ``totlgm_dr7_v5_2.fit`` (row-aligned: row
  *i* of one describes the same spectrum as row *i* of the other). The mass file's
  ``MEDIAN`` is ``LGM_TOT_P50``; the DR7 object id is rebuilt from ``PHOTOID``
  (run, rerun, camcol, field, id). The DR7 release has no ``RELIABLE`` flag: that
  cut is skipped for it, and the summary says so.

Every table is returned with lower-case canonical columns: ``objid`` (nullable
Int64), ``specobjid`` (nullable Int64), ``ra``, ``dec``, ``z``, ``z_warning``,
``reliable``, ``lgm_tot_p50``, those present.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from spiralarms.errors import SpiralArmsError, first_line
from spiralarms.catalog.schema import MPAJHU_ID_COLUMNS
from spiralarms.io.ids import exact_ids
from spiralarms.io.tables import checked_table_path, fits_warnings_if_read

#: The paper's missing-mass sentinel.
MISSING_MASS = -9999.0

#: The reliability cuts in the order they are applied, named as the paper writes them.
FILTERS: tuple[str, ...] = ("RELIABLE != 0", "Z_WARNING == 0", "LGM_TOT_P50 != -9999", "Z > 0")

#: Accepted source columns of each canonical column (lower case), in order of preference.
#: ``dr7objid`` comes first because the GZ2 ids are DR7 object ids; ``bestobjid`` is a
#: DR8+ id that matches a DR7 id only by position.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "objid": ("dr7objid", "objid", "bestobjid", "photoid"),
    "specobjid": ("specobjid",),
    "ra": ("ra",),
    "dec": ("dec",),
    "z": ("z",),
    "z_warning": ("z_warning",),
    "reliable": ("reliable",),
    "lgm_tot_p50": ("lgm_tot_p50", "median"),
}

#: Columns that the cuts read (``reliable`` is optional for the DR7 pair only).
REQUIRED: tuple[str, ...] = ("z", "z_warning", "reliable", "lgm_tot_p50")

_ID_COLUMNS = frozenset(MPAJHU_ID_COLUMNS)
_VALUE_NAMES = frozenset(a for k, v in COLUMN_ALIASES.items() if k not in ("objid", "specobjid") for a in v)


@dataclass
class FilterCounts:
    """How many catalogue rows each reliability cut removed, applied in order.

    Attributes
    ----------
    n_input : int
        Rows read.
    removed : dict of str to int or None
        Rows removed by each cut of :data:`FILTERS`, in order; ``None`` for a cut
        that was skipped (its column is absent, as ``RELIABLE`` in DR7). A missing
        value (NaN, empty cell) in a cut's column fails that cut.
    n_kept : int
        Rows left after all the cuts.
    notes : list of str
        Remarks (a skipped cut).
    """

    n_input: int
    removed: dict[str, int | None]
    n_kept: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready counts.

        Returns
        -------
        dict
            ``{"n_input", "removed": {cut: int or None}, "n_kept", "notes"}``.
        """
        return {
            "n_input": int(self.n_input),
            "removed": {k: (None if v is None else int(v)) for k, v in self.removed.items()},
            "n_kept": int(self.n_kept),
            "notes": list(self.notes),
        }


@dataclass
class MPAJHUCatalogue:
    """An MPA-JHU table in canonical columns, with where it came from.

    Attributes
    ----------
    table : pandas.DataFrame
        Canonical lower-case columns (see the module docstring), one row per spectrum.
    source : str
        The file or files read, for messages.
    id_origin : str or None
        The catalogue column that ``objid`` was taken from (``"DR7OBJID"``,
        ``"BESTOBJID"``, ``"PHOTOID"``, ...), or ``None`` when it has no object id.
    filters : FilterCounts or None
        The reliability cuts' counts, once :func:`apply_reliability_filters` ran.
    """

    table: pd.DataFrame = field(repr=False)
    source: str
    id_origin: str | None
    filters: FilterCounts | None = None

    @property
    def has_positions(self) -> bool:
        """Whether the table has ``ra`` and ``dec`` (needed for sky matching)."""
        return {"ra", "dec"} <= set(self.table.columns)

    @property
    def has_ids(self) -> bool:
        """Whether the table has an SDSS object id (needed for id matching)."""
        return "objid" in self.table.columns


def dr7_objid(run, rerun, camcol, field_, obj, sky_version: int = 1) -> np.ndarray:
    """SDSS CAS object ids from photometric identifiers.

    The bits of an SDSS ``objID`` are: 59-62 sky version, 48-58 rerun, 32-47 run,
    29-31 camcol, 28 first field (0), 16-27 field, 0-15 object number. DR7 ids have
    sky version 1 (e.g. ``587722981741363294`` is run 752, rerun 40, camcol 1, field
    263, object 94).

    Parameters
    ----------
    run, rerun, camcol, field_, obj : array-like of int
        The photometric identifiers (the five entries of MPA-JHU's ``PHOTOID``).
    sky_version : int, default 1
        1 for DR7, 2 for DR8 and later.

    Returns
    -------
    numpy.ndarray of int64
    """
    parts = [np.asarray(a, dtype=np.int64) for a in (run, rerun, camcol, field_, obj)]
    run, rerun, camcol, field_, obj = parts
    if (
        np.any((run < 0) | (run >= 1 << 16))
        or np.any((rerun < 0) | (rerun >= 1 << 11))
        or np.any((camcol < 0) | (camcol >= 1 << 3))
        or np.any((field_ < 0) | (field_ >= 1 << 12))
        or np.any((obj < 0) | (obj >= 1 << 16))
    ):
        raise SpiralArmsError("PHOTOID: a run, rerun, camcol, field or id is out of the objID bit range")
    return (np.int64(sky_version) << 59) | (rerun << 48) | (run << 32) | (camcol << 29) | (field_ << 16) | obj


def _numeric(values: pd.Series, source: str, column: str) -> np.ndarray:
    """A value column as float64, NaN for empty cells; a text cell is an error."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    numeric = pd.to_numeric(values, errors="coerce")
    bad = (numeric.isna() & values.notna() & (values.astype(str).str.strip() != "")).to_numpy()
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise SpiralArmsError(
            f"{source}: column {column!r} has a non-numeric value {values.iloc[position]!r} in row {position + 1}"
        )
    return numeric.to_numpy(dtype=np.float64, na_value=np.nan)


def _read_fits(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """The columns of interest of a FITS table; ``PHOTOID`` becomes a DR7 objid column ``photoid``."""
    from astropy.table import Table

    with fits_warnings_if_read():
        table = Table.read(path, format="fits")
    names = {name.lower(): name for name in table.colnames}
    wanted = [n for lower, n in names.items() if lower in _ID_COLUMNS | _VALUE_NAMES and table[n].ndim == 1]
    # to_pandas turns masked integers into nullable Int64 and masked floats into NaN.
    frame = table[wanted].to_pandas() if wanted else pd.DataFrame(index=range(len(table)))
    frame = frame.rename(columns=str.lower).reset_index(drop=True)
    if "photoid" in names:
        values = np.ma.filled(np.ma.asarray(table[names["photoid"]]), 0)
        if values.ndim != 2 or values.shape[1] < 5:
            raise SpiralArmsError(f"mpajhu {path}: column 'PHOTOID' should hold (run, rerun, camcol, field, id)")
        frame["photoid"] = dr7_objid(values[:, 0], values[:, 1], values[:, 2], values[:, 3], values[:, 4])
    return frame, names


def _read_one(path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Read one file; returns lower-cased columns of interest and ``{lower: original name}``."""
    path, fmt = checked_table_path(path, "mpajhu")
    try:
        if fmt == "fits":
            frame, names = _read_fits(path)
        else:
            if fmt == "csv":
                header = pd.read_csv(path, nrows=0).columns
                as_text = {c: str for c in header if str(c).strip().lower() in _ID_COLUMNS}
                raw = pd.read_csv(path, dtype=as_text)
            else:
                raw = pd.read_parquet(path)
            names = {str(c).strip().lower(): str(c) for c in raw.columns}
            if len(names) != len(raw.columns):
                raise SpiralArmsError(f"mpajhu {path}: two columns differ only in case")
            keep = [c for c in raw.columns if str(c).strip().lower() in _ID_COLUMNS | _VALUE_NAMES]
            frame = raw[keep].rename(columns=lambda c: str(c).strip().lower())
    except SpiralArmsError:
        raise
    except Exception as exc:  # astropy, pandas and pyarrow each raise their own error types
        raise SpiralArmsError(f"mpajhu {path}: cannot read it as {fmt}: {first_line(exc)}") from exc
    return frame.reset_index(drop=True), names


def _canonical(frame: pd.DataFrame, names: dict[str, str], source: str) -> tuple[pd.DataFrame, str | None]:
    """Canonical columns from one raw frame; the id's original column name."""
    out = pd.DataFrame(index=frame.index)
    id_origin = None
    for canonical, aliases in COLUMN_ALIASES.items():
        found = next((a for a in aliases if a in frame.columns), None)
        if found is None:
            continue
        original = names.get(found, found)
        if canonical in ("objid", "specobjid"):
            out[canonical] = exact_ids(frame[found], f"mpajhu {source}", original).array
            if canonical == "objid":
                id_origin = original
        else:
            out[canonical] = _numeric(frame[found], f"mpajhu {source}", original)
    return out, id_origin


def read_mpajhu(paths, *, require_reliable: bool | None = None) -> MPAJHUCatalogue:
    """Read the MPA-JHU catalogue from one table or from the DR7 file pair.

    Parameters
    ----------
    paths : path or sequence of one or two paths
        One table with all the columns (DR10 ``galSpecInfo`` + ``galSpecExtra``), or
        the two row-aligned DR7 files ``gal_info_dr7_v5_2.fit[.gz]`` and
        ``totlgm_dr7_v5_2.fit[.gz]`` in either order (the one with ``Z`` is the
        information file; the one with ``MEDIAN`` or ``LGM_TOT_P50`` the mass file).
    require_reliable : bool, optional
        Whether a missing ``RELIABLE`` column is an error. Default: yes for one
        table, no for the DR7 pair (DR7 has no such flag; the cut is then skipped).

    Returns
    -------
    MPAJHUCatalogue
        Unfiltered; see :func:`apply_reliability_filters`.

    Raises
    ------
    SpiralArmsError
        If a file is missing or unreadable, a column that the cuts read is absent
        (the message names the file and the column), the table has neither an object
        id nor ``RA``/``DEC``, or the DR7 pair differs in length.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if len(paths) not in (1, 2):
        raise SpiralArmsError(f"mpajhu: give one catalogue table or the DR7 pair of files, not {len(paths)} files")
    if require_reliable is None:
        require_reliable = len(paths) == 1

    if len(paths) == 1:
        frame, names = _read_one(paths[0])
        table, id_origin = _canonical(frame, names, str(paths[0]))
        source = str(paths[0])
        _check_required(table, {c: str(paths[0]) for c in REQUIRED}, require_reliable)
    else:
        (frame_a, names_a), (frame_b, names_b) = (_read_one(p) for p in paths)
        a_is_info = "z" in frame_a.columns
        b_is_info = "z" in frame_b.columns
        if a_is_info == b_is_info:
            raise SpiralArmsError(
                f"mpajhu {paths[0]}, {paths[1]}: expected the DR7 pair (one file with 'Z', the "
                f"gal_info file; one with 'MEDIAN' or 'LGM_TOT_P50', the totlgm file)"
            )
        (info_path, info, info_names), (mass_path, mass, mass_names) = (
            ((paths[0], frame_a, names_a), (paths[1], frame_b, names_b))
            if a_is_info
            else ((paths[1], frame_b, names_b), (paths[0], frame_a, names_a))
        )
        if len(info) != len(mass):
            raise SpiralArmsError(
                f"mpajhu {info_path} has {len(info)} rows but {mass_path} has {len(mass)}: "
                f"the DR7 files are joined row by row and must have the same length"
            )
        info_table, id_origin = _canonical(info, info_names, str(info_path))
        mass_only = mass[[c for c in mass.columns if c in COLUMN_ALIASES["lgm_tot_p50"]]]
        mass_table, _ = _canonical(mass_only, mass_names, str(mass_path))
        table = pd.concat([info_table, mass_table], axis=1)
        source = f"{info_path} + {mass_path}"
        where = {c: str(info_path) for c in REQUIRED}
        where["lgm_tot_p50"] = str(mass_path)
        _check_required(table, where, require_reliable)

    if "objid" not in table.columns and not {"ra", "dec"} <= set(table.columns):
        missing = "RA" if "ra" not in table.columns else "DEC"
        raise SpiralArmsError(
            f"mpajhu {source}: missing column {missing!r}: the catalogue needs RA and DEC or an "
            f"object id (DR7OBJID, OBJID, BESTOBJID or PHOTOID) to be cross-matched"
        )
    return MPAJHUCatalogue(table=table.reset_index(drop=True), source=source, id_origin=id_origin)


def _check_required(table: pd.DataFrame, where: dict[str, str], require_reliable: bool) -> None:
    for column in REQUIRED:
        if column in table.columns:
            continue
        if column == "reliable" and not require_reliable:
            continue
        wanted = COLUMN_ALIASES[column]
        label = wanted[0].upper() + (f" (or {', '.join(a.upper() for a in wanted[1:])})" if len(wanted) > 1 else "")
        raise SpiralArmsError(f"mpajhu {where[column]}: missing column {label!r}")


def apply_reliability_filters(catalogue: MPAJHUCatalogue) -> MPAJHUCatalogue:
    """Keep the rows with trustworthy properties (paper section 6), counting each cut.

    The cuts, applied one after the other: ``RELIABLE != 0``, ``Z_WARNING == 0``,
    ``LGM_TOT_P50 != -9999`` (and finite), ``Z > 0``. A missing value fails the cut
    that reads it. Without a ``RELIABLE`` column (the DR7 files) that cut is skipped
    and noted.

    Parameters
    ----------
    catalogue : MPAJHUCatalogue
        As returned by :func:`read_mpajhu`.

    Returns
    -------
    MPAJHUCatalogue
        The kept rows (index ``0..n-1``), with :attr:`~MPAJHUCatalogue.filters` set.
    """
    table = catalogue.table
    keep = np.ones(len(table), dtype=bool)
    removed: dict[str, int | None] = {}
    notes: list[str] = []
    tests = {
        "RELIABLE != 0": lambda t: t["reliable"].to_numpy() != 0 if "reliable" in t else None,
        "Z_WARNING == 0": lambda t: t["z_warning"].to_numpy() == 0,
        # NaN is not -9999 either, but a missing mass cannot enter the statistics.
        "LGM_TOT_P50 != -9999": lambda t: (
            (t["lgm_tot_p50"].to_numpy() != MISSING_MASS) & np.isfinite(t["lgm_tot_p50"].to_numpy())
        ),
        "Z > 0": lambda t: t["z"].to_numpy() > 0,
    }
    for name in FILTERS:
        passed = tests[name](table)
        if passed is None:
            removed[name] = None
            notes.append(f"{name} skipped: {catalogue.source} has no RELIABLE column (as the DR7 files)")
            continue
        if name == "RELIABLE != 0":
            passed = passed & ~np.isnan(table["reliable"].to_numpy())
        removed[name] = int(np.count_nonzero(keep & ~passed))
        keep &= passed
    kept = table.loc[keep].reset_index(drop=True)
    counts = FilterCounts(n_input=len(table), removed=removed, n_kept=len(kept), notes=notes)
    return replace(catalogue, table=kept, filters=counts)


def load_mpajhu(paths, *, require_reliable: bool | None = None) -> MPAJHUCatalogue:
    """Read the catalogue and apply the paper's reliability cuts.

    Parameters
    ----------
    paths : path or sequence of paths
        See :func:`read_mpajhu`.
    require_reliable : bool, optional
        See :func:`read_mpajhu`.

    Returns
    -------
    MPAJHUCatalogue
        Filtered, with the counts in ``filters``.
    """
    return apply_reliability_filters(read_mpajhu(paths, require_reliable=require_reliable))


__all__ = [
    "COLUMN_ALIASES",
    "FILTERS",
    "MISSING_MASS",
    "FilterCounts",
    "MPAJHUCatalogue",
    "apply_reliability_filters",
    "dr7_objid",
    "load_mpajhu",
    "read_mpajhu",
]
