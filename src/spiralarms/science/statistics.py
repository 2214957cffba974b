"""Table 4: each arm-number class's stellar masses against the whole sample.

For every class (``1``, ``2``, ``3``, ``4,5+``, ``?``: the paper merges 4 and 5+ for
section 6 and keeps "can't tell") the class's masses are compared with the masses
of the whole sample, that is every matched galaxy of the same source, the class's
own included (the paper's "parent sample"):

* the two-sample Kolmogorov-Smirnov statistic and p-value
  (:func:`scipy.stats.ks_2samp`, its default ``method="auto"``: asymptotic once a
  sample passes 10000 galaxies, as the whole sample does in the paper);
* the two-sample t statistic, Student's (pooled variance, ``df = n + N - 2``) and
  Welch's, with its two-sided p-value and its one-sided p-value on the side named
  by the statistic's sign (``alternative="greater"`` for t > 0, ``"less"`` for t < 0).

The paper calls its test "one-tailed", but its p-values are the two-sided ones of
Student's test: its label row m = 1 (n = 161 against N = 11291, t = 2.4429) has
p = 0.0146 = 2 P(T > 2.4429) with 11450 degrees of freedom, where the one-sided
p-value would be 0.0073 and Welch's two-sided one 0.0156. All 15 t rows of Table 4
agree with Student's two-sided p to the printed precision, so ``t_p_two_sided`` is
the column to compare with the paper's numbers; the one-tailed Welch test
(``welch_t_stat``, ``welch_p_one_sided``) is what its words name ("one-tailed t-test"
of two samples of unequal size and spread), and both stand side by side in
``table4.md``.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from spiralarms.catalog.classes import arm_classes
from spiralarms.errors import SpiralArmsError

#: The class merge of section 6 ("with m = 4 and 5+ combined").
TABLE4_MERGE = "4,5+"

#: The rows of Table 4, in order: ``1``, ``2``, ``3``, ``4,5+``, ``?``.
TABLE4_CLASSES: tuple[str, ...] = arm_classes(TABLE4_MERGE)

#: The columns of ``table4.csv``, in order.
TABLE4_COLUMNS: tuple[str, ...] = (
    "source",
    "class",
    "n",
    "ks_stat",
    "ks_p",
    "t_stat",
    "t_p_two_sided",
    "t_p_one_sided",
    "welch_t_stat",
    "welch_p_two_sided",
    "welch_p_one_sided",
)


#: The paper's Table 4 (labels, B0 and V2M predictions; N = 11,291 matched
#: galaxies): (source, class, n, K-S statistic, K-S p, t statistic, t p). The
#: paper calls its t-test one-tailed, but its p-values are the two-sided ones
#: (t = 2.4429 with n = 161 gives p = 0.0146 two-sided).
PAPER_TABLE4: tuple[tuple[str, str, int, float, float, float, float], ...] = (
    ("labels", "1", 161, 0.1196, 0.0194, 2.4429, 0.0146),
    ("labels", "2", 10290, 0.0021, 1.0000, -0.1116, 0.9111),
    ("labels", "3", 290, 0.0644, 0.1825, -0.3531, 0.7240),
    ("labels", "4,5+", 54, 0.0610, 0.9807, 0.0946, 0.9247),
    ("labels", "?", 496, 0.0262, 0.9853, -0.4439, 0.6571),
    ("B0", "1", 581, 0.0322, 0.6209, -0.0263, 0.9790),
    ("B0", "2", 8477, 0.0036, 1.0000, -0.4447, 0.6565),
    ("B0", "3", 1287, 0.0198, 0.7460, 0.7917, 0.4285),
    ("B0", "4,5+", 44, 0.1078, 0.6467, -0.1826, 0.8551),
    ("B0", "?", 902, 0.0263, 0.5990, 0.8407, 0.4005),
    ("V2M", "1", 641, 0.0190, 0.9773, 0.2750, 0.7834),
    ("V2M", "2", 7895, 0.0040, 1.0000, -0.4901, 0.6241),
    ("V2M", "3", 1590, 0.0218, 0.5173, 0.1611, 0.8721),
    ("V2M", "4,5+", 62, 0.0628, 0.9547, 0.3180, 0.7505),
    ("V2M", "?", 1103, 0.0317, 0.2597, 1.1671, 0.2432),
)


def paper_table4() -> pd.DataFrame:
    """The paper's Table 4 as a table: ``source``, ``class``, ``n``, ``ks_stat``, ``ks_p``, ``t_stat``, ``t_p_two_sided``."""
    columns = ["source", "class", "n", "ks_stat", "ks_p", "t_stat", "t_p_two_sided"]
    return pd.DataFrame(list(PAPER_TABLE4), columns=columns)


