"""Paper experiments without training: statistics, choices, Table 3, settings and the report."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from spiralarms.config import config_hash, load_config
from spiralarms.errors import SpiralArmsError
from spiralarms.evaluation.metrics import classification_metrics
from spiralarms.experiments import backbone_comparison, class_configs, crop_sweep, downsampling
from spiralarms.experiments.paper import CROP_CHOICE, TABLE3, TABLE3_F1_CHANGE
from spiralarms.experiments.reproduction_report import ReportSettings, format_value, write_report
from spiralarms.experiments.runner import (
    RUNS_COLUMNS,
    RunSpec,
    limit_per_class,
    read_runs,
    select_table,
    write_runs,
)
from spiralarms.experiments.settings import (
    check_run_overrides,
    load_reproduce_config,
    split_overrides,
)

SIX = ("1", "2", "3", "4", "5+", "?")


def row(experiment, setting, model, seed=0, crop=224, merge="all", cap=300, f1=None, **extra):
    """A runs.csv row with per-class metrics from ``f1`` (precision = recall = F1)."""
    f1 = f1 or {}
    values = {
        "experiment": experiment, "setting": setting, "model": model, "backbone": "zoobot-b0", "frozen": True,
        "seed": seed, "crop": crop, "merge": merge, "cap": cap, "cap_scope": "dataset", "split_seed": 0,
        "classes": " ".join(f1), "n_train": 100, "cache_views": 4,
        "n_val": 40, "macro_f1": float(np.mean(list(f1.values()))) if f1 else 0.0, "accuracy": 0.5,
        "epochs_run": 3, "best_epoch": 2, "wall_seconds": 60.0, "status": "trained",
        "run_dir": f"runs/{experiment}-{model}-{setting}-{seed}-{crop}".replace(" ", "_").replace(",", "_"),
        "run_key": f"{experiment}{model}{setting}{seed}{crop}", "config_hash": "0" * 12,
    }
    for name, value in f1.items():
        values.update({f"precision_{name}": value, f"recall_{name}": value, f"f1_{name}": value,
                       f"support_{name}": 10, f"train_{name}": 23})
    values.update(extra)
    return values


# Macro F1 of the binary sweep per (crop, seed): hand-checked statistics below.
SWEEP = {
    (160, 0): 0.90, (160, 1): 0.92, (160, 2): 0.88,  # mean 0.90, sd 0.02, CV 2.222 %
    (224, 0): 0.91, (224, 1): 0.91, (224, 2): 0.92,  # mean 0.913333, sd 0.005774, CV 0.632 %
    (288, 0): 0.80, (288, 1): 0.90, (288, 2): 0.85,  # mean 0.85, sd 0.05, CV 5.882 %
}


def sweep_rows(model="B0"):
    rows = []
    for (crop, seed), value in SWEEP.items():
        # per-class F1 chosen so that the macro F1 is the table's value and f1_3 = value - 0.02
        rows.append(row("crop_sweep", f"crop={crop}", model, seed=seed, crop=crop,
                        f1={"2": value + 0.02, "3": value - 0.02}))
    return rows


def test_crop_statistics_match_hand_computation():
    runs = pd.DataFrame(sweep_rows())
    stats = crop_sweep.crop_statistics(runs).set_index("crop")
    assert list(stats.index) == [160, 224, 288]
    assert stats.loc[160, "n"] == 3
    assert stats.loc[160, "mean"] == pytest.approx(0.90)
    assert stats.loc[160, "std"] == pytest.approx(0.02)  # sqrt((0 + 0.02^2 + 0.02^2) / 2)
    assert stats.loc[160, "cv"] == pytest.approx(0.02 / 0.90)
    assert stats.loc[160, "cv_percent"] == pytest.approx(100 * 0.02 / 0.90)
    assert stats.loc[224, "mean"] == pytest.approx(2.74 / 3)
    assert stats.loc[224, "std"] == pytest.approx(math.sqrt((2 * (0.01 / 3) ** 2 + (0.02 / 3) ** 2) / 2))
    assert stats.loc[288, "std"] == pytest.approx(0.05)
    assert stats.loc[288, "cv"] == pytest.approx(0.05 / 0.85)


def test_crop_statistics_of_one_class_f1():
    stats = crop_sweep.crop_statistics(pd.DataFrame(sweep_rows()), f1="3").set_index("crop")
    assert stats.loc[160, "mean"] == pytest.approx(0.88)
    assert stats.loc[160, "std"] == pytest.approx(0.02)
    assert crop_sweep.f1_column("3") == "f1_3" and crop_sweep.f1_column() == "macro_f1"


def test_choose_crop_takes_the_lowest_cv_per_model():
    runs = pd.DataFrame(sweep_rows("B0") + sweep_rows("V2M"))
    stats = crop_sweep.crop_statistics(runs)
    # 224 has the lowest CV although 224 is not the only high mean
    assert crop_sweep.choose_crop(stats) == {"B0": 224, "V2M": 224}
    # lowest CV wins over the highest mean F1
    stats.loc[(stats["model"] == "V2M") & (stats["crop"] == 288), ["mean", "cv"]] = [0.99, 0.001]
    assert crop_sweep.choose_crop(stats)["V2M"] == 288


def test_choose_crop_breaks_ties_by_mean_then_size():
    stats = pd.DataFrame({"model": ["B0"] * 3, "crop": [160, 224, 288], "n": 1, "mean": [0.8, 0.9, 0.9],
                          "std": 0.0, "cv": [0.0, 0.0, 0.0], "cv_percent": 0.0})
    assert crop_sweep.choose_crop(stats) == {"B0": 224}
    stats["cv"] = [float("nan"), 0.1, 0.2]
    assert crop_sweep.choose_crop(stats) == {"B0": 224}


def test_relative_change_is_the_papers_diff_column():
    assert downsampling.relative_change(0.535, 0.872) == pytest.approx(0.630, abs=5e-4)
    assert downsampling.relative_change(0.979, 0.832) == pytest.approx(-0.150, abs=5e-4)
    assert math.isnan(downsampling.relative_change(0.0, 0.5))
    # the paper's printed column follows from its own Table 3 values
    for m in SIX:
        before, after = TABLE3[("B0", "all")][m]["f1"], TABLE3[("B0", "down")][m]["f1"]
        assert downsampling.relative_change(before, after) == pytest.approx(TABLE3_F1_CHANGE[m], abs=1.5e-3)


def table3_rows():
    all_f1 = {"1": 0.5, "2": 0.98, "3": 0.6, "4": 0.0, "5+": 0.8, "?": 0.8}
    down_f1 = {"1": 0.8, "2": 0.833, "3": 0.9, "4": 0.25, "5+": 0.8, "?": 0.88}
    v2m_f1 = {c: 0.7 for c in SIX}
    return [
        row("downsampling", "all data", "B0", cap=None, f1=all_f1),
        row("downsampling", "down-sampled", "B0", f1=down_f1),
        row("downsampling", "down-sampled", "V2M", f1=v2m_f1, backbone="v2m-imagenet", frozen=False),
    ]


def test_table3_relative_change_hand_computed():
    table = downsampling.table3(pd.DataFrame(table3_rows())).set_index("m")
    assert table.loc["1", "f1_change"] == pytest.approx(0.6)  # (0.8 - 0.5) / 0.5
    assert table.loc["2", "f1_change"] == pytest.approx((0.833 - 0.98) / 0.98)
    assert table.loc["3", "f1_change"] == pytest.approx(0.5)
    assert math.isnan(table.loc["4", "f1_change"])  # no F1 on all data: undefined
    assert table.loc["5+", "f1_change"] == pytest.approx(0.0)
    assert table.loc["?", "f1_change"] == pytest.approx(0.1)
    assert table.loc["1", "B0_down_precision"] == pytest.approx(0.8)
    assert table.loc["3", "V2M_down_f1"] == pytest.approx(0.7)
    assert table.loc["1", "paper_B0_all_f1"] == 0.535
    assert table.loc["?", "paper_V2M_down_recall"] == 0.933
    assert table.loc["2", "paper_f1_change"] == -0.150


def test_table3_leaves_missing_runs_empty():
    table = downsampling.table3(pd.DataFrame(table3_rows()[:1]), compare=("V2M",))
    assert table["B0_down_f1"].isna().all() and table["f1_change"].isna().all()
    assert table["V2M_down_f1"].isna().all()


def test_model_comparison_sets_paper_f1_and_difference():
    runs = pd.DataFrame([row("backbones", "down-sampled", "B0", f1={c: 0.9 for c in SIX}),
                         row("backbones", "down-sampled", "lite0", f1={c: 0.5 for c in SIX})])
    table = backbone_comparison.model_comparison(runs).set_index("m")
    assert table.loc["1", "B0_paper_f1"] == 0.872
    assert table.loc["1", "B0_f1_difference"] == pytest.approx(0.9 - 0.872)
    assert table.loc["macro", "B0_f1"] == pytest.approx(0.9)
    paper_macro = np.mean([TABLE3[("B0", "down")][c]["f1"] for c in SIX])
    assert table.loc["macro", "B0_paper_f1"] == pytest.approx(paper_macro)
    assert table["lite0_paper_f1"].isna().all()  # no published values for other models


def test_check_claims_compares_the_m4_row():
    classes = list(SIX)
    matrix = np.diag([10, 10, 10, 2, 10, 10])
    matrix[3, 3], matrix[3, 2], matrix[3, 5] = 2, 6, 1  # m=4: 2/9 right, 6/9 as 3, 1/9 as ?
    counts = np.asarray(matrix)
    entry = {"classes": classes, "counts": counts, "normalised": counts / counts.sum(axis=1, keepdims=True)}
    claims = class_configs.check_claims({("B0", "all"): entry}).set_index("cell")
    assert claims.loc["4 -> 4", "ours"] == pytest.approx(2 / 9) and claims.loc["4 -> 4", "holds"]
    assert claims.loc["4 -> 3", "ours"] == pytest.approx(6 / 9) and claims.loc["4 -> 3", "holds"]
    assert claims.loc["4 -> ?", "ours"] == pytest.approx(1 / 9) and claims.loc["4 -> ?", "holds"]
    assert set(claims["model"]) == {"B0"}


def test_limit_and_select_table():
    base = pd.DataFrame({"label": ["2"] * 20 + ["3"] * 8 + ["4"] * 5, "file": [f"f{i}" for i in range(33)]})
    kept = limit_per_class(base["label"], {"2": 6}, seed=1)
    assert (base.iloc[kept]["label"].value_counts().to_dict()) == {"2": 6, "3": 8, "4": 5}
    assert np.array_equal(kept, limit_per_class(base["label"], {"2": 6}, seed=1))

    table, classes = select_table(base, None, {"subset": {"classes": ["2", "3"], "per_class": 7, "seed": 0}})
    assert classes == ("2", "3") and table["label"].value_counts().to_dict() == {"2": 7, "3": 7}
    table, classes = select_table(base, "3,4", {"class_counts": {"2": 4}, "counts_seed": 0})
    assert classes == ("1", "2", "3,4", "5+", "?")
    assert table["label"].value_counts().to_dict() == {"3,4": 13, "2": 4}
    # the six-class label stays, as the strata of the split
    assert table["label_original"].value_counts().to_dict() == {"3": 8, "4": 5, "2": 4}
    with pytest.raises(SpiralArmsError, match="need at least 2 per class"):
        select_table(base, None, {"subset": {"classes": ["2", "1"], "per_class": 5, "seed": 0}})


def test_run_key_is_the_config_hash_unless_the_table_changes(tmp_path):
    config = load_config("b0-zoobot", [f"data.catalog={tmp_path / 'catalog.csv'}"])
    plain = RunSpec("backbones", "down-sampled", "B0", config)
    assert plain.key == plain.config_hash == config_hash(plain.config)
    table = {"subset": {"classes": ["2", "3"], "per_class": 300, "seed": 0}}
    subset = RunSpec("crop_sweep", "crop=224", "B0", config, table)
    assert subset.config_hash == plain.config_hash and subset.key != plain.key
    assert subset.key == RunSpec("x", "y", "B0", config, dict(subset.table)).key
    relative = load_config("b0-zoobot", ["data.catalog=catalog.csv"])
    assert RunSpec("a", "b", "B0", relative).config.data.catalog.startswith("/")  # resolved as train() does


def test_plans_set_the_experiment_keys():
    configs = {"B0": load_config("b0-zoobot", ["data.catalog=x.csv"]),
               "V2M": load_config("v2m-imagenet", ["data.catalog=x.csv"])}
    settings = load_reproduce_config()
    sweep = crop_sweep.plan_crop_sweep(settings.crop_sweep, configs)
    assert len(sweep) == 2 * 9 * 5
    assert {(s.config.data.crop, s.seed) for s in sweep if s.model == "B0"} == {
        (c, x) for c in settings.crop_sweep.crops for x in range(5)}
    assert all(s.table["subset"] == {"classes": ["2", "3"], "per_class": 300, "seed": 0} for s in sweep)
    # one split for every run of the sweep; the seed varies the training only
    assert {s.split_seed for s in sweep} == {0} and {s.seed for s in sweep} == set(range(5))
    assert all(s.config.data.cap_scope == "dataset" for s in sweep)
    per_run = crop_sweep.plan_crop_sweep(settings.crop_sweep.model_copy(update={"split": "per_run"}), configs)
    assert all(s.split_seed == s.seed for s in per_run) and {s.split_seed for s in per_run} == set(range(5))
    assert {s.key for s in per_run}.isdisjoint({s.key for s in sweep if s.seed != 0})

    def crop_for(model, crop):
        return 200 if crop is None else crop

    down = downsampling.plan_downsampling(settings.downsampling, configs, crop_for)
    assert [(s.model, s.setting, s.config.data.cap) for s in down] == [
        ("B0", "all data", None), ("B0", "down-sampled", 300), ("V2M", "down-sampled", 300)]
    merged = class_configs.plan_class_configs(settings.class_configs, configs, crop_for)
    assert [s.config.data.merge for s in merged] == [None, "3,4", "4,5+"] * 2
    assert {s.config.data.crop for s in merged} == {200}
    compared = backbone_comparison.plan_backbones(settings.backbones, configs, crop_for)
    # compared runs share one split: the same split seed, cap and cap scope
    for specs in (compared, merged, down[1:]):
        assert {(s.split_seed, s.config.data.cap, s.config.data.cap_scope) for s in specs} == {(0, 300, "dataset")}
    # the down-sampled runs are the same runs in three experiments: one key each
    assert compared[0].key == down[1].key == merged[0].key
    assert compared[1].key == down[2].key == merged[3].key
    # the full paper reproduction: 90 sweep runs + all-data B0 + 3 configurations x 2 models
    keys = {s.key for s in sweep + down + merged + compared}
    assert len(keys) == 90 + 1 + 6


def test_shipped_reproduce_configs_load():
    paper = load_reproduce_config()
    assert paper.source.kind == "catalog" and paper.crop_sweep.per_class == 300
    assert paper.crop_sweep.seeds == [0, 1, 2, 3, 4] and 224 in paper.crop_sweep.crops
    assert paper.models["B0"].config == "b0-zoobot" and paper.models["V2M"].config == "v2m-imagenet"
    quick = load_reproduce_config(quick=True)
    assert quick.source.kind == "synthetic" and quick.notes
    assert quick.crop_sweep.classes == ["2", "3"]
    assert set(CROP_CHOICE) <= set(quick.models)


def test_reproduce_config_overrides_and_errors(tmp_path):
    items = ["crop_sweep.seeds=[4, 5]", "crop_sweep.classes=[2, 3]", "models.B0.set=[train.lr=0.001]",
             "source.class_counts=null"]
    config = load_reproduce_config(quick=True, overrides=items)
    assert config.crop_sweep.seeds == [4, 5] and config.crop_sweep.classes == ["2", "3"]
    assert config.models["B0"].set == ["train.lr=0.001"] and config.source.class_counts is None
    with pytest.raises(SpiralArmsError, match="crop_sweep.seed.*did you mean"):
        load_reproduce_config(overrides=["crop_sweep.seed=[1]"])
    with pytest.raises(SpiralArmsError, match="crop_sweep.crops must be"):
        load_reproduce_config(overrides=["crop_sweep.crops=big"])
    with pytest.raises(SpiralArmsError, match="names model 'X'"):
        load_reproduce_config(overrides=["backbones.models=[X]"])
    with pytest.raises(SpiralArmsError, match="not both"):
        load_reproduce_config("reproduce-paper", quick=True)
    with pytest.raises(SpiralArmsError, match="class_configs.merges"):
        load_reproduce_config(overrides=["class_configs.merges=['3,5+']"])
    file = tmp_path / "mine.yaml"
    file.write_text("models:\n  lite0: {config: demo-lite0}\ncrop_sweep: {models: [lite0]}\n"
                    "downsampling: {model: lite0, compare: []}\nbackbones: {models: [lite0]}\n"
                    "class_configs: {models: [lite0]}\n")
    mine = load_reproduce_config(file)
    assert list(mine.models) == ["lite0"]  # a models mapping replaces the default pair


def test_run_overrides_are_split_and_checked():
    reproduce, runs = split_overrides(["crop_sweep.seeds=[0]", "train.max_epochs=2", "model.hidden=8"])
    assert reproduce == ["crop_sweep.seeds=[0]"] and runs == ["train.max_epochs=2", "model.hidden=8"]
    with pytest.raises(SpiralArmsError, match="data.crop is set by the experiments"):
        check_run_overrides(["data.crop=128"], "--set")
    with pytest.raises(SpiralArmsError, match="KEY=VALUE"):
        split_overrides(["train.max_epochs"])


def test_format_value():
    assert format_value(0.12345) == "0.123"
    assert format_value(float("nan")) == "–" and format_value(None) == "–"
    assert format_value(0.631, 1, percent=True, signed=True) == "+63.1 %"


@pytest.fixture
def fixture_report(tmp_path):
    """A runs.csv of every experiment and the class-configuration runs' metrics.json."""
    rows = sweep_rows("B0") + sweep_rows("V2M") + table3_rows()
    compared = [row("backbones", "down-sampled", m, f1={c: 0.8 for c in SIX}) for m in ("B0", "V2M")]
    rows += compared
    _figure13_files(tmp_path, compared[1])
    rng = np.random.default_rng(0)
    for model in ("B0", "V2M"):
        for merge, classes in (("all", SIX), ("3,4", ("1", "2", "3,4", "5+", "?")),
                               ("4,5+", ("1", "2", "3", "4,5+", "?"))):
            y_true = np.repeat(np.arange(len(classes)), 9)
            y_pred = np.where(rng.random(len(y_true)) < 0.8, y_true, rng.integers(0, len(classes), len(y_true)))
            metrics = classification_metrics(y_true, y_pred, classes)
            setting = class_configs.setting_name(None if merge == "all" else merge)
            r = row("class_configs", setting, model, merge=merge,
                    f1={c: metrics["per_class"][c]["f1"] for c in classes})
            (tmp_path / r["run_dir"]).mkdir(parents=True)
            (tmp_path / r["run_dir"] / "metrics.json").write_text(json.dumps(metrics))
            rows.append(r)
    write_runs(rows, tmp_path / "runs.csv")
    return tmp_path


