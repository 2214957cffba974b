"""Catalogues: schemas, readers, clean-sample selection, labels and class merges."""

from spiralarms.catalog.classes import ARM_CLASSES, arm_classes, class_mapping, parse_merge

__all__ = ["ARM_CLASSES", "arm_classes", "class_mapping", "parse_merge"]
