"""Prediction engine: one row per input, errors kept, streamed, resumable only into the same run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from spiralarms.cli import app
from spiralarms.errors import SpiralArmsError, SpiralArmsWarning
from spiralarms.models.loading import export_model, load_model
from spiralarms.models.module import ArmClassifierModule
from spiralarms.predictions import predict, predict_arrays
from spiralarms.predictions.sources import NO_FILE

runner = CliRunner()


@pytest.fixture(scope="module")
def loaded(tiny_run):
    return load_model(tiny_run)


@pytest.fixture
def folder_with_bad_files(tiny_galaxies, tmp_path):
    """Six galaxy JPEGs, a corrupt and a truncated JPEG, a text file, and entries that are not files."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    good = sorted((tiny_galaxies / "images").glob("*.jpg"))[:6]
    for f in good:
        shutil.copy(f, folder / f.name)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 4)
    data = good[0].read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "notes.txt").write_text("not an image\n")
    (folder / "dir.jpg").mkdir()
    os.symlink(folder / "missing-target.jpg", folder / "dangling.jpg")
    os.symlink(folder / "loop-b.jpg", folder / "loop-a.jpg")
    os.symlink(folder / "loop-a.jpg", folder / "loop-b.jpg")
    (folder / ".hidden.jpg").write_bytes(data)
    return folder


def _prob_columns(card):
    return [f"p_{c}" for c in card.classes]


def test_folder_prediction_keeps_every_visible_entry_with_its_reason(loaded, folder_with_bad_files, tmp_path):
    out = tmp_path / "pred.parquet"
    summary = predict(loaded, folder_with_bad_files, out, batch_size=4, progress=False)
    result = pd.read_parquet(out)
    visible = sorted(p.name for p in folder_with_bad_files.iterdir() if not p.name.startswith("."))
    assert len(result) == len(visible) == 13 == summary.n_inputs
    assert result["file"].map(os.path.basename).tolist() == visible  # input (name) order
    cols = _prob_columns(loaded.card)
    assert list(result.columns) == ["id", "file", *cols, "label", "error"]
    bad = result.set_index("id")
    assert "truncated" in bad.loc["truncated", "error"] and "corrupt" in bad.loc["corrupt", "error"]
    assert "not an image" in bad.loc["notes", "error"]
    assert "folder" in bad.loc["dir", "error"]
    assert "broken symbolic link" in bad.loc["dangling", "error"]
    assert "loop" in bad.loc["loop-a", "error"] and "loop" in bad.loc["loop-b", "error"]
    errors = result[result["error"] != ""]
    assert len(errors) == summary.n_errors == 7
    assert errors[cols].isna().all().all() and errors["label"].isna().all()
    good = result[result["error"] == ""]
    assert len(good) == 6
    assert np.allclose(good[cols].sum(axis=1), 1.0, atol=1e-5)
    assert (good["label"] == good[cols].idxmax(axis=1).str[2:]).all()
    assert sum(summary.counts.values()) == 6
    assert not (tmp_path / "pred.parquet.parts").exists()


def test_threaded_reading_and_worker_processes_give_the_table_of_serial_reading(loaded, folder_with_bad_files,
                                                                              tmp_path, monkeypatch):
    from spiralarms.predictions import reading

    tables = {}
    for name, workers, threads in (("serial", 0, 1), ("threads", 0, 4), ("worker", 2, None)):
        if threads is not None:
            monkeypatch.setattr(torch, "get_num_threads", lambda threads=threads: threads)
        seen = []
        real_batch = reading.SurveyImages._batch

        def spy(self, *args, **kwargs):
            seen.append(self.threads)
            return real_batch(self, *args, **kwargs)

        monkeypatch.setattr(reading.SurveyImages, "_batch", spy)
        out = tmp_path / f"{name}.parquet"
        predict(loaded, folder_with_bad_files, out, batch_size=4, shard_rows=5, num_workers=workers, progress=False)
        monkeypatch.undo()
        tables[name] = pd.read_parquet(out)
        if workers == 0:  # batches read in this process: the spy saw them
            assert set(seen) == {threads}
    assert len(tables["serial"]) == 13 and (tables["serial"]["error"] != "").sum() == 7
    pd.testing.assert_frame_equal(tables["serial"], tables["threads"])
    pd.testing.assert_frame_equal(tables["serial"], tables["worker"])


def test_model_card_round_trip_matches_the_runs_validation_predictions(tiny_run, tmp_path):
    module = ArmClassifierModule.load_from_checkpoint(tiny_run / "checkpoints" / "best.ckpt")
    assert module.card.crop == 64 and module.card.backbone == "test_efficientnet"
    split = pd.read_csv(tiny_run / "split.csv", dtype={"id": str})
    val = split[split["split"] == "val"][["id", "file"]]
    out = tmp_path / "val.csv"
    predict(tiny_run / "checkpoints" / "best.ckpt", val, out, progress=False)
    ours = pd.read_csv(out, dtype={"id": str}).set_index("id")
    theirs = pd.read_csv(tiny_run / "val_predictions.csv", dtype={"id": str}).set_index("id").loc[ours.index]
    cols = _prob_columns(module.card)
    np.testing.assert_allclose(ours[cols].to_numpy(), theirs[cols].to_numpy(), atol=1e-5)
    # The in-memory path gives the same numbers through the same predict_step.
    from spiralarms.data.dataset import GalaxyDataset
    from spiralarms.data.transforms import build_eval_transform

    dataset = GalaxyDataset(val, module.classes, build_eval_transform(crop=64), label_column=None)
    np.testing.assert_allclose(predict_arrays(module, dataset), ours[cols].to_numpy(), atol=1e-5)


