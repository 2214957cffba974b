"""Shared fixtures: a tiny synthetic data set and a tiny trained run built once per session."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest

#: Real data shared beside the repository (read in place, never copied).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_galaxies(tmp_path_factory) -> Path:
    """12 synthetic galaxies per class at 96 pixels: catalog.csv and images/.

    The crisp preset: its sharp arms survive 96 pixels, and it renders fastest.
    """
    from spiralarms.data.synthetic import synthesize_dataset

    out = tmp_path_factory.mktemp("tiny-galaxies")
    synthesize_dataset(out, n_per_class=12, seed=3, size=96, progress=False, preset="crisp")
    return out


@pytest.fixture(scope="session")
def tiny_run(tiny_galaxies, tmp_path_factory) -> Path:
    """A run folder trained for two epochs with a tiny random-weight backbone."""
    from spiralarms.config import load_config
    from spiralarms.training import train

    run_dir = tmp_path_factory.mktemp("tiny-run") / "run"
    config = load_config(
        "demo-lite0",
        overrides=[
            f"data.catalog={tiny_galaxies / 'catalog.csv'}",
            "data.crop=64",
            "model.backbone=test_efficientnet",
            "model.pretrained=false",
            "train.max_epochs=2",
            "train.cache_views=1",
            "train.progress=false",
        ],
    )
    train(config, run_dir)
    return run_dir


@pytest.fixture
def held_elsewhere():
    """``held_elsewhere(out)``: a context in which another process holds ``out`` as a running command does.

    The holder is killed at the block's end, as a run killed with ``kill -9`` would be.
    """

    @contextlib.contextmanager
    def hold(out):
        holder = subprocess.Popen(
            [sys.executable, "-c", "import sys, time; from spiralarms.io.locks import hold_output; "
             "lock = hold_output(sys.argv[1]); assert lock.held; print('held', flush=True); time.sleep(120)", str(out)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert holder.stdout.readline().strip() == "held"
            yield
        finally:
            holder.kill()
            holder.wait()

    return hold
