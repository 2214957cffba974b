"""Column names of the Galaxy Zoo 2 and Kaggle Galaxy Challenge catalogue schemas.

GZ2 tables (Willett et al. 2013; Hart et al. 2016) carry, for each answer, the
columns ``<task>_<answer>_count``, ``_weighted_fraction`` and ``_debiased``. The
id column is ``dr7objid`` (Hart 2016) or ``objid`` (Willett 2013).
"""

from __future__ import annotations

from spiralarms.catalog.classes import ARM_CLASSES

#: Id columns accepted for GZ2 tables, in order of preference.
GZ2_ID_COLUMNS: tuple[str, ...] = ("dr7objid", "objid")

#: The id column name that spiralarms writes.
GZ2_ID = "dr7objid"

FEATURES_OR_DISK = "t01_smooth_or_features_a02_features_or_disk"
NOT_EDGE_ON = "t02_edgeon_a05_no"
SPIRAL = "t04_spiral_a08_spiral"

#: T11 answers in class order (``1``, ``2``, ``3``, ``4``, ``5+``, ``?``).
T11_ANSWERS: tuple[str, ...] = (
    "t11_arms_number_a31_1",
    "t11_arms_number_a32_2",
    "t11_arms_number_a33_3",
    "t11_arms_number_a34_4",
    "t11_arms_number_a36_more_than_4",
    "t11_arms_number_a37_cant_tell",
)

#: T11 answer prefix of each class.
T11_ANSWER_OF_CLASS: dict[str, str] = dict(zip(ARM_CLASSES, T11_ANSWERS, strict=True))

#: Suffixes of the columns the GZ2 cuts read.
COUNT = "_count"
WEIGHTED_FRACTION = "_weighted_fraction"
DEBIASED = "_debiased"


def gz2_required_columns() -> list[str]:
    """The GZ2 vote columns that the clean-sample selection reads (id excluded)."""
    cols = [
        FEATURES_OR_DISK + WEIGHTED_FRACTION,
        NOT_EDGE_ON + WEIGHTED_FRACTION,
        SPIRAL + WEIGHTED_FRACTION,
        SPIRAL + COUNT,
    ]
    for answer in T11_ANSWERS:
        cols += [answer + WEIGHTED_FRACTION, answer + DEBIASED]
    return cols


#: Kaggle Galaxy Challenge id column.
KAGGLE_ID = "GalaxyID"

#: Kaggle columns the cuts read: Class1.2 (features/disc), Class2.2 (not edge-on),
#: Class4.1 / Class4.2 (spiral yes / no) and Class11.1..6 (arm number, class order).
KAGGLE_FEATURES = "Class1.2"
KAGGLE_NOT_EDGE_ON = "Class2.2"
KAGGLE_SPIRAL_YES = "Class4.1"
KAGGLE_SPIRAL_NO = "Class4.2"
KAGGLE_T11: tuple[str, ...] = tuple(f"Class11.{k}" for k in range(1, 7))


#: The id columns of the vote catalogues, GZ2 then Kaggle.
CATALOG_ID_COLUMNS: tuple[str, ...] = (*GZ2_ID_COLUMNS, KAGGLE_ID)

#: Id columns of a galaxy table (labels from ``select``, predictions), in order of preference.
GALAXY_ID_COLUMNS: tuple[str, ...] = (*GZ2_ID_COLUMNS, "id")

#: Id columns of a table given to ``predict``, in order: its own ``id``, then a catalogue's.
PREDICTION_ID_COLUMNS: tuple[str, ...] = ("id", *CATALOG_ID_COLUMNS)

#: Id columns of a split or training table: a catalogue's, then ``id``.
TRAINING_ID_COLUMNS: tuple[str, ...] = (*CATALOG_ID_COLUMNS, "id")

#: Id columns of the MPA-JHU tables (lower-cased): spectrum, photometric object, DR7 object.
MPAJHU_ID_COLUMNS: tuple[str, ...] = ("specobjid", "objid", "bestobjid", "dr7objid")


def kaggle_required_columns() -> list[str]:
    """The Kaggle vote columns that the selection reads (id excluded)."""
    return [KAGGLE_FEATURES, KAGGLE_NOT_EDGE_ON, KAGGLE_SPIRAL_YES, KAGGLE_SPIRAL_NO, *KAGGLE_T11]
