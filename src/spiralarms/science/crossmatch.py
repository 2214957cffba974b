"""Cross-match galaxies to the MPA-JHU catalogue, by SDSS object id or by sky position.

Galaxies are matched by object id where both tables carry one (the galaxy's
``dr7objid``, ``objid`` or ``id`` against the catalogue's ``objid``, compared as
exact int64), and otherwise by position (``SkyCoord.match_to_catalog_sky``, nearest
catalogue row within a tolerance, 1 arcsec by default). Galaxies without a
counterpart are kept apart and counted, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from spiralarms.errors import SpiralArmsError
from spiralarms.io.ids import exact_ids
from spiralarms.science.mpajhu import MPAJHUCatalogue
from spiralarms.catalog import schema as sch

#: Galaxy id columns, in order of preference (``id`` is what prediction tables carry).
GALAXY_ID_COLUMNS: tuple[str, ...] = sch.GALAXY_ID_COLUMNS

#: Match methods: ``auto`` uses ids where both tables have them, then positions.
MATCH_METHODS: tuple[str, ...] = ("auto", "id", "sky")

#: Catalogue columns carried into the matched table, and their names there.
CARRIED = {
    "lgm_tot_p50": "lgm_tot_p50",
    "z": "z",
    "specobjid": "specobjid",
    "objid": "mpajhu_objid",
    "ra": "mpajhu_ra",
    "dec": "mpajhu_dec",
}


@dataclass
class CrossMatch:
    """Galaxies with and without an MPA-JHU counterpart.

    Attributes
    ----------
    matched : pandas.DataFrame
        The matched galaxies in input order: their own columns (a name that the
        catalogue also uses gets the suffix ``_input``), then ``lgm_tot_p50``, ``z``,
        ``specobjid``, ``mpajhu_objid``, ``mpajhu_ra``, ``mpajhu_dec`` (those the
        catalogue has), ``match_method`` (``"id"`` or ``"sky"``) and
        ``separation_arcsec`` (NaN where a position is unknown).
    unmatched : pandas.DataFrame
        The galaxies without a counterpart, with their own columns.
    n_by_method : dict
        ``{"id": int, "sky": int}``: matches made each way.
    method : str
        The method asked for.
    tolerance_arcsec : float
        The sky-match tolerance.
    notes : list of str
        Remarks (ids that are not integers, repeated catalogue ids).
    """

    matched: pd.DataFrame = field(repr=False)
    unmatched: pd.DataFrame = field(repr=False)
    n_by_method: dict[str, int]
    method: str
    tolerance_arcsec: float
    notes: list[str] = field(default_factory=list)

    @property
    def n_matched(self) -> int:
        """Galaxies with a counterpart."""
        return len(self.matched)

    @property
    def n_unmatched(self) -> int:
        """Galaxies without a counterpart."""
        return len(self.unmatched)

    def to_dict(self) -> dict:
        """JSON-ready counts.

        Returns
        -------
        dict
            ``{"n_matched", "n_unmatched", "n_by_method", "method",
            "tolerance_arcsec", "notes"}``.
        """
        return {
            "n_matched": int(self.n_matched),
            "n_unmatched": int(self.n_unmatched),
            "n_by_method": {k: int(v) for k, v in self.n_by_method.items()},
            "method": self.method,
            "tolerance_arcsec": float(self.tolerance_arcsec),
            "notes": list(self.notes),
        }


def _column(table: pd.DataFrame, name: str) -> str | None:
    """The column called ``name`` in any case, or None."""
    if name in table.columns:
        return name
    lower = {str(c).lower(): c for c in table.columns}
    return lower.get(name)


def galaxy_id_column(table: pd.DataFrame) -> str | None:
    """The galaxy table's object-id column (``dr7objid``, ``objid`` or ``id``), or None.

    Parameters
    ----------
    table : pandas.DataFrame

    Returns
    -------
    str or None
    """
    for name in GALAXY_ID_COLUMNS:
        found = _column(table, name)
        if found is not None:
            return found
    return None


def galaxy_ids(table: pd.DataFrame) -> pd.Series:
    """The galaxies' SDSS object ids as nullable Int64, exactly.

    Parsed by :func:`~spiralarms.io.ids.exact_ids`: text ids (prediction tables)
    are read as integers, and one that is not an integer (a file name, say) becomes
    missing, so that galaxy can only be matched by position. Floating-point ids are
    refused unless every one is integral and below 2**53, as a double cannot hold an
    SDSS id.

    Parameters
    ----------
    table : pandas.DataFrame
        With a ``dr7objid``, ``objid`` or ``id`` column.

    Returns
    -------
    pandas.Series of Int64
        Aligned with ``table``'s rows.

    Raises
    ------
    SpiralArmsError
        If there is no id column, or it holds booleans or floats that are not
        integral below 2**53.
    """
    name = galaxy_id_column(table)
    if name is None:
        raise SpiralArmsError("galaxies: no id column (dr7objid, objid or id) to match by id")
    ids = exact_ids(table[name].reset_index(drop=True), "galaxies", name, non_integer="missing")
    return pd.Series(ids.array, index=table.index)


def galaxy_positions(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """The galaxies' ``ra`` and ``dec`` in degrees (any case), or None when absent.

    Parameters
    ----------
    table : pandas.DataFrame

    Returns
    -------
    (ra, dec) : tuple of numpy.ndarray or None
        NaN where a value is missing.
    """
    ra, dec = _column(table, "ra"), _column(table, "dec")
    if ra is None or dec is None:
        return None
    try:
        return (
            pd.to_numeric(table[ra], errors="raise").to_numpy(dtype=np.float64, na_value=np.nan),
            pd.to_numeric(table[dec], errors="raise").to_numpy(dtype=np.float64, na_value=np.nan),
        )
    except (TypeError, ValueError) as exc:
        raise SpiralArmsError(f"galaxies: column {ra!r} or {dec!r} is not numeric") from exc


def _id_match(gal_ids: pd.Series, cat_ids: pd.Series) -> tuple[np.ndarray, int]:
    """Catalogue row of each galaxy by id (-1 for none); and how many catalogue ids repeat."""
    cat_known = cat_ids.notna().to_numpy()
    cat_rows = np.flatnonzero(cat_known)
    cat_values = cat_ids.to_numpy(dtype=np.int64, na_value=0)[cat_known]
    # The first row of a repeated id wins: the catalogue holds one row per spectrum.
    unique_values, first = np.unique(cat_values, return_index=True)
    n_repeated = len(cat_values) - len(unique_values)
    index = pd.Index(unique_values)
    gal_known = gal_ids.notna().to_numpy()
    rows = np.full(len(gal_ids), -1, dtype=np.int64)
    if gal_known.any() and len(index):
        found = index.get_indexer(gal_ids.to_numpy(dtype=np.int64, na_value=0)[gal_known])
        hit = found >= 0
        positions = np.flatnonzero(gal_known)
        rows[positions[hit]] = cat_rows[first[found[hit]]]
    return rows, n_repeated


def _sky_match(
    ra: np.ndarray, dec: np.ndarray, cat_ra: np.ndarray, cat_dec: np.ndarray, tolerance_arcsec: float
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest catalogue row within the tolerance (-1 for none) and the separation in arcsec."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    rows = np.full(len(ra), -1, dtype=np.int64)
    separation = np.full(len(ra), np.nan)
    cat_ok = np.flatnonzero(np.isfinite(cat_ra) & np.isfinite(cat_dec))
    gal_ok = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec))
    if len(cat_ok) == 0 or len(gal_ok) == 0:
        return rows, separation
    galaxies = SkyCoord(ra=ra[gal_ok] * u.deg, dec=dec[gal_ok] * u.deg)
    catalogue = SkyCoord(ra=cat_ra[cat_ok] * u.deg, dec=cat_dec[cat_ok] * u.deg)
    nearest, sep2d, _ = galaxies.match_to_catalog_sky(catalogue)
    arcsec = np.atleast_1d(sep2d.to_value(u.arcsec))
    nearest = np.atleast_1d(nearest)
    within = arcsec <= tolerance_arcsec
    rows[gal_ok[within]] = cat_ok[nearest[within]]
    separation[gal_ok] = arcsec
    return rows, separation


def _separation(ra, dec, cat_ra, cat_dec) -> np.ndarray:
    """Angular separation in arcsec (haversine), NaN where a position is unknown."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(a, dtype=np.float64)) for a in (ra, dec, cat_ra, cat_dec))
    h = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))) * 3600.0


