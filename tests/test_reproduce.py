"""Reproduction runs: the run cache (rerun, kill and resume), the data error and a tiny --quick."""

from __future__ import annotations

import json

import lightning as L
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from spiralarms.cli.reproduce import reproduce
from spiralarms.errors import SpiralArmsError
from spiralarms.experiments import load_reproduce_config, run_reproduction
from spiralarms.experiments import runner as runner_module
from spiralarms.experiments.settings import split_overrides
from report_checks import check_report_page

#: A tiny model: random-weight test backbone, 48-64 pixel crops, one epoch.
TINY_RUN = [
    "model.backbone=test_efficientnet",
    "model.pretrained=false",
    "model.hidden=16",
    "train.max_epochs=1",
    "train.cache_views=1",
    "train.accelerator=cpu",
]


def tiny_settings(catalog, *extra):
    """Crop sweep (1 crop x 2 seeds) and down-sampling (3 runs) on a given catalogue."""
    items = [
        "crop_sweep.models=[B0]", "crop_sweep.crops=[48]", "crop_sweep.seeds=[0, 1]", "crop_sweep.per_class=8",
        "downsampling.cap=5", "downsampling.compare=[V2M]", "backbones.enabled=false", "class_configs.enabled=false",
        "source.class_counts=null", *extra,
    ]
    config = load_reproduce_config(quick=True, overrides=items)
    config.source.kind, config.source.catalog = "catalog", str(catalog)
    return config


@pytest.fixture
def count_training(monkeypatch):
    """Count (and name) the runs that reach train()."""
    calls = []
    real = runner_module.train

    def counting(config, run_dir, *args, **kwargs):
        calls.append(run_dir.name)
        return real(config, run_dir, *args, **kwargs)

    monkeypatch.setattr(runner_module, "train", counting)
    return calls


@pytest.mark.slow
def test_rerun_trains_nothing_and_a_killed_run_resumes(tiny_galaxies, tmp_path, count_training):
    config = tiny_settings(tiny_galaxies / "catalog.csv", "checkpoints=all")
    first = run_reproduction(config, tmp_path, overrides=TINY_RUN, log=lambda *_: None)
    assert first.n_trained == len(count_training) == 5  # 2 sweep runs + all data + 2 down-sampled
    runs = pd.read_csv(tmp_path / "runs.csv", dtype=str)
    assert set(runs["status"]) == {"trained"} and len(runs) == 5
    assert first.chosen_crops == {"B0": 48}
    for _, row in runs.iterrows():
        summary = json.loads((tmp_path / row["run_dir"] / "train_summary.json").read_text())
        assert summary["config_hash"] == row["config_hash"]  # the hash train() records

    count_training.clear()
    second = run_reproduction(config, tmp_path, overrides=TINY_RUN, log=lambda *_: None)
    assert count_training == [] and second.n_trained == 0 and second.n_cached == 5
    again = pd.read_csv(tmp_path / "runs.csv", dtype=str)
    assert set(again["status"]) == {"cached"}
    pd.testing.assert_frame_equal(again.drop(columns="status"), runs.drop(columns="status"))

    # a run killed after its checkpoint but before metrics.json: only it trains, resumed
    victim = runs.iloc[3]
    (tmp_path / victim["run_dir"] / "metrics.json").unlink()
    third = run_reproduction(config, tmp_path, overrides=TINY_RUN, log=lambda *_: None)
    assert count_training == [victim["run_key"]] and third.n_trained == 1
    statuses = pd.read_csv(tmp_path / "runs.csv", dtype=str).set_index("run_key")["status"]
    assert statuses[victim["run_key"]] == "resumed"
    assert (tmp_path / victim["run_dir"] / "metrics.json").is_file()

    # a changed training setting is a new run: new key, the old one untouched
    count_training.clear()
    run_reproduction(config, tmp_path, overrides=[*TINY_RUN[:-3], "train.max_epochs=2", *TINY_RUN[-2:]],
                     log=lambda *_: None)
    assert len(count_training) == 5 and not set(count_training) & set(runs["run_key"])


@pytest.mark.slow
def test_a_catalogue_replaced_under_the_same_path_gets_new_runs(tiny_galaxies, tmp_path, count_training):
    """Finished runs are reused only for the catalogue they were trained on (its bytes)."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_galaxies, data)
    config = tiny_settings(data / "catalog.csv", "downsampling.enabled=false")
    run_reproduction(config, tmp_path / "out", overrides=TINY_RUN, log=lambda *_: None)
    first = list(count_training)
    assert len(first) == 2
    count_training.clear()
    run_reproduction(config, tmp_path / "out", overrides=TINY_RUN, log=lambda *_: None)
    assert count_training == []  # the same catalogue: every run read back

    pd.read_csv(data / "catalog.csv").assign(note="rendered again").to_csv(data / "catalog.csv", index=False)
    result = run_reproduction(config, tmp_path / "out", overrides=TINY_RUN, log=lambda *_: None)
    assert result.n_trained == len(count_training) == 2 and not set(count_training) & set(first)


class KillAfterFirstEpoch(L.Callback):
    """Stop training as a kill would, once the first epoch's checkpoints are written."""

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            raise RuntimeError("killed")


