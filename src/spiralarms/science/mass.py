"""Stellar mass against spiral arm number: the whole of the paper's section 6.

:func:`run_mass` reads the MPA-JHU catalogue and applies its reliability cuts,
cross-matches each source of arm-number classes to it (the volunteer labels, then
each model's predictions), and writes Table 4 (CSV and Markdown), Figures 11 and 12,
the matched galaxies, the unmatched ones and a JSON summary.

A source is a table with a ``label`` column: a labels table (the selected clean
sample, e.g. from ``spiralarms select --out``; named ``labels``) or a predictions
table (``spiralarms predict`` output, recognised by its ``p_<class>`` columns; named
after its file). Rows of a predictions table with a non-empty ``error`` are left
out and counted, as are rows without a label. For every source::

    n_input = n_excluded_errors + n_without_class + n_matched + n_unmatched
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from spiralarms.catalog.classes import arm_classes, class_mapping, parse_merge

from spiralarms.errors import SpiralArmsError, SpiralArmsWarning
from spiralarms.io.atomic import write_json, write_text
from spiralarms.science.crossmatch import crossmatch, galaxy_id_column, galaxy_ids, galaxy_positions
from spiralarms.science.mpajhu import MPAJHUCatalogue, load_mpajhu
from spiralarms.catalog.schema import GALAXY_ID_COLUMNS
from spiralarms.io import tables
from spiralarms.io.tables import table_stem, write_table
from spiralarms.science.statistics import TABLE4_COLUMNS, TABLE4_MERGE, paper_table4, table4, table4_markdown

#: Name of a labels table's source (the paper's "Label" rows).
LABELS_SOURCE = "labels"

#: Output files in the output folder.
OUTPUT_FILES: dict[str, str] = {
    "table4_csv": "table4.csv",
    "table4_md": "table4.md",
    "figure11": "figure11.png",
    "figure12": "figure12.png",
    "matched": "matched.parquet",
    "unmatched": "unmatched.csv",
    "summary": "summary.json",
}

_TEXT_COLUMNS = (*GALAXY_ID_COLUMNS, "label", "label_original", "error")


@dataclass
class Source:
    """One source of arm-number classes, ready to be cross-matched.

    Attributes
    ----------
    name : str
        ``labels`` or the predictions file's stem.
    kind : str
        ``"labels"`` or ``"predictions"``.
    path : str
        The file read.
    galaxies : pandas.DataFrame
        The rows kept, with a ``class`` column (Table 4 class) and the original
        ``label``.
    n_input, n_excluded_errors, n_without_class, n_duplicates : int
        Rows read; predictions rows left out for a non-empty ``error``; rows left
        out for a missing label; repeats of an id already read (counted once).
    """

    name: str
    kind: str
    path: str
    galaxies: pd.DataFrame = field(repr=False)
    n_input: int
    n_excluded_errors: int
    n_without_class: int
    n_duplicates: int = 0


@dataclass
class SourceSummary:
    """Counts of one source through the cross-match.

    Attributes
    ----------
    name, kind, path : str
    n_input, n_excluded_errors, n_without_class, n_duplicates, n_matched, n_unmatched : int
        ``n_input`` is the sum of the other five.
    n_by_method : dict
        Matches by ``id`` and by ``sky``.
    counts : dict
        Matched galaxies per class, in class order.
    notes : list of str
    """

    name: str
    kind: str
    path: str
    n_input: int
    n_excluded_errors: int
    n_without_class: int
    n_matched: int
    n_unmatched: int
    n_by_method: dict[str, int]
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)
    n_duplicates: int = 0

    def to_dict(self) -> dict:
        """JSON-ready counts."""
        return {
            "path": self.path,
            "kind": self.kind,
            "n_input": int(self.n_input),
            "n_excluded_errors": int(self.n_excluded_errors),
            "n_without_class": int(self.n_without_class),
            "n_duplicates": int(self.n_duplicates),
            "n_matched": int(self.n_matched),
            "n_unmatched": int(self.n_unmatched),
            "n_matched_by_id": int(self.n_by_method.get("id", 0)),
            "n_matched_by_sky": int(self.n_by_method.get("sky", 0)),
            "counts": {k: int(v) for k, v in self.counts.items()},
            "notes": list(self.notes),
        }


@dataclass
class MassResult:
    """What :func:`run_mass` computed and wrote.

    Attributes
    ----------
    table4 : pandas.DataFrame
        Columns :data:`~spiralarms.science.statistics.TABLE4_COLUMNS`.
    matched : pandas.DataFrame
        One row per matched galaxy and source: ``source``, ``id``, ``class``,
        ``label``, ``lgm_tot_p50``, ``z`` and the match columns.
    unmatched : pandas.DataFrame
        ``source`` and ``id`` of the galaxies without a counterpart.
    sources : list of SourceSummary
    catalogue : MPAJHUCatalogue
        The filtered catalogue (with its filter counts).
    match : dict
        ``{"method": str, "tolerance_arcsec": float}``.
    outputs : dict
        Paths written, by :data:`OUTPUT_FILES` key.
    """

    table4: pd.DataFrame = field(repr=False)
    matched: pd.DataFrame = field(repr=False)
    unmatched: pd.DataFrame = field(repr=False)
    sources: list[SourceSummary]
    catalogue: MPAJHUCatalogue = field(repr=False)
    match: dict
    outputs: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The JSON summary (what ``spiralarms mass --json`` prints).

        Returns
        -------
        dict
            ``{"mpajhu": {"source", "id_column", "n_rows", "filters"}, "match":
            {...}, "sources": {name: {...}}, "outputs": {...}}``.
        """
        filters = self.catalogue.filters.to_dict() if self.catalogue.filters is not None else None
        return {
            "mpajhu": {
                "source": self.catalogue.source,
                "id_column": self.catalogue.id_origin,
                "n_rows": int(len(self.catalogue.table)),
                "filters": filters,
            },
            "match": dict(self.match),
            "sources": {s.name: s.to_dict() for s in self.sources},
            "outputs": dict(self.outputs),
        }


