"""Prepared image store: exact contents, bad images recorded, resumption, settings, dataset parity."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
import typer
from PIL import Image
from typer.testing import CliRunner

from spiralarms.catalog import schema as sch
from spiralarms.catalog.classes import ARM_CLASSES
from spiralarms.cli.data import prepare
from spiralarms.data.store import building as store_module
from spiralarms.data.dataset import GalaxyDataset
from spiralarms.data.images import load_image_uint8
from spiralarms.data.store import PreparedStore, is_prepared_store, prepare_store
from spiralarms.data.transforms import build_eval_transform, build_train_transform, center_crop
from spiralarms.errors import SpiralArmsError

LABELS = ("1", "2", "2", "3", "4", "5+", "?", "2", "3", "?", "1", "2", "5+", "4", "2", "?", "3", "2")
CORRUPT = 4  # truncated JPEG
MISSING = 9  # no file on disk
SIZE, CROP = 60, 36


def _votes(label: str) -> dict:
    k = ARM_CLASSES.index(label)
    row = {
        sch.FEATURES_OR_DISK + sch.WEIGHTED_FRACTION: 0.9,
        sch.NOT_EDGE_ON + sch.WEIGHTED_FRACTION: 0.9,
        sch.SPIRAL + sch.WEIGHTED_FRACTION: 0.9,
        sch.SPIRAL + sch.COUNT: 30,
    }
    for i, answer in enumerate(sch.T11_ANSWERS):
        row[answer + sch.WEIGHTED_FRACTION] = 0.7 if i == k else 0.05
        row[answer + sch.DEBIASED] = 0.9 if i == k else 0.01
    return row


@pytest.fixture
def catalog(tmp_path):
    """A GZ2 catalogue of real-format JPEGs (one truncated, one absent) and one failing row."""
    folder = tmp_path / "data"
    (folder / "images").mkdir(parents=True)
    ids = [8647474690312307154 + k for k in range(len(LABELS) + 1)]
    rows = [_votes(label) for label in LABELS] + [{**_votes("2"), sch.SPIRAL + sch.COUNT: 3}]
    table = pd.DataFrame(rows)
    table.insert(0, "dr7objid", ids)
    table["file"] = [f"images/{i}.jpg" for i in ids]
    rng = np.random.default_rng(1)
    for k, galaxy in enumerate(ids):
        if k == MISSING:
            continue
        # Smooth gradients plus noise: a JPEG that survives with realistic artefacts.
        yy, xx = np.mgrid[0:SIZE, 0:SIZE]
        base = (yy * 3 + xx * (k + 1)) % 256
        pixels = np.clip(base[..., None] + rng.normal(0, 20, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / "images" / f"{galaxy}.jpg", quality=92)
    corrupt = folder / "images" / f"{ids[CORRUPT]}.jpg"
    corrupt.write_bytes(corrupt.read_bytes()[:300])
    path = folder / "catalog.csv"
    table.to_csv(path, index=False)
    return path


def _prepare(catalog, out, **kwargs):
    options = {"crop": CROP, "workers": 1, "chunk_size": 4, "progress": False, **kwargs}
    return prepare_store(catalog, out, **options)


@pytest.mark.parametrize("grey", [False, True])
def test_rows_equal_direct_decoding_and_crop(catalog, tmp_path, grey):
    summary = _prepare(catalog, tmp_path / "store", grey=grey)
    store = PreparedStore(tmp_path / "store")
    assert summary["n"] == len(LABELS) == len(store)
    assert store.images.shape == (len(LABELS), CROP, CROP, 1 if grey else 3)
    assert store.images.dtype == np.uint8
    for row in store.table.itertuples():
        if row.ok:
            direct = center_crop(load_image_uint8(row.file, grey=grey), CROP)
            np.testing.assert_array_equal(store.image(row.row), direct)
    assert list(store.table["label"]) == list(LABELS)
    assert store.classes == ARM_CLASSES
    settings = json.loads((tmp_path / "store" / "store.json").read_text())
    assert settings["crop"] == CROP and settings["grey"] is grey and settings["dtype"] == "uint8"
    assert settings["source"]["sha256"] and settings["source"]["catalog"].endswith("catalog.csv")


def test_unreadable_images_are_recorded_and_never_served(catalog, tmp_path):
    summary = _prepare(catalog, tmp_path / "store")
    assert summary["n_failed"] == 2 and summary["n_ok"] == len(LABELS) - 2
    store = PreparedStore(tmp_path / "store")
    table = store.table.set_index("row")
    assert not table.loc[CORRUPT, "ok"] and table.loc[CORRUPT, "error"].startswith("truncated or corrupt JPEG")
    assert not table.loc[MISSING, "ok"] and table.loc[MISSING, "error"] == "no such file"
    assert not store.image(CORRUPT).any() and not store.image(MISSING).any()
    report = pd.read_csv(tmp_path / "store" / "report.csv")
    assert list(report["row"]) == [CORRUPT, MISSING]
    dataset = store.as_dataset()
    assert len(dataset) == len(LABELS) - 2 and CORRUPT not in dataset.rows and MISSING not in dataset.rows
    with pytest.raises(SpiralArmsError, match=f"row {MISSING} .*no such file"):
        store.as_dataset(rows=[0, MISSING])
    counts = summary["counts"]
    assert sum(counts.values()) == summary["n_ok"]


def test_resume_after_a_kill_gives_the_same_store(catalog, tmp_path, monkeypatch):
    _prepare(catalog, tmp_path / "straight")
    original = store_module._process_chunk
    calls = []

    def killed_midway(images_path, start, files, crop, grey):
        calls.append(start)
        if len(calls) == 3:
            # Half of the chunk reaches the disk, then the process dies.
            array = np.load(images_path, mmap_mode="r+")
            array[start : start + 2] = 77
            array.flush()
            raise KeyboardInterrupt
        return original(images_path, start, files, crop, grey)

    monkeypatch.setattr(store_module, "_process_chunk", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        _prepare(catalog, tmp_path / "resumed")
    assert not is_prepared_store(tmp_path / "resumed")
    assert len(list((tmp_path / "resumed" / "chunks").iterdir())) == 2
    with pytest.raises(SpiralArmsError, match="unfinished"):
        PreparedStore(tmp_path / "resumed")

    monkeypatch.setattr(store_module, "_process_chunk", original)
    summary = _prepare(catalog, tmp_path / "resumed")
    assert summary["chunks_reused"] == 2 and summary["chunks"] == 5
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert (resumed / "images.npy").read_bytes() == (straight / "images.npy").read_bytes()
    pd.testing.assert_frame_equal(
        pd.read_parquet(resumed / "index.parquet"), pd.read_parquet(straight / "index.parquet")
    )
    assert not (resumed / "chunks").exists()


def test_rerun_of_a_finished_store_does_nothing(catalog, tmp_path):
    _prepare(catalog, tmp_path / "store")
    before = (tmp_path / "store" / "images.npy").stat().st_mtime_ns
    again = _prepare(catalog, tmp_path / "store")
    assert again["up_to_date"] is True and again["n_ok"] == len(LABELS) - 2
    assert (tmp_path / "store" / "images.npy").stat().st_mtime_ns == before


def test_other_settings_or_a_foreign_folder_are_refused(catalog, tmp_path):
    _prepare(catalog, tmp_path / "store")
    with pytest.raises(SpiralArmsError, match=r"crop: 36 there, 32 now\); use a new OUT folder"):
        _prepare(catalog, tmp_path / "store", crop=32)
    with pytest.raises(SpiralArmsError, match="grey"):
        _prepare(catalog, tmp_path / "store", grey=True)
    with pytest.raises(SpiralArmsError, match="classes"):
        _prepare(catalog, tmp_path / "store", merge="3,4")
    moved = catalog.with_name("moved.csv")
    table = pd.read_csv(catalog, dtype={"dr7objid": str})
    table.loc[0, "file"] = "images/elsewhere.jpg"
    table.to_csv(moved, index=False)
    with pytest.raises(SpiralArmsError, match="store of other galaxies"):
        _prepare(moved, tmp_path / "store")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(SpiralArmsError, match="not a spiralarms store"):
        _prepare(catalog, tmp_path / "other")
    assert not is_prepared_store(tmp_path / "other") and is_prepared_store(tmp_path / "store")


def test_parallel_workers_write_the_same_bytes(catalog, tmp_path):
    _prepare(catalog, tmp_path / "serial", workers=1)
    summary = _prepare(catalog, tmp_path / "parallel", workers=2)
    assert summary["n_failed"] == 2
    assert (tmp_path / "parallel" / "images.npy").read_bytes() == (tmp_path / "serial" / "images.npy").read_bytes()


@pytest.mark.parametrize("grey", [False, True])
def test_dataset_matches_galaxy_dataset(catalog, tmp_path, grey):
    _prepare(catalog, tmp_path / "store", grey=grey)
    store = PreparedStore(tmp_path / "store")
    usable = store.table[store.table["ok"]].reset_index(drop=True)
    reference = GalaxyDataset(usable, store.classes, transform=build_eval_transform(crop=CROP, grey=grey), grey=grey)
    prepared = store.as_dataset(build_eval_transform(crop=None, grey=grey))
    assert len(prepared) == len(reference)
    np.testing.assert_array_equal(prepared.labels, reference.labels)
    for i in range(len(reference)):
        (a, la), (b, lb) = prepared[i], reference[i]
        assert a.dtype == torch.float32 and a.shape == (1 if grey else 3, CROP, CROP)
        assert la == lb and torch.equal(a, b)


def test_dataset_pickles_without_its_pixels_and_trains(catalog, tmp_path):
    _prepare(catalog, tmp_path / "store", crop=48)
    store = PreparedStore(tmp_path / "store")
    dataset = store.as_dataset(build_train_transform(crop=32))
    torch.manual_seed(0)
    image, label = dataset[0]
    assert image.shape == (3, 32, 32) and 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert len(pickle.dumps(dataset)) < 20_000  # the memory map is not pickled
    batch, labels = next(iter(torch.utils.data.DataLoader(dataset, batch_size=4)))
    assert batch.shape == (4, 3, 32, 32) and labels.dtype == torch.int64


def test_prepare_command(catalog, tmp_path):
    app = typer.Typer()
    app.command()(prepare)
    app.command("noop")(lambda: None)  # two commands: typer keeps the command name
    runner = CliRunner()
    out = tmp_path / "store"
    result = runner.invoke(
        app, ["prepare", str(catalog), str(out), "--crop", str(CROP), "--grey", "--workers", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["shape"] == [len(LABELS), CROP, CROP, 1] and summary["n_failed"] == 2
    assert summary["n_selected"] == len(LABELS) and summary["counts"]["2"] == LABELS.count("2")
    text = runner.invoke(app, ["prepare", str(catalog), str(out), "--crop", str(CROP), "--grey"])
    assert text.exit_code == 0 and "up to date" in text.stdout


def test_prepare_with_no_readable_image_writes_its_report_and_fails(catalog, tmp_path):
    for image in (catalog.parent / "images").iterdir():
        image.unlink()
    app = typer.Typer()
    app.command()(prepare)
    app.command("noop")(lambda: None)
    out = tmp_path / "store"
    result = CliRunner().invoke(app, ["prepare", str(catalog), str(out), "--crop", str(CROP), "--workers", "1"])
    assert result.exit_code != 0
    assert isinstance(result.exception, SpiralArmsError)
    message = str(result.exception)
    assert "none of the" in message and "report.csv" in message and "\n" not in message
    report = pd.read_csv(out / "report.csv")
    assert len(report) == len(LABELS) and set(report["error"]) == {"no such file"}
