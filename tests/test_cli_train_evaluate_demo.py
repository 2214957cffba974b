"""The train, evaluate and demo commands end to end, and the CLI's common contract."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from spiralarms import __version__
from spiralarms.cli import app
from spiralarms.errors import SpiralArmsWarning
from spiralarms.evaluation.metrics import classification_metrics
from report_checks import check_report_page

runner = CliRunner()

TINY = [
    "--set", "data.crop=64",
    "--set", "model.backbone=test_efficientnet",
    "--set", "model.pretrained=false",
    "--set", "train.max_epochs=2",
    "--set", "train.cache_views=1",
]  # fmt: skip

METRICS_KEYS = {"classes", "per_class", "accuracy", "macro_f1", "confusion_matrix"}


def _command_paths(command, prefix=()):
    """Every command and subcommand of the click tree, as argument lists."""
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield [*prefix, name]
        yield from _command_paths(sub, (*prefix, name))


def test_version_and_help_on_every_command():
    import typer

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    paths = list(_command_paths(typer.main.get_command(app)))
    # Every command of the contract is registered (a dropped one fails here, not in silence).
    expected = {"synth", "select", "train", "evaluate", "predict", "export", "demo", "prepare", "explain",
                "reproduce", "mass", "fetch-mpajhu", "data", "data gz2", "data kaggle"}  # fmt: skip
    assert {" ".join(p) for p in paths} == expected
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output and f"spiralarms {' '.join(path)}" in " ".join(result.output.split())


def test_train_then_evaluate(tiny_galaxies, tmp_path):
    run = tmp_path / "run"
    result = runner.invoke(
        app,
        ["train", "--config", "demo-lite0", "--catalog", str(tiny_galaxies / "catalog.csv"), "--out", str(run), "--json", *TINY],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(metrics) == METRICS_KEYS
    for name in ("config.yaml", "metrics.json", "split.csv", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    assert "model:\n" in (run / "config.yaml").read_text()

    out = tmp_path / "evaluation"
    result = runner.invoke(app, ["evaluate", str(run), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    evaluated = json.loads((out / "metrics.json").read_text())
    assert set(evaluated) == METRICS_KEYS
    for name in ("confusion_counts.png", "confusion_normalised.png", "metrics.md", "predictions.csv"):
        assert (out / name).stat().st_size > 0, name
    # The evaluation agrees with the predictions it wrote, recomputed independently.
    predictions = pd.read_csv(out / "predictions.csv", dtype={"label": str, "true_label": str})
    again = classification_metrics(predictions["true_label"], predictions["label"], evaluated["classes"])
    assert again == evaluated
    # Same best weights, same validation set: train's metrics.json and evaluate's agree.
    assert evaluated["confusion_matrix"] == json.loads((run / "metrics.json").read_text())["confusion_matrix"]
    assert "| m=1 |" in (out / "metrics.md").read_text()


def test_train_bad_input_is_one_line(tmp_path):
    result = runner.invoke(app, ["train", "--config", "demo-lite0", "--set", "train.nonsense=3", "--out", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "nonsense" in lines[0]
    result = runner.invoke(app, ["train", "--config", "no-such-config"])
    assert result.exit_code == 1 and "no-such-config" in result.output
    result = runner.invoke(app, ["evaluate", str(tmp_path)])
    assert result.exit_code == 1 and "split.csv" in result.output


@pytest.mark.slow
def test_demo_small_run_writes_a_report(tmp_path):
    """The demo's whole chain on a reduced set (the full demo is tested below)."""
    out = tmp_path / "demo"
    result = runner.invoke(
        app, ["demo", "--out", str(out), "--n-per-class", "8", "--json", "--set", "train.max_epochs=3", "--set", "train.cache_views=1"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    metrics = json.loads((out / "metrics.json").read_text())
    assert summary["macro_f1"] == pytest.approx(metrics["macro_f1"])
    assert summary["accuracy"] == pytest.approx(metrics["accuracy"])
    # metrics.json agrees with the predictions it was computed from.
    predictions = pd.read_csv(out / "predictions.csv", dtype={"label": str, "true_label": str})
    assert metrics == classification_metrics(predictions["true_label"].tolist(), predictions["label"].tolist(), tuple(metrics["classes"]))
    for name in ("report.md", "metrics.json", "confusion_counts.png", "confusion_normalised.png", "examples.png"):
        assert (out / name).stat().st_size > 0, name
    report = (out / "report.md").read_text()
    assert f"{summary['macro_f1']:.3f}" in report and "![examples](examples.png)" in report
    assert "spiralarms demo" in check_report_page(out)
    assert "renderer preset `sdss`" in report  # the embedded default

    # A rerun with other galaxies renders them and trains afresh; with the same, resumes.
    small = ["demo", "--out", str(out), "--n-per-class", "8", "--json", "--set", "train.max_epochs=3", "--set", "train.cache_views=1"]
    for preset, resumed in (("crisp", None), ("crisp", 3)):
        result = runner.invoke(app, [*small, "--preset", preset])
        assert result.exit_code == 0, result.output
        assert json.loads((out / "run" / "train_summary.json").read_text())["resumed_from_epoch"] == resumed
        assert set(pd.read_csv(out / "galaxies" / "catalog.csv")["preset"]) == {preset}
    assert "renderer preset `crisp`" in (out / "report.md").read_text()


@pytest.mark.slow
def test_full_demo_reaches_macro_f1_of_0_8(tmp_path):
    """The README's main job, with its defaults: macro F1 >= 0.8 on the validation set."""
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"full demo: macro F1 {summary['macro_f1']:.3f} in {summary['seconds']:.0f} s")
    assert summary["macro_f1"] >= 0.8
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["macro_f1"] == summary["macro_f1"] and len(metrics["classes"]) == 6


def test_demo_into_a_file_and_evaluate_on_a_checkpoint_say_what_is_wrong(tmp_path):
    taken = tmp_path / "report.txt"
    taken.write_text("mine\n")
    result = CliRunner().invoke(app, ["demo", "--out", str(taken)])
    assert result.exit_code == 1 and "report.txt: exists and is not a folder" in result.output
    assert taken.read_text() == "mine\n"
    result = CliRunner().invoke(app, ["evaluate", str(taken)])
    assert result.exit_code == 1 and "is a file; give the run folder" in result.output
    result = CliRunner().invoke(app, ["reproduce", "--quick", "--out", str(taken)])  # the group's own handler
    assert result.exit_code == 1 and result.output.strip() == f"error: {taken}: exists and is not a folder"


def test_demo_refuses_a_bad_setting_before_rendering_anything(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--set", "train.lr=abc"])
    assert result.exit_code == 1 and result.output.strip() == "error: override 'train.lr=abc': train.lr must be a number, got 'abc'"
    assert not out.exists()
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--seed", "-1"])
    assert result.exit_code == 2 and "--seed" in result.output and not out.exists()


def test_a_class_missing_from_the_validation_set_is_warned_about(tiny_galaxies, tmp_path):
    catalog = pd.read_csv(tiny_galaxies / "catalog.csv", dtype={"dr7objid": str})
    catalog["file"] = [str(tiny_galaxies / f) for f in catalog["file"]]
    from spiralarms.catalog.selection import select_clean_sample

    labels = select_clean_sample(catalog).selected.set_index("dr7objid")["label"]
    by_class = {c: [i for i, label in labels.items() if label == c] for c in ("1", "2", "3")}
    keep = by_class["1"][:8] + by_class["2"][:8] + by_class["3"][:1]  # one m=3 galaxy: the split can't put it in both
    small = tmp_path / "small.csv"
    catalog[catalog["dr7objid"].isin(keep)].to_csv(small, index=False)
    with pytest.warns(SpiralArmsWarning) as caught:
        result = runner.invoke(app, ["train", "--config", "demo-lite0", "--catalog", str(small), "--out",
                                     str(tmp_path / "run"), *TINY])
    assert result.exit_code == 0, result.output
    split = pd.read_csv(tmp_path / "run" / "split.csv", dtype={"label": str})
    val = set(split.loc[split["split"] == "val", "label"])
    classes = json.loads((tmp_path / "run" / "metrics.json").read_text())["classes"]
    missing = [c for c in classes if c not in val]
    assert missing, "a class with one galaxy cannot be in both sets"
    said = [str(w.message) for w in caught if "validation set" in str(w.message)]
    assert len(said) == 1 and f"has no galaxy of class {', '.join(missing)} (an F1 of 0 each" in said[0], said
