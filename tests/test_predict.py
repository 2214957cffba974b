"""Prediction: one row per input, errors kept, streamed in parts, resumable without duplicates."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import spiralarms.predict as predict_module
from spiralarms.cli import app
from spiralarms.errors import SpiralArmsError
from spiralarms.predict import NO_FILE, catalog_inputs, image_folder_inputs, predict_table
from spiralarms.training import load_classifier

runner = CliRunner()


@pytest.fixture(scope="module")
def model_and_info(tiny_run):
    return load_classifier(tiny_run / "checkpoints" / "best.ckpt")


@pytest.fixture
def folder_with_bad_files(tiny_galaxies, tmp_path):
    """Six real galaxy JPEGs, a corrupt JPEG, a truncated JPEG and a text file."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    good = sorted((tiny_galaxies / "images").glob("*.jpg"))[:6]
    for f in good:
        shutil.copy(f, folder / f.name)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 4)
    data = good[0].read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "notes.txt").write_text("not an image\n")
    return folder


def _predict(model, info, inputs, out, **kw):
    return predict_table(
        model, inputs, out, classes=info["classes"], crop=info["crop"], grey=info["grey"], progress=False, **kw
    )


def test_folder_prediction_keeps_every_row_and_reports_errors(model_and_info, folder_with_bad_files, tmp_path):
    model, info = model_and_info
    inputs = image_folder_inputs(folder_with_bad_files)
    out = tmp_path / "pred.parquet"
    summary = _predict(model, info, inputs, out, batch_size=4)
    result = pd.read_parquet(out)
    assert len(result) == len(inputs) == 9
    assert list(result["id"]) == list(inputs["id"])
    prob_cols = [f"p_{c}" for c in info["classes"]]
    assert list(result.columns) == ["id", "file", *prob_cols, "label", "error"]
    bad = result.set_index("id").loc[["corrupt", "truncated", "notes"]]
    assert (bad["error"] != "").all()
    assert "truncated" in bad.loc["truncated", "error"]
    assert "not an image" in bad.loc["notes", "error"]
    assert bad[prob_cols].isna().all().all() and bad["label"].isna().all()
    good = result[result["error"] == ""]
    assert len(good) == 6 and summary.n_errors == 3
    assert np.allclose(good[prob_cols].sum(axis=1), 1.0, atol=1e-5)
    assert (good["label"] == good[prob_cols].idxmax(axis=1).str[2:]).all()
    assert not (tmp_path / "pred.parquet.parts").exists()


def test_resume_after_a_kill_gives_the_same_table_without_duplicates(
    model_and_info, folder_with_bad_files, tmp_path, monkeypatch
):
    model, info = model_and_info
    inputs = image_folder_inputs(folder_with_bad_files)
    straight = tmp_path / "straight.csv"
    _predict(model, info, inputs, straight, chunk_size=2)

    out = tmp_path / "resumed.csv"
    real_chunk = predict_module._predict_chunk
    calls = {"n": 0}

    def dying_chunk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the kill arrives during the third chunk
        return real_chunk(*args, **kwargs)

    monkeypatch.setattr(predict_module, "_predict_chunk", dying_chunk)
    with pytest.raises(KeyboardInterrupt):
        _predict(model, info, inputs, out, chunk_size=2)
    assert not out.exists()
    assert len(list((tmp_path / "resumed.csv.parts").glob("part-*.parquet"))) == 2
    monkeypatch.setattr(predict_module, "_predict_chunk", real_chunk)
    summary = _predict(model, info, inputs, out, chunk_size=2)
    assert summary.n_resumed == 4
    a = pd.read_csv(straight, keep_default_na=False)
    b = pd.read_csv(out, keep_default_na=False)
    assert len(b) == len(inputs) and not b["id"].duplicated().any()
    pd.testing.assert_frame_equal(a, b)


def test_catalogue_input_keeps_rows_without_an_image(model_and_info, tiny_galaxies, tmp_path):
    model, info = model_and_info
    catalog = pd.read_csv(tiny_galaxies / "catalog.csv").head(5)
    catalog.loc[2, "file"] = None
    catalog["file"] = [None if f is None or pd.isna(f) else str(tiny_galaxies / f) for f in catalog["file"]]
    path = tmp_path / "list.csv"
    catalog[["dr7objid", "file"]].to_csv(path, index=False)
    inputs = catalog_inputs(path)
    result = pd.read_parquet(_predict(model, info, inputs, tmp_path / "p.parquet").out)
    assert list(result["id"]) == [str(i) for i in catalog["dr7objid"]]
    assert result.loc[2, "error"] == NO_FILE
    assert (result.drop(index=2)["error"] == "").all()


def test_bad_output_suffix_and_empty_folder(model_and_info, tmp_path):
    model, info = model_and_info
    with pytest.raises(SpiralArmsError, match="output must end in"):
        _predict(model, info, pd.DataFrame({"id": ["a"], "file": ["a.jpg"]}), tmp_path / "out.xlsx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpiralArmsError, match="no files"):
        image_folder_inputs(tmp_path / "empty")


def test_predict_cli_on_a_run_folder(tiny_run, folder_with_bad_files, tmp_path):
    out = tmp_path / "cli.csv"
    result = runner.invoke(app, ["predict", str(tiny_run), str(folder_with_bad_files), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n_inputs"] == 9 and summary["n_errors"] == 3
    assert sum(summary["counts"].values()) == 6
    assert len(pd.read_csv(out)) == 9


def test_predict_cli_errors_are_one_line(tiny_run, tmp_path):
    result = runner.invoke(app, ["predict", str(tmp_path / "nope.ckpt"), str(tmp_path), "--out", "x.csv"])
    assert result.exit_code == 1
    assert result.output.strip().startswith("error:") and len(result.output.strip().splitlines()) == 1
    result = runner.invoke(app, ["predict", str(tiny_run), str(tmp_path / "missing"), "--out", "x.csv"])
    assert result.exit_code == 1 and "no such file or folder" in result.output