def test_csv_parquet_and_dataset_outputs_hold_the_same_rows(loaded, folder_with_bad_files, tmp_path):
    predict(loaded, folder_with_bad_files, tmp_path / "a.parquet", shard_rows=3, progress=False)
    predict(loaded, folder_with_bad_files, tmp_path / "a.csv.gz", shard_rows=5, progress=False)
    summary = predict(loaded, folder_with_bad_files, tmp_path / "dataset", shard_rows=4, progress=False)
    a = pd.read_parquet(tmp_path / "a.parquet")
    b = pd.read_csv(tmp_path / "a.csv.gz", dtype={"id": str, "label": str})
    c = pd.read_parquet(tmp_path / "dataset")
    parts = sorted(p.name for p in (tmp_path / "dataset").glob("part-*.parquet"))
    assert parts == [f"part-{k:06d}.parquet" for k in range(4)]
    manifest = json.loads((tmp_path / "dataset" / "_manifest.json").read_text())
    assert manifest["complete"] and [p["rows"] for p in manifest["parts"]] == [4, 4, 4, 1]
    assert manifest["identity"]["model"]["fingerprint"] == loaded.fingerprint
    assert summary.n_inputs == 13 and not (tmp_path / "dataset" / "_inputs.parquet").exists()
    cols = _prob_columns(loaded.card)
    for other in (b, c):
        assert other["id"].tolist() == a["id"].tolist()
        np.testing.assert_allclose(other[cols].to_numpy(float), a[cols].to_numpy(float), atol=1e-6, equal_nan=True)
        assert other["error"].fillna("").tolist() == a["error"].tolist()


@pytest.mark.parametrize("name", ["p.parquet", "p.csv", "p.csv.gz", "dataset"])
def test_rerun_is_up_to_date_and_a_different_model_or_setting_is_refused(tiny_run, loaded, folder_with_bad_files,
                                                                         tmp_path, name):
    """For every output form: a Parquet file's metadata, a CSV's sidecar, a folder's _manifest.json."""
    out = tmp_path / name

    def stamp():
        return (out / "_manifest.json" if out.is_dir() else out).stat().st_mtime_ns

    predict(loaded, folder_with_bad_files, out, progress=False)
    written = stamp()
    again = predict(loaded, folder_with_bad_files, out, progress=False)
    assert again.up_to_date and stamp() == written and again.n_inputs == 13

    other = ArmClassifierModule(loaded.card)  # same card, other (random) weights
    other_ckpt = tmp_path / "other.ckpt"
    torch.save({"state_dict": other.state_dict(), "hyper_parameters": dict(other.hparams)}, other_ckpt)
    with pytest.raises(SpiralArmsError, match="another run; differs in model"):
        predict(other_ckpt, folder_with_bad_files, out, progress=False)
    with pytest.raises(SpiralArmsError, match=r"tta \(1 -> 2\)"):
        predict(loaded, folder_with_bad_files, out, tta=2, progress=False)
    (folder_with_bad_files / "extra.jpg").write_bytes((folder_with_bad_files / "truncated.jpg").read_bytes())
    with pytest.raises(SpiralArmsError, match="differs in inputs"):
        predict(loaded, folder_with_bad_files, out, progress=False)
    assert stamp() == written, "a refused run leaves the output alone"
    replaced = predict(other_ckpt, folder_with_bad_files, out, overwrite=True, progress=False)
    assert replaced.n_inputs == 14 and not replaced.up_to_date
    if name.startswith("p.csv"):  # a CSV edited since (or one spiralarms did not write) holds no record
        with open(out, "ab") as fh:
            fh.write(b"\n")
        with pytest.raises(SpiralArmsError, match="no record"):
            predict(other_ckpt, folder_with_bad_files, out, progress=False)


def test_a_run_into_an_output_another_run_writes_stops_before_touching_it(loaded, folder_with_bad_files, tmp_path,
                                                                          held_elsewhere):
    """Two runs into one output at once would remove each other's files; the second stops with one line."""
    from spiralarms.predictions.output import OutputLayout

    out = tmp_path / "p.parquet"
    predict(loaded, folder_with_bad_files, out, shard_rows=3, progress=False)
    written = out.stat().st_mtime_ns
    with held_elsewhere(out):  # another run holds it, then is killed
        for overwrite in (False, True):
            with pytest.raises(SpiralArmsError, match=r"p.parquet: another prediction run is writing it now"):
                predict(loaded, folder_with_bad_files, out, overwrite=overwrite, progress=False)
        assert out.stat().st_mtime_ns == written and not OutputLayout(out).work_dir.exists()
    # A killed run's lock goes with its process; a failed run releases its own.
    with pytest.raises(SpiralArmsError, match=r"differs in tta \(1 -> 2\)"):
        predict(loaded, folder_with_bad_files, out, tta=2, progress=False)
    assert predict(loaded, folder_with_bad_files, out, progress=False).up_to_date