@dataclass(frozen=True)
class ClassComparison:
    """One class's masses against the whole sample's.

    Attributes
    ----------
    n : int
        Galaxies in the class.
    ks_stat, ks_p : float
        Two-sample Kolmogorov-Smirnov statistic and p-value.
    t_stat, t_p_two_sided, t_p_one_sided : float
        Student's t (pooled variance) and its two-sided and one-sided p-values (the
        one-sided test on the side that the statistic's sign names).
    welch_t_stat, welch_p_two_sided, welch_p_one_sided : float
        The same for Welch's t (unequal variances).

    Statistics that are undefined for the sample sizes (an empty class; a t test
    with a single galaxy) are NaN.
    """

    n: int
    ks_stat: float
    ks_p: float
    t_stat: float
    t_p_two_sided: float
    t_p_one_sided: float
    welch_t_stat: float
    welch_p_two_sided: float
    welch_p_one_sided: float

    def to_dict(self) -> dict:
        """The fields as a plain dict."""
        return asdict(self)


def _clean(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(array)):
        raise SpiralArmsError(f"{name}: stellar masses must be finite numbers (found NaN or inf)")
    return array


def t_test(sample, whole, *, equal_var: bool = True) -> tuple[float, float, float]:
    """Two-sample t test of a class against the whole sample.

    Parameters
    ----------
    sample, whole : array-like of float
        The class's masses and the whole sample's.
    equal_var : bool, default True
        True for Student's test (pooled variance), False for Welch's.

    Returns
    -------
    (t, p_two_sided, p_one_sided) : tuple of float
        ``t`` is positive when the class's mean is higher. ``p_one_sided`` tests the
        alternative on the side of the sign of ``t`` (``"greater"`` for t >= 0,
        ``"less"`` for t < 0), so it is half the two-sided p. NaN when undefined.
    """
    sample, whole = _clean(sample, "sample"), _clean(whole, "whole sample")
    if len(sample) == 0 or len(whole) == 0:
        return np.nan, np.nan, np.nan
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        two = stats.ttest_ind(sample, whole, equal_var=equal_var)
        t = float(two.statistic)
        if not np.isfinite(t):
            return np.nan, np.nan, np.nan
        side = "greater" if t >= 0 else "less"
        one = stats.ttest_ind(sample, whole, equal_var=equal_var, alternative=side)
    return t, float(two.pvalue), float(one.pvalue)


def compare_to_whole_sample(sample, whole) -> ClassComparison:
    """Kolmogorov-Smirnov and t tests of one class's masses against the whole sample.

    Parameters
    ----------
    sample : array-like of float
        The class's stellar masses (log10 solar masses).
    whole : array-like of float
        The whole sample's masses, the class's own included.

    Returns
    -------
    ClassComparison

    Raises
    ------
    SpiralArmsError
        If a mass is NaN or infinite.

    Examples
    --------
    >>> c = compare_to_whole_sample([11.0, 11.2, 11.4], [10.0, 10.2, 10.4, 11.0, 11.2, 11.4])
    >>> c.n, round(c.ks_stat, 3), c.t_stat > 0
    (3, 0.5, True)
    """
    sample, whole = _clean(sample, "sample"), _clean(whole, "whole sample")
    n = len(sample)
    if n == 0 or len(whole) == 0:
        ks_stat = ks_p = np.nan
    else:
        ks = stats.ks_2samp(sample, whole)
        ks_stat, ks_p = float(ks.statistic), float(ks.pvalue)
    student = t_test(sample, whole, equal_var=True)
    welch = t_test(sample, whole, equal_var=False)
    return ClassComparison(n, ks_stat, ks_p, *student, *welch)


def student_t_p_value(t: float, n1: int, n2: int, alternative: str = "two-sided") -> float:
    """The p-value of a Student two-sample t statistic from the sample sizes alone.

    Used to check a published row: ``df = n1 + n2 - 2``.

    Parameters
    ----------
    t : float
        The statistic.
    n1, n2 : int
        Sample sizes (class, whole sample).
    alternative : {"two-sided", "greater", "less", "signed"}, default "two-sided"
        ``"signed"`` is the one-sided test on the side of the sign of ``t``.

    Returns
    -------
    float

    Examples
    --------
    The paper's Table 4, label row m = 1:

    >>> round(student_t_p_value(2.4429, 161, 11291), 4)
    0.0146
    >>> round(student_t_p_value(2.4429, 161, 11291, "signed"), 4)
    0.0073
    """
    if n1 < 1 or n2 < 1 or n1 + n2 < 3:
        raise SpiralArmsError(f"sample sizes {n1} and {n2}: a t test needs n1 + n2 > 2")
    df = n1 + n2 - 2
    if alternative == "two-sided":
        return float(2 * stats.t.sf(abs(t), df))
    if alternative == "signed":
        return float(stats.t.sf(abs(t), df))
    if alternative == "greater":
        return float(stats.t.sf(t, df))
    if alternative == "less":
        return float(stats.t.cdf(t, df))
    raise SpiralArmsError(f"alternative {alternative!r}: choose two-sided, greater, less or signed")