def _read_galaxies(path: Path) -> pd.DataFrame:
    """Any table; id, label and error columns of a CSV stay text (ids exact, classes as names)."""
    return tables.read_table(path, text_columns=_TEXT_COLUMNS, empty_is_text=True)


def table4_classes(labels: pd.Series, merge: str | None = TABLE4_MERGE, *, source: str = "labels") -> pd.Series:
    """Each galaxy's Table 4 class: its label with the section-6 merge (4 and 5+) applied.

    Parameters
    ----------
    labels : pandas.Series
        Class names (``1``, ``2``, ``3``, ``4``, ``5+``, ``?``, or already merged
        names such as ``4,5+``); missing values stay missing.
    merge : str or None, default "4,5+"
        The class merge; ``None`` or ``"all"`` keeps the six classes.
    source : str
        Name for the error message.

    Returns
    -------
    pandas.Series of object
        Class names, ``None`` where the label is missing.

    Raises
    ------
    SpiralArmsError
        If a label is neither a T11 class nor a class of the merge (e.g. ``3,4``
        under the ``4,5+`` merge), naming the row.
    """
    mapping = class_mapping(merge)
    mapping.update({c: c for c in arm_classes(merge)})
    out = []
    for position, value in enumerate(labels.tolist()):
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            out.append(None)
            continue
        text = str(value).strip()
        if text == "":
            out.append(None)
            continue
        if text.endswith(".0") and text[:-2] in mapping:  # a class read back as a float
            text = text[:-2]
        if text not in mapping:
            merged = ",".join(parse_merge(merge)) if parse_merge(merge) else "all"
            raise SpiralArmsError(
                f"{source}: row {position + 1}: label {text!r} is not a class of the {merged} "
                f"configuration ({', '.join(arm_classes(merge))})"
            )
        out.append(mapping[text])
    return pd.Series(out, index=labels.index, dtype=object)


