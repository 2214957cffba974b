"""How much synthetic galaxies look like real SDSS cutouts, and what a synthetic-trained
model says on real ones.

In one run, on the shared real cutouts (``../shared/data/sdss-gz-cutouts``: 1,200 SDSS
Galaxy Zoo JPEGs, ``index.csv`` with ``weak_spiral_flag``) and on synthetic sets of the
``crisp`` (first renderer, the default) and ``sdss`` (fitted to SDSS cutouts) presets:

1. **Statistics side by side** (:mod:`spiralarms.data.synthetic.realism`): size,
   concentration, shape, colour, sky level, noise level and correlation, PSF FWHM,
   neighbours, JPEG quality; 10th / 50th / 90th percentiles of each.
2. **Domain AUC**: a logistic regression (standardised features, L2, C = 1) on the
   pooled features of the frozen ``lite0-imagenet`` backbone (the 224-pixel centre
   crop the models see) tells synthetic from real, 5-fold stratified cross-validated;
   0.5 = indistinguishable. Beside it, the same on the first 2, 5 and 20 principal
   components: coarse probes that show how far the bulk of the two distributions
   has moved when the full probe still separates them. Then the same probes on the
   sky alone (the four 112-pixel corners of each cutout tiled into one image): what
   the background gives away without any galaxy.
3. **The demo model on real cutouts**: ``spiralarms demo --preset sdss`` is run
   (``--demo-preset`` another, ``--demo-run`` reuses a trained one), then ``spiralarms predict`` on the real cutouts: the AUC of
   ``1 - p(?)`` for telling flagged spirals from flagged non-spirals (and the same with
   ``--tta 8``, with a paired bootstrap interval of the gain), the label distribution
   of each, and how often the label survives a 90-degree rotation. Beside it,
   yardsticks: the AUC of the g - r colour alone, the same AUC within colour terciles,
   and a probe fitted on the flags themselves on the demo head's frozen features
   (cross-validated): the most those features carry to the flags.
4. **Galaxies on real sky** (``--no-real-sky`` skips it): half the real cutouts lend
   their sky to the demo's number of galaxies (``spiralarms synth --sky-from``), the
   demo's configuration is trained on them, and it and the demo model are scored on
   the other half: own macro F1, flagged-spiral AUC with a paired bootstrap interval
   of the difference, and the domain AUC against the held-out cutouts.

Run: ``python benchmarks/bench_realism.py`` (with ``--demo-run spiralarms-demo/run``,
which reuses a trained demo: 7.5 minutes on 2 lightly loaded cores, most of it the
predictions, 8 views each with ``--tta 8``, and the backbone's features; about 3
times that on heavily shared cores), ``--quick`` for a smoke run on a handful of
images.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REAL = REPO.parent / "shared" / "data" / "sdss-gz-cutouts"
PRESET_ORDER = ("crisp", "sdss")
PCA_PROBES = (2, 5, 20)


def real_subset(real_dir: Path, n: int, seed: int) -> pd.DataFrame:
    """``n`` real cutouts (all when ``n`` is at least their number), half flagged spirals."""
    index = pd.read_csv(real_dir / "index.csv")
    index["file"] = [str(real_dir / f) for f in index["file"]]
    if n >= len(index):
        return index
    parts = [g.sample(n=min(len(g), n // 2), random_state=seed) for _, g in index.groupby("weak_spiral_flag")]
    return pd.concat(parts).sort_index()


def sky_corners(image):
    """The four 112-pixel corners of a 424-pixel cutout tiled into one square, (3, 224, 224).

    The square that ``synth --sky-from`` puts behind its galaxies
    (:func:`spiralarms.data.synthetic.sky.corner_tile`): mostly sky and field sources.
    """
    import torch

    from spiralarms.data.synthetic.sky import corner_tile

    return torch.as_tensor(corner_tile(np.asarray(image))).permute(2, 0, 1).float()


def backbone_features(files: list[str], batch_size: int | None = None, region: str = "centre") -> np.ndarray:
    """Pooled features of the frozen ``lite0-imagenet`` backbone.

    ``region`` ``"centre"``: the 224-pixel centre crops the models see; ``"sky"``: the
    four 112-pixel corners tiled (:func:`sky_corners`), where the galaxy is absent.
    """
    from spiralarms.data.dataset import GalaxyDataset
    from spiralarms.data.transforms import build_eval_transform
    from spiralarms.models.backbones import build_classifier
    from spiralarms.models.fusion import inference_batch_size
    from spiralarms.training.embedding_cache import embed_dataset

    model = build_classifier("lite0-imagenet", n_classes=6)
    transforms = {"centre": build_eval_transform(224), "sky": sky_corners}
    if region not in transforms:
        raise ValueError(f"region {region!r}: choose 'centre' or 'sky'")
    transform = transforms[region]
    dataset = GalaxyDataset(pd.DataFrame({"file": files}), ("galaxy",), transform=transform, label_column=None)
    batch_size = batch_size or inference_batch_size(False)
    features, _ = embed_dataset(model, dataset, batch_size=batch_size)
    return features.numpy()


def domain_auc(synthetic: np.ndarray, real: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Cross-validated AUC of telling synthetic from real features (full and PCA probes)."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([synthetic, real])
    y = np.r_[np.zeros(len(synthetic)), np.ones(len(real))]
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    out = {}
    probes = {"full": make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))}
    for k in PCA_PROBES:
        if k < min(len(x) * 4 // 5, x.shape[1]):
            probes[f"pca{k}"] = make_pipeline(StandardScaler(), PCA(k, random_state=seed),
                                              LogisticRegression(max_iter=5000))
    for name, probe in probes.items():
        score = cross_val_predict(probe, x, y, cv=folds, method="decision_function")
        out[name] = float(roc_auc_score(y, score))
    return out


def flag_references(features: np.ndarray, colour: np.ndarray, flag: np.ndarray, seed: int = 0) -> dict[str, float]:
    """What else tells the flagged spirals from the flagged non-spirals: yardsticks for the demo.

    ``colour``: the AUC of ``-(g - r)`` alone (spirals are bluer; the sign is the
    physics', not fitted), over the cutouts whose colour was measured. ``flag_probe``:
    a logistic regression fitted on the flags themselves, on the same frozen
    ``lite0-imagenet`` features the demo's head sees, its strength chosen by an inner
    3-fold search and scored 5-fold cross-validated: what those features can carry to
    the flags when the flags are the training labels.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    measured = np.isfinite(colour)
    probe = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
                         {"logisticregression__C": np.logspace(-4, 0, 9)}, cv=3, scoring="roc_auc")
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    score = cross_val_predict(probe, features, flag, cv=folds, method="decision_function")
    return {"colour": float(roc_auc_score(flag[measured], -colour[measured])),
            "flag_probe": float(roc_auc_score(flag, score))}


