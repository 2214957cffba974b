"""Fault injection: every class of fault against every command that takes it.

Each case asserts the exit status, the first line a person sees, that no row
vanished and that no file under a final name is partial; kill cases compare the
resumed result with an uninterrupted one. ``benchmarks/bench_faults.py`` runs this
suite and prints the reliability report.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from faultkit import (
    BAD_ENTRIES,
    Outcome,
    READABLE_EXTRA,
    TINY_TRAIN,
    one_line_error,
    partial_files,
    run_cli,
    run_process,
)

# --- bad image bytes and kinds -------------------------------------------------------


def test_predict_keeps_a_row_with_its_reason_for_every_bad_entry(tiny_run, bad_images, tmp_path, record):
    out = tmp_path / "p.parquet"
    outcome = run_cli("predict", tiny_run, bad_images, "--out", out, "--json")
    assert outcome.code == 0, outcome.stderr
    table = pd.read_parquet(out).set_index("id")
    visible = {Path(p).stem for p in os.listdir(bad_images) if not p.startswith(".")}
    lost = len(visible - set(table.index))
    record("predict", "bad image bytes and kinds", rows_lost=lost, partial=partial_files(tmp_path))
    assert lost == 0 and len(table) == len(visible)
    for name in BAD_ENTRIES:
        assert table.loc[name, "error"], name
        assert pd.isna(table.loc[name, "label"])
    for name in READABLE_EXTRA:
        assert table.loc[name, "error"] == "", (name, table.loc[name, "error"])
    assert "smaller than the model's 64-pixel crop" in table.loc["tiny", "error"]
    assert "regular file" in table.loc["fifo", "error"]


def test_prepare_and_train_report_unreadable_images_and_keep_going(tiny_galaxies, tmp_path, record):
    from spiralarms.catalog import read_catalog, select_clean_sample

    data = tmp_path / "data"
    shutil.copytree(tiny_galaxies, data)
    selected = select_clean_sample(read_catalog(data / "catalog.csv")).selected
    victims = [data / f for f in selected["file"].iloc[:3]]
    victims[0].write_bytes(b"")
    victims[1].write_bytes(victims[1].read_bytes()[:100])
    victims[2].unlink()
    store = tmp_path / "store"
    outcome = run_cli("prepare", data / "catalog.csv", store, "--crop", "64", "--workers", "1", "--json")
    assert outcome.code == 0, outcome.stderr
    index = pd.read_parquet(store / "index.parquet")
    lost = len(selected) - len(index)
    record("prepare", "bad image bytes and kinds", rows_lost=lost, partial=partial_files(store))
    assert lost == 0 and int((~index["ok"]).sum()) == 3
    run = tmp_path / "run"
    from spiralarms.errors import SpiralArmsWarning

    with pytest.warns(SpiralArmsWarning, match="3 selected galaxies with an unreadable image left out"):
        outcome = run_cli("train", "--config", "demo-lite0", "--catalog", data / "catalog.csv", "--out", run, "--json",
                          *TINY_TRAIN)
    assert outcome.code == 0, outcome.stderr
    split, unreadable = pd.read_csv(run / "split.csv"), pd.read_csv(run / "unreadable.csv")
    lost = len(selected) - len(split) - len(unreadable)
    record("train", "bad image bytes and kinds", rows_lost=lost, partial=partial_files(run))
    assert lost == 0 and len(unreadable) == 3 and "no such file" in unreadable["error"].tolist()


# --- bad tables ------------------------------------------------------------------------


BAD_TABLES = {
    "header only": ("dr7objid,file\n", "no rows"),
    "semicolons": ("dr7objid;file\n1;a.jpg\n", "semicolons"),
    "tabs": ("dr7objid\tfile\n1\ta.jpg\n", "tabs"),
    "no id or path": ("colour,size\nred,3\n", "no image path column"),
    "an id column of another name": ("galaxy_id,size\n100134,3\n", "name it with --id-column galaxy_id"),
    "binary garbage": (None, "cannot read"),
}


@pytest.mark.parametrize("fault", list(BAD_TABLES))
@pytest.mark.parametrize("command", ["predict", "select"])
def test_bad_tables_are_one_line_errors_naming_the_file(command, fault, tiny_run, tmp_path, record):
    text, expected = BAD_TABLES[fault]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    table = inputs / "table.csv"
    if text is None:
        table.write_bytes(os.urandom(3000))
    else:
        table.write_text(text)
    out = tmp_path / "out.csv"
    args = ("predict", tiny_run, table, "--out", out) if command == "predict" else ("select", table, "--out", out)
    outcome = run_cli(*args)
    record(command, f"bad table: {fault}", partial=partial_files(tmp_path, exclude=inputs))
    assert one_line_error(outcome), outcome.stderr
    assert str(table) in outcome.first_line or table.name in outcome.first_line
    if command == "select" and fault in ("header only",):
        return
    if command == "predict":
        assert expected in outcome.first_line, outcome.first_line
    assert not out.exists()


def test_select_names_the_missing_column_and_counts_nan_rows(tiny_galaxies, tmp_path, record):
    catalog = pd.read_csv(tiny_galaxies / "catalog.csv")
    broken = catalog.drop(columns=["t04_spiral_a08_spiral_count"])
    broken.to_csv(tmp_path / "missing.csv", index=False)
    outcome = run_cli("select", tmp_path / "missing.csv", "--json")
    record("select", "bad table: missing column")
    assert one_line_error(outcome) and "t04_spiral_a08_spiral_count" in outcome.first_line
    with_nan = catalog.copy()
    with_nan.loc[:4, "t02_edgeon_a05_no_weighted_fraction"] = np.nan
    with_nan.to_csv(tmp_path / "nan.csv", index=False)
    outcome = run_cli("select", tmp_path / "nan.csv", "--json", "--out", tmp_path / "sel.csv")
    summary = json.loads(outcome.stdout)
    assert outcome.code == 0 and summary["n_missing"] == 5
    written = pd.read_csv(tmp_path / "sel.csv")
    lost = summary["n_selected"] - len(written)
    record("select", "bad table: NaN in a cut column", rows_lost=lost, partial=partial_files(tmp_path))
    assert lost == 0


# --- bad paths and outputs ------------------------------------------------------------


@pytest.mark.parametrize("command", ["predict", "select", "export", "prepare"])
@pytest.mark.parametrize("fault", ["parent is a file", "table name is a folder"])
def test_unwritable_outputs_fail_before_any_work(command, fault, tiny_run, tiny_galaxies, tmp_path, record):
    (tmp_path / "file").write_text("x")
    if fault == "parent is a file":
        out = tmp_path / "file" / ("out" if command in ("export", "prepare") else "out.csv")
    else:
        out = tmp_path / "dir.csv"
        out.mkdir()
        (out / "keep.txt").write_text("not ours")
    args = {
        "predict": ("predict", tiny_run, tiny_galaxies / "images", "--out", out),
        "select": ("select", tiny_galaxies / "catalog.csv", "--out", out),
        "export": ("export", tiny_run, out),
        "prepare": ("prepare", tiny_galaxies / "catalog.csv", out, "--crop", "64", "--workers", "1"),
    }[command]
    started = time.perf_counter()
    outcome = run_cli(*args)
    record(command, f"bad output: {fault}", partial=partial_files(tmp_path))
    assert one_line_error(outcome), outcome.stderr
    assert "Traceback" not in outcome.stderr
    if fault == "table name is a folder":
        assert (out / "keep.txt").read_text() == "not ours", "a user's folder is never replaced"
    assert time.perf_counter() - started < 60


@pytest.mark.parametrize("command", ["select", "predict"])
def test_an_output_that_is_the_input_is_refused_and_the_input_kept(command, tiny_run, tiny_galaxies, tmp_path, record):
    catalog = tmp_path / "catalog.csv"
    table = pd.read_csv(tiny_galaxies / "catalog.csv", dtype=str)
    table.assign(file=[str(tiny_galaxies / f) for f in table["file"]]).to_csv(catalog, index=False)
    before = catalog.read_bytes()
    args = {"select": ("select", catalog, "--out", catalog),
            "predict": ("predict", tiny_run, catalog, "--out", catalog, "--overwrite")}[command]
    outcome = run_cli(*args)
    record(command, "bad output: the input itself", partial=partial_files(tmp_path))
    assert one_line_error(outcome) and "is the input" in outcome.first_line
    assert catalog.read_bytes() == before


@pytest.mark.parametrize("command", ["predict", "evaluate", "explain", "export", "train", "prepare", "select"])
def test_missing_inputs_are_one_line_errors(command, tmp_path, record):
    missing = tmp_path / "nothing-here"
    args = {
        "predict": ("predict", missing, tmp_path, "--out", tmp_path / "o.csv"),
        "evaluate": ("evaluate", missing),
        "explain": ("explain", missing),
        "export": ("export", missing, tmp_path / "e"),
        "train": ("train", "--config", "demo-lite0", "--catalog", missing, "--out", tmp_path / "r"),
        "prepare": ("prepare", missing, tmp_path / "s"),
        "select": ("select", missing),
    }[command]
    outcome = run_cli(*args)
    record(command, "missing input")
    assert one_line_error(outcome), outcome.stderr
    assert "nothing-here" in outcome.first_line


# --- resumed runs that would mix --------------------------------------------------------


def test_predict_refuses_to_mix_runs_and_keeps_the_output(tiny_run, tiny_galaxies, tmp_path, record):
    out = tmp_path / "p.parquet"
    assert run_cli("predict", tiny_run, tiny_galaxies / "images", "--out", out).code == 0
    before = out.read_bytes()
    outcome = run_cli("predict", tiny_run, tiny_galaxies / "images", "--out", out, "--tta", "2")
    record("predict", "rerun with other settings", partial=partial_files(tmp_path))
    assert one_line_error(outcome) and "tta (1 -> 2)" in outcome.first_line
    assert out.read_bytes() == before


@pytest.mark.parametrize("command", ["predict", "prepare", "train", "demo"])
def test_a_second_run_into_an_output_being_written_stops_and_leaves_it_alone(command, tiny_run, tiny_galaxies, tmp_path,
                                                                            record, held_elsewhere):
    out = tmp_path / ("p.parquet" if command == "predict" else "out")
    args = {
        "predict": ("predict", tiny_run, tiny_galaxies / "images", "--out", out),
        "prepare": ("prepare", tiny_galaxies / "catalog.csv", out, "--crop", "64", "--workers", "1"),
        "train": ("train", "--config", "demo-lite0", "--out", out, "--set", f"data.catalog={tiny_galaxies / 'catalog.csv'}",
                  *TINY_TRAIN),
        "demo": ("demo", "--out", out, "--n-per-class", "5"),
    }[command]
    with held_elsewhere(out):  # the first run, killed at the end of the block
        outcome = run_cli(*args)
    record(command, "a second run into an output being written", partial=partial_files(tmp_path))
    what = {"predict": "prediction run", "prepare": "prepare run", "train": "training run", "demo": "demo"}[command]
    assert one_line_error(outcome)
    assert outcome.first_line == f"error: {out}: another {what} is writing it now; wait for it to end, or give another output"
    assert not out.exists(), "the second run touched nothing"


# --- crafted checkpoints ----------------------------------------------------------------


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


CRAFTED = ("pickle payload", "truncated", "random bytes", "state dict that does not fit", "card without classes")


def _crafted(kind: str, tiny_run: Path, folder: Path) -> Path:
    best = tiny_run / "checkpoints" / "best.ckpt"
    path = folder / f"{kind.replace(' ', '-')}.ckpt"
    if kind == "pickle payload":
        torch.save({"state_dict": {}, "hyper_parameters": {"card": _Payload(folder / "pwned")}}, path)
    elif kind == "truncated":
        path.write_bytes(best.read_bytes()[:5000])
    elif kind == "random bytes":
        path.write_bytes(os.urandom(5000))
    else:
        checkpoint = torch.load(best, weights_only=True)
        if kind == "state dict that does not fit":
            checkpoint["state_dict"] = {k: v for k, v in list(checkpoint["state_dict"].items())[:-3]}
        else:
            checkpoint["hyper_parameters"]["card"].pop("classes")
        torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize("kind", CRAFTED)
@pytest.mark.parametrize("command", ["predict", "export"])
def test_crafted_checkpoints_are_refused_on_one_line(command, kind, tiny_run, tiny_galaxies, tmp_path, record):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    path = _crafted(kind, tiny_run, inputs)
    args = ("predict", path, tiny_galaxies / "images", "--out", tmp_path / "o.csv") if command == "predict" else (
        "export", path, tmp_path / "exported")
    outcome = run_cli(*args)
    record(command, f"crafted checkpoint: {kind}", partial=partial_files(tmp_path, exclude=inputs))
    assert one_line_error(outcome), outcome.stderr
    assert path.name in outcome.first_line
    assert not (inputs / "pwned").exists(), "no code ran"
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "exported").exists()
    assert partial_files(tmp_path, exclude=inputs) == []


# --- a full disk ------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs; the case is skipped where this process may not mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


def _fill(disk: Path, leave: int) -> None:
    free = shutil.disk_usage(disk).free
    with open(disk / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))


@pytest.mark.parametrize("command", ["select", "predict", "prepare", "train"])
def test_full_disk_is_a_one_line_error_and_leaves_no_partial_file(command, small_disk, tiny_run, tiny_galaxies, record):
    good = small_disk / "previous.csv"
    if command == "select":
        assert run_cli("select", tiny_galaxies / "catalog.csv", "--out", good).code == 0
        before = good.read_bytes()
    _fill(small_disk, 20_000)
    args = {
        "select": ("select", tiny_galaxies / "catalog.csv", "--out", good),
        "predict": ("predict", tiny_run, tiny_galaxies / "images", "--out", small_disk / "p.csv", "--chunk-size", "8"),
        "prepare": ("prepare", tiny_galaxies / "catalog.csv", small_disk / "store", "--crop", "64", "--workers", "1"),
        "train": ("train", "--config", "demo-lite0", "--catalog", tiny_galaxies / "catalog.csv", "--out",
                  small_disk / "run", *TINY_TRAIN),
    }[command]
    if command == "select":
        (small_disk / "filler").unlink()
        _fill(small_disk, 2_000)  # the new table (about 30 kB) no longer fits
    outcome = run_process(*args)
    partial = partial_files(small_disk)
    record(command, "full disk", partial=partial)
    assert one_line_error(outcome), outcome.stderr[-2000:]
    assert "space" in outcome.first_line
    assert partial == []
    if command == "select":
        assert good.read_bytes() == before, "the good earlier table is intact"


# --- kill -9 and SIGTERM at random points ------------------------------------------------
#: How a run is stopped from outside: SIGKILL leaves what was in flight; SIGTERM (``kill``,
#: a scheduler's time limit) must end it as Ctrl-C does, at once, with no temporary file.
STOPS = {"kill -9": signal.SIGKILL, "SIGTERM": signal.SIGTERM}


def _stop_when(args, ready, stop, timeout=180) -> Outcome:
    process = subprocess.Popen([sys.executable, "-m", "spiralarms", *map(str, args)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None and not ready():
        time.sleep(0.02)
    process.send_signal(STOPS[stop])
    _, stderr = process.communicate(timeout=120)
    return Outcome(process.returncode, "", stderr)


def _stopped_cleanly(outcome: Outcome, stop: str, folder: Path) -> list[str]:
    """What is wrong with how the run ended: SIGTERM must say so, exit 143 and leave no temporary file."""
    if stop != "SIGTERM":
        return []
    wrong = [] if (outcome.code, outcome.stderr) == (143, "terminated\n") else [f"ended {outcome.code}: {outcome.stderr!r}"]
    return wrong + [str(p) for p in folder.rglob("*") if p.is_file() and (p.name.startswith(".") or ".tmp" in p.name)]


def _repeated_catalogue(tiny_galaxies: Path, folder: Path, times: int = 40) -> Path:
    """The tiny catalogue 40 times over, new ids, the same images: long enough (2,360 rows) to stop mid-run."""
    table = pd.read_csv(tiny_galaxies / "catalog.csv")
    table = pd.concat([table] * times, ignore_index=True)
    table["dr7objid"] = table["dr7objid"].min() + np.arange(len(table))
    table["file"] = [str(tiny_galaxies / f) for f in table["file"]]
    path = folder / "catalog.csv"
    table.to_csv(path, index=False)
    return path


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (Lightning's launcher starts the other ranks so), from /proc."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the other rank through /proc (Linux)")
@pytest.mark.parametrize("stopped, stop", [("rank 1", "SIGTERM"), ("rank 0", "kill -9")])
def test_ddp_predict_stops_every_process_when_one_is_stopped(stopped, stop, tiny_run, tiny_galaxies, tmp_path, record):
    """Before, SIGTERM to rank 1 alone hung both processes for good (Lightning's handler
    broadcasts from inside itself), and after kill -9 of rank 0 rank 1 predicted on alone."""
    catalog = _repeated_catalogue(tiny_galaxies, tmp_path)
    same = ("--chunk-size", "16", "--batch-size", "1", "--workers", "0")
    ddp = ("--accelerator", "cpu", "--devices", "2", "--strategy", "ddp")
    straight = tmp_path / "straight.parquet"
    assert run_cli("predict", tiny_run, catalog, "--out", straight, *same).code == 0
    out = tmp_path / "killed.parquet"
    parts = tmp_path / "killed.parquet.parts"
    command = [sys.executable, "-m", "spiralarms", "predict", str(tiny_run), str(catalog), "--out", str(out), *same, *ddp]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline and process.poll() is None and (
            len(list(parts.glob("part-*.parquet"))) < 2 or not _children(process.pid)):
        time.sleep(0.02)
    assert process.poll() is None, process.communicate()[1]
    (rank1,) = _children(process.pid)
    os.kill(rank1 if stopped == "rank 1" else process.pid, STOPS[stop])
    # The pipe closes when both processes have ended: neither waits for the other for ever.
    _, stderr = process.communicate(timeout=90)
    assert not out.exists(), "stopped mid-run"
    lines = stderr.strip().splitlines()
    if stopped == "rank 1":
        assert process.returncode == 1 and "terminated" in lines, stderr
        assert lines[-1] == (f"error: process 1 of this run (pid {rank1}) ended with status 143, so every process "
                             "stops; what was finished is kept: run the same command again to resume"), stderr
    else:
        assert process.returncode == -signal.SIGKILL
        assert lines == ["error: rank 1: the process that started this one has gone, so it stops too; "
                         "what was finished is kept"], stderr
    # In a process of its own: Lightning's launcher starts rank 1 by running this process's command line again.
    resumed = run_process("predict", tiny_run, catalog, "--out", out, *same, *ddp)
    record("predict --devices 2", f"{stop} of {stopped}", partial=partial_files(tmp_path), kill=True)
    assert resumed.code == 0, resumed.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(straight), pd.read_parquet(out), check_exact=False, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("seed, stop", [(0, "kill -9"), (1, "kill -9"), (2, "SIGTERM")])
def test_prepare_killed_at_a_random_point_resumes_to_the_same_store(seed, stop, tiny_galaxies, tmp_path, record):
    catalog = _repeated_catalogue(tiny_galaxies, tmp_path)
    same = ("--crop", "64", "--workers", "1", "--chunk-size", "16")
    straight = tmp_path / "straight"
    assert run_cli("prepare", catalog, straight, *same).code == 0
    store = tmp_path / "killed"
    after = int(np.random.default_rng(seed).integers(1, 40))
    stopped = _stop_when(("prepare", catalog, store, *same),
                         lambda: len(list((store / "chunks").glob("*.json"))) >= after if (store / "chunks").is_dir()
                         else False, stop)
    unclean = _stopped_cleanly(stopped, stop, tmp_path)
    assert not (store / "index.parquet").exists() and len(list((store / "chunks").glob("*.json"))) >= after, \
        "stopped mid-run"
    outcome = run_cli("prepare", catalog, store, *same)
    record("prepare", stop, partial=partial_files(store) + unclean, kill=True)
    assert unclean == []
    assert outcome.code == 0, outcome.stderr
    assert (store / "images.npy").read_bytes() == (straight / "images.npy").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(store / "index.parquet"), pd.read_parquet(straight / "index.parquet"))


@pytest.mark.slow
@pytest.mark.parametrize("stop", STOPS)
def test_predict_killed_at_a_random_point_resumes_to_the_same_table(stop, tiny_run, tiny_galaxies, tmp_path, record):
    """Before SIGTERM was handled, predict ignored it (Lightning only sets a flag) and ran to the end."""
    same = ("--chunk-size", "5", "--batch-size", "1", "--workers", "0")  # batch size changes float rounding
    straight = tmp_path / "straight.csv"
    assert run_cli("predict", tiny_run, tiny_galaxies / "images", "--out", straight, *same).code == 0
    out = tmp_path / "killed.csv"
    parts = tmp_path / "killed.csv.parts"
    after = int(np.random.default_rng(3).integers(2, 8))
    stopped = _stop_when(("predict", tiny_run, tiny_galaxies / "images", "--out", out, *same),
                         lambda: len(list(parts.glob("part-*.parquet"))) >= after, stop)
    unclean = _stopped_cleanly(stopped, stop, tmp_path)
    assert not out.exists() and len(list(parts.glob("part-*.parquet"))) >= after, "stopped mid-run"
    outcome = run_cli("predict", tiny_run, tiny_galaxies / "images", "--out", out, *same)
    record("predict", stop, partial=partial_files(tmp_path) + unclean, kill=True)
    assert unclean == []
    assert outcome.code == 0, outcome.stderr
    assert out.read_bytes() == straight.read_bytes()
