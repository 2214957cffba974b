"""Table 4 statistics: KS and t tests of a class against the whole sample, and the paper's numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from spiralarms.errors import SpiralArmsError
from spiralarms.science.statistics import (
    PAPER_TABLE4,
    TABLE4_CLASSES,
    TABLE4_COLUMNS,
    compare_to_whole_sample,
    student_t_p_value,
    t_test,
    table4,
    table4_markdown,
)

SAMPLE = np.array([10.9, 11.3, 10.7, 11.8, 11.1])
OTHERS = np.array([10.2, 10.5, 9.8, 10.9, 10.1, 10.4, 11.0, 9.9])
WHOLE = np.concatenate([SAMPLE, OTHERS])

PAPER_N = 11291


def test_table4_rows_are_the_papers():
    assert TABLE4_CLASSES == ("1", "2", "3", "4,5+", "?")
    assert TABLE4_COLUMNS == (
        "source", "class", "n", "ks_stat", "ks_p", "t_stat", "t_p_two_sided",
        "t_p_one_sided", "welch_t_stat", "welch_p_two_sided", "welch_p_one_sided",
    )  # fmt: skip


def test_against_scipy():
    c = compare_to_whole_sample(SAMPLE, WHOLE)
    ks = stats.ks_2samp(SAMPLE, WHOLE)
    student = stats.ttest_ind(SAMPLE, WHOLE, equal_var=True)
    welch = stats.ttest_ind(SAMPLE, WHOLE, equal_var=False)
    assert c.n == 5
    assert (c.ks_stat, c.ks_p) == pytest.approx((ks.statistic, ks.pvalue))
    assert (c.t_stat, c.t_p_two_sided) == pytest.approx((student.statistic, student.pvalue))
    assert (c.welch_t_stat, c.welch_p_two_sided) == pytest.approx((welch.statistic, welch.pvalue))
    assert c.t_p_one_sided == pytest.approx(stats.ttest_ind(SAMPLE, WHOLE, alternative="greater").pvalue)
    one_tailed = stats.ttest_ind(SAMPLE, WHOLE, equal_var=False, alternative="greater")
    assert c.welch_p_one_sided == pytest.approx(one_tailed.pvalue) and c.welch_t_stat > 0


def test_student_t_by_the_textbook_formula():
    n1, n2 = len(SAMPLE), len(WHOLE)
    pooled = ((n1 - 1) * SAMPLE.var(ddof=1) + (n2 - 1) * WHOLE.var(ddof=1)) / (n1 + n2 - 2)
    t = (SAMPLE.mean() - WHOLE.mean()) / np.sqrt(pooled * (1 / n1 + 1 / n2))
    p_two = 2 * stats.t.sf(abs(t), n1 + n2 - 2)
    got_t, got_two, got_one = t_test(SAMPLE, WHOLE)
    assert got_t == pytest.approx(t, rel=1e-12)
    assert got_two == pytest.approx(p_two, rel=1e-9)
    assert got_one == pytest.approx(p_two / 2, rel=1e-9)


def test_welch_t_by_the_textbook_formula():
    v1, v2 = SAMPLE.var(ddof=1) / len(SAMPLE), WHOLE.var(ddof=1) / len(WHOLE)
    t = (SAMPLE.mean() - WHOLE.mean()) / np.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1**2 / (len(SAMPLE) - 1) + v2**2 / (len(WHOLE) - 1))
    got_t, got_two, got_one = t_test(SAMPLE, WHOLE, equal_var=False)
    assert got_t == pytest.approx(t, rel=1e-12)
    assert got_two == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9)
    assert got_one == pytest.approx(got_two / 2, rel=1e-9)


@pytest.mark.parametrize("sign", [1, -1])
def test_one_sided_p_is_on_the_side_of_the_sign(sign):
    sample = 10.5 + sign * (SAMPLE - 10.5)
    whole = np.concatenate([sample, OTHERS])
    t, two, one = t_test(sample, whole)
    assert np.sign(t) == sign
    side = "greater" if sign > 0 else "less"
    assert one == pytest.approx(stats.ttest_ind(sample, whole, alternative=side).pvalue)
    assert one == pytest.approx(two / 2)
    assert one < 0.5


def test_papers_label_row_m1_is_a_two_sided_student_p():
    """n = 161 against the parent sample of 11291, t = 2.4429: the paper prints p = 0.0146."""
    assert student_t_p_value(2.4429, 161, PAPER_N) == pytest.approx(0.0146, abs=5e-5)
    assert student_t_p_value(2.4429, 161, PAPER_N, "signed") == pytest.approx(0.0073, abs=5e-5)
    assert student_t_p_value(2.4429, 161, PAPER_N, "greater") == pytest.approx(0.0073, abs=5e-5)
    assert student_t_p_value(-2.4429, 161, PAPER_N, "less") == pytest.approx(0.0073, abs=5e-5)
    # Welch's test, with the class's variance like the parent's, has about 165 degrees
    # of freedom: its p would print as 0.0156, not 0.0146.
    a, b = 1 / 161, 1 / PAPER_N
    welch_df = (a + b) ** 2 / (a**2 / 160 + b**2 / (PAPER_N - 1))
    assert round(2 * stats.t.sf(2.4429, welch_df), 4) == 0.0156


@pytest.mark.parametrize("row", PAPER_TABLE4, ids=lambda r: f"{r[0]}-{r[1]}")
def test_every_paper_t_row_fits_student_two_sided(row):
    _, _, n, _, _, t, p = row
    # t is printed to 4 decimals: allow its rounding.
    bounds = [student_t_p_value(t + d, n, PAPER_N) for d in (-5e-5, 5e-5)]
    assert min(bounds) - 5e-5 <= p <= max(bounds) + 5e-5


def test_table4_counts_each_class_with_the_papers_sample_sizes():
    """table4 on a sample shaped like the paper's: its n column gives back the paper's sizes."""
    rng = np.random.default_rng(11)
    for source in ("labels", "B0", "V2M"):
        rows = [r for r in PAPER_TABLE4 if r[0] == source]
        classes = np.concatenate([np.full(r[2], r[1]) for r in rows])
        rng.shuffle(classes)
        table = table4(rng.normal(10.5, 0.5, size=len(classes)), classes, source=source)
        assert dict(zip(table["class"], table["n"])) == {r[1]: r[2] for r in rows}
        assert table["n"].sum() == PAPER_N


def test_ks_detects_a_shifted_class_and_not_an_unshifted_one():
    rng = np.random.default_rng(7)
    classes = rng.choice(["1", "2", "3", "4,5+", "?"], size=4000, p=[0.1, 0.6, 0.1, 0.1, 0.1])
    masses = rng.normal(10.5, 0.5, size=len(classes))
    masses[classes == "1"] += 0.3
    table = table4(masses, classes, source="synthetic")
    by_class = table.set_index("class")
    assert by_class.loc["1", "ks_p"] < 1e-6 and by_class.loc["1", "t_stat"] > 0
    assert by_class.loc["1", "t_p_two_sided"] < 1e-6
    assert by_class.loc["3", "ks_p"] > 0.05 and by_class.loc["?", "ks_p"] > 0.05
    assert table["n"].sum() == 4000


def test_table4_layout_with_empty_and_single_galaxy_classes():
    masses = np.array([10.0, 10.2, 10.4, 10.6, 10.8, 11.0, 10.1])
    classes = np.array(["2", "2", "2", "2", "2", "2", "1"])  # one m = 1, no m = 3, 4,5+, ?
    table = table4(masses, classes, source="labels")
    assert list(table.columns) == list(TABLE4_COLUMNS)
    assert table["class"].tolist() == list(TABLE4_CLASSES)
    assert table["n"].tolist() == [1, 6, 0, 0, 0]
    assert (table["source"] == "labels").all()
    single = table.iloc[0]
    assert np.isfinite(single["ks_stat"]) and np.isnan(single["welch_t_stat"])
    assert table.iloc[2:][["ks_stat", "ks_p", "t_stat", "t_p_two_sided", "t_p_one_sided"]].isna().all().all()


def test_table4_rejects_bad_input():
    with pytest.raises(SpiralArmsError, match="'4'"):
        table4([10.0, 10.1], ["4", "2"], source="x")
    with pytest.raises(SpiralArmsError, match="finite"):
        table4([10.0, np.nan], ["1", "2"], source="x")
    with pytest.raises(SpiralArmsError, match="2 masses but 1"):
        table4([10.0, 10.1], ["1"], source="x")


def test_markdown_table_in_the_papers_layout():
    rng = np.random.default_rng(1)
    classes = np.repeat(TABLE4_CLASSES, 30)
    masses = rng.normal(10.5, 0.4, len(classes))
    masses[classes == "1"] += 1.0
    table = pd.concat([table4(masses, classes, source=s) for s in ("labels", "b0")], ignore_index=True)
    text = table4_markdown(table)
    lines = text.splitlines()
    assert lines[0] == ("| | m | Sample size | K-S statistic | K-S p-value | Student t | Student p (two-sided) "
                        "| Welch t | Welch p (one-tailed) |")
    assert lines[2].startswith("| labels | 1 | 30 |") and lines[3].startswith("|  | 2 | 30 |")
    # the Welch columns are the one-tailed test the paper's text names, beside Student's two-sided p
    first = table.iloc[0]
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[5] == f"{first['t_stat']:.4f}" and cells[7] == f"{first['welch_t_stat']:.4f}"
    welch = stats.ttest_ind(masses[classes == "1"], masses, equal_var=False, alternative="greater")
    assert first["welch_p_one_sided"] == pytest.approx(welch.pvalue)
    assert "one-tailed" in text and "Student" in text
    assert lines[7].startswith("| b0 | 1 | 30 |")
    assert "**0.0000**" in lines[2]
    assert "two-sided" in text
