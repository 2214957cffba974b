"""Calibration, abstention and the ordinal view of arm number (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest

from spiralarms.evaluation.calibration import (
    apply_temperature,
    arm_number,
    calibration_summary,
    coverage_accuracy,
    expected_calibration_error,
    fit_temperature,
    ordinal_metrics,
    reliability_table,
)


def overconfident(n=4000, k=4, seed=0):
    """Labels drawn from soft true probabilities; the model reports them sharpened (T = 1/3)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.0, (n, k))
    true = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(k, p=row) for row in true])
    sharp = np.exp(3 * logits)
    return sharp / sharp.sum(1, keepdims=True), labels


def test_temperature_scaling_recovers_the_sharpening_and_lowers_the_ece():
    probs, labels = overconfident()
    t = fit_temperature(probs, labels)
    assert t == pytest.approx(3.0, rel=0.1)
    before = expected_calibration_error(probs, labels)
    after = expected_calibration_error(apply_temperature(probs, t), labels)
    assert before > 0.1 and after < 0.03 and after < before / 4
    summary = calibration_summary(probs, labels)
    assert summary["ece_after"] < summary["ece_before"] / 4 and summary["nll_after"] < summary["nll_before"]
    # Scaling never changes a label.
    assert (apply_temperature(probs, t).argmax(1) == probs.argmax(1)).all()


def test_ece_by_hand_on_two_bins():
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.55, 0.45]])
    labels = np.array([0, 1, 0, 0])
    # bin of 0.95: accuracy 0.5 -> gap 0.45; bin of 0.55: accuracy 1.0 -> gap 0.45
    assert expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(0.45)
    table = reliability_table(probs, labels, n_bins=10)
    assert table["n"].sum() == 4 and table.loc[table["n"] > 0, "accuracy"].tolist() == [1.0, 0.5]


def test_coverage_accuracy_on_a_hand_built_table():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]])
    labels = np.array([0, 1, 1, 0])  # correct, wrong, correct, wrong (by confidence: .9 .8 .7 .55)
    curve = coverage_accuracy(probs, labels, coverages=[0.25, 0.5, 0.75, 1.0])
    assert curve["n_kept"].tolist() == [1, 2, 3, 4]
    assert curve["accuracy"].tolist() == [1.0, 0.5, pytest.approx(2 / 3), 0.5]
    assert curve["threshold"].tolist() == [0.9, 0.8, 0.7, 0.55]


def test_ordinal_metrics_count_arms_and_skip_cant_tell():
    classes = ["1", "2", "3", "4", "5+", "?"]
    assert [arm_number(c) for c in classes] == [1, 2, 3, 4, 5, None]
    assert arm_number("3,4") == 3.5 and arm_number("4,5+") == 4.5
    true = [1, 1, 2, 4, 5, 0]  # 2, 2, 3, 5+, ?, 1
    pred = [1, 2, 4, 1, 1, 5]  # 2, 3, 5+, 2, 2, ?
    out = ordinal_metrics(true, pred, classes)
    # counted pairs: (2,2) 0, (2,3) 1, (3,5) 2, (5,2) 3
    assert out == {"n": 4, "mean_abs_error": pytest.approx(1.5), "within_one": 0.5}