@pytest.mark.parametrize("name, linked", [("p.parquet", None), ("p.csv", None), ("dataset", None),
                                          ("p.csv", "input"), ("dataset", "output")])
def test_an_output_inside_the_folder_of_cutouts_is_not_one_of_its_inputs(loaded, folder_with_bad_files, tmp_path,
                                                                         name, linked):
    """Also when the folder or the output is named through a symbolic link (the own files were listed then)."""
    link = tmp_path / "linked"
    link.symlink_to(folder_with_bad_files, target_is_directory=True)
    folder = link if linked == "input" else folder_with_bad_files
    out = (link if linked == "output" else folder_with_bad_files) / name
    first = predict(loaded, folder, out, shard_rows=4, progress=False)
    assert first.n_inputs == 13, "the output's own files (parts, manifest, table) are not listed"
    again = predict(loaded, folder, out, shard_rows=4, progress=False)
    assert again.up_to_date and again.n_inputs == 13


def test_interrupted_run_resumes_to_the_same_table(loaded, folder_with_bad_files, tmp_path, monkeypatch):
    import spiralarms.predictions.writing as writing

    straight = tmp_path / "straight.csv"
    predict(loaded, folder_with_bad_files, straight, shard_rows=3, progress=False)

    out = tmp_path / "resumed.csv"
    real_write = writing.write_part
    calls = {"n": 0}

    def dying_write(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the kill arrives while the third part is written
        return real_write(*args, **kwargs)

    monkeypatch.setattr(writing, "write_part", dying_write)
    with pytest.raises((KeyboardInterrupt, SystemExit)):  # Lightning turns Ctrl-C into exit status 1
        predict(loaded, folder_with_bad_files, out, shard_rows=3, progress=False)
    assert not out.exists()
    assert len(list((tmp_path / "resumed.csv.parts").glob("part-*.parquet"))) == 2
    monkeypatch.setattr(writing, "write_part", real_write)
    summary = predict(loaded, folder_with_bad_files, out, shard_rows=3, progress=False)
    assert summary.n_resumed == 6
    a = pd.read_csv(straight, keep_default_na=False)
    b = pd.read_csv(out, keep_default_na=False)
    assert len(b) == 13 and not b["file"].duplicated().any()
    pd.testing.assert_frame_equal(a, b)


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "spiralarms", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_equals_an_uninterrupted_run(tiny_run, tiny_galaxies, tmp_path):
    images = tiny_galaxies / "images"
    straight = tmp_path / "straight.parquet"
    assert _cli("predict", tiny_run, images, "--out", straight, "--chunk-size", "4", "--workers", "0").returncode == 0
    out = tmp_path / "killed.parquet"
    parts = tmp_path / "killed.parquet.parts"
    process = subprocess.Popen(
        [sys.executable, "-m", "spiralarms", "predict", str(tiny_run), str(images), "--out", str(out),
         "--chunk-size", "4", "--workers", "0", "--batch-size", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("part-*.parquet"))) < 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(list(parts.glob("part-*.parquet")))
    assert 3 <= done < 18, "killed mid-run"
    resumed = _cli("predict", tiny_run, images, "--out", out, "--chunk-size", "4", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["n_resumed"] >= 12
    pd.testing.assert_frame_equal(pd.read_parquet(straight), pd.read_parquet(out))


@pytest.mark.slow
@pytest.mark.parametrize("devices, chunk", [("2", "2"), ("3", "100")], ids=["2-processes", "more-processes-than-shards"])
def test_ddp_with_two_cpu_processes_writes_exactly_the_rows_of_one(tiny_run, folder_with_bad_files, tmp_path,
                                                                   devices, chunk):
    """Also with one shard for three processes: the two without work must not hang or crash the run."""
    one, two = tmp_path / "one.parquet", tmp_path / "two.parquet"
    assert _cli("predict", tiny_run, folder_with_bad_files, "--out", one, "--chunk-size", chunk).returncode == 0
    run = _cli("predict", tiny_run, folder_with_bad_files, "--out", two, "--chunk-size", chunk,
               "--accelerator", "cpu", "--devices", devices, "--strategy", "ddp", "--json")
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("n_inputs") == 1, "only rank 0 reports"
    a, b = pd.read_parquet(one), pd.read_parquet(two)
    assert len(b) == 13 and not b["file"].duplicated().any()
    pd.testing.assert_frame_equal(a, b, check_exact=False, atol=1e-6)


@pytest.mark.parametrize("grey", [False, True], ids=["colour", "grey"])
def test_decoding_on_the_device_gives_the_rows_and_pixels_of_decoding_in_the_workers(folder_with_bad_files, tmp_path,
                                                                                    grey):
    """The GPU route (JPEG bytes batched into one decode_jpeg call, merged back in row order), run on the CPU.

    nvJPEG itself needs a GPU; everything around it (which rows travel as bytes, the
    fallback when a batch is refused, crop and grey, the merge) is checked here against
    the workers' own decoding of the same rows.
    """
    from PIL import Image as PILImage

    from spiralarms.predictions.reading import SurveyImages, decode_on_device
    from spiralarms.predictions.sources import build_listing

    PILImage.open(sorted(folder_with_bad_files.glob("*.jpg"))[0]).save(folder_with_bad_files / "as-png.png")
    PILImage.new("RGB", (40, 40), (9, 9, 9)).save(folder_with_bad_files / "small.jpg")  # under the crop
    listing = build_listing(folder_with_bad_files, tmp_path / "listing.parquet", shard_rows=5)
    shards = [(k, *listing.shard_bounds(k)) for k in range(listing.n_shards)]
    options = dict(batch_size=4, crop=64, grey=grey, channels=1 if grey else 3)
    on_cpu = list(SurveyImages(listing.path, shards, **options))
    as_bytes = list(SurveyImages(listing.path, shards, decode_on_device=True, **options))
    assert any("jpeg" in b for b in as_bytes), "JPEGs travel undecoded"
    on_device = [decode_on_device(b, torch.device("cpu"), 64, grey, "luminance", 1 if grey else 3) for b in as_bytes]
    for a, b in zip(on_cpu, on_device, strict=True):
        assert torch.equal(a["index"], b["index"]) and torch.equal(a["ok"], b["ok"])
        assert [bool(e) for e in a["error"]] == [bool(e) for e in b["error"]] == (~a["ok"]).tolist()
        assert a["images"].dtype == b["images"].dtype and torch.equal(a["images"], b["images"])
    n_ok = sum(int(b["ok"].sum()) for b in on_device)
    assert n_ok == 7 and sum(len(b["index"]) for b in on_device) == 15  # six JPEGs and the PNG; every row kept
    reasons = {e for b in on_device for e in b["error"] if e}
    assert any("smaller than the model's 64-pixel crop" in r for r in reasons)


@pytest.mark.parametrize("workers", [0, 1])
def test_the_engine_through_the_device_decoding_route_writes_the_table_of_the_usual_one(
        loaded, folder_with_bad_files, tmp_path, monkeypatch, workers):
    """The whole GPU route but nvJPEG: bytes from the workers, the data module's hook, the writer."""
    import spiralarms.predictions.engine as engine
    from spiralarms.predictions.reading import SurveyImages

    plain = predict(loaded, folder_with_bad_files, tmp_path / "plain.parquet", batch_size=4, num_workers=workers,
                    progress=False)

    class BytesToTheDevice(SurveyImages):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "decode_on_device": True})

    monkeypatch.setattr(engine, "SurveyImages", BytesToTheDevice)
    routed = predict(loaded, folder_with_bad_files, tmp_path / "routed.parquet", batch_size=4, num_workers=workers,
                     progress=False)
    pd.testing.assert_frame_equal(pd.read_parquet(plain.out).drop(columns="error"),
                                  pd.read_parquet(routed.out).drop(columns="error"))
    assert (pd.read_parquet(plain.out)["error"] != "").tolist() == (pd.read_parquet(routed.out)["error"] != "").tolist()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU fallback of --decoder nvjpeg")
