"""Clean-sample selection and arm-number labels (paper section 2.1).

GZ2 schema, all inequalities strict:

1. ``t01_smooth_or_features_a02_features_or_disk_weighted_fraction > 0.430``
2. ``t02_edgeon_a05_no_weighted_fraction > 0.715``
3. ``t04_spiral_a08_spiral_weighted_fraction > 0.715``
4. ``t04_spiral_a08_spiral_count > 20``
5. label = the T11 answer with the highest ``_weighted_fraction`` (ties go to the
   earlier class); keep the galaxy only if that answer's ``_debiased`` > 0.8.

Kaggle Galaxy Challenge schema (cumulative vote fractions): cut 1 on ``Class1.2``;
cut 2 on ``Class2.2 / Class1.2``; cut 3 on ``Class4.1 / (Class4.1 + Class4.2)``;
cut 4 is skipped (the table has no vote counts); label = argmax of
``Class11.1..6``; cut 5 on ``Class11.k / sum(Class11.*)``. A ratio whose denominator
is zero is undefined: the galaxy fails that cut (and a note says how many did).

Rows with a missing (NaN) value in any column that the cuts read are not selected
and are counted apart (``n_missing``), never dropped silently. Thresholds are compared
in the column's own precision, so a float32 value written ``0.715`` is at, not above,
the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd

from spiralarms.catalog import schema as sch
from spiralarms.catalog.classes import ARM_CLASSES, arm_classes, class_mapping
from spiralarms.catalog.readers import detect_schema, id_columns, require_vote_columns
from spiralarms.errors import SpiralArmsError

#: Thresholds of the five cuts, by cut number (all strict ``>``).
CUT_THRESHOLDS = MappingProxyType({1: 0.430, 2: 0.715, 3: 0.715, 4: 20, 5: 0.8})

#: What each cut tests, by schema and cut number.
CUT_DESCRIPTIONS = MappingProxyType(
    {
        "gz2": MappingProxyType(
            {
                1: f"features or disc weighted fraction > {CUT_THRESHOLDS[1]:.3f}",
                2: f"not edge-on weighted fraction > {CUT_THRESHOLDS[2]:.3f}",
                3: f"spiral weighted fraction > {CUT_THRESHOLDS[3]:.3f}",
                4: f"spiral vote count > {CUT_THRESHOLDS[4]}",
                5: f"debiased fraction of the T11 label > {CUT_THRESHOLDS[5]}",
            }
        ),
        "kaggle": MappingProxyType(
            {
                1: f"Class1.2 > {CUT_THRESHOLDS[1]:.3f}",
                2: f"Class2.2 / Class1.2 > {CUT_THRESHOLDS[2]:.3f}",
                3: f"Class4.1 / (Class4.1 + Class4.2) > {CUT_THRESHOLDS[3]:.3f}",
                5: f"Class11 label / sum(Class11.*) > {CUT_THRESHOLDS[5]}",
            }
        ),
    }
)


@dataclass
class Selection:
    """The clean sample and its bookkeeping, as :func:`select_clean_sample` returns it.

    Attributes
    ----------
    selected : pandas.DataFrame
        The kept rows with all their original columns, plus ``label`` (class name
        after the merge), ``label_original`` (one of the six T11 classes) and
        ``label_index`` (position of ``label`` in ``classes``).
    classes : tuple of str
        Class names after the merge, in class order.
    n_input, n_selected, n_missing : int
        Rows read; rows kept; rows not selectable because a column a cut reads is
        missing (NaN). ``n_selected + n_missing + sum(removed_by_cut.values())``
        equals ``n_input``.
    counts : dict
        Selected galaxies per class, every class of ``classes`` in order (zeros
        included).
    removed_by_cut : dict
        Rows removed at each cut (by cut number), applying the cuts one after the
        other to the rows without missing values. Kaggle tables have no cut 4.
    notes : list of str
        Remarks on the selection (a skipped cut, undefined ratios).
    missing : pandas.DataFrame
        One row per not-selectable galaxy (index as in the input): ``id`` and the
        first ``column`` found missing.
    schema : str
        ``"gz2"`` or ``"kaggle"``.
    """

    selected: pd.DataFrame = field(repr=False)
    classes: tuple[str, ...]
    n_input: int
    n_selected: int
    n_missing: int
    counts: dict[str, int]
    removed_by_cut: dict[int, int]
    notes: list[str] = field(default_factory=list)
    missing: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["id", "column"]), repr=False)
    schema: str = "gz2"

    def summary(self) -> dict:
        """The JSON summary of the selection (docs/contract.md, "Command line": ``select --json``).

        Returns
        -------
        dict
            ``{"n_input": int, "n_selected": int, "n_missing": int, "counts":
            {class: int, ...}}`` with plain Python ints and the classes (after the
            merge) in class order.
        """
        return {
            "n_input": int(self.n_input),
            "n_selected": int(self.n_selected),
            "n_missing": int(self.n_missing),
            "counts": {str(name): int(self.counts[name]) for name in self.classes},
        }


def _column(table: pd.DataFrame, name: str) -> np.ndarray:
    """A cut column as a NumPy array in its own precision (float32 stays float32)."""
    values = table[name]
    if pd.api.types.is_bool_dtype(values.dtype) or not pd.api.types.is_numeric_dtype(values.dtype):
        raise SpiralArmsError(f"column {name!r} is not numeric (dtype {values.dtype})")
    if isinstance(values.dtype, np.dtype):
        return values.to_numpy()
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``numerator / denominator``, NaN where the denominator is zero; and that mask."""
    numerator = numerator.astype(np.float64)
    denominator = denominator.astype(np.float64)
    zero = denominator == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(zero, np.nan, numerator / np.where(zero, 1.0, denominator))
    return ratio, zero


