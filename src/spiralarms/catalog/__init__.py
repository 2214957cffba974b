"""Catalogues: schemas, readers, clean-sample selection, labels and class merges."""

from spiralarms.catalog.classes import ARM_CLASSES, arm_classes, class_mapping, parse_merge
from spiralarms.catalog.readers import read_catalog, resolve_image_paths, write_table
from spiralarms.catalog.selection import CUT_THRESHOLDS, Selection, select_clean_sample, vote_fractions

__all__ = [
    "ARM_CLASSES",
    "CUT_THRESHOLDS",
    "Selection",
    "arm_classes",
    "class_mapping",
    "parse_merge",
    "read_catalog",
    "resolve_image_paths",
    "select_clean_sample",
    "vote_fractions",
    "write_table",
]
