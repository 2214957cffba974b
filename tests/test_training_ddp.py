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


def test_a_failed_process_of_a_ddp_spawn_run_is_one_line_not_a_traceback():
    """torch.multiprocessing hands the spawning process the child's traceback as text."""
    from torch.multiprocessing.spawn import ProcessExitedException, ProcessRaisedException

    from spiralarms.cli.main import _spawned_failure

    def raised(last_line):
        message = f"\n\n-- Process 1 terminated with the following error:\nTraceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n{last_line}\n"
        return ProcessRaisedException(message, 1, 4242)

    peer = raised("RuntimeError: [gloo/transport/tcp/pair.cc:561] Connection closed by peer [127.0.0.1]:49290.")
    assert _spawned_failure(peer) == "process 1 of this run stopped because another process of it ended"
    bad = raised("spiralarms.errors.SpiralArmsError: catalog.csv, row 7: no image file for this row")
    assert _spawned_failure(bad) == "catalog.csv, row 7: no image file for this row"
    assert _spawned_failure(raised("ValueError: odd")) == "process 1 of this run failed: ValueError: odd"
    killed = ProcessExitedException("process 0 terminated with signal SIGKILL", 0, 4243, -9, "SIGKILL")
    assert _spawned_failure(killed).startswith("process 0 of this run was killed by SIGKILL")
    exited = ProcessExitedException("process 1 terminated with exit code 3", 1, 4244, 3)
    assert _spawned_failure(exited).startswith("process 1 of this run ended with status 3")
    assert _spawned_failure(RuntimeError("Connection closed by peer")) is None, "not a ddp_spawn failure"
