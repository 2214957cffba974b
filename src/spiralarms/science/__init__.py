"""Science with the arm-number labels: stellar mass against spiral arm number.

Section 6 of the paper (Table 4, Figures 11 and 12): the MPA-JHU stellar masses
(:mod:`~spiralarms.science.mpajhu`; fetched by :mod:`spiralarms.acquire.mpajhu`), cross-matched to the galaxies
(:mod:`~spiralarms.science.crossmatch`), compared class by class with the whole
sample (:mod:`~spiralarms.science.statistics`, :mod:`~spiralarms.science.figures`),
and the whole job (:mod:`~spiralarms.science.mass`).
"""

from spiralarms.science.crossmatch import CrossMatch, crossmatch
from spiralarms.science.mpajhu import (
    FilterCounts,
    apply_reliability_filters,
    load_mpajhu,
    read_mpajhu,
)
from spiralarms.science.statistics import (
    TABLE4_CLASSES,
    TABLE4_COLUMNS,
    ClassComparison,
    compare_to_whole_sample,
    student_t_p_value,
    table4,
)

__all__ = [
    "TABLE4_CLASSES",
    "TABLE4_COLUMNS",
    "ClassComparison",
    "CrossMatch",
    "FilterCounts",
    "apply_reliability_filters",
    "compare_to_whole_sample",
    "crossmatch",
    "load_mpajhu",
    "read_mpajhu",
    "student_t_p_value",
    "table4",
]
