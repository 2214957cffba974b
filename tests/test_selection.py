"""Clean-sample cuts (docs/contract.md, "The clean-sample cuts"): thresholds, NaN, ties, merges, Kaggle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spiralarms.catalog import schema as sch
from spiralarms.catalog.classes import ARM_CLASSES
from spiralarms.catalog.readers import read_catalog
from spiralarms.catalog.selection import CUT_THRESHOLDS, Selection, select_clean_sample
from spiralarms.errors import SpiralArmsError

FEATURES = sch.FEATURES_OR_DISK + sch.WEIGHTED_FRACTION
NOT_EDGE_ON = sch.NOT_EDGE_ON + sch.WEIGHTED_FRACTION
SPIRAL = sch.SPIRAL + sch.WEIGHTED_FRACTION
SPIRAL_COUNT = sch.SPIRAL + sch.COUNT
WF = [a + sch.WEIGHTED_FRACTION for a in sch.T11_ANSWERS]
DEB = [a + sch.DEBIASED for a in sch.T11_ANSWERS]
KAGGLE_T11 = list(sch.KAGGLE_T11)

REAL_TABLE = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "gz2-tables"
    / "willett13_table5_stripe82_coadd.csv.gz"
)


def gz2_row(label: str = "2", **overrides) -> dict:
    """One GZ2 row that passes every cut with T11 label ``label``, then ``overrides``."""
    k = ARM_CLASSES.index(label)
    row = {"dr7objid": 0, FEATURES: 0.9, NOT_EDGE_ON: 0.9, SPIRAL: 0.9, SPIRAL_COUNT: 30}
    for i in range(6):
        row[WF[i]] = 0.7 if i == k else 0.06
        row[DEB[i]] = 0.9 if i == k else 0.02
    row.update(overrides)
    return row


def gz2_table(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    table["dr7objid"] = np.arange(len(table), dtype=np.int64) + 8647474690312307154 - len(table)
    return table


def kaggle_row(label: int = 2, **overrides) -> dict:
    """A Kaggle row (cumulative fractions) passing cuts 1, 2, 3, 5 with label Class11.<label>."""
    row = {"GalaxyID": 0, "Class1.2": 0.9, "Class2.2": 0.8, "Class4.1": 0.7, "Class4.2": 0.1}
    for i in range(1, 7):
        row[f"Class11.{i}"] = 0.63 if i == label else 0.014
    row.update(overrides)
    return row


def kaggle_table(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    table["GalaxyID"] = np.arange(100000, 100000 + len(table))
    return table


def test_thresholds_are_the_papers():
    assert dict(CUT_THRESHOLDS) == {1: 0.430, 2: 0.715, 3: 0.715, 4: 20, 5: 0.8}
    with pytest.raises(TypeError):
        CUT_THRESHOLDS[1] = 0.5


@pytest.mark.parametrize(
    ("cut", "column", "at", "above"),
    [
        (1, FEATURES, 0.430, 0.431),
        (2, NOT_EDGE_ON, 0.715, 0.716),
        (3, SPIRAL, 0.715, 0.716),
        (4, SPIRAL_COUNT, 20, 21),
    ],
)
def test_gz2_cut_is_strict(cut, column, at, above):
    table = gz2_table([gz2_row(**{column: at}), gz2_row(**{column: above})])
    sel = select_clean_sample(table)
    assert sel.n_selected == 1
    assert sel.selected["dr7objid"].tolist() == [table["dr7objid"][1]]
    assert sel.removed_by_cut[cut] == 1
    assert sum(sel.removed_by_cut.values()) == 1
    assert sel.n_missing == 0


def test_gz2_debiased_threshold_is_strict():
    at = gz2_row("3", **{DEB[2]: 0.8})
    above = gz2_row("3", **{DEB[2]: 0.8001})
    sel = select_clean_sample(gz2_table([at, above]))
    assert sel.n_selected == 1
    assert sel.removed_by_cut == {1: 0, 2: 0, 3: 0, 4: 0, 5: 1}
    assert sel.selected["label"].tolist() == ["3"]


def test_cut5_reads_the_debiased_of_the_weighted_argmax_only():
    # Label is "1" by weighted fraction; a high debiased on another answer must not rescue it.
    row = gz2_row("1", **{DEB[0]: 0.5, DEB[1]: 0.99})
    sel = select_clean_sample(gz2_table([row]))
    assert sel.n_selected == 0 and sel.removed_by_cut[5] == 1


def test_float32_value_written_at_threshold_is_not_above_it():
    table = gz2_table([gz2_row(), gz2_row()])
    table[FEATURES] = np.array([0.430, 0.44], dtype=np.float32)
    assert np.float64(np.float32(0.430)) > 0.430  # the trap a float64 comparison falls into
    sel = select_clean_sample(table)
    assert sel.n_selected == 1 and sel.removed_by_cut[1] == 1


@pytest.mark.parametrize("column", sch.gz2_required_columns())
def test_nan_in_any_cut_column_is_counted_apart(column):
    table = gz2_table([gz2_row(), gz2_row(**{column: np.nan}), gz2_row("?")])
    sel = select_clean_sample(table)
    assert sel.n_input == 3
    assert sel.n_missing == 1
    assert sel.n_selected == 2
    assert sum(sel.removed_by_cut.values()) == 0
    assert table["dr7objid"][1] not in set(sel.selected["dr7objid"])
    assert sel.missing["id"].tolist() == [table["dr7objid"][1]]
    assert sel.missing["column"].tolist() == [column]
    assert sel.missing.index.tolist() == [1]


def test_missing_lists_the_first_nan_column():
    row = gz2_row(**{SPIRAL: np.nan, WF[3]: np.nan})
    sel = select_clean_sample(gz2_table([row]))
    assert sel.missing["column"].tolist() == [SPIRAL]


def test_nan_in_a_column_no_cut_reads_is_harmless():
    table = gz2_table([gz2_row(), gz2_row()])
    table["t03_bar_a06_bar_debiased"] = [np.nan, 0.2]
    sel = select_clean_sample(table)
    assert sel.n_selected == 2 and sel.n_missing == 0


def test_t11_ties_go_to_the_earlier_class():
    tie_23 = gz2_row("2", **{WF[1]: 0.45, WF[2]: 0.45, DEB[1]: 0.85, DEB[2]: 0.85})
    tie_1q = gz2_row("1", **{WF[0]: 0.5, WF[5]: 0.5, DEB[0]: 0.9, DEB[5]: 0.9})
    tie_45 = gz2_row("4", **{WF[3]: 0.4, WF[4]: 0.4, DEB[3]: 0.81, DEB[4]: 0.81})
    sel = select_clean_sample(gz2_table([tie_23, tie_1q, tie_45]))
    assert sel.selected["label"].tolist() == ["2", "1", "4"]


def test_tie_winner_decides_which_debiased_is_read():
    # Tie between 2 and 3: label 2, whose debiased is too low, so the galaxy is cut.
    row = gz2_row("2", **{WF[1]: 0.45, WF[2]: 0.45, DEB[1]: 0.5, DEB[2]: 0.95})
    sel = select_clean_sample(gz2_table([row]))
    assert sel.n_selected == 0 and sel.removed_by_cut[5] == 1


def test_labels_and_counts_without_merge():
    labels = ["1", "2", "2", "3", "4", "5+", "?", "?"]
    sel = select_clean_sample(gz2_table([gz2_row(c) for c in labels]))
    assert sel.classes == ARM_CLASSES
    assert list(sel.counts) == list(ARM_CLASSES)
    assert sel.counts == {"1": 1, "2": 2, "3": 1, "4": 1, "5+": 1, "?": 2}
    assert sel.selected["label"].tolist() == labels
    assert sel.selected["label_original"].tolist() == labels
    assert sel.selected["label_index"].tolist() == [ARM_CLASSES.index(c) for c in labels]


def test_zero_classes_are_reported():
    sel = select_clean_sample(gz2_table([gz2_row("2"), gz2_row("2")]))
    assert sel.counts == {"1": 0, "2": 2, "3": 0, "4": 0, "5+": 0, "?": 0}


@pytest.mark.parametrize(
    ("merge", "classes", "merged"),
    [
        ("3,4", ("1", "2", "3,4", "5+", "?"), {"3": "3,4", "4": "3,4"}),
        ("4,5+", ("1", "2", "3", "4,5+", "?"), {"4": "4,5+", "5+": "4,5+"}),
    ],
)
def test_merges(merge, classes, merged):
    labels = ["1", "2", "3", "4", "5+", "?", "4"]
    sel = select_clean_sample(gz2_table([gz2_row(c) for c in labels]), merge=merge)
    assert sel.classes == classes
    assert list(sel.counts) == list(classes)
    expected = [merged.get(c, c) for c in labels]
    assert sel.selected["label"].tolist() == expected
    assert sel.selected["label_original"].tolist() == labels
    assert sel.selected["label_index"].tolist() == [classes.index(c) for c in expected]
    assert sel.counts[",".join(merged)] == sum(c in merged for c in labels)
    assert sum(sel.counts.values()) == sel.n_selected == len(labels)


@pytest.mark.parametrize("merge", ["2,4", "7", "3"])
def test_bad_merge_is_a_user_error(merge):
    with pytest.raises(SpiralArmsError, match="merge"):
        select_clean_sample(gz2_table([gz2_row()]), merge=merge)


def test_selected_keeps_all_original_columns():
    table = gz2_table([gz2_row(), gz2_row(**{FEATURES: 0.1})])
    table["file"] = ["a.jpg", "b.jpg"]
    table["ra"] = [10.0, 11.0]
    sel = select_clean_sample(table)
    assert list(sel.selected.columns) == [*table.columns, "label", "label_original", "label_index"]
    assert sel.selected["file"].tolist() == ["a.jpg"]
    assert "label" not in table.columns  # the input is not modified


def test_removed_by_cut_is_sequential():
    # Fails cuts 1 and 2: counted once, at cut 1.
    rows = [gz2_row(**{FEATURES: 0.1, NOT_EDGE_ON: 0.1}), gz2_row(**{NOT_EDGE_ON: 0.1, SPIRAL_COUNT: 3}), gz2_row()]
    sel = select_clean_sample(gz2_table(rows))
    assert sel.removed_by_cut == {1: 1, 2: 1, 3: 0, 4: 0, 5: 0}
    assert sel.n_selected + sel.n_missing + sum(sel.removed_by_cut.values()) == sel.n_input


def test_summary_is_the_json_contract():
    table = gz2_table([gz2_row("1"), gz2_row("?"), gz2_row(**{SPIRAL: np.nan}), gz2_row(**{FEATURES: 0.0})])
    summary = select_clean_sample(table, merge="4,5+").summary()
    assert summary == {
        "n_input": 4,
        "n_selected": 2,
        "n_missing": 1,
        "counts": {"1": 1, "2": 0, "3": 0, "4,5+": 0, "?": 1},
    }
    assert list(summary) == ["n_input", "n_selected", "n_missing", "counts"]
    assert list(summary["counts"]) == ["1", "2", "3", "4,5+", "?"]
    for value in [summary["n_input"], summary["n_selected"], summary["n_missing"], *summary["counts"].values()]:
        assert type(value) is int


def test_empty_table():
    table = gz2_table([gz2_row()]).iloc[:0]
    sel = select_clean_sample(table)
    assert sel.summary() == {"n_input": 0, "n_selected": 0, "n_missing": 0, "counts": dict.fromkeys(ARM_CLASSES, 0)}
    assert isinstance(sel, Selection)


def test_missing_column_names_it():
    table = gz2_table([gz2_row()]).drop(columns=[DEB[4]])
    with pytest.raises(SpiralArmsError, match=DEB[4]):
        select_clean_sample(table)


def test_non_numeric_column_is_an_error():
    table = gz2_table([gz2_row()])
    table[SPIRAL] = ["high"]
    with pytest.raises(SpiralArmsError, match=SPIRAL):
        select_clean_sample(table)


def test_unknown_schema():
    with pytest.raises(SpiralArmsError, match="schema"):
        select_clean_sample(gz2_table([gz2_row()]), schema="hubble")


def test_auto_schema():
    assert select_clean_sample(gz2_table([gz2_row()]), schema="auto").schema == "gz2"
    assert select_clean_sample(kaggle_table([kaggle_row()]), schema="auto").schema == "kaggle"


# Kaggle Galaxy Challenge schema -------------------------------------------------------


def test_kaggle_passing_row_and_labels():
    sel = select_clean_sample(kaggle_table([kaggle_row(k) for k in range(1, 7)]), schema="kaggle")
    assert sel.n_selected == 6
    assert sel.selected["label"].tolist() == list(ARM_CLASSES)
    assert set(sel.removed_by_cut) == {1, 2, 3, 5}
    assert any("cut 4" in note and "skipped" in note for note in sel.notes)


@pytest.mark.parametrize(
    ("cut", "at", "above"),
    [
        # Cut 1: Class1.2 itself.
        (1, {"Class1.2": 0.430, "Class2.2": 0.4}, {"Class1.2": 0.431, "Class2.2": 0.4}),
        # Cut 2: Class2.2 / Class1.2 (denominator 1 keeps the ratio exact).
        (2, {"Class1.2": 1.0, "Class2.2": 0.715}, {"Class1.2": 1.0, "Class2.2": 0.716}),
        # Cut 3: Class4.1 / (Class4.1 + Class4.2), denominator 1.
        (3, {"Class4.1": 0.715, "Class4.2": 0.285}, {"Class4.1": 0.716, "Class4.2": 0.284}),
        # Cut 5: Class11.k / sum(Class11.*), sum 1.
        (
            5,
            {**dict.fromkeys(KAGGLE_T11, 0.0), "Class11.2": 0.8, "Class11.1": 0.2},
            {**dict.fromkeys(KAGGLE_T11, 0.0), "Class11.2": 0.81, "Class11.1": 0.19},
        ),
    ],
)
def test_kaggle_cuts_are_strict(cut, at, above):
    table = kaggle_table([kaggle_row(**at), kaggle_row(**above)])
    sel = select_clean_sample(table, schema="kaggle")
    assert sel.selected["GalaxyID"].tolist() == [table["GalaxyID"][1]]
    assert sel.removed_by_cut[cut] == 1
    assert sum(sel.removed_by_cut.values()) == 1


def test_kaggle_ratio_uses_the_ratio_not_the_raw_fraction():
    # Class2.2 = 0.5 is below 0.715, but 0.5 / 0.6 = 0.83 passes cut 2.
    sel = select_clean_sample(kaggle_table([kaggle_row(**{"Class1.2": 0.6, "Class2.2": 0.5})]), schema="kaggle")
    assert sel.n_selected == 1


def test_kaggle_zero_denominator_fails_the_cut_and_is_noted():
    spiral_zero = kaggle_row(**{"Class4.1": 0.0, "Class4.2": 0.0})
    arms_zero = kaggle_row(**{f"Class11.{i}": 0.0 for i in range(1, 7)})
    sel = select_clean_sample(kaggle_table([spiral_zero, arms_zero, kaggle_row()]), schema="kaggle")
    assert sel.n_selected == 1
    assert sel.removed_by_cut == {1: 0, 2: 0, 3: 1, 5: 1}
    assert sel.n_missing == 0
    assert any(note.startswith("cut 3") and "1 rows with a zero denominator" in note for note in sel.notes)
    assert any(note.startswith("cut 5") and "zero denominator" in note for note in sel.notes)


def test_kaggle_tie_cannot_pass_cut5():
    # A tie holds at most half of the T11 votes, so cut 5 (> 0.8) always removes it.
    row = kaggle_row(**{f"Class11.{i}": 0.0 for i in range(1, 7)})
    row.update({"Class11.3": 0.45, "Class11.4": 0.45})
    sel = select_clean_sample(kaggle_table([row]), schema="kaggle")
    assert sel.n_selected == 0 and sel.removed_by_cut[5] == 1


def test_kaggle_nan_is_counted_apart():
    table = kaggle_table([kaggle_row(), kaggle_row(**{"Class11.4": np.nan})])
    sel = select_clean_sample(table, schema="kaggle")
    assert (sel.n_selected, sel.n_missing, sum(sel.removed_by_cut.values())) == (1, 1, 0)
    assert sel.missing["column"].tolist() == ["Class11.4"]
    assert sel.missing["id"].tolist() == [table["GalaxyID"][1]]


# Real data ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_table():
    if not REAL_TABLE.is_file():
        pytest.skip(f"real GZ2 table not found at {REAL_TABLE}")
    return read_catalog(REAL_TABLE)


@pytest.mark.realdata
@pytest.mark.parametrize("merge", [None, "3,4", "4,5+"])
def test_real_stripe82_selection_invariants(real_table, merge):
    sel = select_clean_sample(real_table, merge=merge)
    assert sel.n_input == 19761
    assert sel.n_selected + sel.n_missing + sum(sel.removed_by_cut.values()) == sel.n_input
    assert sum(sel.counts.values()) == sel.n_selected == len(sel.selected)
    assert sel.selected["dr7objid"].dtype == np.int64

    # Every cut recomputed directly on the raw columns.
    raw = real_table
    wf = raw[WF].to_numpy()
    deb = raw[DEB].to_numpy()
    label = np.argmax(wf, axis=1)
    keep = (
        (raw[FEATURES].to_numpy() > 0.430)
        & (raw[NOT_EDGE_ON].to_numpy() > 0.715)
        & (raw[SPIRAL].to_numpy() > 0.715)
        & (raw[SPIRAL_COUNT].to_numpy() > 20)
        & (deb[np.arange(len(raw)), label] > 0.8)
    )
    assert set(sel.selected["dr7objid"]) == set(raw["dr7objid"][keep])
    assert np.array_equal(
        sel.selected["label_original"].to_numpy(dtype=object),
        np.array(ARM_CLASSES, dtype=object)[label[keep]],
    )
    s = sel.selected
    assert (s[FEATURES] > 0.430).all() and (s[NOT_EDGE_ON] > 0.715).all()
    assert (s[SPIRAL] > 0.715).all() and (s[SPIRAL_COUNT] > 20).all()