def _gz2_cuts(table: pd.DataFrame):
    """Pass masks of cuts 1-4, the T11 label index and the pass mask of cut 5."""
    features = _column(table, sch.FEATURES_OR_DISK + sch.WEIGHTED_FRACTION)
    not_edge_on = _column(table, sch.NOT_EDGE_ON + sch.WEIGHTED_FRACTION)
    spiral = _column(table, sch.SPIRAL + sch.WEIGHTED_FRACTION)
    spiral_count = _column(table, sch.SPIRAL + sch.COUNT)
    cuts = {
        1: features > CUT_THRESHOLDS[1],
        2: not_edge_on > CUT_THRESHOLDS[2],
        3: spiral > CUT_THRESHOLDS[3],
        4: spiral_count > CUT_THRESHOLDS[4],
    }
    weighted = np.column_stack([_column(table, a + sch.WEIGHTED_FRACTION) for a in sch.T11_ANSWERS])
    debiased = [_column(table, a + sch.DEBIASED) for a in sch.T11_ANSWERS]
    # argmax returns the first maximum: ties go to the earlier class.
    label_index = np.argmax(weighted, axis=1)
    passed = np.zeros(len(table), dtype=bool)
    for k, column in enumerate(debiased):
        rows = label_index == k
        passed[rows] = column[rows] > CUT_THRESHOLDS[5]
    cuts[5] = passed
    return cuts, label_index, {}


def _kaggle_cuts(table: pd.DataFrame):
    """Kaggle cuts 1, 2, 3 and 5, the label index, and the undefined-ratio masks."""
    features = _column(table, sch.KAGGLE_FEATURES)
    not_edge_on, zero2 = _ratio(_column(table, sch.KAGGLE_NOT_EDGE_ON), features)
    yes = _column(table, sch.KAGGLE_SPIRAL_YES).astype(np.float64)
    spiral, zero3 = _ratio(yes, yes + _column(table, sch.KAGGLE_SPIRAL_NO))
    arms = np.column_stack([_column(table, c) for c in sch.KAGGLE_T11]).astype(np.float64)
    label_index = np.argmax(arms, axis=1)
    share, zero5 = _ratio(arms[np.arange(len(table)), label_index], arms.sum(axis=1))
    with np.errstate(invalid="ignore"):
        cuts = {
            1: features > CUT_THRESHOLDS[1],
            2: not_edge_on > CUT_THRESHOLDS[2],
            3: spiral > CUT_THRESHOLDS[3],
            5: share > CUT_THRESHOLDS[5],
        }
    return cuts, label_index, {2: zero2, 3: zero3, 5: zero5}


