"""``spiralarms explain`` end to end on tiny run folders (real training and a hand-made one)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import typer
import yaml
from typer.testing import CliRunner

from spiralarms.cli.explain import explain
from spiralarms.errors import SpiralArmsError
from spiralarms.explain import run_masks
from report_checks import check_report_page

CLASSES = ["1", "2", "3", "4", "5+", "?"]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def app():
    app = typer.Typer()
    app.command()(explain)
    return app


def invoke(app, *args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result


@pytest.fixture(scope="module")
def masked_synth(tmp_path_factory):
    """Synthetic galaxies with their mask files (spiralarms synth --masks), 64 pixels."""
    from spiralarms.data.synthetic import synthesize_dataset

    out = tmp_path_factory.mktemp("masked-synth")
    synthesize_dataset(out, n_per_class=3, seed=5, size=64, write_masks=True, progress=False, preset="crisp")
    return out


@pytest.fixture(scope="module")
def grey_run(masked_synth, tmp_path_factory):
    """A hand-made run folder: a grey frozen checkpoint, split.csv, no val_predictions.csv."""
    from spiralarms.models.backbones import build_classifier
    from spiralarms.models.module import ArmClassifierModule

    run = tmp_path_factory.mktemp("grey-run")
    torch.manual_seed(0)
    model = build_classifier("test_efficientnet", len(CLASSES), hidden=16, frozen=True, grey=True, pretrained=False)
    module = ArmClassifierModule.from_model(model, CLASSES, backbone="test_efficientnet", grey=True, crop=48)
    (run / "checkpoints").mkdir()
    torch.save(
        {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams), "epoch": 0},
        run / "checkpoints" / "best.ckpt",
    )
    catalog = pd.read_csv(masked_synth / "catalog.csv")
    split = pd.DataFrame(
        {
            "id": catalog["dr7objid"].astype(str),
            "label": catalog["true_class"].astype(str),
            "split": ["val" if i >= len(CLASSES) else "train" for i in range(len(catalog))],  # 2 per class
            "file": [str(masked_synth / f) for f in catalog["file"]],
        }
    )
    split.to_csv(run / "split.csv", index=False)
    (run / "config.yaml").write_text(yaml.safe_dump({"data": {"catalog": str(masked_synth / "catalog.csv")}}))
    return run


def test_explain_a_trained_run(app, tiny_run, tmp_path):
    out = tmp_path / "explain"
    result = invoke(
        app, tiny_run, "--out", out, "--samples", 4, "--n-faithful", 2, "--n-per-class", 2, "--steps", 8, "--json"
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary == json.loads((out / "explain.json").read_text())
    assert summary["gradcampp"]["layer"] == "backbone.bn2"
    page = check_report_page(out)
    assert "gallery_correct.png" in (out / "report.md").read_text() and "Faithfulness" in page
    assert set(summary["feature_layers"]) == {"lower", "middle", "upper"}
    assert summary["smoothgrad"] == {"noise": 0.1, "samples": 4, "seed": 0}
    # The default device is CUDA where there is one, else the CPU.
    assert torch.device(summary["device"]).type == ("cuda" if torch.cuda.is_available() else "cpu")
    for kind in ("correct", "wrong"):
        assert (out / f"gallery_{kind}.png").is_file()
        assert set(summary["galleries"][kind]) == set(summary["classes"])
        for c, rows in summary["galleries"][kind].items():
            assert len(rows) <= 2
            assert all((r["label"] == r["pred"]) == (kind == "correct") and r["label"] == c for r in rows)
            assert [r["prob"] for r in rows] == sorted((r["prob"] for r in rows), reverse=True)
    # Empty rows are said so.
    empty = [(k, c) for k in ("correct", "wrong") for c, rows in summary["galleries"][k].items() if not rows]
    for kind, c in empty:
        assert f"gallery_{kind}: no {kind} predictions for m={c}" in summary["notes"]

    galaxies = pd.read_csv(out / "galaxies.csv", dtype={"id": str})
    assert len(galaxies) == summary["n_galaxies"]
    for galaxy in galaxies["id"]:
        for name in ("gradcampp", "smoothgrad"):
            heat = np.load(out / "maps" / f"{galaxy}_{name}.npy")
            assert heat.shape == (64, 64) and np.isfinite(heat).all() and 0 <= heat.min() and heat.max() <= 1
    figure8 = galaxies[galaxies["roles"].str.contains("feature_maps")]["id"]
    assert len(figure8) >= 1
    for galaxy in figure8:
        assert (out / "feature_maps" / f"{galaxy}.png").is_file()
        with np.load(out / "maps" / f"{galaxy}_feature_maps.npz") as layers:
            assert list(layers) == list(summary["feature_layers"].values())

    # The conftest run has no mask files: masks are rendered again from the catalogue.
    faith = summary["faithfulness"]
    assert faith["masks"]["source"] == "rendered"
    energy = faith["mask_energy"]["overall"]
    assert 0 < energy["galaxy_coverage"] < 1 and 0 < energy["arms_coverage"] < energy["galaxy_coverage"]
    for name in ("gradcampp", "smoothgrad"):
        assert 0 <= energy[f"{name}_arms"] <= energy[f"{name}_galaxy"] <= 1
    deletion = faith["deletion"]
    assert deletion["steps"] == 8 and deletion["baseline"] == "blur"
    assert all(0 <= deletion["overall"][f"auc_{n}"] <= 1 for n in ("gradcampp", "smoothgrad", "random"))
    assert set(deletion["per_class"]) == set(summary["classes"])
    with np.load(out / "deletion_curves.npz") as curves:
        assert curves["gradcampp"].shape == (faith["n_galaxies"], 9)
    assert (out / "deletion_curves.png").is_file()


def test_explain_a_grey_run_without_val_predictions_uses_mask_files(app, grey_run):
    result = invoke(
        app, grey_run, "--samples", 2, "--n-faithful", 1, "--n-per-class", 1, "--steps", 4, "--baseline", "sky"
    )
    assert result.exit_code == 0, result.output
    assert "deletion AUC" in result.output
    summary = json.loads((grey_run / "explain" / "explain.json").read_text())
    assert summary["grey"] is True and summary["crop"] == 48
    assert summary["faithfulness"]["masks"]["source"] == "files"
    assert summary["faithfulness"]["deletion"]["baseline"] == "sky"
    assert summary["faithfulness"]["n_galaxies"] == len(CLASSES)  # one per class
    heat = np.load(next((grey_run / "explain" / "maps").glob("*_smoothgrad.npy")))
    assert heat.shape == (48, 48) and heat.max() == pytest.approx(1.0)


def test_rendered_masks_equal_the_mask_files(grey_run, masked_synth, tmp_path):
    split = pd.read_csv(grey_run / "split.csv", dtype={"id": str})
    ids, files = split["id"].tolist()[:4], split["file"].tolist()[:4]
    from_files, source, _ = run_masks(grey_run, ids, files, crop=48)
    assert source == "files" and list(from_files) == ids
    assert from_files[ids[0]]["galaxy"].shape == (48, 48)
    full = np.load(masked_synth / "masks" / f"{ids[0]}.npz")["galaxy"]
    np.testing.assert_array_equal(from_files[ids[0]]["galaxy"], full[8:56, 8:56])  # the centre crop

    # The same catalogue without its masks folder: the masks are rendered again.
    copy = tmp_path / "synth"
    copy.mkdir()
    (copy / "catalog.csv").write_bytes((masked_synth / "catalog.csv").read_bytes())
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"data": {"catalog": str(copy / "catalog.csv")}}))
    rendered, source, _ = run_masks(run, ids, files, crop=48)
    assert source == "rendered"
    for galaxy in ids:
        for region in ("galaxy", "arms"):
            np.testing.assert_array_equal(rendered[galaxy][region], from_files[galaxy][region])
    # These are crisp galaxies, not of the default preset: rendered with the row's preset,
    # and so are those of a catalogue older than the preset column (all crisp).
    catalog = pd.read_csv(masked_synth / "catalog.csv")
    assert set(catalog["preset"]) == {"crisp"}
    catalog.drop(columns="preset").to_csv(copy / "catalog.csv", index=False)
    rendered, source, _ = run_masks(run, ids, files, crop=48)
    assert source == "rendered"
    for galaxy in ids:
        np.testing.assert_array_equal(rendered[galaxy]["arms"], from_files[galaxy]["arms"])

    # Real galaxies (no mask files, no rendering columns): skipped with a note.
    (copy / "catalog.csv").write_text("dr7objid,label\n1,2\n")
    none, source, note = run_masks(run, ids, files, crop=48)
    assert none == {} and source is None and "skipped" in note


def test_explain_given_images(app, grey_run, masked_synth, tmp_path):
    files = sorted((masked_synth / "images").glob("*.jpg"))[:2]
    out = tmp_path / "images"
    result = invoke(
        app, grey_run, "--images", files[0], "--images", files[1], "--out", out, "--samples", 2, "--steps", 4, "--json"
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["source"] == "images" and summary["n_galaxies"] == 2
    assert summary["galleries"] == {}
    assert "mask_energy" not in summary["faithfulness"]
    assert summary["faithfulness"]["deletion"]["overall"]["n"] == 2
    assert (out / "images.png").is_file()
    for f in files:
        assert (out / "feature_maps" / f"{f.stem}.png").is_file()
        assert np.load(out / "maps" / f"{f.stem}_gradcampp.npy").shape == (48, 48)


def test_one_image_is_one_galaxy_in_what_is_said(app, grey_run, masked_synth, tmp_path):
    image = sorted((masked_synth / "images").glob("*.jpg"))[0]
    result = invoke(app, grey_run, "--images", image, "--out", tmp_path / "one", "--samples", 2, "--steps", 4)
    assert result.exit_code == 0, result.output
    assert "explaining 1 galaxy with " in result.output and "faithfulness on 1 galaxy (" in result.output


def test_bad_input_is_a_spiralarms_error(app, grey_run, tmp_path):
    result = invoke(app, tmp_path / "nowhere")
    assert isinstance(result.exception, SpiralArmsError) and "no such run folder" in str(result.exception)
    result = invoke(app, grey_run, "--baseline", "grey", "--n-faithful", 0)
    assert isinstance(result.exception, SpiralArmsError) and "baseline" in str(result.exception)
    result = invoke(app, grey_run / "checkpoints" / "best.ckpt")
    assert isinstance(result.exception, SpiralArmsError) and "--images" in str(result.exception)
    result = invoke(app, grey_run, "--images", tmp_path / "missing.jpg")
    assert isinstance(result.exception, SpiralArmsError) and "missing.jpg" in str(result.exception)
    result = invoke(app, grey_run, "--images", tmp_path)
    assert isinstance(result.exception, SpiralArmsError) and "is a folder; give image files" in str(result.exception)
    result = invoke(app, grey_run, "--device", "abacus")
    assert isinstance(result.exception, SpiralArmsError) and "device" in str(result.exception)
    assert invoke(app, grey_run, "--noise", 2).exit_code == 2  # typer's own range check