def read_source(path, *, merge: str | None = TABLE4_MERGE) -> Source:
    """Read a labels or predictions table as a source of classes.

    Parameters
    ----------
    path : path
        CSV, CSV.gz, Parquet or FITS with a ``label`` column. A table with
        ``p_<class>`` columns is a predictions table (named after the file);
        otherwise a labels table (named ``labels``), whose class is read from
        ``label_original`` where present (the six-class T11 label that ``spiralarms
        select`` writes beside the possibly merged ``label``), else from ``label``.
    merge : str or None, default "4,5+"
        See :func:`table4_classes`.

    Returns
    -------
    Source

    Raises
    ------
    SpiralArmsError
        If the file cannot be read, has no ``label`` column, or holds a label that
        is not a class.
    """
    path = Path(path)
    if not path.exists():
        raise SpiralArmsError(f"{path}: no such file")
    table = _read_galaxies(path).reset_index(drop=True)
    if "label" not in table.columns:
        raise SpiralArmsError(
            f"{path}: missing column 'label' (give a labels table from 'spiralarms select --out' "
            f"or a predictions table from 'spiralarms predict')"
        )
    is_predictions = any(str(c).startswith("p_") for c in table.columns)
    kind = "predictions" if is_predictions else "labels"
    name = table_stem(path) if is_predictions else LABELS_SOURCE
    n_input = len(table)
    n_errors = 0
    if "error" in table.columns:
        errors = table["error"]
        failed = (errors.notna() & (errors.astype(str).str.strip() != "")).to_numpy()
        n_errors = int(failed.sum())
        table = table.loc[~failed].reset_index(drop=True)
    # A labels table from 'spiralarms select' keeps the six-class T11 label in
    # label_original: it fits any merge, whatever merge the selection used.
    label_column = "label_original" if kind == "labels" and "label_original" in table.columns else "label"
    classes = table4_classes(table[label_column], merge, source=f"{path}: column {label_column!r}")
    known = classes.notna().to_numpy()
    galaxies = table.loc[known].reset_index(drop=True)
    galaxies["class"] = classes[known].to_numpy()
    n_duplicates = 0
    id_column = galaxy_id_column(galaxies)
    if id_column is not None:
        repeated = galaxies[id_column].astype(str).duplicated().to_numpy()
        n_duplicates = int(repeated.sum())
        if n_duplicates:
            first = galaxies.loc[repeated, id_column].iloc[0]
            warnings.warn(
                f"{path}: {n_duplicates} rows repeat an id already read (first {id_column} {first}); "
                "each galaxy is counted once, with its first row",
                SpiralArmsWarning,
                stacklevel=2,
            )
            galaxies = galaxies.loc[~repeated].reset_index(drop=True)
    return Source(
        name=name,
        kind=kind,
        path=str(path),
        galaxies=galaxies,
        n_input=n_input,
        n_excluded_errors=n_errors,
        n_without_class=int((~known).sum()),
        n_duplicates=n_duplicates,
    )


def _with_positions(galaxies: pd.DataFrame, positions: pd.DataFrame | None) -> pd.DataFrame:
    """Borrow ``ra``/``dec`` by id from a positions table for galaxies that have none."""
    if positions is None or galaxy_positions(galaxies) is not None or galaxy_id_column(galaxies) is None:
        return galaxies
    lookup_ids = galaxy_ids(positions)
    ra, dec = galaxy_positions(positions)
    known = lookup_ids.notna().to_numpy()
    index = pd.Index(lookup_ids.to_numpy(dtype=np.int64, na_value=0)[known])
    keep = ~index.duplicated()
    index = index[keep]
    ra, dec = ra[known][keep], dec[known][keep]
    ids = galaxy_ids(galaxies)
    found = np.full(len(galaxies), -1)
    ok = ids.notna().to_numpy()
    found[ok] = index.get_indexer(ids.to_numpy(dtype=np.int64, na_value=0)[ok])
    out = galaxies.copy()
    out["ra"] = np.where(found >= 0, ra[np.maximum(found, 0)], np.nan)
    out["dec"] = np.where(found >= 0, dec[np.maximum(found, 0)], np.nan)
    return out


def _id_text(galaxies: pd.DataFrame) -> pd.Series:
    column = galaxy_id_column(galaxies)
    if column is None:
        return pd.Series([str(i) for i in range(len(galaxies))], index=galaxies.index, dtype=object)
    return galaxies[column].astype(str)


def _unique_names(sources: list[Source]) -> None:
    seen: dict[str, int] = {}
    for source in sources:
        count = seen.get(source.name, 0) + 1
        seen[source.name] = count
        if count > 1:
            source.name = f"{source.name}-{count}"