@pytest.mark.slow
def test_reproduction_killed_mid_run_resumes_that_run(tiny_galaxies, tmp_path, monkeypatch):
    config = tiny_settings(tiny_galaxies / "catalog.csv", "downsampling.enabled=false",
                           "crop_sweep.seeds=[0, 1, 2]")
    two_epochs = [item for item in TINY_RUN if not item.startswith("train.max_epochs")] + ["train.max_epochs=2"]
    real = runner_module.train
    calls = []

    def killed_in_third_run(config, run_dir, *args, **kwargs):
        calls.append(run_dir.name)
        if len(calls) == 3:
            kwargs = {**kwargs, "callbacks": [KillAfterFirstEpoch()]}
        return real(config, run_dir, *args, **kwargs)

    monkeypatch.setattr(runner_module, "train", killed_in_third_run)
    with pytest.raises(RuntimeError, match="killed"):
        run_reproduction(config, tmp_path, overrides=two_epochs, log=lambda *_: None)
    assert len(pd.read_csv(tmp_path / "runs.csv")) == 2  # runs.csv is written after every run
    victim = tmp_path / "runs" / calls[2]
    assert (victim / "checkpoints" / "last.ckpt").is_file() and not (victim / "metrics.json").exists()

    result = run_reproduction(config, tmp_path, overrides=two_epochs, log=lambda *_: None)
    assert result.n_cached == 2 and result.n_trained == 1
    assert calls[3:] == [calls[2]]  # only the killed run trains again
    summary = json.loads((victim / "train_summary.json").read_text())
    assert summary["resumed_from_epoch"] == 1 and summary["epochs_run"] == 2
    runs = pd.read_csv(tmp_path / "runs.csv", dtype=str).set_index("run_key")
    assert runs.loc[calls[2], "status"] == "resumed"
    # finished runs keep best.ckpt only (checkpoints: best)
    assert (victim / "checkpoints" / "best.ckpt").is_file() and not (victim / "checkpoints" / "last.ckpt").exists()
    assert (tmp_path / "report.md").is_file()


def test_paper_settings_without_data_say_how_to_get_it(tmp_path):
    with pytest.raises(SpiralArmsError, match=r"spiralarms data gz2 ROOT") as error:
        run_reproduction(load_reproduce_config(), tmp_path, log=lambda *_: None)
    assert "\n" not in str(error.value)
    missing = load_reproduce_config(overrides=[f"source.catalog={tmp_path / 'nope.parquet'}"])
    with pytest.raises(SpiralArmsError, match="not found; fetch the GZ2 data"):
        run_reproduction(missing, tmp_path, log=lambda *_: None)


def test_experiment_keys_cannot_be_overridden(tmp_path):
    config = load_reproduce_config(quick=True)
    with pytest.raises(SpiralArmsError, match="data.seed is set by the experiments"):
        run_reproduction(config, tmp_path, overrides=["data.seed=3"], log=lambda *_: None)


def test_prepared_store_crop_is_checked(tiny_galaxies, tmp_path):
    from spiralarms.data.store import prepare_store

    store = tmp_path / "store"
    prepare_store(tiny_galaxies / "catalog.csv", store, crop=40, workers=1, progress=False)
    config = tiny_settings(store, "downsampling.enabled=false")
    with pytest.raises(SpiralArmsError, match="store holds 40-pixel crops but a run needs 48"):
        run_reproduction(config, tmp_path / "out", overrides=TINY_RUN, log=lambda *_: None)