def _figure13_files(out, run):
    """val_predictions.csv, split.csv and images of a six-class run: m=2 galaxies predicted as 1, 2 and 3."""
    from PIL import Image

    folder = out / run["run_dir"]
    folder.mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir(exist_ok=True)
    preds = ["1", "1", "3", "2", "2", "1"]
    ids = [f"g{i}" for i in range(len(preds))]
    rng = np.random.default_rng(3)
    for galaxy in ids:
        Image.fromarray(rng.integers(0, 255, (240, 240, 3), dtype=np.uint8)).save(out / "images" / f"{galaxy}.jpg")
    probs = {f"p_{c}": 0.1 for c in SIX}
    predictions = pd.DataFrame([{"id": g, "label": "2", "pred": p, **probs, f"p_{p}": 0.5 + i / 20}
                                for i, (g, p) in enumerate(zip(ids, preds, strict=True))])
    predictions.to_csv(folder / "val_predictions.csv", index=False)
    split = pd.DataFrame({"id": ids, "label": "2", "split": "val", "file": [str(out / "images" / f"{g}.jpg")
                                                                            for g in ids]})
    split.to_csv(folder / "split.csv", index=False)


def test_report_renders_from_a_runs_table_without_training(fixture_report):
    runs = read_runs(fixture_report / "runs.csv")
    assert list(runs.columns[: len(RUNS_COLUMNS)]) == list(RUNS_COLUMNS)
    assert runs["merge"].tolist().count("3,4") == 2 and runs["cap"].isna().sum() == 1
    files = write_report(runs, fixture_report, ReportSettings("fixture", notes=["A fixture."]))
    assert set(files) == {"report", "html", "table3", "figure5", "figure6", "figure7", "figure13"}
    assert "## 7 Beyond the paper" in files["report"].read_text() and "bench_recipes.py" in files["report"].read_text()
    (fixture_report / "recipes").mkdir()
    (fixture_report / "recipes" / "recipes.md").write_text("| recipe | macro F1 |\n|---|---|\n| weighted CE | 0.512 |\n")
    files = write_report(runs, fixture_report, ReportSettings("fixture", notes=["A fixture."]))
    assert "| weighted CE | 0.512 |" in files["report"].read_text() and "0.512" in files["html"].read_text()
    for key in ("figure5", "figure6", "figure7", "figure13"):
        assert files[key].stat().st_size > 10_000
    text = files["report"].read_text()
    # every remaining departure is listed, with its reason, before the results
    assert text.index("## Departures from the paper") < text.index("## 4.2.1")
    assert "B0 weights: the paper's B0 is the greyscale GZ DECaLS EfficientNet-B0" in text
    assert "4 cached augmented views per training image" in text
    # every table names its protocol: cap before or after the split, split shared or not
    assert text.count("Protocol: ") == 4
    assert "one split (split seed 0) shared by every run; the runs of a size differ in their training seed" in text
    assert "each set is split after its own down-sampling" in text
    assert "All data run: no cap, split 70:30 (split seed 0); down-sampled run: capped at 300 per class, then " \
           "split 70:30 (the paper's order)" in text
    # the split-size table with the paper's expected validation counts (30 % of the capped classes)
    assert "| paper (expected) | down-sampled | B0, V2M | 300 | whole set, before the split | – | m=1 ≈50/165, " \
           "m=2 ≈90/300, m=3 ≈89/298, m=4 ≈8/28, m=5+ ≈9/31, m=? ≈90/300 | 30 % |" in text
    assert "| downsampling | all data | B0 | none | – | 0 | m=1 10/33," in text
    # Figures 6 and 13
    assert "| paper, down-sampled | 165 | 300 | 298 | 28 | 31 | 300 | 1122 |" in text
    assert "it predicts 3 as m=1, 1 as m=3" in text
    order = [text.index(h) for h in ("## 4.2.1", "## 4.2.2", "## 5.1", "## 5.2", "## Runs and files")]
    assert order == sorted(order)
    assert "- A fixture." in text
    assert "| B0 | 224 | 3 | 0.9133 | 0.0058 | 0.632 | **chosen** |" in text
    assert "| B0 | 224 / 224 | 0.9133 | 0.9111 | +0.0022 | 0.632 | 2.203 | -1.571 | 0.9133 |" in text
    assert "| m=1 | 0.500 | 0.500 | 0.500 | 0.800 | 0.800 | 0.800 | +60.0 % | 0.700 | 0.700 | 0.700 |" in text
    assert "| m=1 | 0.905 | 0.380 | 0.535 | 0.932 | 0.820 | 0.872 | +63.0 % | 0.909 | 0.800 | 0.851 |" in text
    assert "![Figure 7: confusion matrices](figure7.png)" in text
    assert "section 5.2 ('37% of the combined class" in text
    table3 = pd.read_csv(files["table3"], dtype={"m": str}).set_index("m")
    assert table3.loc["1", "f1_change"] == pytest.approx(0.6)
    assert table3.loc["3", "paper_B0_down_f1"] == 0.840
    figure5 = pd.read_csv(fixture_report / "figure5.csv")
    assert len(figure5) == 6 and set(figure5["model"]) == {"B0", "V2M"}


