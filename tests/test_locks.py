"""One run at a time into one output: predict, prepare and train stop while another run holds it."""

from __future__ import annotations

import pytest

from spiralarms.errors import SpiralArmsError
from spiralarms.io.locks import hold_output, lock_path


def test_a_held_output_is_refused_until_released_and_its_lock_file_goes_with_it(tmp_path):
    out = tmp_path / "new" / "arms.parquet"
    assert lock_path(out) == tmp_path / "new" / ".arms.parquet.lock"
    with hold_output(out, "prediction run") as first:
        assert first.held and lock_path(out).is_file()
        with pytest.raises(SpiralArmsError, match=r"arms.parquet: another prediction run is writing it now; wait"):
            hold_output(out, "prediction run")
    assert not first.held and not lock_path(out).exists(), "released, and its file removed"
    second = hold_output(out)
    assert second.held
    second.release()
    second.release()  # twice is harmless
    assert not out.exists() and list(tmp_path.joinpath("new").iterdir()) == [], "nothing left beside the output"


def test_the_lock_file_of_a_killed_run_is_taken_over_and_removed(tmp_path, held_elsewhere):
    out = tmp_path / "arms.parquet"
    with held_elsewhere(out):  # killed at the block's end, so its file stays
        assert lock_path(out).is_file()
    assert lock_path(out).is_file()
    with hold_output(out) as lock:
        assert lock.held
    assert not lock_path(out).exists()


def test_a_lock_file_removed_under_a_waiting_run_is_not_trusted(tmp_path, monkeypatch):
    """The run that ends removes its file before letting go; a run that locked the removed file tries again."""
    import fcntl

    out = tmp_path / "arms.parquet"
    real_flock, calls = fcntl.flock, []

    def flock_after_the_holder_left(fd, operation):
        calls.append(fd)
        if len(calls) == 1:  # between this run's open and its lock, the holder removed the file and ended
            lock_path(out).unlink()
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_the_holder_left)
    lock = hold_output(out)
    assert lock.held and len(calls) == 2 and lock_path(out).is_file(), "locked the file that is there now"
    lock.release()
    assert not lock_path(out).exists()


def test_prepare_stops_while_another_prepare_holds_the_store(tiny_galaxies, tmp_path, held_elsewhere):
    from spiralarms.data.store import PreparedStore, prepare_store

    store = tmp_path / "store"
    with held_elsewhere(store):
        with pytest.raises(SpiralArmsError, match="store: another prepare run is writing it now"):
            prepare_store(tiny_galaxies / "catalog.csv", store, crop=32, workers=1, progress=False)
        assert not store.exists()
    summary = prepare_store(tiny_galaxies / "catalog.csv", store, crop=32, workers=1, progress=False)
    assert summary["n_ok"] > 0 and len(PreparedStore(store)) == summary["n"]


def test_train_stops_while_another_training_run_holds_the_folder(tiny_galaxies, tmp_path, held_elsewhere):
    from spiralarms.config import load_config
    from spiralarms.training import train

    config = load_config("demo-lite0", overrides=[
        f"data.catalog={tiny_galaxies / 'catalog.csv'}", "data.crop=32", "model.backbone=test_efficientnet",
        "model.pretrained=false", "train.max_epochs=1", "train.cache_views=1", "train.progress=false",
    ])
    run_dir = tmp_path / "run"
    with held_elsewhere(run_dir):
        with pytest.raises(SpiralArmsError, match="run: another training run is writing it now"):
            train(config, run_dir)
        assert not run_dir.exists()
    assert train(config, run_dir).checkpoint.is_file()


@pytest.mark.slow
def test_under_ddp_a_held_output_stops_every_rank_with_one_line_each(tiny_run, tiny_galaxies, tmp_path, held_elsewhere):
    """Rank 0 stops at the lock; rank 1, waiting for it, says why it stopped instead of a traceback."""
    import subprocess
    import sys

    out = tmp_path / "arms.parquet"
    command = [sys.executable, "-m", "spiralarms", "predict", str(tiny_run),
               str(tiny_galaxies / "images"), "--out", str(out), "--accelerator", "cpu", "--devices", "2",
               "--strategy", "ddp"]
    with held_elsewhere(out):
        run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-3000:]
    assert f"error: {out}: another prediction run is writing it now" in run.stderr
    assert not out.exists()
