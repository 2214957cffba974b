"""Benchmark: does the embedding cache change what a frozen-backbone model learns?

With a frozen backbone (the paper's B0) and ``train.embedding_cache=true`` the head
trains on ``train.cache_views`` augmented views per training image, computed once and
reused in turn (epoch ``e`` sees view ``e mod V``), instead of a fresh augmentation
in every epoch. For the first ``V`` epochs both paths see the same inputs; after that
the cached path repeats its pool. This script measures the effect on the validation
macro F1, in one run, on the same synthetic galaxies and the same validation set:

- ``uncached``: the backbone runs on freshly augmented images every epoch (the
  paper's training);
- ``cached V``: for each ``V`` of ``--views`` (default 4 and 8 views; ``--views 4 8 16`` adds 16);

each trained with every seed of ``--seeds`` (initialisation, shuffling and
augmentation; the split is the same for all runs, ``data.split_seed=0``), with the
``demo-lite0`` recipe (frozen ImageNet EfficientNet-Lite0, the paper's head,
optimiser, batch size, crop 224 and down-sampling; early stopping on validation
accuracy, best epoch kept). It prints per mode the mean, sample standard deviation
and range of the macro F1 over the seeds, the mean difference to the uncached runs
of the same seeds with its standard deviation, and the wall time.

The defaults are sized for a 2-core CPU machine (under an hour): 60 synthetic
galaxies per class and at most 30 epochs (the paper: 50), without early stopping
(patience 30); ``--epochs 50`` runs the paper's length.

Run::

    python benchmarks/bench_cache_accuracy.py [--n-per-class 60] [--epochs 30] [--seeds 0 1 2]

``--quick`` is a smoke run: 8 small (96-pixel) galaxies per class, the tiny random-weight
``test_efficientnet`` backbone at crop 64, two epochs, one seed and 2 cached views.

Everything is written under ``--out`` (default: a temporary folder): the synthetic
data, each run folder (``metrics.json``, ``history.csv``) and ``results.csv``.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from spiralarms.config import load_config
from spiralarms.data.synthetic import synthesize_dataset
from spiralarms.training import train
from spiralarms.training.train import load_selection


def run_modes(views: list[int]) -> list[tuple[str, list[str]]]:
    """Each mode's name and its training overrides."""
    modes = [("uncached", ["train.embedding_cache=false"])]
    modes += [(f"cached {v}", ["train.embedding_cache=true", f"train.cache_views={v}"]) for v in views]
    return modes


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, spread and paired difference to ``uncached`` of the macro F1, per mode."""
    base = results[results["mode"] == "uncached"].set_index("seed")["macro_f1"]
    rows = []
    for mode, part in results.groupby("mode", sort=False):
        f1 = part["macro_f1"].to_numpy(float)
        paired = part.set_index("seed")["macro_f1"] - base.reindex(part["seed"]).to_numpy()
        rows.append({
            "mode": mode,
            "runs": len(part),
            "macro_f1_mean": f1.mean(),
            "macro_f1_std": f1.std(ddof=1) if len(f1) > 1 else float("nan"),
            "macro_f1_min": f1.min(),
            "macro_f1_max": f1.max(),
            "diff_to_uncached_mean": float(np.nanmean(paired)),
            "diff_to_uncached_std": float(np.nanstd(paired, ddof=1)) if len(paired) > 1 else float("nan"),
            "accuracy_mean": part["accuracy"].mean(),
            "best_epoch_mean": part["best_epoch"].mean(),
            "wall_seconds_mean": part["wall_seconds"].mean(),
        })
    return pd.DataFrame(rows)


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-per-class", type=int, default=60, help="synthetic galaxies per class, before the cuts")
    parser.add_argument("--epochs", type=int, default=30, help="train.max_epochs (the paper: 50)")
    parser.add_argument("--patience", type=int, default=30, help="train.patience (the paper: 30)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument("--views", type=int, nargs="+", default=[4, 8], help="cached views per image (e.g. 4 8 16)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="also print the summary as one JSON line")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny data, random tiny backbone, 2 epochs")
    args = parser.parse_args(argv)
    size, quick = 424, []
    if args.quick:
        args.n_per_class, args.epochs, args.seeds, args.views, size = 8, 2, args.seeds[:1], [2], 96
        quick = ["model.backbone=test_efficientnet", "model.pretrained=false", "data.crop=64"]
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)

    out = args.out or Path(tempfile.mkdtemp(prefix="bench-cache-accuracy-"))
    started = time.perf_counter()
    # crisp: the preset of the numbers in docs/training.md (sdss is the default since).
    synthesize_dataset(out / "data", n_per_class=args.n_per_class, seed=0, size=size, progress=False, preset="crisp")
    common = [
        f"data.catalog={out / 'data' / 'catalog.csv'}",
        "data.split_seed=0",
        f"train.max_epochs={args.epochs}",
        f"train.patience={args.patience}",
        "train.accelerator=cpu",
        "train.progress=false",
        *quick,
    ]
    table, classes = load_selection(load_config("demo-lite0", common))
    rows = []
    for seed in args.seeds:
        for mode, overrides in run_modes(args.views):
            config = load_config("demo-lite0", [*common, f"data.seed={seed}", *overrides])
            run_dir = out / "runs" / f"{mode.replace(' ', '-')}-seed{seed}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = train(config, run_dir, resume=True, table=table, classes=classes, cache_dir=out / "cache")
            rows.append({
                "mode": mode,
                "seed": seed,
                "macro_f1": result.metrics["macro_f1"],
                "accuracy": result.metrics["accuracy"],
                "best_epoch": result.summary["best_epoch"],
                "epochs_run": result.summary["epochs_run"],
                "wall_seconds": result.summary["wall_seconds"],
                "n_train": sum(result.summary["n_train"].values()),
                "n_val": sum(result.summary["n_val"].values()),
            })
            print(f"{mode:>10} seed {seed}: macro F1 {rows[-1]['macro_f1']:.3f}, accuracy "
                  f"{rows[-1]['accuracy']:.3f}, best epoch {rows[-1]['best_epoch']}, "
                  f"{rows[-1]['wall_seconds']:.0f} s", flush=True)
    results = pd.DataFrame(rows)
    results.to_csv(out / "results.csv", index=False)
    summary = summarise(results)
    summary.to_csv(out / "summary.csv", index=False)

    first = rows[0]
    print(f"\n{len(table)} synthetic galaxies after the cuts ({args.n_per_class} per class rendered): "
          f"{first['n_train']} training, {first['n_val']} validation (one split for every run); "
          f"{args.epochs} epochs at most, patience {args.patience}; seeds {args.seeds}")
    print(f"{'mode':>10} | runs | macro F1 mean ± std  [min, max] | Δ vs uncached (paired) | accuracy | s/run")
    for r in summary.to_dict("records"):
        print(f"{r['mode']:>10} | {r['runs']:4d} | {r['macro_f1_mean']:.3f} ± {r['macro_f1_std']:.3f}  "
              f"[{r['macro_f1_min']:.3f}, {r['macro_f1_max']:.3f}] | "
              f"{r['diff_to_uncached_mean']:+.3f} ± {r['diff_to_uncached_std']:.3f}        | "
              f"{r['accuracy_mean']:.3f}    | {r['wall_seconds_mean']:5.0f}")
    print(f"total {(time.perf_counter() - started) / 60:.1f} min; runs and results.csv in {out}")
    if args.json:
        print(json.dumps(summary.to_dict("records")))
    return summary


if __name__ == "__main__":
    main()