def test_nvjpeg_without_a_gpu_is_warned_about_and_decodes_on_the_cpu(loaded, folder_with_bad_files, tmp_path):
    with pytest.warns(SpiralArmsWarning, match="--decoder nvjpeg decodes on a GPU, and none is used"):
        nv = predict(loaded, folder_with_bad_files, tmp_path / "nv.parquet", decoder="nvjpeg", progress=False)
    plain = predict(loaded, folder_with_bad_files, tmp_path / "plain.parquet", progress=False)
    pd.testing.assert_frame_equal(pd.read_parquet(nv.out), pd.read_parquet(plain.out))


def test_tta_averages_the_dihedral_views_and_is_rotation_invariant(loaded, tiny_galaxies, tmp_path):
    image = Image.open(sorted((tiny_galaxies / "images").glob("*.jpg"))[0]).crop((16, 16, 80, 80))  # 64 px, the crop
    folder = tmp_path / "views"
    folder.mkdir()
    image.save(folder / "a.png")
    image.transpose(Image.Transpose.ROTATE_90).save(folder / "b.png")
    image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "c.png")
    cols = _prob_columns(loaded.card)
    tta = pd.read_parquet(predict(loaded, folder, tmp_path / "p8.parquet", tta=8, progress=False).out)[cols].to_numpy()
    np.testing.assert_allclose(tta[1], tta[0], atol=1e-5)
    np.testing.assert_allclose(tta[2], tta[0], atol=1e-5)
    from spiralarms.data.transforms import tta_views

    x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None]
    module = loaded.module.configure_prediction(tta=1)
    by_hand = torch.stack([module.predict_proba(v) for v in tta_views(x, 8)]).mean(0).numpy()
    np.testing.assert_allclose(tta[0], by_hand[0], atol=1e-5)