def test_report_of_a_partial_reproduction_says_not_run(tmp_path):
    write_runs(sweep_rows("B0"), tmp_path / "runs.csv")
    files = write_report(read_runs(tmp_path / "runs.csv"), tmp_path)
    assert set(files) == {"report", "html", "figure5"}
    text = files["report"].read_text()
    assert text.count("Not run.") == 3


def test_read_runs_refuses_other_tables(tmp_path):
    with pytest.raises(SpiralArmsError, match="no runs table"):
        read_runs(tmp_path / "runs.csv")
    (tmp_path / "runs.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SpiralArmsError, match="not a runs table"):
        read_runs(tmp_path / "runs.csv")


def _paper_like_selection(n_two: int = 1200) -> pd.DataFrame:
    """A six-class clean sample with the paper's imbalance (m=2 reduced), as load_selection gives it."""
    counts = {"1": 165, "2": n_two, "3": 298, "4": 28, "5+": 31, "?": 519}
    labels = np.random.default_rng(5).permutation(np.concatenate([[c] * n for c, n in counts.items()]))
    return pd.DataFrame({"dr7objid": np.arange(len(labels)) + 10**17, "label": labels, "label_original": labels,
                         "file": [f"/img/{i}.jpg" for i in range(len(labels))]}), counts


@pytest.mark.parametrize("cap_scope", ["dataset", "train"])
def test_merge_runs_reuse_the_six_class_validation_ids(cap_scope):
    """Figure 7's configurations: one split of the six-class set, then merged labels."""
    from spiralarms.training import GalaxyDataModule

    base, counts = _paper_like_selection()
    data = load_config(None, ["data.cap=300", f"data.cap_scope={cap_scope}", "data.seed=2"]).data
    val_ids, train_ids = {}, {}
    for merge in (None, "3,4", "4,5+"):
        table, classes = select_table(base, merge, {})
        module = GalaxyDataModule(table, classes, data)
        split = module.split_table()
        val_ids[merge] = set(split.loc[split["split"] == "val", "id"])
        train_ids[merge] = set(split.loc[split["split"] == "train", "id"])
        if merge is not None:
            assert set(module.val_table["label"]) >= {merge}  # relabelled
    assert val_ids[None] == val_ids["3,4"] == val_ids["4,5+"]
    assert train_ids[None] == train_ids["3,4"] == train_ids["4,5+"]


def test_split_composition_for_both_cap_settings():
    """Cap before the split (the paper): validation ~30 % of each capped class; train-only cap: natural mix."""
    from spiralarms.training import GalaxyDataModule

    base, counts = _paper_like_selection()
    classes = ("1", "2", "3", "4", "5+", "?")
    for scope in ("dataset", "train"):
        data = load_config(None, ["data.cap=300", f"data.cap_scope={scope}"]).data
        n = GalaxyDataModule(base, classes, data).class_counts()
        for c, total in counts.items():
            capped = min(total, 300)
            if scope == "dataset":
                assert n["train"][c] + n["val"][c] == capped
                assert abs(n["val"][c] - 0.3 * capped) <= 1, (c, n["val"][c])
            else:
                assert abs(n["val"][c] - 0.3 * total) <= 1
                assert n["train"][c] == min(total - n["val"][c], 300)
        if scope == "dataset":
            assert n["val"]["2"] == 90 and sum(n["val"].values()) == pytest.approx(0.3 * 1122, abs=3)
        else:
            assert n["val"]["2"] == 360  # the natural mix: most validation galaxies are m=2
