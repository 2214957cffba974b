"""Metrics in the metrics.json contract, checked against hand counts and scikit-learn."""

import json
import math

import numpy as np
import pytest

from spiralarms.errors import SpiralArmsError
from spiralarms.evaluation.metrics import classification_metrics, normalised_confusion, repeat_statistics

CLASSES = ["1", "2", "3", "4", "5+", "?"]


def _labels_from_confusion(confusion):
    """Expand a confusion matrix into (true, predicted) label arrays."""
    true, pred = [], []
    for i, row in enumerate(confusion):
        for j, n in enumerate(row):
            true += [i] * n
            pred += [j] * n
    return np.array(true), np.array(pred)


# A fixed confusion: class 4 is never predicted, class 5+ never occurs.
FIXED = np.array(
    [
        [5, 2, 0, 0, 0, 1],
        [1, 20, 2, 0, 1, 0],
        [0, 3, 6, 0, 0, 1],
        [0, 0, 2, 0, 1, 0],
        [0, 0, 0, 0, 0, 0],
        [1, 2, 0, 0, 0, 4],
    ]
)


def test_metrics_match_hand_counts():
    t, p = _labels_from_confusion(FIXED)
    m = classification_metrics(t, p, CLASSES)
    assert m["confusion_matrix"] == FIXED.tolist()
    # class "2": tp 20, predicted 27, true 24
    assert m["per_class"]["2"]["precision"] == pytest.approx(20 / 27)
    assert m["per_class"]["2"]["recall"] == pytest.approx(20 / 24)
    assert m["per_class"]["2"]["f1"] == pytest.approx(2 * 20 / (27 + 24))
    assert m["per_class"]["4"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 3}
    assert m["accuracy"] == pytest.approx(np.trace(FIXED) / FIXED.sum())
    f1s = []
    for k in range(6):
        tp, pred_k, true_k = FIXED[k, k], FIXED[:, k].sum(), FIXED[k].sum()
        f1s.append(0.0 if pred_k + true_k == 0 else 2 * tp / (pred_k + true_k))
    assert m["macro_f1"] == pytest.approx(np.mean(f1s))


def test_metrics_agree_with_counts_from_the_confusion_matrix_and_are_json():
    # Checked against counts made here with numpy, not against scikit-learn, which the
    # function itself calls: a wrong label order or a transposed matrix fails.
    rng = np.random.default_rng(3)
    t = rng.integers(0, 6, 200)
    p = np.where(rng.random(200) < 0.7, t, rng.integers(0, 6, 200))
    m = classification_metrics([CLASSES[i] for i in t], [CLASSES[i] for i in p], CLASSES)
    counts = np.zeros((6, 6), dtype=int)
    np.add.at(counts, (t, p), 1)
    assert m["confusion_matrix"] == counts.tolist()
    f1s = []
    for k, name in enumerate(CLASSES):
        tp, predicted, true = counts[k, k], counts[:, k].sum(), counts[k].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / true if true else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
        assert m["per_class"][name]["precision"] == pytest.approx(precision)
        assert m["per_class"][name]["recall"] == pytest.approx(recall)
        assert m["per_class"][name]["f1"] == pytest.approx(f1s[-1])
        assert m["per_class"][name]["support"] == true
    assert m["accuracy"] == pytest.approx(np.trace(counts) / 200)
    assert m["macro_f1"] == pytest.approx(np.mean(f1s))
    assert set(m) == {"classes", "per_class", "accuracy", "macro_f1", "confusion_matrix"}
    assert json.loads(json.dumps(m)) == m


def test_metrics_reject_bad_labels():
    with pytest.raises(SpiralArmsError, match="unknown class '7'"):
        classification_metrics(["1", "7"], ["1", "2"], CLASSES)
    with pytest.raises(SpiralArmsError, match="y_pred has 1"):
        classification_metrics([0, 1], [0], CLASSES)
    with pytest.raises(SpiralArmsError, match="outside"):
        classification_metrics([0, 6], [0, 1], CLASSES)


def test_normalised_confusion_rows_sum_to_one_and_empty_rows_stay_zero():
    n = normalised_confusion(FIXED)
    assert np.allclose(n[FIXED.sum(1) > 0].sum(1), 1.0)
    assert np.all(n[4] == 0)
    assert n[0, 0] == pytest.approx(5 / 8)


def test_repeat_statistics_by_hand():
    s = repeat_statistics([0.8, 0.9, 1.0])
    assert s["n"] == 3
    assert s["mean"] == pytest.approx(0.9)
    assert s["std"] == pytest.approx(0.1)  # sqrt((0.01 + 0 + 0.01) / 2)
    assert s["cv"] == pytest.approx(0.1 / 0.9)
    assert repeat_statistics([0.5])["std"] == 0.0
    assert math.isnan(repeat_statistics([0.0, 0.0])["cv"])
    with pytest.raises(SpiralArmsError):
        repeat_statistics([])
