"""`spiralarms select`: JSON contract, merges, --out, and one-line errors with exit 1."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from spiralarms.catalog import schema as sch
from spiralarms.catalog.classes import ARM_CLASSES
from spiralarms.catalog.readers import read_catalog
from spiralarms.cli import app

BIG_ID = 8647474690312307154


def make_catalog(path, labels=("1", "2", "2", "3", "4", "5+", "?"), n_fail=2, n_nan=1):
    """A GZ2 CSV: one passing row per label, ``n_fail`` rows failing cut 1, ``n_nan`` with a NaN."""
    rows = []
    for label in [*labels, *["2"] * (n_fail + n_nan)]:
        k = ARM_CLASSES.index(label)
        row = {
            sch.FEATURES_OR_DISK + sch.WEIGHTED_FRACTION: 0.9,
            sch.NOT_EDGE_ON + sch.WEIGHTED_FRACTION: 0.9,
            sch.SPIRAL + sch.WEIGHTED_FRACTION: 0.9,
            sch.SPIRAL + sch.COUNT: 25,
        }
        for i, answer in enumerate(sch.T11_ANSWERS):
            row[answer + sch.WEIGHTED_FRACTION] = 0.7 if i == k else 0.05
            row[answer + sch.DEBIASED] = 0.9 if i == k else 0.01
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.insert(0, "objid", BIG_ID + np.arange(len(frame)))
    first_fail = len(labels)
    frame.loc[first_fail : first_fail + n_fail - 1, sch.FEATURES_OR_DISK + sch.WEIGHTED_FRACTION] = 0.2
    frame.loc[first_fail + n_fail :, sch.SPIRAL + sch.COUNT] = np.nan
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture
def runner():
    return CliRunner()


def test_json_is_the_contract(tmp_path, runner):
    path = tmp_path / "gz2.csv"
    make_catalog(path)
    result = runner.invoke(app, ["select", str(path), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload == {
        "n_input": 10,
        "n_selected": 7,
        "n_missing": 1,
        "counts": {"1": 1, "2": 2, "3": 1, "4": 1, "5+": 1, "?": 1},
    }
    assert list(payload["counts"]) == list(ARM_CLASSES)


@pytest.mark.parametrize(
    ("merge", "counts"),
    [
        ("3,4", {"1": 1, "2": 2, "3,4": 2, "5+": 1, "?": 1}),
        ("4,5+", {"1": 1, "2": 2, "3": 1, "4,5+": 2, "?": 1}),
    ],
)
def test_merge(tmp_path, runner, merge, counts):
    path = tmp_path / "gz2.csv"
    make_catalog(path)
    result = runner.invoke(app, ["select", str(path), "--merge", merge, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["counts"] == counts
    assert list(payload["counts"]) == list(counts)


@pytest.mark.parametrize("name", ["out/selected.csv", "out/selected.parquet"])
def test_out_writes_a_readable_table(tmp_path, runner, name):
    path = tmp_path / "gz2.csv"
    frame = make_catalog(path)
    out = tmp_path / name
    result = runner.invoke(app, ["select", str(path), "--merge", "4,5+", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    written = read_catalog(out)
    assert len(written) == 7
    assert written["dr7objid"].tolist() == frame["objid"].iloc[:7].tolist()
    assert written["label"].tolist() == ["1", "2", "2", "3", "4,5+", "4,5+", "?"]
    assert written["label_original"].tolist() == ["1", "2", "2", "3", "4", "5+", "?"]


def test_table_output_without_json(tmp_path, runner):
    path = tmp_path / "gz2.csv"
    make_catalog(path)
    result = runner.invoke(app, ["select", str(path)])
    assert result.exit_code == 0, result.output
    assert "7 selected" in result.stdout and "1 not selectable" in result.stdout
    assert "cut 1" in result.stdout and "removed 2" in result.stdout


def test_missing_column_is_one_line_error(tmp_path, runner):
    path = tmp_path / "gz2.csv"
    frame = make_catalog(path)
    frame.drop(columns=["t02_edgeon_a05_no_weighted_fraction"]).to_csv(path, index=False)
    result = runner.invoke(app, ["select", str(path), "--json"])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ") and "t02_edgeon_a05_no_weighted_fraction" in lines[0]


def test_nonexistent_file(tmp_path, runner):
    result = runner.invoke(app, ["select", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1
    assert "nope.csv" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("merge", ["2,4", "7", "3"])
def test_bad_merge(tmp_path, runner, merge):
    path = tmp_path / "gz2.csv"
    make_catalog(path)
    result = runner.invoke(app, ["select", str(path), "--merge", merge, "--json"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: merge") and result.stderr.count("\n") == 1


def test_bad_schema(tmp_path, runner):
    path = tmp_path / "gz2.csv"
    make_catalog(path)
    result = runner.invoke(app, ["select", str(path), "--schema", "hubble"])
    assert result.exit_code == 1 and "--schema" in result.stderr


def test_kaggle_schema(tmp_path, runner):
    frame = pd.DataFrame({"GalaxyID": [100008, 100023]})
    for column in sch.kaggle_required_columns():
        frame[column] = 0.0
    frame[["Class1.2", "Class2.2", "Class4.1", "Class11.2"]] = 0.9
    frame.loc[1, "Class1.2"] = 0.1
    path = tmp_path / "training_solutions_rev1.csv"
    frame.to_csv(path, index=False)
    result = runner.invoke(app, ["select", str(path), "--schema", "kaggle", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"] == {"1": 0, "2": 1, "3": 0, "4": 0, "5+": 0, "?": 0}
    result = runner.invoke(app, ["select", str(path)])
    assert "cut 4" in result.stdout and "skipped" in result.stdout


def test_a_reader_that_goes_away_stops_the_command_quietly(tmp_path):
    """`spiralarms ... | head`: no 'error:' line and no traceback, status 141 as for SIGPIPE."""
    import subprocess
    import sys

    script = tmp_path / "cli.py"
    script.write_text(
        "import typer\n"
        "from spiralarms.cli.main import SpiralArmsGroup\n"
        "app = typer.Typer(cls=SpiralArmsGroup)\n"
        "@app.command()\n"
        "def flood():\n"
        "    for _ in range(100000):\n"
        "        typer.echo('x' * 100)\n"
        "@app.command()\n"
        "def other():\n"
        "    pass\n"
        "app()\n"
    )
    pipeline = f"{sys.executable} {script} flood | head -c 10 > /dev/null; echo $? ${{PIPESTATUS[0]}}"
    done = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["0", "141"], done.stderr
    assert done.stderr == ""
