"""`spiralarms prepare` then `spiralarms train` on the prepared store, through the real CLI."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from spiralarms.catalog import read_catalog, select_clean_sample
from spiralarms.cli import app

runner = CliRunner()

TINY = [
    "--set", "data.crop=64",
    "--set", "model.backbone=test_efficientnet",
    "--set", "model.pretrained=false",
    "--set", "train.max_epochs=2",
    "--set", "train.cache_views=1",
]  # fmt: skip


def test_prepare_then_train_from_the_store_matches_training_from_jpegs(tiny_galaxies, tmp_path):
    store = tmp_path / "store"
    result = runner.invoke(app, ["prepare", str(tiny_galaxies / "catalog.csv"), str(store), "--crop", "64", "--workers", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["n_failed"] == 0 and summary["n"] > 0

    runs = {}
    for name, catalog in (("store", store), ("jpeg", tiny_galaxies / "catalog.csv")):
        run = tmp_path / name
        result = runner.invoke(
            app, ["train", "--config", "demo-lite0", "--catalog", str(catalog), "--out", str(run), "--json", *TINY]
        )
        assert result.exit_code == 0, result.output
        runs[name] = json.loads(result.stdout.strip().splitlines()[-1])
    # The store holds the very crops the JPEG path decodes: same split, same metrics.
    assert runs["store"]["confusion_matrix"] == runs["jpeg"]["confusion_matrix"]
    split_store = pd.read_csv(tmp_path / "store" / "split.csv", dtype=str)
    split_jpeg = pd.read_csv(tmp_path / "jpeg" / "split.csv", dtype=str)
    assert sorted(split_store["id"]) == sorted(split_jpeg["id"])


def test_store_with_a_corrupt_image_is_reported_and_training_leaves_it_out(tiny_galaxies, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_galaxies, data)
    selected = select_clean_sample(read_catalog(data / "catalog.csv")).selected
    victim = data / selected["file"].iloc[0]
    victim.write_bytes(victim.read_bytes()[:200])  # truncated JPEG
    store = tmp_path / "store"
    result = runner.invoke(app, ["prepare", str(data / "catalog.csv"), str(store), "--crop", "64", "--workers", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["n"] == len(selected) and summary["n_failed"] == 1
    report = pd.read_csv(store / "report.csv", dtype=str)
    assert len(report) == 1 and victim.name in report.to_csv()
    with pytest.warns(UserWarning, match="store: 1 galaxy with an unreadable image left out"):
        result = runner.invoke(
            app, ["train", "--config", "demo-lite0", "--catalog", str(store), "--out", str(tmp_path / "run"), "--json", *TINY]
        )
    assert result.exit_code == 0, result.output
    split = pd.read_csv(tmp_path / "run" / "split.csv", dtype=str)
    assert len(split) == len(selected) - 1


def test_store_settings_must_fit_the_config(tiny_galaxies, tmp_path):
    store = tmp_path / "store"
    assert runner.invoke(app, ["prepare", str(tiny_galaxies / "catalog.csv"), str(store), "--crop", "48", "--workers", "1", "--json"]).exit_code == 0
    result = runner.invoke(app, ["train", "--config", "demo-lite0", "--catalog", str(store), "--out", str(tmp_path / "r"), *TINY])
    assert result.exit_code == 1
    assert "48-pixel crops" in result.output and len(result.output.strip().splitlines()) == 1


def test_training_from_jpegs_leaves_out_an_unreadable_image_and_lists_it(tiny_galaxies, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_galaxies, data)
    selected = select_clean_sample(read_catalog(data / "catalog.csv")).selected
    victim = data / selected["file"].iloc[1]
    victim.write_bytes(b"")
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="1 selected galaxy with an unreadable image left out"):
        result = runner.invoke(
            app, ["train", "--config", "demo-lite0", "--catalog", str(data / "catalog.csv"), "--out", str(run), "--json", *TINY]
        )
    assert result.exit_code == 0, result.output
    unreadable = pd.read_csv(run / "unreadable.csv")
    assert len(unreadable) == 1 and unreadable["file"].iloc[0].endswith(victim.name)
    assert unreadable["error"].iloc[0] == "empty file"
    assert len(pd.read_csv(run / "split.csv")) == len(selected) - 1