@pytest.mark.slow
def test_quick_end_to_end_tiny(tmp_path):
    """`reproduce --quick` as the command line runs it, shrunk to seconds by overrides."""
    app = typer.Typer()
    app.command()(reproduce)
    shrink = [
        "source.n_per_class=12", "source.size=96", "source.class_counts={'1': 8, '2': 12, '3': 12, '4': 6}",
        "crop_sweep.crops=[48, 64]", "crop_sweep.seeds=[0, 1]", "crop_sweep.per_class=8",
        "downsampling.cap=6", "backbones.cap=6", "class_configs.cap=6", "class_configs.models=[B0]",
        *TINY_RUN,
    ]
    args = ["--quick", "--out", str(tmp_path), "--json"]
    for item in shrink:
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert set(summary["files"]) == {"report", "html", "runs", "table3", "figure5", "figure6", "figure7", "figure13"}
    assert summary["chosen_crops"]["B0"] in (48, 64)
    # 4 sweep runs, all data, B0 and V2M down-sampled, 3,4 and 4,5+ merged for B0
    assert summary["runs"] == summary["trained"] == 9
    runs = pd.read_csv(tmp_path / "runs.csv", dtype={"merge": str})
    assert len(runs) == 4 + 3 + 2 + 3
    assert set(runs["experiment"]) == {"crop_sweep", "downsampling", "backbones", "class_configs"}
    assert (runs["crop"][runs["experiment"] != "crop_sweep"] == summary["chosen_crops"]["B0"]).all()
    for column in ("f1_2", "f1_3", "macro_f1", "accuracy", "wall_seconds", "run_dir", "config_hash"):
        assert runs[column].notna().any()
    assert (tmp_path / "data" / "catalog.csv").is_file()
    report = (tmp_path / "report.md").read_text()
    assert "configuration `quick`" in report and "Quick run: synthetic galaxies" in report
    assert "Reproduction of Lee" in check_report_page(tmp_path)
    # compared runs validate on the same galaxies: the merges reuse the six-class split, B0 and V2M share it
    def val_ids(experiment, model=None):
        part = runs[(runs["experiment"] == experiment) & ((runs["model"] == model) if model else True)]
        found = []
        for folder in part["run_dir"]:
            split = pd.read_csv(tmp_path / folder / "split.csv", dtype={"id": str})
            found.append(frozenset(split.loc[split["split"] == "val", "id"]))
        return found

    merges = val_ids("class_configs", "B0")
    assert len(merges) == 3 and len(set(merges)) == 1
    assert set(val_ids("backbones")) == set(merges)
    assert "All 3 runs validated on the same" in report and "Both runs validated on the same" in report
    # validation holds ~30 % of each capped class (cap 6: 2 of 6; the 6 galaxies of m=4: 2)
    down = runs[(runs["experiment"] == "backbones") & (runs["model"] == "B0")].iloc[0]
    for c in ("1", "2", "3", "4"):
        total = down[f"support_{c}"] + down[f"train_{c}"]
        assert total == 6 and down[f"support_{c}"] == 2, c
    assert report.count("Protocol: ") == 4 and "## Departures from the paper" in report
    settings = (tmp_path / "reproduce.yaml").read_text()
    assert "test_efficientnet" in settings  # the overrides used are recorded

    rerun = CliRunner().invoke(app, args)
    assert rerun.exit_code == 0, rerun.output
    again = json.loads(rerun.output.strip().splitlines()[-1])
    assert again["trained"] == 0 and again["cached"] == 9


def test_split_overrides_routes_cli_items():
    reproduce_items, run_items = split_overrides(["source.size=96", *TINY_RUN])
    assert reproduce_items == ["source.size=96"] and run_items == TINY_RUN


def test_prepared_store_serves_the_tables_labels(tiny_galaxies, tmp_path):
    """A merge or the 2-vs-3 subset relabels the table; store rows must follow it."""
    from spiralarms.config import load_config
    from spiralarms.data.store import prepare_store
    from spiralarms.experiments.runner import RunCache, select_table
    from spiralarms.training import GalaxyDataModule

    store = tmp_path / "store"
    prepare_store(tiny_galaxies / "catalog.csv", store, crop=64, workers=1, progress=False)
    config = load_config(None, [f"data.catalog={store}", "data.crop=48", "data.cap=null"])
    base, _ = RunCache(tmp_path / "out").selection(config)
    for merge, steps in (("3,4", {}), (None, {"subset": {"classes": ["2", "3"], "per_class": 5, "seed": 0}})):
        table, classes = select_table(base, merge, steps)
        data = GalaxyDataModule(table, classes, config.data)
        for dataset, part in ((data.train_eval_dataset, data.train_table), (data.val_dataset, data.val_table)):
            assert [classes[i] for i in dataset.labels] == part["label"].tolist()
            assert dataset[0][1] == classes.index(part["label"].iloc[0])


def test_synthetic_source_is_reused_only_for_the_same_preset(tmp_path):
    """A reproduction folder's galaxies are reused for the same set, redrawn for another preset."""
    from spiralarms.experiments.reproduce import prepare_source

    def source(preset):
        overrides = ["source.n_per_class=1", "source.size=64", f"source.preset={preset}"]
        return load_reproduce_config(quick=True, overrides=overrides)

    lines = []
    catalog, description = prepare_source(source("crisp"), tmp_path, log=lines.append)
    assert set(pd.read_csv(catalog)["preset"]) == {"crisp"} and "preset crisp" in description
    prepare_source(source("crisp"), tmp_path, log=lines.append)
    assert "reusing" in lines[-1]
    catalog, description = prepare_source(source("sdss"), tmp_path, log=lines.append)
    assert "rendering" in lines[-1] and set(pd.read_csv(catalog)["preset"]) == {"sdss"}
    assert "preset sdss" in description