def test_padding_to_a_static_batch_feeds_the_network_one_shape_and_keeps_the_rows(loaded):
    """With compile, short batches (the last one, those with unreadable rows) are padded
    to the batch size: the network sees one shape, and every row keeps its own values."""
    import copy

    module = copy.deepcopy(loaded.module).configure_prediction(batch_size=4)
    assert module.static_batch is None  # padding only comes with compile
    module.static_batch = 4
    shapes = []
    network = module.model
    module.model = type("Recorder", (torch.nn.Module,), {
        "forward": lambda self, x: (shapes.append(tuple(x.shape)), network(x))[1]})()
    module.model.head = network.head
    batch = {"images": torch.rand(3, 3, 64, 64), "ok": torch.tensor([True, False, True, True]),
             "index": torch.arange(4), "error": ["", "no such file", "", ""]}
    out = module.predict_step(batch)
    assert shapes == [(4, 3, 64, 64)]
    assert torch.isnan(out["probs"][1]).all() and not torch.isnan(out["probs"][[0, 2, 3]]).any()
    torch.testing.assert_close(out["probs"][[0, 2, 3]], module.predict_proba(batch["images"]), atol=1e-6, rtol=0)


@pytest.mark.slow
def test_compiled_prediction_compiles_one_graph_and_matches_eager(loaded, folder_with_bad_files, tmp_path):
    import torch._dynamo

    cols = _prob_columns(loaded.card)
    eager = pd.read_parquet(predict(loaded, folder_with_bad_files, tmp_path / "eager.parquet", batch_size=4,
                                    progress=False).out)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = pd.read_parquet(predict(loaded, folder_with_bad_files, tmp_path / "compiled.parquet", batch_size=4,
                                       progress=False, compile=True).out)
    # a few readable rows among unreadable ones reach the network in short batches: one graph
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
    pd.testing.assert_frame_equal(compiled.drop(columns=cols), eager.drop(columns=cols))
    np.testing.assert_allclose(compiled[cols].to_numpy(), eager[cols].to_numpy(), atol=1e-5)


def _fits_cube(path, bands, size=80, seed=0):
    from astropy.io import fits

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - size / 2
    galaxy = np.exp(-np.hypot(xx, yy) / 6.0)
    data = np.stack([galaxy * (b + 1) + rng.normal(0, 0.01, (size, size)) for b in range(bands)]).astype(np.float32)
    fits.PrimaryHDU(data if bands > 1 else data[0]).writeto(path)


def test_fits_cutouts_with_one_or_three_bands(loaded, tmp_path):
    folder = tmp_path / "fits"
    folder.mkdir()
    _fits_cube(folder / "g1.fits", 1)
    _fits_cube(folder / "g3.fits", 3)
    _fits_cube(folder / "g5.fits", 5)
    (folder / "bad.fits").write_bytes(b"SIMPLE  = nonsense")
    result = pd.read_parquet(predict(loaded, folder, tmp_path / "f.parquet", progress=False).out).set_index("id")
    assert result.loc["g1", "error"] == "" and result.loc["g3", "error"] == ""
    assert "5 bands" in result.loc["g5", "error"] and "FITS" in result.loc["bad", "error"]
    from spiralarms.data.images import load_fits

    rgb = load_fits(folder / "g3.fits")
    assert rgb.shape == (80, 80, 3) and rgb.dtype == np.float32 and 0 <= rgb.min() and rgb.max() <= 1
    assert rgb[40, 40, 0] > 0.9, "the core is bright after the stretch"
    for name in ("g3.fits", "g1.fits"):  # one cutout given alone: the same row as in the folder
        alone = pd.read_parquet(predict(loaded, folder / name, tmp_path / f"{name}.parquet", progress=False).out)
        assert alone["id"].tolist() == [name.removesuffix(".fits")]
        pd.testing.assert_frame_equal(alone.set_index("id"), result.loc[[name.removesuffix(".fits")]],
                                      check_exact=False, atol=1e-5)


def test_one_jpeg_given_alone_is_one_row_and_a_damaged_fits_table_still_a_catalogue_error(loaded, folder_with_bad_files,
                                                                                          tmp_path):
    whole = pd.read_parquet(predict(loaded, folder_with_bad_files, tmp_path / "all.parquet", progress=False).out)
    first = whole.iloc[0]
    alone = pd.read_parquet(predict(loaded, first["file"], tmp_path / "one.parquet", progress=False).out)
    assert alone["id"].tolist() == [first["id"]] and alone["error"].tolist() == [""]
    cols = _prob_columns(loaded.card)
    np.testing.assert_allclose(alone[cols].to_numpy(), whole.iloc[[0]][cols].to_numpy(), atol=1e-5)
    broken = pd.read_parquet(predict(loaded, folder_with_bad_files / "corrupt.jpg", tmp_path / "c.parquet",
                                     progress=False).out)
    assert len(broken) == 1 and broken["error"].iloc[0] != ""
    (tmp_path / "table.fits").write_bytes(b"SIMPLE  = nonsense")
    with pytest.raises(SpiralArmsError, match="table.fits: cannot read it as fits"):
        predict(loaded, tmp_path / "table.fits", tmp_path / "t.parquet", progress=False)


