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


# --- imbalance: losses and the balanced sampler -------------------------------------


def test_class_weights_reach_the_loss_and_focal_loss_down_weights_easy_galaxies():
    import torch
    import torch.nn.functional as F

    from spiralarms.models.losses import class_weights_from_counts, classification_loss, focal_loss

    weights = class_weights_from_counts([100, 10, 0])
    assert weights[0] == pytest.approx(110 / 200) and weights[1] == pytest.approx(110 / 20) and weights[2] == 0
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    target = torch.tensor([0, 1])
    w = torch.tensor(weights, dtype=torch.float32)
    assert classification_loss(logits, target, "weighted", weight=w) == pytest.approx(
        float(F.cross_entropy(logits, target, weight=w)))
    assert classification_loss(logits, target, "cross_entropy", weight=w) == pytest.approx(
        float(F.cross_entropy(logits, target)))
    # gamma = 0 is cross-entropy; a confident correct galaxy loses far more of its loss than an unsure one
    assert focal_loss(logits, target, gamma=0.0) == pytest.approx(float(F.cross_entropy(logits, target)), rel=1e-6)
    easy, hard = torch.tensor([[6.0, 0.0, 0.0]]), torch.tensor([[0.2, 0.0, 0.0]])
    ratio_easy = focal_loss(easy, torch.tensor([0])) / F.cross_entropy(easy, torch.tensor([0]))
    ratio_hard = focal_loss(hard, torch.tensor([0])) / F.cross_entropy(hard, torch.tensor([0]))
    assert ratio_easy < 1e-3 < ratio_hard
    # soft targets: the vote fractions
    soft = torch.tensor([[0.7, 0.3, 0.0], [0.1, 0.8, 0.1]])
    assert classification_loss(logits, soft) == pytest.approx(float(F.cross_entropy(logits, soft)))


def test_balanced_sampler_draws_classes_equally_and_is_seeded_by_epoch():
    from spiralarms.training.sampling import EpochBalancedSampler

    labels = [0] * 900 + [1] * 90 + [2] * 10
    sampler = EpochBalancedSampler(labels, seed=4)
    draws = np.array(labels)[list(sampler)]
    share = np.bincount(draws, minlength=3) / len(draws)
    assert len(draws) == 1000 and np.allclose(share, 1 / 3, atol=0.05)
    first = list(sampler)
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first
