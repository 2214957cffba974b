"""The published numbers of Lee, Soo & Sharoni that the reproduction compares with.

Every number the report sets beside a result comes from here, with the section,
table or figure it is printed in. Only what the text states is recorded: Figures 5
and 7 are images whose axis values are not in the text, so the crop sizes of the
sweep and most confusion-matrix cells are not published in a readable form.
"""

from __future__ import annotations

__all__ = [
    "PAPER",
    "PAPER_CLASSES",
    "CROP_CHOICE",
    "TABLE3",
    "TABLE3_F1_CHANGE",
    "FIGURE7_CLAIMS",
    "CLASS_COUNTS",
    "PAPER_CAP",
    "PAPER_VAL_FRACTION",
    "DOWNSAMPLED_COUNTS",
    "table3_value",
]

#: The paper, as cited in reports.
PAPER = (
    'Lee, Soo & Sharoni, "Classification of Spiral Galaxies by Spiral Arm Number using Convolutional Neural Network"'
)

#: Class order of the paper's tables (GZ2 task T11).
PAPER_CLASSES: tuple[str, ...] = ("1", "2", "3", "4", "5+", "?")

#: Section 2.1: galaxies per class after the clean-sample cuts (11,718 in all).
CLASS_COUNTS: dict[str, int] = {"1": 165, "2": 10677, "3": 298, "4": 28, "5+": 31, "?": 519}

#: Section 4.2.2: every class capped at 300 galaxies (Figure 6's down-sampled set),
#: then the 70:30 split of section 3.5.
PAPER_CAP = 300
PAPER_VAL_FRACTION = 0.3

#: Figure 6, the down-sampled set: each class of :data:`CLASS_COUNTS` capped at 300.
DOWNSAMPLED_COUNTS: dict[str, int] = {c: min(n, PAPER_CAP) for c, n in CLASS_COUNTS.items()}

#: Section 4.2.1 and Figure 5: the crop size chosen by the lowest coefficient of
#: variation of F1 over five runs, with its mean F1 and CV. The CV is printed as
#: 2.203 and 2.124 next to F1 = 0.91-0.92: that is sigma / mu in percent
#: (sigma about 0.02), so it is stored in percent. The text does not say which F1 of
#: the binary 2-vs-3 task is meant (macro, or that of one class).
CROP_CHOICE: dict[str, dict[str, float]] = {
    "B0": {"crop": 224, "f1": 0.9111, "cv_percent": 2.203},
    "V2M": {"crop": 224, "f1": 0.9232, "cv_percent": 2.124},
}

#: Table 3 (section 4.2.2 and 5.1): validation precision, recall and F1 per class.
#: Keys: (model, data) with data ``"all"`` (all data, imbalanced) or ``"down"``
#: (down-sampled to at most 300 per class). The paper's "Diff. in F1-Score" column is
#: the relative change (down - all) / all, which the values below reproduce.
TABLE3: dict[tuple[str, str], dict[str, dict[str, float]]] = {
    ("B0", "all"): {
        "1": {"precision": 0.905, "recall": 0.380, "f1": 0.535},
        "2": {"precision": 0.969, "recall": 0.989, "f1": 0.979},
        "3": {"precision": 0.797, "recall": 0.522, "f1": 0.631},
        "4": {"precision": 1.000, "recall": 0.222, "f1": 0.364},
        "5+": {"precision": 0.818, "recall": 0.900, "f1": 0.857},
        "?": {"precision": 0.831, "recall": 0.821, "f1": 0.826},
    },
    ("B0", "down"): {
        "1": {"precision": 0.932, "recall": 0.820, "f1": 0.872},
        "2": {"precision": 0.811, "recall": 0.856, "f1": 0.832},
        "3": {"precision": 0.835, "recall": 0.844, "f1": 0.840},
        "4": {"precision": 1.000, "recall": 0.222, "f1": 0.364},
        "5+": {"precision": 1.000, "recall": 0.900, "f1": 0.947},
        "?": {"precision": 0.878, "recall": 0.956, "f1": 0.915},
    },
    ("V2M", "down"): {
        "1": {"precision": 0.909, "recall": 0.800, "f1": 0.851},
        "2": {"precision": 0.835, "recall": 0.900, "f1": 0.866},
        "3": {"precision": 0.862, "recall": 0.900, "f1": 0.880},
        "4": {"precision": 1.000, "recall": 0.222, "f1": 0.364},
        "5+": {"precision": 0.769, "recall": 1.000, "f1": 0.870},
        "?": {"precision": 0.944, "recall": 0.933, "f1": 0.939},
    },
}