def select_clean_sample(table: pd.DataFrame, schema: str = "gz2", merge=None) -> Selection:
    """Apply the paper's clean-sample cuts and label each kept galaxy by arm number.

    Parameters
    ----------
    table : pandas.DataFrame
        A catalogue in the GZ2 or Kaggle schema (see :func:`read_catalog`).
    schema : {"gz2", "kaggle", "auto"}, default "gz2"
        Catalogue schema; ``"auto"`` tells it from the id column.
    merge : str, sequence of str or None, optional
        Class merge, ``"3,4"`` or ``"4,5+"`` (see
        :func:`spiralarms.catalog.classes.parse_merge`).

    Returns
    -------
    Selection
        The selected rows with their labels, per-class counts, the rows removed at
        each cut and the rows with missing values.

    Raises
    ------
    SpiralArmsError
        If a column the cuts read is missing or not numeric, the schema is unknown or
        the merge is not valid.

    Notes
    -----
    Cuts are strict inequalities, compared in each column's own precision. Rows with
    a NaN in any column the cuts read are counted in ``n_missing`` and listed in
    ``Selection.missing``; they appear in no cut of ``removed_by_cut``. For the Kaggle
    schema a zero denominator makes a ratio undefined and the row fails that cut.

    Examples
    --------
    >>> selection = select_clean_sample(read_catalog("gz2.csv"), merge="4,5+")  # doctest: +SKIP
    >>> selection.summary()["counts"]  # doctest: +SKIP
    {'1': 165, '2': 10677, '3': 298, '4,5+': 59, '?': 519}
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"select_clean_sample expects a pandas.DataFrame, not {type(table).__name__}")
    if schema == "auto":
        schema = detect_schema(table.columns)
    needed = require_vote_columns(table.columns, schema, "catalog")
    classes = arm_classes(merge)
    to_merged = class_mapping(merge)

    n_input = len(table)
    nan = np.column_stack([np.isnan(_column(table, c).astype(np.float64)) for c in needed])
    missing_rows = nan.any(axis=1)
    cuts, label_index, undefined = (_gz2_cuts if schema == "gz2" else _kaggle_cuts)(table)

    alive = ~missing_rows
    removed_by_cut: dict[int, int] = {}
    notes: list[str] = []
    for number, passed in cuts.items():
        if number in undefined:
            n_undefined = int(np.count_nonzero(alive & undefined[number]))
            if n_undefined:
                notes.append(
                    f"cut {number} ({CUT_DESCRIPTIONS[schema][number]}): {n_undefined} rows with a "
                    f"zero denominator failed the cut"
                )
        removed_by_cut[number] = int(np.count_nonzero(alive & ~passed))
        alive &= passed
    if schema == "kaggle":
        notes.insert(0, "cut 4 (spiral vote count > 20) skipped: the Kaggle table has no vote counts")

    id_column = next((c for c in id_columns(schema) if c in table.columns), None)
    ids = table[id_column] if id_column is not None else pd.Series(table.index, index=table.index)
    first_nan = [needed[k] for k in np.argmax(nan[missing_rows], axis=1)]
    missing = pd.DataFrame(
        {"id": ids[missing_rows].to_numpy(), "column": first_nan},
        index=table.index[missing_rows],
    )

    selected = table.loc[alive].copy()
    original = [ARM_CLASSES[k] for k in label_index[alive]]
    merged = [to_merged[c] for c in original]
    selected["label"] = pd.Series(merged, index=selected.index, dtype=str)
    selected["label_original"] = pd.Series(original, index=selected.index, dtype=str)
    selected["label_index"] = np.array([classes.index(c) for c in merged], dtype=np.int64)
    per_class = np.bincount(selected["label_index"].to_numpy(), minlength=len(classes))

    return Selection(
        selected=selected,
        classes=classes,
        n_input=int(n_input),
        n_selected=int(alive.sum()),
        n_missing=int(missing_rows.sum()),
        counts={name: int(n) for name, n in zip(classes, per_class, strict=True)},
        removed_by_cut=removed_by_cut,
        notes=notes,
        missing=missing,
        schema=schema,
    )


def vote_fractions(table: pd.DataFrame, classes, merge=None) -> np.ndarray:
    """The T11 vote fractions of each galaxy over ``classes``: soft labels.

    GZ2 tables give the weighted fractions (the columns the label is the argmax
    of); Kaggle tables the ``Class11.*`` columns. Each row is normalised to sum to
    1 (cut 3 removes the galaxies where T11 was rarely reached, but not all), and
    merged classes add their members' fractions.

    Parameters
    ----------
    table : pandas.DataFrame
        Selected galaxies with their vote columns.
    classes : sequence of str
        Class names in the model's order (after ``merge``).
    merge : str or sequence of str, optional
        The class merge of ``classes``.

    Returns
    -------
    numpy.ndarray
        ``(len(table), len(classes))`` float32, rows summing to 1.

    Raises
    ------
    SpiralArmsError
        If the vote columns are absent, or a row has no T11 votes.
    """
    gz2 = [a + sch.WEIGHTED_FRACTION for a in sch.T11_ANSWERS]
    columns = gz2 if all(c in table.columns for c in gz2) else list(sch.KAGGLE_T11)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise SpiralArmsError(f"soft labels need the T11 vote columns; missing {missing[0]!r} (and {len(missing) - 1} more)")
    votes = table[columns].to_numpy(dtype=np.float64)
    totals = votes.sum(axis=1)
    bad = ~(totals > 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SpiralArmsError(f"soft labels: row {row} has no T11 votes ({columns[0]} ... all zero or missing)")
    votes = votes / totals[:, None]
    mapping = class_mapping(merge)
    position = {name: j for j, name in enumerate(classes)}
    out = np.zeros((len(table), len(classes)), dtype=np.float64)
    for k, original in enumerate(ARM_CLASSES):
        target = position.get(mapping[original])
        if target is not None:
            out[:, target] += votes[:, k]
    # Classes left out of the model (an empty class dropped) give their share back.
    out /= np.clip(out.sum(axis=1, keepdims=True), 1e-12, None)
    return out.astype(np.float32)


def read_clean_sample(
    catalog,
    *,
    schema: str = "auto",
    merge=None,
    resolve_images: bool = False,
    mapping=None,
    image_dir=None,
) -> Selection:
    """Read a catalogue, apply the clean-sample cuts and, if asked, find each image.

    The one place where a catalogue file becomes the labelled sample: ``select``,
    ``prepare``, training and the reproduction all start here.

    Parameters
    ----------
    catalog : str or path-like
        GZ2 or Kaggle catalogue (CSV, CSV.gz, Parquet or FITS).
    schema : {"auto", "gz2", "kaggle"}, default "auto"
    merge : str or None
        Class merge (``"3,4"`` or ``"4,5+"``); checked before the catalogue is read.
    resolve_images : bool, default False
        Add an absolute ``file`` column to ``selected`` (see
        :func:`~spiralarms.catalog.readers.resolve_image_paths`; ``None`` where no
        image is found).
    mapping, image_dir : optional
        Where the images are, as for :func:`~spiralarms.catalog.readers.resolve_image_paths`.

    Returns
    -------
    Selection
        With ``schema`` the resolved schema name.

    Raises
    ------
    SpiralArmsError
        On a bad merge, an unreadable catalogue or a missing column.
    """
    from spiralarms.catalog.readers import read_catalog, resolve_image_paths

    arm_classes(merge)  # a bad merge fails before a large catalogue is read
    table, resolved = read_catalog(catalog, schema=schema, return_schema=True)
    selection = select_clean_sample(table, schema=resolved, merge=merge)
    if resolve_images:
        selection.selected = resolve_image_paths(selection.selected, catalog, mapping=mapping, image_dir=image_dir)
    return selection