def run_mass(
    inputs,
    mpajhu,
    out,
    *,
    match: str = "auto",
    tolerance_arcsec: float = 1.0,
    merge: str | None = TABLE4_MERGE,
    positions=None,
    figures: bool = True,
) -> MassResult:
    """Stellar mass against arm number for labels and predictions (section 6).

    Parameters
    ----------
    inputs : sequence of paths
        Labels and/or predictions tables (see :func:`read_source`), in the order of
        Table 4's blocks and the figures' panels.
    mpajhu : path or sequence of one or two paths
        The MPA-JHU catalogue (see :func:`~spiralarms.science.mpajhu.read_mpajhu`).
    out : path
        Output folder (created): see :data:`OUTPUT_FILES`.
    match : {"auto", "id", "sky"}, default "auto"
        See :func:`~spiralarms.science.crossmatch.crossmatch`.
    tolerance_arcsec : float, default 1.0
        Sky-match tolerance.
    merge : str or None, default "4,5+"
        Class merge of the Table 4 rows.
    positions : path, optional
        A table with an id column and ``ra``/``dec``: positions for sources that
        have none (prediction tables), looked up by id, for sky matching.
    figures : bool, default True
        Draw Figures 11 and 12.

    Returns
    -------
    MassResult
    """
    inputs = [Path(p) for p in ([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)]
    if not inputs:
        raise SpiralArmsError("mass: give at least one labels or predictions table")
    class_order = arm_classes(merge)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SpiralArmsError(f"{out}: exists and is not a folder")

    sources = [read_source(p, merge=merge) for p in inputs]
    _unique_names(sources)
    position_table = _read_galaxies(Path(positions)) if positions is not None else None
    if position_table is not None and (
        galaxy_positions(position_table) is None or galaxy_id_column(position_table) is None
    ):
        raise SpiralArmsError(f"{positions}: a positions table needs an id column and 'ra' and 'dec'")
    catalogue = load_mpajhu(mpajhu)

    summaries, matched_parts, unmatched_parts, rows4 = [], [], [], []
    for source in sources:
        galaxies = _with_positions(source.galaxies, position_table)
        result = crossmatch(galaxies, catalogue, method=match, tolerance_arcsec=tolerance_arcsec)
        if result.n_matched == 0:
            raise SpiralArmsError(
                f"{source.path}: none of its {len(galaxies)} galaxies matches the MPA-JHU catalogue {mpajhu} "
                f"(match {match!r}); check that they share ids or sky positions"
            )
        m = result.matched
        part = pd.DataFrame(
            {
                "source": source.name,
                "id": _id_text(m).to_numpy(),
                "class": m["class"].to_numpy(dtype=object),
                "label": m["label"].astype(str).to_numpy(dtype=object),
                "lgm_tot_p50": m["lgm_tot_p50"].to_numpy(dtype=np.float64),
                "z": m["z"].to_numpy(dtype=np.float64),
            }
        )
        for column in ("specobjid", "mpajhu_objid", "mpajhu_ra", "mpajhu_dec", "ra", "dec"):
            if column in m.columns:
                part[column] = m[column].to_numpy()
        part["match_method"] = m["match_method"].to_numpy(dtype=object)
        part["separation_arcsec"] = m["separation_arcsec"].to_numpy(dtype=np.float64)
        matched_parts.append(part)
        unmatched_parts.append(
            pd.DataFrame({"source": source.name, "id": _id_text(result.unmatched).to_numpy(dtype=object)})
        )
        rows4.append(table4(part["lgm_tot_p50"], part["class"], source=source.name, class_order=class_order))
        counts = part["class"].value_counts()
        summaries.append(
            SourceSummary(
                name=source.name,
                kind=source.kind,
                path=source.path,
                n_input=source.n_input,
                n_excluded_errors=source.n_excluded_errors,
                n_without_class=source.n_without_class,
                n_duplicates=source.n_duplicates,
                n_matched=result.n_matched,
                n_unmatched=result.n_unmatched,
                n_by_method=result.n_by_method,
                counts={c: int(counts.get(c, 0)) for c in class_order},
                notes=result.notes,
            )
        )

    matched = pd.concat(matched_parts, ignore_index=True)
    for column in ("specobjid", "mpajhu_objid"):
        if column in matched.columns:
            matched[column] = matched[column].astype("Int64")
    unmatched = pd.concat(unmatched_parts, ignore_index=True)
    table = pd.concat(rows4, ignore_index=True)[list(TABLE4_COLUMNS)]

    out.mkdir(parents=True, exist_ok=True)
    outputs = {key: str(out / name) for key, name in OUTPUT_FILES.items()}
    write_table(table, outputs["table4_csv"])
    write_text(outputs["table4_md"], table4_markdown(table))
    write_table(matched, outputs["matched"])
    write_table(unmatched, outputs["unmatched"])
    if figures:
        from spiralarms.science.figures import figure11, figure12

        names = [s.name for s in sources]
        figure11(matched, outputs["figure11"], sources=names, class_order=class_order)
        figure12(matched, outputs["figure12"], sources=names, class_order=class_order)
    else:
        outputs.pop("figure11")
        outputs.pop("figure12")
    result = MassResult(
        table4=table,
        matched=matched,
        unmatched=unmatched,
        sources=summaries,
        catalogue=catalogue,
        match={"method": match, "tolerance_arcsec": float(tolerance_arcsec)},
        outputs=outputs,
    )
    from spiralarms.reports.pages import mass_markdown, write_report_html

    page = mass_markdown(table, _page_summary(result), paper_table4(), out)
    outputs["report"] = str(write_report_html(out, "mass", title="Stellar mass and arm number", markdown=page))
    outputs["report_md"] = str(out / "report.md")
    write_json(outputs["summary"], result.to_dict())
    return result


def _page_summary(result: MassResult) -> dict:
    """What the report page lists of each source and the match."""
    sources = [{"name": s.name, "n": s.n_input, "matched": s.n_matched} for s in result.sources]
    return {"sources": sources, "match": dict(result.match)}
