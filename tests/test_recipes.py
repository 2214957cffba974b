"""Training recipes beyond the paper: weighted and focal losses, the balanced sampler, soft labels, calibration."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from spiralarms.catalog.schema import T11_ANSWERS, WEIGHTED_FRACTION
from spiralarms.catalog.selection import vote_fractions
from spiralarms.config import load_config
from spiralarms.errors import SpiralArmsError
from spiralarms.models.loading import load_model, read_checkpoint
from spiralarms.training import train
from spiralarms.training.datamodule import FeatureDataModule
from spiralarms.training.embedding_cache import CachedFeatures


def _tiny(tiny_galaxies, *extra):
    return load_config("demo-lite0", [
        f"data.catalog={tiny_galaxies / 'catalog.csv'}", "data.crop=64", "model.backbone=test_efficientnet",
        "model.pretrained=false", "train.max_epochs=2", "train.cache_views=1", "train.progress=false", *extra,
    ])


def _votes(rows):
    frame = pd.DataFrame(rows, columns=[a + WEIGHTED_FRACTION for a in T11_ANSWERS])
    frame["label"] = [str(i) for i in range(len(frame))]
    return frame


def test_vote_fractions_normalise_and_merge():
    table = _votes([[0.1, 0.5, 0.2, 0.1, 0.0, 0.1], [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]])
    six = vote_fractions(table, ("1", "2", "3", "4", "5+", "?"))
    np.testing.assert_allclose(six.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(six[1], [0, 0, 0.5, 0.5, 0, 0])
    merged = vote_fractions(table, ("1", "2", "3,4", "5+", "?"), merge="3,4")
    np.testing.assert_allclose(merged[0], [0.1, 0.5, 0.3, 0.0, 0.1], rtol=1e-6)
    np.testing.assert_allclose(merged[1], [0, 0, 1.0, 0, 0])
    with pytest.raises(SpiralArmsError, match="row 0 has no T11 votes"):
        vote_fractions(_votes([[0.0] * 6]), ("1", "2", "3", "4", "5+", "?"))
    with pytest.raises(SpiralArmsError, match="T11 vote columns"):
        vote_fractions(pd.DataFrame({"label": ["2"]}), ("2",))


def test_balanced_sampler_draws_classes_equally_and_soft_targets_reach_the_batches():
    labels = torch.tensor([0] * 90 + [1] * 9 + [2] * 1)
    cached = CachedFeatures(features=torch.randn(1, 100, 8), labels=labels, views=("aug0",))
    module = FeatureDataModule(cached, cached, batch_size=100, seed=3)
    module.use_recipe(labels.numpy(), balanced=True, soft_targets=np.full((100, 3), 1 / 3))
    drawn = []
    for epoch in range(20):
        module.set_epoch(epoch)
        x, y = next(iter(module.train_dataloader()))
        assert x.shape == (100, 8) and y.shape == (100, 3) and y.dtype == torch.float32
        drawn.extend(list(module._sampler))
    shares = np.bincount(labels.numpy()[drawn], minlength=3) / len(drawn)
    np.testing.assert_allclose(shares, 1 / 3, atol=0.05)  # a shuffle would give 0.90 / 0.09 / 0.01


@pytest.mark.parametrize("recipe", [["train.loss=weighted"], ["train.loss=focal", "train.focal_gamma=1.5"],
                                    ["train.sampler=balanced", "train.soft_labels=true"]])
def test_recipes_reach_the_trained_module(tiny_galaxies, tmp_path, recipe):
    result = train(_tiny(tiny_galaxies, *recipe), tmp_path / "run")
    hparams = read_checkpoint(result.checkpoint)["hyper_parameters"]
    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    config = result.config.train
    assert summary["recipe"]["loss"] == hparams["loss"] == config.loss
    assert summary["recipe"]["sampler"] == config.sampler and summary["recipe"]["soft_labels"] == config.soft_labels
    if config.loss == "weighted":
        counts = np.array([summary["n_train"][c] for c in result.classes], dtype=float)
        np.testing.assert_allclose(hparams["class_weights"], counts.sum() / (len(counts) * counts), rtol=1e-6)
    else:
        assert hparams["class_weights"] is None
    if config.loss == "focal":
        assert hparams["focal_gamma"] == 1.5


def test_calibrate_stores_the_temperature_that_predict_applies(tiny_galaxies, tmp_path):
    result = train(_tiny(tiny_galaxies, "train.calibrate=true"), tmp_path / "run")
    temperature = json.loads((tmp_path / "run" / "train_summary.json").read_text())["recipe"]["temperature"]
    assert temperature is not None and temperature > 0 and abs(temperature - 1.0) > 1e-3
    assert load_model(tmp_path / "run").card.temperature == pytest.approx(temperature)
    # The validation probabilities written are the calibrated ones: the fitted T minimises their NLL at 1.
    from spiralarms.models.temperature import fit_temperature

    val = pd.read_csv(tmp_path / "run" / "val_predictions.csv")
    probs = val[[f"p_{c}" for c in result.classes]].to_numpy()
    labels = val["label"].map({c: i for i, c in enumerate(result.classes)}).to_numpy()
    assert fit_temperature(probs, labels) == pytest.approx(1.0, abs=0.02)
