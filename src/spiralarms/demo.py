"""The main job on the embedded default: synthetic galaxies to a readable report.

``spiralarms demo`` synthesises the six T11 classes, applies the paper's cuts, splits
70:30, trains the paper's frozen-backbone recipe with the one pretrained backbone that
works offline (EfficientNet-Lite0, ImageNet) on cached embeddings, evaluates, and
writes a report folder whose ``report.md`` is the page to read first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from spiralarms import __version__
from spiralarms.data.synthetic import DEFAULT_PRESET
from spiralarms.errors import SpiralArmsError
from spiralarms.io.atomic import save_figure, write_json
from spiralarms.io.locks import hold_output

#: Galaxies per class in the demo: enough for a stable macro F1 on the validation
#: set, few enough for the whole demo to run in minutes on two CPU cores.
DEMO_N_PER_CLASS = 250

#: The renderer preset of the demo's galaxies: the embedded default (docs/synthetic.md);
#: ``--preset crisp`` trains on the first renderer's sharper galaxies instead.
DEMO_PRESET = DEFAULT_PRESET

#: The demo's configuration (packaged with spiralarms).
DEMO_CONFIG = "demo-lite0"


@dataclass
class DemoResult:
    """What the demo produced.

    Attributes
    ----------
    out : Path
        The report folder.
    metrics : dict
        Validation metrics (``metrics.json``).
    wall_seconds : float
        Time for the whole demo.
    """

    out: Path
    metrics: dict
    wall_seconds: float


def run_demo(
    out: str | Path = "spiralarms-demo",
    *,
    n_per_class: int = DEMO_N_PER_CLASS,
    seed: int = 0,
    overrides: tuple[str, ...] = (),
    progress: bool = True,
    log=print,
    preset: str | None = None,
) -> DemoResult:
    """Run the whole chain on synthetic galaxies and write a report folder.

    Parameters
    ----------
    out : path, default "spiralarms-demo"
        Report folder. A rerun with the same galaxies (count, seed, preset) reuses
        them and resumes or reuses the training run found there; with others it
        renders them and trains afresh.
    n_per_class : int, default 250
        Synthetic galaxies per class before the cuts.
    seed : int, default 0
        Seed of the galaxies, the split and the training.
    overrides : tuple of str
        Configuration overrides (``"train.max_epochs=10"``).
    progress : bool, default True
        Progress bars.
    log : callable, default print
        Where step messages go.
    preset : str, optional
        Renderer preset of the synthetic galaxies
        (:data:`spiralarms.data.synthetic.PRESETS`); default :data:`DEMO_PRESET`.

    Returns
    -------
    DemoResult
    """
    start = time.perf_counter()  # the imports (Lightning's alone ~10 s) are part of what a user waits for
    from spiralarms.config import load_config
    from spiralarms.data.synthetic import get_preset

    if n_per_class < 5:
        raise SpiralArmsError(f"--n-per-class {n_per_class}: the demo needs at least 5 galaxies per class")
    preset = get_preset(DEMO_PRESET if preset is None else preset).name
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SpiralArmsError(f"{out}: exists and is not a folder")
    data_dir = out / "galaxies"
    catalog_file = data_dir / "catalog.csv"
    # The configuration (seed, --set overrides) is checked before anything is written or rendered.
    config = load_config(DEMO_CONFIG, overrides=[f"data.catalog={catalog_file}", f"data.seed={seed}", *overrides])
    config.train.progress = progress
    # A second demo into this folder would render over the first's galaxies.
    with hold_output(out, "demo"):
        out.mkdir(parents=True, exist_ok=True)
        return _run_in(out, config, n_per_class, seed, preset, progress, log, start)


def _run_in(out: Path, config, n_per_class: int, seed: int, preset: str, progress: bool, log, start: float) -> DemoResult:
    """The demo's five steps, while ``out`` is held."""
    import matplotlib.pyplot as plt

    from spiralarms.catalog.readers import read_catalog
    from spiralarms.catalog.selection import select_clean_sample
    from spiralarms.data.synthetic import synthesize_dataset, synthetic_set_matches
    from spiralarms.evaluation.evaluate import evaluate_run
    from spiralarms.evaluation.figures import plot_example_grid
    from spiralarms.evaluation.evaluation_report import metrics_markdown
    from spiralarms.training import train

    data_dir = out / "galaxies"
    catalog_file = data_dir / "catalog.csv"

    log(f"[1/5] synthesising {6 * n_per_class} galaxies ({n_per_class} per class, preset {preset}) in {data_dir}")
    t0 = time.perf_counter()
    reused = synthetic_set_matches(catalog_file, n_per_class, seed, preset=preset)
    if reused:
        log("      reusing the galaxies already there")
    else:
        synthesize_dataset(data_dir, n_per_class=n_per_class, seed=seed, progress=progress, preset=preset)
    t_synth = time.perf_counter() - t0

    log("[2/5] applying the paper's clean-sample cuts")
    table = read_catalog(catalog_file)
    selection = select_clean_sample(table, schema="gz2")
    log(f"      {selection.n_selected} of {selection.n_input} selected: "
        + ", ".join(f"m={k}: {v}" for k, v in selection.counts.items()))

    log("[3/5] training the frozen EfficientNet-Lite0 head on cached embeddings")
    t0 = time.perf_counter()
    # New galaxies (another preset, seed or size of set): a fresh run, never a resumed one.
    result = train(config, out / "run", resume=reused)
    t_train = time.perf_counter() - t0

    log("[4/5] evaluating on the validation set")
    metrics = evaluate_run(out / "run", out, progress=progress)
    predictions = pd.read_csv(out / "predictions.csv", dtype={"label": str, "true_label": str, "id": str})
    fig = plot_example_grid(predictions, metrics["classes"], n_per_class=5, crop=config.data.crop, seed=seed)
    save_figure(fig, out / "examples.png", dpi=90)
    plt.close(fig)

    log("[5/5] writing the report")
    wall = time.perf_counter() - start
    _write_report(out, selection, result, metrics, metrics_markdown(metrics), t_synth, t_train, wall, n_per_class, seed,
                  preset)
    log(f"macro F1 on the validation set: {metrics['macro_f1']:.3f} (accuracy {metrics['accuracy']:.3f})")
    log(f"report: {out / 'report.md'} ({wall:.0f} s)")
    return DemoResult(out=out, metrics=metrics, wall_seconds=wall)