def test_catalogue_inputs_read_in_chunks_with_paths_ids_or_a_mapping(loaded, tiny_galaxies, tmp_path):
    catalog = pd.read_csv(tiny_galaxies / "catalog.csv", dtype={"dr7objid": str}).head(9)
    with_paths = catalog[["dr7objid", "file"]].copy()
    with_paths.loc[2, "file"] = None
    with_paths.to_parquet(tmp_path / "paths.parquet")
    shutil.copytree(tiny_galaxies / "images", tmp_path / "images")
    result = pd.read_parquet(
        predict(loaded, tmp_path / "paths.parquet", tmp_path / "a.parquet", shard_rows=2, progress=False).out
    )
    assert result["id"].tolist() == catalog["dr7objid"].tolist()
    assert result.loc[2, "error"] == NO_FILE and (result.drop(index=2)["error"] == "").all()
    # ids alone, images in <catalogue folder>/images/<id>.jpg
    catalog[["dr7objid"]].to_csv(tmp_path / "ids.csv", index=False)
    by_id = pd.read_parquet(predict(loaded, tmp_path / "ids.csv", tmp_path / "b.parquet", progress=False).out)
    assert (by_id["error"] == "").all() and by_id["id"].tolist() == catalog["dr7objid"].tolist()
    # a GZ2 mapping: objid -> asset_id, files <image_dir>/<asset_id>.jpg
    assets = tmp_path / "assets"
    assets.mkdir()
    for k, objid in enumerate(catalog["dr7objid"]):
        shutil.copy(tiny_galaxies / "images" / f"{objid}.jpg", assets / f"{1000 + k}.jpg")
    pd.DataFrame({"objid": catalog["dr7objid"], "sample": "original", "asset_id": range(1000, 1009)}).to_csv(
        tmp_path / "mapping.csv", index=False
    )
    mapped = predict(loaded, tmp_path / "ids.csv", tmp_path / "c.parquet", mapping=str(tmp_path / "mapping.csv"),
                     image_dir=str(assets), progress=False)
    cols = _prob_columns(loaded.card)
    np.testing.assert_allclose(pd.read_parquet(mapped.out)[cols], by_id[cols], atol=1e-6)


def test_id_column_names_the_ids_and_a_catalogue_without_ids_is_warned_about(loaded, tiny_galaxies, tmp_path):
    catalog = pd.read_csv(tiny_galaxies / "catalog.csv", dtype={"dr7objid": str}).head(5)
    table = pd.DataFrame({"galaxy_id": [f"g{k}" for k in range(5)], "file": catalog["file"]})
    table.to_csv(tmp_path / "index.csv", index=False)
    shutil.copytree(tiny_galaxies / "images", tmp_path / "images")
    with pytest.warns(UserWarning, match="no id column .* numbered from 0 in 'id'; if 'galaxy_id' holds the ids, name it with --id-column galaxy_id"):
        numbered = pd.read_parquet(predict(loaded, tmp_path / "index.csv", tmp_path / "a.parquet", progress=False).out)
    assert numbered["id"].tolist() == ["0", "1", "2", "3", "4"] and (numbered["error"] == "").all()
    named = pd.read_parquet(
        predict(loaded, tmp_path / "index.csv", tmp_path / "b.parquet", id_column="galaxy_id", progress=False).out
    )
    assert named["id"].tolist() == table["galaxy_id"].tolist()
    in_memory = table.assign(file=[str(tmp_path / f) for f in table["file"]])
    from_table = predict(loaded, in_memory, tmp_path / "t.parquet", id_column="galaxy_id", progress=False)
    assert pd.read_parquet(from_table.out)["id"].tolist() == table["galaxy_id"].tolist()
    cols = _prob_columns(loaded.card)
    np.testing.assert_allclose(named[cols], numbered[cols], atol=1e-6)
    # Other ids are another input: not resumed into the numbered output.
    with pytest.raises(SpiralArmsError, match=r"another run; differs in inputs \(.*index.csv, 5 rows: other ids"):
        predict(loaded, tmp_path / "index.csv", tmp_path / "a.parquet", id_column="galaxy_id", progress=False)
    with pytest.raises(SpiralArmsError, match="index.csv: no column 'objid' for --id-column"):
        predict(loaded, tmp_path / "index.csv", tmp_path / "c.parquet", id_column="objid", progress=False)
    with pytest.raises(SpiralArmsError, match="names a catalogue's column; this input is a folder"):
        predict(loaded, tmp_path / "images", tmp_path / "d.parquet", id_column="galaxy_id", progress=False)


