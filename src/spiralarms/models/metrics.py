"""Classification metrics of a classifier's predictions, in the ``metrics.json`` contract.

Per-class precision, recall, F1 and support; accuracy; macro F1; the confusion
matrix (rows: true class, columns: predicted class), as docs/contract.md ("Files")
fixes them. Training writes them for the validation set of a run and evaluation for
a predictions file, so they live beside the model rather than in either stage.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from spiralarms.errors import SpiralArmsError


def _as_indices(values, classes: Sequence[str], name: str) -> np.ndarray:
    """Class names or integer indices -> integer indices into ``classes``."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise SpiralArmsError(f"{name}: expected a 1-d sequence of labels, got shape {arr.shape}")
    if arr.dtype.kind in "iu":
        bad = (arr < 0) | (arr >= len(classes))
        if bad.any():
            raise SpiralArmsError(f"{name}: label index {arr[bad][0]} outside 0..{len(classes) - 1}")
        return arr.astype(np.int64)
    lookup = {c: i for i, c in enumerate(classes)}
    out = np.empty(len(arr), dtype=np.int64)
    for i, v in enumerate(arr):
        key = str(v)
        if key not in lookup:
            raise SpiralArmsError(f"{name}: row {i}: unknown class {key!r}; classes are {list(classes)}")
        out[i] = lookup[key]
    return out


def classification_metrics(y_true, y_pred, classes: Sequence[str]) -> dict:
    """Per-class and overall metrics in the ``metrics.json`` contract (docs/contract.md, "Files").

    Parameters
    ----------
    y_true, y_pred : sequence of str or int
        True and predicted labels, as class names or indices into ``classes``.
    classes : sequence of str
        Class names in order (e.g. ``arm_classes()``).

    Returns
    -------
    dict
        ``{"classes": [...], "per_class": {name: {"precision", "recall", "f1",
        "support"}}, "accuracy", "macro_f1", "confusion_matrix": [[...]]}``.
        A class with no predictions has precision 0 (scikit-learn's
        ``zero_division=0``); macro F1 averages over every class, absent ones
        included, so a missing class counts against the model.
    """
    classes = [str(c) for c in classes]
    if len(classes) < 2:
        raise SpiralArmsError(f"classes: need at least two, got {classes}")
    t = _as_indices(y_true, classes, "y_true")
    p = _as_indices(y_pred, classes, "y_pred")
    if len(t) != len(p):
        raise SpiralArmsError(f"y_true has {len(t)} labels but y_pred has {len(p)}")
    if len(t) == 0:
        raise SpiralArmsError("no labels to evaluate")
    labels = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        t, p, labels=labels, zero_division=0
    )
    return {
        "classes": classes,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(classes)
        },
        "accuracy": float(accuracy_score(t, p)),
        "macro_f1": float(f1_score(t, p, labels=labels, average="macro", zero_division=0)),
        "confusion_matrix": confusion_matrix(t, p, labels=labels).tolist(),
    }
