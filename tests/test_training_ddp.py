"""Training on two CPU processes (``ddp_spawn`` over gloo) gives a whole run folder."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from spiralarms.config import load_config
from spiralarms.io.run_folder import RunFolder
from spiralarms.training import train


@pytest.mark.slow
def test_training_on_two_cpu_devices_with_ddp_spawn(tiny_galaxies, tmp_path):
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.fail("torch was built without the gloo backend: CPU DDP cannot run")
    run = RunFolder(tmp_path / "ddp")
    config = load_config(
        "demo-lite0",
        overrides=[
            f"data.catalog={tiny_galaxies / 'catalog.csv'}",
            "data.crop=48",
            "model.backbone=test_efficientnet",
            "model.pretrained=false",
            "model.hidden=16",
            "train.max_epochs=2",
            "train.cache_views=1",
            "train.progress=false",
            "train.accelerator=cpu",
            "train.devices=2",
            "train.strategy=ddp_spawn",
        ],
    )
    result = train(config, run.path)
    assert result.checkpoint == run.best_checkpoint and run.best_checkpoint.is_file()
    metrics = json.loads(run.metrics.read_text())
    n_val = sum(row["support"] for row in metrics["per_class"].values())
    # Each validation galaxy is counted once, not once per process.
    split = pd.read_csv(run.split)
    assert n_val == int((split["split"] == "val").sum()) > 0
    summary = json.loads(run.train_summary.read_text())
    assert summary["epochs_run"] >= 1