def _write_report(out, selection, result, metrics, table_md, t_synth, t_train, wall, n_per_class, seed, preset) -> None:
    summary = result.summary
    counts = " | ".join(f"{v}" for v in selection.counts.values())
    header = " | ".join(f"m={k}" for k in selection.counts)
    lines = [
        "# spiralarms demo report",
        "",
        f"spiralarms {__version__}: the paper's frozen-backbone recipe (Lee, Soo & Sharoni, B0 model) on "
        f"synthetic spiral galaxies, with the offline EfficientNet-Lite0 ImageNet backbone standing in for Zoobot.",
        "",
        f"**Macro F1 on the validation set: {metrics['macro_f1']:.3f}** (accuracy {metrics['accuracy']:.3f}, "
        f"{sum(r['support'] for r in metrics['per_class'].values())} galaxies).",
        "",
        "## Data",
        "",
        f"{6 * n_per_class} synthetic galaxies ({n_per_class} per class, seed {seed}, renderer preset `{preset}`: "
        "see docs/synthetic.md) rendered as 424x424 "
        "GZ2-like cutouts with simulated volunteer votes (`galaxies/`). The paper's clean-sample cuts kept "
        f"{selection.n_selected} ({selection.n_missing} rows had missing values):",
        "",
        f"| {header} |",
        "|" + "--:|" * len(selection.counts),
        f"| {counts} |",
        "",
        "Split 70:30, stratified by class; each class capped at 300 in the training pool.",
        "",
        "## Training",
        "",
        f"Backbone `{result.config.model.backbone}` frozen, head GAP -> dense {result.config.model.hidden} ReLU -> "
        f"dense {len(metrics['classes'])}, Adam at a constant {result.config.train.lr:g}, batch "
        f"{result.config.train.batch_size}, at most {result.config.train.max_epochs} epochs, early stopping after "
        f"{result.config.train.patience} without a gain in validation accuracy. Backbone features were computed once "
        f"per image and per augmented view ({result.config.train.cache_views} views) and the head trained on them.",
        "",
        f"Epochs run: {summary.get('epochs_run', '?')}, best epoch: {summary.get('best_epoch', '?')}. "
        f"Time: synthesis {t_synth:.0f} s, training {t_train:.0f} s, whole demo {wall:.0f} s.",
        "",
        "## Validation metrics",
        "",
        table_md,
        "Confusion matrices: `confusion_counts.png` and `confusion_normalised.png` (rows are true classes).",
        "",
        "![confusion matrix](confusion_normalised.png)",
        "",
        "## Examples",
        "",
        "Five validation galaxies per true class (the 224-pixel centre crop the model sees), titled with the "
        "predicted class and its probability (green: correct, red: wrong).",
        "",
        "![examples](examples.png)",
        "",
        "## Files",
        "",
        "- `metrics.json`: the validation metrics (per class precision, recall, F1, support; accuracy; macro F1; "
        "confusion matrix).",
        "- `predictions.csv`: per validation galaxy, the true label, `p_<class>` and the predicted label.",
        "- `run/`: the training run (resolved `config.yaml`, `checkpoints/best.ckpt`, `history.csv`, `split.csv`).",
        "- `galaxies/`: the synthetic images and their GZ2-schema catalogue.",
        "- `report.html`: this page with its figures inlined, to open in a browser.",
        "",
        "Predict on your own cutouts with `spiralarms predict "
        f"{out / 'run'} FOLDER --out predictions.parquet`.",
        "",
    ]
    from spiralarms.reports.pages import write_report_html

    write_report_html(out, "demo", title="spiralarms demo", markdown="\n".join(lines))
    write_json(
        out / "demo.json",
        {
            "macro_f1": metrics["macro_f1"],
            "accuracy": metrics["accuracy"],
            "n_selected": selection.n_selected,
            "seconds": {"synthesis": t_synth, "training": t_train, "total": wall},
        },
    )