def crossmatch(
    galaxies: pd.DataFrame,
    catalogue: MPAJHUCatalogue | pd.DataFrame,
    *,
    method: str = "auto",
    tolerance_arcsec: float = 1.0,
) -> CrossMatch:
    """Match galaxies to MPA-JHU rows by object id, or by sky position.

    Parameters
    ----------
    galaxies : pandas.DataFrame
        One row per galaxy, with an id column (``dr7objid``, ``objid`` or ``id``,
        the latter as text in prediction tables) and/or ``ra`` and ``dec`` in degrees.
    catalogue : MPAJHUCatalogue or pandas.DataFrame
        Canonical columns (see :mod:`spiralarms.science.mpajhu`), normally filtered
        by :func:`~spiralarms.science.mpajhu.apply_reliability_filters`.
    method : {"auto", "id", "sky"}, default "auto"
        ``"id"``: exact object id only; ``"sky"``: nearest position within
        ``tolerance_arcsec`` only; ``"auto"``: by id where both tables have ids,
        then by position for the galaxies still without a counterpart where both
        have positions.
    tolerance_arcsec : float, default 1.0
        Largest separation of a sky match (inclusive).

    Returns
    -------
    CrossMatch

    Raises
    ------
    SpiralArmsError
        If ``method`` is unknown, the tolerance is not positive, or the tables lack
        what the method needs (the message names the missing column).
    """
    if method not in MATCH_METHODS:
        raise SpiralArmsError(f"match method {method!r}: choose {', '.join(MATCH_METHODS)}")
    if not np.isfinite(tolerance_arcsec) or tolerance_arcsec <= 0:
        raise SpiralArmsError(f"match tolerance {tolerance_arcsec!r} arcsec: give a positive number")
    table = catalogue.table if isinstance(catalogue, MPAJHUCatalogue) else catalogue
    source = catalogue.source if isinstance(catalogue, MPAJHUCatalogue) else "MPA-JHU catalogue"
    galaxies = galaxies.reset_index(drop=True)
    notes: list[str] = []

    can_id = galaxy_id_column(galaxies) is not None and "objid" in table.columns
    positions = galaxy_positions(galaxies)
    can_sky = positions is not None and {"ra", "dec"} <= set(table.columns)
    if method == "id" and not can_id:
        missing = "objid (DR7OBJID, OBJID, BESTOBJID or PHOTOID)" if "objid" not in table.columns else None
        raise SpiralArmsError(
            f"{source}: no object id column to match by id: {missing}"
            if missing
            else "galaxies: no id column (dr7objid, objid or id) to match by id"
        )
    if method == "sky" and not can_sky:
        raise SpiralArmsError(
            "galaxies: no 'ra'/'dec' columns to match by sky position"
            if positions is None
            else f"{source}: no RA/DEC columns to match by sky position"
        )
    if method == "auto" and not (can_id or can_sky):
        raise SpiralArmsError(
            f"cannot cross-match: the galaxies and {source} share neither an object id nor ra/dec positions"
        )

    rows = np.full(len(galaxies), -1, dtype=np.int64)
    how = np.array([""] * len(galaxies), dtype=object)
    separation = np.full(len(galaxies), np.nan)
    if can_id and method in ("auto", "id"):
        ids = galaxy_ids(galaxies)
        n_bad = int(ids.isna().sum())
        if n_bad:
            notes.append(f"{n_bad} galaxies have no integer object id and cannot be matched by id")
        rows, n_repeated = _id_match(ids, table["objid"])
        if n_repeated:
            notes.append(f"{n_repeated} catalogue rows repeat an object id; the first row of each id is used")
        how[rows >= 0] = "id"
    if can_sky and method in ("auto", "sky"):
        todo = np.flatnonzero(rows < 0)
        ra, dec = positions
        cat_ra = table["ra"].to_numpy(dtype=np.float64, na_value=np.nan)
        cat_dec = table["dec"].to_numpy(dtype=np.float64, na_value=np.nan)
        sky_rows, sky_sep = _sky_match(ra[todo], dec[todo], cat_ra, cat_dec, tolerance_arcsec)
        rows[todo] = sky_rows
        how[todo[sky_rows >= 0]] = "sky"
        separation[todo] = np.where(sky_rows >= 0, sky_sep, np.nan)
        by_id = how == "id"
        if by_id.any():
            separation[by_id] = _separation(ra[by_id], dec[by_id], cat_ra[rows[by_id]], cat_dec[rows[by_id]])

    hit = rows >= 0
    matched = galaxies.loc[hit].copy()
    carried = {c: new for c, new in CARRIED.items() if c in table.columns}
    added = {*carried.values(), "match_method", "separation_arcsec"}
    clashes = {c: f"{c}_input" for c in matched.columns if c in added}
    matched = matched.rename(columns=clashes)
    for column, new in carried.items():
        matched[new] = table[column].iloc[rows[hit]].to_numpy()
        if column in ("objid", "specobjid"):
            matched[new] = matched[new].astype("Int64")
    matched["match_method"] = how[hit].astype(str)
    matched["separation_arcsec"] = separation[hit]
    return CrossMatch(
        matched=matched.reset_index(drop=True),
        unmatched=galaxies.loc[~hit].reset_index(drop=True),
        n_by_method={"id": int(np.count_nonzero(how == "id")), "sky": int(np.count_nonzero(how == "sky"))},
        method=method,
        tolerance_arcsec=float(tolerance_arcsec),
        notes=notes,
    )