#: Table 3, "Diff. in F1-Score" column, as printed (fractions).
TABLE3_F1_CHANGE: dict[str, float] = {"1": 0.630, "2": -0.150, "3": 0.331, "4": 0.0, "5+": 0.105, "?": 0.108}

#: Section 5.2 and Figure 7: what the text states about the row-normalised
#: confusion matrices (validation set, down-sampled training). Each claim names the
#: model, the class configuration (``"all"``, ``"3,4"``, ``"4,5+"``), the true class
#: (row), the predicted class (column) or ``"diagonal_min"`` (the smallest diagonal
#: value), the comparison and the value.
#:
#: The text says "m = 3 galaxies are misclassified as m = 4 (67%)" and "the remaining
#: 11% are misclassified as m = ? for B0 while m = 5+ for V2M"; with Table 3's recall
#: of 0.222 for m = 4 these numbers add up to 1 only in the m = 4 row (0.222 correct,
#: 0.67 as m = 3, 0.11 as ? or 5+), and the next paragraph says the models "misclassify
#: galaxies with 4 spiral arms as those having 3": the claims below read them as the
#: m = 4 row. The caption's "up to 22% of m = 3 galaxies are misclassified as m = 4"
#: is likewise the m = 4 diagonal of Table 3.
FIGURE7_CLAIMS: tuple[dict, ...] = (
    {"model": "B0", "config": "all", "true": "4", "pred": "4", "op": "=", "value": 0.222,
     "source": "Table 3 recall of m=4 (the Figure 7 diagonal)"},
    {"model": "V2M", "config": "all", "true": "4", "pred": "4", "op": "=", "value": 0.222,
     "source": "Table 3 recall of m=4 (the Figure 7 diagonal)"},
    {"model": "B0", "config": "all", "true": "4", "pred": "3", "op": "=", "value": 0.67,
     "source": "section 5.2 ('67%', read as the m=4 row)"},
    {"model": "V2M", "config": "all", "true": "4", "pred": "3", "op": "=", "value": 0.67,
     "source": "section 5.2 ('67%', read as the m=4 row)"},
    {"model": "B0", "config": "all", "true": "4", "pred": "?", "op": "=", "value": 0.11,
     "source": "section 5.2 ('remaining 11% ... m=? for B0')"},
    {"model": "V2M", "config": "all", "true": "4", "pred": "5+", "op": "=", "value": 0.11,
     "source": "section 5.2 ('remaining 11% ... m=5+ for V2M')"},
    {"model": "B0", "config": "3,4", "true": None, "pred": "diagonal_min", "op": ">=", "value": 0.8,
     "source": "section 5.2 ('all classes achieving an accuracy of 0.8 or higher')"},
    {"model": "V2M", "config": "3,4", "true": None, "pred": "diagonal_min", "op": ">=", "value": 0.8,
     "source": "section 5.2 ('all classes achieving an accuracy of 0.8 or higher')"},
    {"model": "B0", "config": "4,5+", "true": "4,5+", "pred": "3", "op": "=", "value": 0.37,
     "source": "section 5.2 ('37% of the combined class is still misclassified as m = 3')"},
    {"model": "V2M", "config": "4,5+", "true": "4,5+", "pred": "4,5+", "op": ">", "value": 0.8,
     "source": "section 5.2 ('accuracy of the combined class improving to over 0.8')"},
)


def table3_value(model: str, data: str, m: str, metric: str) -> float | None:
    """A published Table 3 value, or ``None`` where the paper has none.

    Parameters
    ----------
    model : str
        ``"B0"`` or ``"V2M"`` (other labels have no published values).
    data : {"all", "down"}
        All data or down-sampled.
    m : str
        Class name (``"1"`` ... ``"?"``).
    metric : {"precision", "recall", "f1"}

    Returns
    -------
    float or None
    """
    return TABLE3.get((model, data), {}).get(m, {}).get(metric)