def test_bad_catalogues_and_outputs_are_one_line_errors_before_any_work(loaded, folder_with_bad_files, tmp_path):
    (tmp_path / "header.csv").write_text("dr7objid,file\n")
    with pytest.raises(SpiralArmsError, match="no rows to predict on"):
        predict(loaded, tmp_path / "header.csv", tmp_path / "o.parquet", progress=False)
    assert not (tmp_path / "o.parquet.parts").exists(), "an aborted run leaves no empty parts folder"
    (tmp_path / "semi.csv").write_text("dr7objid;file\n1;a.jpg\n")
    with pytest.raises(SpiralArmsError, match="semicolons"):
        predict(loaded, tmp_path / "semi.csv", tmp_path / "o.parquet", progress=False)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(SpiralArmsError, match="is a file, not a folder"):
        predict(loaded, folder_with_bad_files, tmp_path / "a-file" / "o.parquet", progress=False)
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(SpiralArmsError, match="is a folder"):
        predict(loaded, folder_with_bad_files, tmp_path / "dir.csv", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpiralArmsError, match="no visible files"):
        predict(loaded, tmp_path / "empty", tmp_path / "o.parquet", progress=False)


def test_small_images_min_confidence_and_an_explicit_crop(loaded, tiny_galaxies, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(sorted((tiny_galaxies / "images").glob("*.jpg"))[0], folder / "big.jpg")
    Image.new("RGB", (40, 40)).save(folder / "small.png")
    result = pd.read_parquet(predict(loaded, folder, tmp_path / "a.parquet", progress=False).out).set_index("id")
    assert "smaller than the model's 64-pixel crop" in result.loc["small", "error"]
    assert result.loc["big", "error"] == ""
    top = float(result.loc["big", _prob_columns(loaded.card)].max())
    unsure = pd.read_parquet(
        predict(loaded, folder, tmp_path / "b.parquet", min_confidence=min(1.0, top + 1e-3), progress=False).out
    ).set_index("id")
    assert pd.isna(unsure.loc["big", "label"]) and unsure.loc["big", "error"] == ""
    np.testing.assert_allclose(unsure.loc["big", _prob_columns(loaded.card)].astype(float),
                               result.loc["big", _prob_columns(loaded.card)].astype(float))
    with pytest.warns(SpiralArmsWarning, match="--crop 32 differs from the model's training crop 64"):
        predict(loaded, folder, tmp_path / "c.parquet", crop=32, progress=False)


def test_prepared_store_input_gives_the_same_probabilities(loaded, tiny_galaxies, tmp_path):
    from spiralarms.data.store import prepare_store

    store = tmp_path / "store"
    prepare_store(tiny_galaxies / "catalog.csv", store, crop=64, workers=1, progress=False)
    from_store = pd.read_parquet(predict(loaded, store, tmp_path / "s.parquet", progress=False).out)
    table = pd.read_parquet(store / "index.parquet")
    from_files = pd.read_parquet(
        predict(loaded, table.rename(columns={"id": "id"})[["id", "file"]], tmp_path / "f.parquet", progress=False).out
    )
    cols = _prob_columns(loaded.card)
    assert from_store["id"].tolist() == from_files["id"].tolist()
    np.testing.assert_allclose(from_store[cols].to_numpy(), from_files[cols].to_numpy(), atol=1e-6)


def test_export_folder_and_hub_cache_give_the_same_model(tiny_run, loaded, folder_with_bad_files, tmp_path, monkeypatch):
    folder = export_model(tiny_run, tmp_path / "export")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert "library_name: spiralarms" in (folder / "README.md").read_text()
    exported = load_model(folder)
    assert exported.fingerprint == loaded.fingerprint and exported.card == loaded.card
    with pytest.raises(SpiralArmsError, match="holds an exported model; use --overwrite"):
        export_model(tiny_run, folder)
    # a folder of something else (the run itself) is never offered --overwrite, nor replaced by it
    for overwrite in (False, True):
        with pytest.raises(SpiralArmsError, match="exists and is not an exported model folder; give a new"):
            export_model(tiny_run, tiny_run, overwrite=overwrite)
    assert (tiny_run / "checkpoints" / "best.ckpt").is_file()
    # A hub repository as huggingface_hub caches it: models--owner--name/snapshots/<rev>/...
    cache = tmp_path / "hf"
    snapshot = cache / "models--someone--arms" / "snapshots" / ("a" * 40)
    shutil.copytree(folder, snapshot)
    (cache / "models--someone--arms" / "refs").mkdir()
    (cache / "models--someone--arms" / "refs" / "main").write_text("a" * 40)
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    hub = load_model("hf-hub:someone/arms")
    assert hub.fingerprint == loaded.fingerprint
    with pytest.raises(SpiralArmsError, match="not in the Hugging Face cache"):
        load_model("hf-hub:someone/absent")
    for bad in ("hf-hub:arms", "hf-hub:someone/", "hf-hub:a/b/c"):
        with pytest.raises(SpiralArmsError, match="expected hf-hub:owner/name"):
            load_model(bad)
    a = pd.read_parquet(predict(hub, folder_with_bad_files, tmp_path / "a.parquet", progress=False).out)
    b = pd.read_parquet(predict(tiny_run, folder_with_bad_files, tmp_path / "b.parquet", progress=False).out)
    pd.testing.assert_frame_equal(a, b)


def test_pickled_checkpoints_are_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"card": Payload()}}, path)
    with pytest.raises(SpiralArmsError, match="refused.*could run code"):
        load_model(path)
    result = runner.invoke(app, ["predict", str(path), str(tmp_path), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 1 and "refused" in result.output
    assert not (tmp_path / "pwned").exists()


def test_predict_cli_on_a_run_folder(tiny_run, folder_with_bad_files, tmp_path):
    out = tmp_path / "cli.csv"
    result = runner.invoke(app, ["predict", str(tiny_run), str(folder_with_bad_files), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n_inputs"] == 13 and summary["n_errors"] == 7
    assert sum(summary["counts"].values()) == 6
    assert len(pd.read_csv(out)) == 13
    result = runner.invoke(app, ["export", str(tiny_run), str(tmp_path / "exp"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["card"]["classes"] == ["1", "2", "3", "4", "5+", "?"]


def test_predict_cli_errors_are_one_line(tiny_run, tmp_path):
    result = runner.invoke(app, ["predict", str(tmp_path / "nope.ckpt"), str(tmp_path), "--out", "x.csv"])
    assert result.exit_code == 1
    assert result.output.strip().startswith("error:") and len(result.output.strip().splitlines()) == 1
    result = runner.invoke(app, ["predict", str(tiny_run), str(tmp_path / "missing"), "--out", "x.csv"])
    assert result.exit_code == 1 and "no such file or folder" in result.output


def test_ctrl_c_mid_run_is_interrupted_130_keeps_finished_parts_and_resumes(tiny_run, loaded, folder_with_bad_files,
                                                                           tmp_path, monkeypatch):
    straight = tmp_path / "straight.parquet"
    predict(loaded, folder_with_bad_files, straight, batch_size=1, shard_rows=2, progress=False)
    real_step = ArmClassifierModule.predict_step
    calls = []

    def ctrl_c_on_the_fifth_batch(self, batch, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_step(self, batch, *args, **kwargs)

    monkeypatch.setattr(ArmClassifierModule, "predict_step", ctrl_c_on_the_fifth_batch)
    before = signal.getsignal(signal.SIGINT)
    out = tmp_path / "cut.parquet"
    # Lightning turns Ctrl-C into sys.exit(1) with SIGINT ignored; it must stay Ctrl-C.
    with pytest.raises(KeyboardInterrupt):
        predict(loaded, folder_with_bad_files, out, batch_size=1, shard_rows=2, progress=False)
    assert signal.getsignal(signal.SIGINT) is before
    calls.clear()
    result = runner.invoke(app, ["predict", str(tiny_run), str(folder_with_bad_files), "--out", str(out),
                                 "--batch-size", "1", "--chunk-size", "2"])
    assert result.exit_code == 130 and result.output.strip() == "interrupted"
    assert signal.getsignal(signal.SIGINT) is before
    assert len(list((tmp_path / "cut.parquet.parts").glob("part-*.parquet"))) >= 2 and not out.exists()
    monkeypatch.undo()
    summary = predict(loaded, folder_with_bad_files, out, batch_size=1, shard_rows=2, progress=False)
    assert summary.n_resumed >= 4
    pd.testing.assert_frame_equal(pd.read_parquet(straight), pd.read_parquet(out))


def test_predict_arrays_gives_the_module_back_in_its_mode_even_after_ctrl_c(loaded, monkeypatch):
    import copy

    module = copy.deepcopy(loaded.module).train()
    x = torch.zeros((4, 3, 64, 64), dtype=torch.uint8)
    assert predict_arrays(module, x).shape == (4, 6) and module.training

    def ctrl_c(self, batch, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ArmClassifierModule, "predict_step", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        predict_arrays(module, x)
    assert module.training


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for a GPU where there is none")
def test_a_gpu_asked_for_on_a_machine_without_one_is_a_one_line_error(tiny_run, folder_with_bad_files, tmp_path):
    run = _cli("predict", tiny_run, folder_with_bad_files, "--out", tmp_path / "p.csv", "--accelerator", "gpu")
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "error: device settings (accelerator 'gpu', devices 'auto', strategy 'auto', num_nodes 1): no GPU is "
        "visible to PyTorch here (torch.cuda.is_available() is False); use accelerator cpu or auto"
    ]
    assert not (tmp_path / "p.csv").exists()


def test_device_settings_lightning_refuses_are_one_line_errors(monkeypatch):
    from spiralarms.runtime import build_trainer

    with pytest.raises(SpiralArmsError, match=r"strategy 'nosuch'.*invalid strategy name") as caught:
        build_trainer(accelerator="cpu", devices=1, strategy="nosuch", logger=False)
    assert "\n" not in str(caught.value)
    for name in ("NODE_RANK", "MASTER_ADDR", "GROUP_RANK", "SLURM_NTASKS", "SLURM_JOB_NAME", "TORCHELASTIC_RUN_ID",
                 "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SpiralArmsError, match="num_nodes 2: no cluster launcher started this process"):
        build_trainer(accelerator="cpu", devices=1, num_nodes=2, strategy="ddp", logger=False)
    monkeypatch.setenv("NODE_RANK", "1")  # set by hand on each node: Lightning's own environment
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    trainer = build_trainer(accelerator="cpu", devices=1, num_nodes=2, strategy="ddp", logger=False)
    assert trainer.num_nodes == 2