def auc_at_fixed_colour(flag: np.ndarray, score: np.ndarray, colour: np.ndarray) -> float:
    """Mean AUC of ``score`` within the three g - r terciles: what it sees beyond colour."""
    from sklearn.metrics import roc_auc_score

    measured = np.isfinite(colour)
    flag, score, colour = flag[measured], score[measured], colour[measured]
    tercile = np.searchsorted(np.quantile(colour, [1 / 3, 2 / 3]), colour)
    aucs = [roc_auc_score(flag[tercile == k], score[tercile == k]) for k in range(3)
            if len(set(flag[tercile == k])) == 2]
    return float(np.mean(aucs)) if aucs else float("nan")


def statistics_table(stats: dict[str, pd.DataFrame]) -> str:
    """Markdown table of the 10th / 50th / 90th percentiles of every statistic, set by set."""
    from spiralarms.data.synthetic.realism import STATISTICS

    names = [*STATISTICS, "jpeg_quality"]
    header = "| statistic | " + " | ".join(stats) + " |"
    lines = [header, "|---|" + "---:|" * len(stats)]
    for name in names:
        cells = []
        for table in stats.values():
            values = table[name].dropna()
            cells.append("/".join(f"{v:.2f}" for v in np.percentile(values, [10, 50, 90])) if len(values) else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cli(*args: str) -> None:
    """Run a spiralarms command in a subprocess with this checkout's sources first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), *filter(None, [env.get("PYTHONPATH")])])
    subprocess.run([sys.executable, "-m", "spiralarms", *args], check=True, env=env)


def predict(run: Path, files: list[str], work: Path, name: str, *options: str) -> pd.DataFrame:
    """``spiralarms predict RUN catalogue --out [options]`` on ``files``; rows in input order."""
    catalogue = work / f"{name}.csv"
    pd.DataFrame({"id": [Path(f).stem for f in files], "file": files}).to_csv(catalogue, index=False)
    out = work / f"{name}-predictions.parquet"
    cli("predict", str(run), str(catalogue), "--out", str(out), "--no-resume", *options)
    table = pd.read_parquet(out)
    if table["error"].fillna("").astype(bool).any():
        bad = table[table["error"].fillna("").astype(bool)].iloc[0]
        raise RuntimeError(f"prediction failed for {bad['file']}: {bad['error']}")
    return table


def rotated_copies(files: list[str], folder: Path) -> list[str]:
    """The decoded cutouts turned by 90 degrees, written losslessly (PNG)."""
    from PIL import Image

    from spiralarms.data.images import load_image_uint8

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for file in files:
        target = folder / (Path(file).stem + ".png")
        Image.fromarray(np.ascontiguousarray(np.rot90(load_image_uint8(file)))).save(target)
        out.append(str(target))
    return out


def auc_gain_interval(flag: np.ndarray, before: np.ndarray, after: np.ndarray, seed: int) -> list[float]:
    """Paired bootstrap 95 % interval of AUC(after) - AUC(before): both score the same cutouts."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(1000):
        pick = rng.integers(0, len(flag), len(flag))
        if flag[pick].min() != flag[pick].max():
            gains.append(roc_auc_score(flag[pick], after[pick]) - roc_auc_score(flag[pick], before[pick]))
    return [float(v) for v in np.percentile(gains, [2.5, 97.5])]


def demo_signals(run: Path, real: pd.DataFrame, work: Path, n_rotation: int, seed: int,
                 colour: np.ndarray | None = None) -> dict:
    """What the demo model says on the real cutouts: flagged-spiral AUC, labels, rotation.

    With ``colour`` (each cutout's g - r), also the AUC within colour terciles.
    """
    from sklearn.metrics import roc_auc_score

    predictions = predict(run, list(real["file"]), work, "real")
    flag = real["weak_spiral_flag"].to_numpy()
    p_cant_tell = predictions["p_?"].to_numpy()
    classes = [c[2:] for c in predictions.columns if c.startswith("p_")]
    labels = predictions["label"].astype(str)
    distribution = {
        name: {c: float((labels[flag == value] == c).mean()) for c in classes}
        for name, value in (("flagged spirals", 1), ("flagged non-spirals", 0))
    }
    # Test-time augmentation (the mean over the 8 rotations and flips), and the gain in
    # AUC with a paired bootstrap interval: both scores are of the same cutouts.
    tta = predict(run, list(real["file"]), work, "real-tta", "--tta", "8")
    p_cant_tell_tta = tta["p_?"].to_numpy()
    chosen = real.sample(n=min(n_rotation, len(real)), random_state=seed).index
    rotated = predict(run, rotated_copies(list(real.loc[chosen, "file"]), work / "rotated"), work, "rotated")
    original = predictions.set_index(real.index).loc[chosen, "label"].astype(str).to_numpy()
    return {
        "flagged_spiral_auc": float(roc_auc_score(flag, 1.0 - p_cant_tell)),
        "flagged_spiral_auc_tta8": float(roc_auc_score(flag, 1.0 - p_cant_tell_tta)),
        "tta8_gain_interval": auc_gain_interval(flag, 1.0 - p_cant_tell, 1.0 - p_cant_tell_tta, seed),
        "labels": distribution,
        "rotation_agreement": float((rotated["label"].astype(str).to_numpy() == original).mean()),
        "n_real": int(len(real)),
        "n_rotation": int(len(chosen)),
        "flagged_spiral_auc_at_fixed_colour": (None if colour is None else
                                               auc_at_fixed_colour(flag, 1.0 - p_cant_tell, colour)),
    }


def real_sky_signals(real: pd.DataFrame, features_real: np.ndarray, demo_run: Path, work: Path, n_per_class: int,
                     n_probe: int, overrides: tuple[str, ...], seed: int) -> dict:
    """Galaxies on the sky of half the real cutouts (``synth --sky-from``) against the demo.

    Half the flagged spirals and half the non-spirals lend their sky; the demo's
    configuration is trained on ``6 * n_per_class`` galaxies drawn on it, and it and
    the demo model are scored on the other half, which neither has seen: the
    flagged-spiral AUC of each with a paired bootstrap interval of the difference, and
    the domain AUC of ``6 * n_probe`` of the galaxies against the held-out cutouts.
    """
    from sklearn.metrics import roc_auc_score

    from spiralarms.config import load_config
    from spiralarms.data.synthetic import synthesize_dataset
    from spiralarms.demo import DEMO_CONFIG
    from spiralarms.evaluation.evaluate import evaluate_run
    from spiralarms.training import train

    donors = real.groupby("weak_spiral_flag", group_keys=False).sample(frac=0.5, random_state=seed)
    held = ~real.index.isin(donors.index)
    folder = work / "sky-donors"
    folder.mkdir(parents=True, exist_ok=True)
    for file in donors["file"]:
        link = folder / Path(file).name
        if not link.exists():
            link.symlink_to(Path(file).resolve())
    catalogue = synthesize_dataset(work / "real-sky" / "galaxies", n_per_class, seed=seed, sky_from=folder,
                                   progress=False)
    config = load_config(DEMO_CONFIG, overrides=[f"data.catalog={work / 'real-sky' / 'galaxies' / 'catalog.csv'}",
                                                 f"data.seed={seed}", *overrides])
    config.train.progress = False
    train(config, work / "real-sky" / "run", resume=False)
    own_f1 = {"demo": evaluate_run(demo_run, work / "demo-eval", progress=False)["macro_f1"],
              "real sky": evaluate_run(work / "real-sky" / "run", work / "real-sky", progress=False)["macro_f1"]}
    files = list(real.loc[held, "file"])
    flag = real.loc[held, "weak_spiral_flag"].to_numpy()
    scores, counted = {}, {}
    for name, run in (("demo", demo_run), ("real sky", work / "real-sky" / "run")):
        table = predict(run, files, work, "heldout-" + name.replace(" ", "-"))
        scores[name] = 1.0 - table["p_?"].to_numpy()
        labels = table["label"].astype(str).to_numpy()
        counted[name] = {"flagged spirals": float((labels[flag == 1] != "?").mean()),
                         "flagged non-spirals": float((labels[flag == 0] != "?").mean())}
    probe = [str(work / "real-sky" / "galaxies" / f) for f in catalogue["file"][: 6 * n_probe]]
    return {
        "n_donors": int(len(donors)), "n_held_out": int(held.sum()),
        "own_macro_f1": own_f1,
        "flagged_spiral_auc": {name: float(roc_auc_score(flag, v)) for name, v in scores.items()},
        "gain_interval": auc_gain_interval(flag, scores["demo"], scores["real sky"], seed),
        "arm_count_given": counted,
        "domain_auc": domain_auc(backbone_features(probe), features_real[held], seed),
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print its tables and numbers; returns them as a dict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=DEFAULT_REAL, help="folder of the real cutouts and index.csv")
    parser.add_argument("--n-real", type=int, default=1200, help="real cutouts used (default: all 1200)")
    parser.add_argument("--n-per-class", type=int, default=50, help="synthetic galaxies per class and preset (default 50)")
    parser.add_argument("--demo-run", type=Path, help="a trained demo run folder to reuse (default: run the demo)")
    parser.add_argument("--demo-n-per-class", type=int, help="galaxies per class of the demo it runs (default: the demo's)")
    parser.add_argument("--demo-preset", default="sdss", choices=PRESET_ORDER,
                        help="renderer preset of the demo it runs (default sdss)")
    parser.add_argument("--n-rotation", type=int, default=300, help="real cutouts predicted again rotated (default 300)")
    parser.add_argument("--figure", type=Path, help="also write a figure of real and synthetic cutouts side by side")
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON")
    parser.add_argument("--out", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-real-sky", action="store_true",
                        help="skip the galaxies drawn on real sky (synth --sky-from; about 4 minutes)")
    parser.add_argument("--quick", action="store_true", help="a smoke run on a handful of images")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_real, args.n_per_class, args.n_rotation = min(args.n_real, 24), min(args.n_per_class, 4), min(args.n_rotation, 6)
    if not (args.real / "index.csv").is_file():
        parser.error(f"{args.real}: no index.csv of real cutouts there (give --real)")
    if args.n_real < 10 or args.n_per_class < 2:
        parser.error("--n-real must be >= 10 and --n-per-class >= 2")

    from spiralarms.data.synthetic import DEFAULT_PRESET, synthesize_dataset
    from spiralarms.data.synthetic.realism import cutout_statistics

    work_context = tempfile.TemporaryDirectory(prefix="bench-realism-") if args.out is None else None
    work = Path(work_context.name) if work_context else args.out
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = time.perf_counter()

    real = real_subset(args.real, args.n_real, args.seed)
    files = {"real": list(real["file"])}
    for preset in PRESET_ORDER:
        catalogue = synthesize_dataset(work / preset, args.n_per_class, seed=args.seed, preset=preset, progress=False)
        files[preset] = [str(work / preset / f) for f in catalogue["file"]]
    timings["synthesis"] = time.perf_counter() - start

    t0 = time.perf_counter()
    stats = {name: cutout_statistics(f) for name, f in files.items()}
    flagged = real["weak_spiral_flag"].to_numpy() == 1
    table = {"real": stats["real"], "real spirals": stats["real"][flagged], "real non-spirals": stats["real"][~flagged]}
    table.update({f"synthetic {p}": stats[p] for p in PRESET_ORDER})
    timings["statistics"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    features = {name: backbone_features(f) for name, f in files.items()}
    aucs = {preset: domain_auc(features[preset], features["real"], args.seed) for preset in PRESET_ORDER}
    # Where the difference lies: the same probe on the sky alone (the four corners).
    sky = {name: backbone_features(f, region="sky") for name, f in files.items()}
    sky_aucs = {preset: domain_auc(sky[preset], sky["real"], args.seed) for preset in PRESET_ORDER}
    timings["domain AUC"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    run = args.demo_run
    from spiralarms.demo import DEMO_N_PER_CLASS, run_demo
    from spiralarms.runtime import lightning_banners_off

    lightning_banners_off()  # as the command line does: no "GPU available" lines or tips
    n_demo = args.demo_n_per_class or (8 if args.quick else DEMO_N_PER_CLASS)
    overrides = ("train.max_epochs=2", "train.cache_views=1") if args.quick else ()
    if run is None:
        run_demo(work / "demo", n_per_class=n_demo, seed=args.seed, overrides=overrides, progress=False,
                 log=lambda *_: None, preset=args.demo_preset)
        run = work / "demo" / "run"
    timings["demo"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    colour = stats["real"]["g_r"].to_numpy(dtype=float)
    signals = demo_signals(run, real, work, args.n_rotation, args.seed, colour)
    references = flag_references(features["real"], colour, real["weak_spiral_flag"].to_numpy(), args.seed)
    timings["predictions"] = time.perf_counter() - t0
    real_sky = None
    if not args.no_real_sky:
        t0 = time.perf_counter()
        real_sky = real_sky_signals(real, features["real"], run, work, n_demo, args.n_per_class, overrides, args.seed)
        timings["real sky"] = time.perf_counter() - t0

    print(f"realism of synthetic galaxies: {len(real)} real cutouts ({args.real}), "
          f"{6 * args.n_per_class} synthetic per preset, seed {args.seed}")
    print()
    print("statistics, 10th/50th/90th percentiles (docs/synthetic.md explains each):")
    print(statistics_table(table))
    print()
    print("domain AUC, synthetic vs real (frozen lite0-imagenet features, 5-fold CV; 0.5 = indistinguishable):")
    for preset in PRESET_ORDER:
        coarse = ", ".join(f"{k} {v:.3f}" for k, v in aucs[preset].items() if k != "full")
        print(f"  {preset:6s}: {aucs[preset]['full']:.3f}   (coarse probes: {coarse})")
    print("  the same on the sky alone (the four 112-pixel corners tiled, no central galaxy):")
    for preset in PRESET_ORDER:
        coarse = ", ".join(f"{k} {v:.3f}" for k, v in sky_aucs[preset].items() if k != "full")
        print(f"  {preset:6s}: {sky_aucs[preset]['full']:.3f}   (coarse probes: {coarse})")
    print()
    print(f"demo model ({run}) on the real cutouts:")
    print(f"  AUC of 1 - p(?), flagged spirals vs non-spirals: {signals['flagged_spiral_auc']:.3f}")
    low, high = signals["tta8_gain_interval"]
    print(f"  the same with --tta 8 (mean of the 8 rotations and flips): {signals['flagged_spiral_auc_tta8']:.3f} "
          f"(gain {signals['flagged_spiral_auc_tta8'] - signals['flagged_spiral_auc']:+.3f}, "
          f"paired bootstrap 95 % interval {low:+.3f} to {high:+.3f})")
    print(f"  the same within g - r terciles (mean of 3; what it sees beyond colour): "
          f"{signals['flagged_spiral_auc_at_fixed_colour']:.3f}")
    print(f"  yardsticks: g - r colour alone {references['colour']:.3f}; a probe fitted on the flags themselves "
          f"(frozen features, 5-fold CV) {references['flag_probe']:.3f}")
    for name, dist in signals["labels"].items():
        print(f"  labels of {name:19s}: " + ", ".join(f"{c}: {v:.2f}" for c, v in dist.items()))
    print(f"  label unchanged by a 90-degree rotation: {signals['rotation_agreement']:.3f} "
          f"({signals['n_rotation']} cutouts)")
    if real_sky is not None:
        print()
        print(f"galaxies on real sky (synth --sky-from the sky of {real_sky['n_donors']} real cutouts, "
              f"the demo's recipe), scored on the other {real_sky['n_held_out']}:")
        f1, auc = real_sky["own_macro_f1"], real_sky["flagged_spiral_auc"]
        print(f"  own macro F1 (synthetic validation set): demo {f1['demo']:.3f}, on real sky {f1['real sky']:.3f}")
        low, high = real_sky["gain_interval"]
        print(f"  AUC of 1 - p(?) on the held-out cutouts: demo {auc['demo']:.3f}, on real sky {auc['real sky']:.3f} "
              f"(gain {auc['real sky'] - auc['demo']:+.3f}, paired bootstrap 95 % interval {low:+.3f} to {high:+.3f})")
        for name, given in real_sky["arm_count_given"].items():
            print(f"  arm count given ({name}): " + ", ".join(f"{k} {v:.2f}" for k, v in given.items()))
        coarse = ", ".join(f"{k} {v:.3f}" for k, v in real_sky["domain_auc"].items() if k != "full")
        print(f"  domain AUC, on real sky vs the held-out cutouts: {real_sky['domain_auc']['full']:.3f}   "
              f"(coarse probes: {coarse})")
    print()
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()) +
          f"; total {time.perf_counter() - start:.0f}")

    result = {"domain_auc": aucs, "sky_domain_auc": sky_aucs, "demo": signals, "flag_references": references,
              "real_sky": real_sky,
              "seconds": timings,
              "default_preset": DEFAULT_PRESET,
              "statistics": {name: t.drop(columns="file").median().to_dict() for name, t in table.items()}}
    if args.figure:
        write_figure(args.figure, files, args.seed)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if work_context:
        work_context.cleanup()
    return result


def write_figure(path: Path, files: dict[str, list[str]], seed: int, n: int = 6) -> None:
    """Rows of real and synthetic cutouts (their 224-pixel centre crops), as a small JPEG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spiralarms.data.images import load_image_uint8
    from spiralarms.data.transforms import center_crop

    rows = [("real SDSS", files["real"]), ("synthetic sdss", files["sdss"]), ("synthetic crisp", files["crisp"])]
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.6 * n, 1.85 * len(rows)))
    for r, (title, chosen) in enumerate(rows):
        picks = rng.choice(len(chosen), size=min(n, len(chosen)), replace=False)
        for c in range(n):
            ax = axes[r, c]
            ax.set_axis_off()
            if c < len(picks):
                ax.imshow(center_crop(load_image_uint8(chosen[picks[c]]), 224))
        axes[r, 0].set_title(title, loc="left", fontsize=9, pad=3)
    fig.tight_layout(pad=0.3, h_pad=0.8)
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="jpeg", dpi=100, pil_kwargs={"quality": 85})
    plt.close(fig)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