def table4(masses, classes, *, source: str, class_order: tuple[str, ...] = TABLE4_CLASSES) -> pd.DataFrame:
    """Table 4 rows of one source: each class against the whole sample.

    Parameters
    ----------
    masses : array-like of float
        Stellar mass (``LGM_TOT_P50``) of every matched galaxy of the source.
    classes : array-like of str
        Each galaxy's class, one of ``class_order``.
    source : str
        Name written in the ``source`` column (``labels``, a model's name, ...).
    class_order : tuple of str, default :data:`TABLE4_CLASSES`
        The rows, in order; a class without galaxies gets ``n = 0`` and NaN.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TABLE4_COLUMNS`, one row per class.

    Raises
    ------
    SpiralArmsError
        If a class is not in ``class_order``, the lengths differ, or a mass is not
        finite.
    """
    masses = _clean(masses, f"{source}: masses")
    classes = np.asarray(classes, dtype=object).ravel()
    if len(classes) != len(masses):
        raise SpiralArmsError(f"{source}: {len(masses)} masses but {len(classes)} classes")
    unknown = sorted({str(c) for c in classes} - set(class_order))
    if unknown:
        raise SpiralArmsError(f"{source}: class {unknown[0]!r} is not one of {', '.join(class_order)}")
    rows = []
    for name in class_order:
        comparison = compare_to_whole_sample(masses[classes == name], masses)
        rows.append(
            {
                "source": source,
                "class": name,
                "n": comparison.n,
                "ks_stat": comparison.ks_stat,
                "ks_p": comparison.ks_p,
                "t_stat": comparison.t_stat,
                "t_p_two_sided": comparison.t_p_two_sided,
                "t_p_one_sided": comparison.t_p_one_sided,
                "welch_t_stat": comparison.welch_t_stat,
                "welch_p_two_sided": comparison.welch_p_two_sided,
                "welch_p_one_sided": comparison.welch_p_one_sided,
            }
        )
    frame = pd.DataFrame(rows, columns=list(TABLE4_COLUMNS))
    frame["n"] = frame["n"].astype(np.int64)
    return frame


def _fmt(value: float) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.4f}"


def table4_markdown(table: pd.DataFrame, *, alpha: float = 0.05) -> str:
    """Table 4 in the paper's layout, as Markdown, with the one-tailed Welch test beside.

    Columns: source, m, sample size, K-S statistic and p-value; Student's t and its
    two-sided p-value (what the paper's numbers fit); the one-tailed Welch t and its
    p-value (what the paper's text names). p-values below ``alpha`` are in bold (the
    paper shades them green).

    Parameters
    ----------
    table : pandas.DataFrame
        Rows as :func:`table4` returns them, one or more sources.
    alpha : float, default 0.05
        Significance threshold.

    Returns
    -------
    str
    """
    missing = [c for c in TABLE4_COLUMNS if c not in table.columns]
    if missing:
        raise SpiralArmsError(f"table 4: missing column {missing[0]!r}")

    def p(value: float) -> str:
        text = _fmt(value)
        return f"**{text}**" if np.isfinite(value) and value < alpha else text

    lines = [
        "| | m | Sample size | K-S statistic | K-S p-value | Student t | Student p (two-sided) "
        "| Welch t | Welch p (one-tailed) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    previous = None
    for row in table.to_dict("records"):
        shown = row["source"] if row["source"] != previous else ""
        previous = row["source"]
        lines.append(
            f"| {shown} | {row['class']} | {int(row['n'])} | {_fmt(row['ks_stat'])} | {p(row['ks_p'])} "
            f"| {_fmt(row['t_stat'])} | {p(row['t_p_two_sided'])} "
            f"| {_fmt(row['welch_t_stat'])} | {p(row['welch_p_one_sided'])} |"
        )
    lines += [
        "",
        "Each class against the whole sample of its source (all matched galaxies, the class "
        "included). Student: the pooled-variance two-sample t test with its two-sided p-value, "
        'which is what the paper\'s Table 4 prints under "One-Tailed t-Test" (its m = 1 label row, '
        "t = 2.4429 with p = 0.0146, fits it and nothing else). Welch: the unequal-variance t test, "
        "one-tailed on the side that the sign of t names, which is what the paper's text describes; "
        "compare the paper's t statistics with the Student column. table4.csv also has Student's "
        f"one-sided and Welch's two-sided p-values. Bold: p < {alpha}.",
    ]
    return "\n".join(lines) + "\n"
