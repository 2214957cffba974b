"""Explain a trained run: feature maps, galleries, raw maps and faithfulness, into one folder.

Output folder (default ``RUN/explain``, ``RUN/explain-images`` for given images)::

    OUT/
      explain.json                 settings, layers, galleries, faithfulness, notes
      galaxies.csv                 one row per explained galaxy: roles, prediction, scores
      gallery_correct.png          Figure 9: most confident correct galaxies per class
      gallery_wrong.png            Figure 10: most confident wrong galaxies per class
      images.png                   with --images: each image, its Grad-CAM++ and SmoothGrad
      feature_maps/<id>.png        Figure 8: lower, middle and upper conv layers
      deletion_curves.png          mean deletion curves, Grad-CAM++ / SmoothGrad / random
      deletion_curves.npz          the curves (fraction; probabilities per galaxy and order)
      maps/<id>_gradcampp.npy      (H, W) float32 in [0, 1]
      maps/<id>_smoothgrad.npy     (H, W) float32 in [0, 1]
      maps/<id>_feature_maps.npz   one (C, h, w) array per layer, keyed by layer name

Maps explain the predicted class. Galaxies are the run's validation galaxies
(``val_predictions.csv``, or predicted from ``split.csv``), or the given image files.
"""

from __future__ import annotations

import math
import numbers
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from spiralarms.errors import SpiralArmsError
from spiralarms.explain.faithfulness import (
    BLUR_FRACTION,
    DELETION_BASELINES,
    deletion_curve,
    mask_energy_fraction,
)
from spiralarms.explain.figures import GalleryPanel, GalleryRow, plot_deletion_curves, plot_feature_maps, plot_gallery
from spiralarms.explain.galleries import GALLERY_KINDS, load_images, select_gallery, validation_predictions
from spiralarms.explain.layers import LAYER_ROLES, feature_layers, last_conv_stage, model_device
from spiralarms.explain.maps import feature_maps, gradcam_pp, smoothgrad
from spiralarms.io import tables
from spiralarms.io.atomic import save_array, save_figure, write_json
from spiralarms.io.run_folder import RunFolder
from spiralarms._words import counted

__all__ = ["explain_run", "run_masks", "MAP_NAMES"]

#: The two heat maps, as named in files and in explain.json.
MAP_NAMES: tuple[str, ...] = ("gradcampp", "smoothgrad")

#: Columns of a synthetic catalogue from which a galaxy's masks can be rendered again.
_RENDER_COLUMNS: tuple[str, ...] = ("dr7objid", "seed", "galaxy_seed", "image_size")


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise SpiralArmsError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _torch_device(device: str | None) -> torch.device:
    """The requested device, or CUDA when available, checked to exist."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise SpiralArmsError(f"device {device!r}: not a torch device (cpu, cuda, cuda:1, ...)") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise SpiralArmsError(f"device {device!r}: no CUDA GPU is available")
    return chosen


def _catalog_of(run_dir: Path) -> Path | None:
    """The catalogue named in the run's config.yaml (data.catalog), if any."""
    from spiralarms.config import load_config

    config = RunFolder(run_dir).config
    if not config.is_file():
        return None
    try:
        catalog = load_config(config).data.catalog
    except SpiralArmsError:  # an unreadable config only skips the mask measures
        return None
    return Path(catalog) if catalog else None


def _read_small_table(path: Path) -> pd.DataFrame | None:
    """The table at ``path``, or None where it is missing or unreadable."""
    try:
        return tables.read_table(path)
    except SpiralArmsError:
        return None


def run_masks(
    run_dir: str | os.PathLike,
    ids: Sequence[str],
    files: Sequence[str],
    crop: int | None,
) -> tuple[dict[str, dict[str, np.ndarray]], str | None, str]:
    """Galaxy and arm masks of a run's synthetic galaxies, cropped like the images.

    Masks come from ``<catalogue folder>/masks/<id>.npz`` (``spiralarms synth
    --masks``) or, failing that, are rendered again from the catalogue's rendering
    columns (``seed``, ``galaxy_seed``, ``image_size``) with
    :func:`~spiralarms.data.synthetic.make_galaxy`. Real galaxies have none.

    Parameters
    ----------
    run_dir : path
        Run folder (its ``config.yaml`` names the catalogue).
    ids, files : sequence of str
        Galaxy ids and their image files (a mask must have the image's size).
    crop : int or None
        The run's centre crop, applied to the masks exactly as to the images.

    Returns
    -------
    masks : dict
        ``{id: {"galaxy": bool (crop, crop), "arms": bool (crop, crop)}}`` for the
        galaxies that have masks.
    source : str or None
        ``"files"``, ``"rendered"``, ``"files+rendered"`` or ``None``.
    note : str
        What was found, or why mask measures are skipped.
    """
    from PIL import Image

    from spiralarms.data.synthetic import SYNTHETIC_ID_BASE, make_galaxy
    from spiralarms.data.transforms import center_crop

    run_dir = Path(run_dir)
    catalog = _catalog_of(run_dir)
    if catalog is None:
        return {}, None, "no catalogue named in config.yaml: mask measures skipped"
    mask_dir = catalog.parent / "masks"
    table = None
    masks: dict[str, dict[str, np.ndarray]] = {}
    sources: set[str] = set()
    mismatched = 0
    for galaxy, file in zip(ids, files, strict=True):
        found = None
        path = mask_dir / f"{galaxy}.npz"
        if path.is_file():
            with np.load(path) as data:
                if "galaxy" in data and "arms" in data:
                    found, how = {"galaxy": data["galaxy"].astype(bool), "arms": data["arms"].astype(bool)}, "files"
        if found is None:
            if table is None:
                table = _read_small_table(catalog) if catalog.is_file() else None
                if table is not None and all(c in table.columns for c in _RENDER_COLUMNS):
                    table = table.assign(_id=table["dr7objid"].astype(str)).drop_duplicates("_id").set_index("_id")
                else:
                    table = pd.DataFrame()
            if galaxy in table.index:
                row = table.loc[galaxy]
                index = int(row["dr7objid"]) - SYNTHETIC_ID_BASE
                # Catalogues older than the preset column were all drawn by crisp.
                preset = str(row["preset"]) if "preset" in row.index and pd.notna(row["preset"]) else "crisp"
                params, _, rendered, _ = make_galaxy(index, seed=int(row["seed"]), size=int(row["image_size"]),
                                                     preset=preset)
                if index >= 0 and params.seed == int(row["galaxy_seed"]):  # the same galaxy, not a lookalike id
                    found, how = rendered.as_dict(), "rendered"
        if found is None:
            continue
        with Image.open(file) as image:
            width, height = image.size
        if found["galaxy"].shape != (height, width):
            mismatched += 1
            continue
        masks[galaxy] = {k: np.asarray(center_crop(v, crop) if crop else v, dtype=bool) for k, v in found.items()}
        sources.add(how)
    if not masks:
        why = f" ({mismatched} of a different size than their image)" if mismatched else ""
        return (
            {},
            None,
            f"no galaxy or arm masks for these galaxies{why}: real galaxies have none; mask measures skipped",
        )
    source = "+".join(s for s in ("files", "rendered") if s in sources)
    note = f"masks for {len(masks)} of {counted(len(ids), 'galaxy', 'galaxies')} ({source})"
    if mismatched:
        note += f"; {mismatched} skipped (mask size differs from image)"
    return masks, source, note


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _summary(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": int(len(frame))}
    for column in columns:
        values = frame[column].to_numpy(dtype=np.float64) if column in frame else np.array([])
        values = values[np.isfinite(values)]
        out[column] = _finite(values.mean()) if len(values) else None
    return out


def _unique_ids(files: Sequence[Path]) -> list[str]:
    ids, seen = [], {}
    for file in files:
        stem = Path(file).stem
        seen[stem] = seen.get(stem, 0) + 1
        ids.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return ids


def _save_figure(fig, path: Path, outputs: list[str], out: Path) -> None:
    save_figure(fig, path, dpi=110)
    outputs.append(str(path.relative_to(out)))


@dataclass
class _Galaxies:
    """The galaxies to explain, their pixels, predictions and maps."""

    table: pd.DataFrame  # id, file, label (None for given images), pred, prob, roles
    roles: dict[str, set[str]]
    pixels: torch.Tensor | None = None
    targets: np.ndarray | None = None
    cams: np.ndarray | None = None
    grads: np.ndarray | None = None

    @property
    def ids(self) -> list[str]:
        return self.table["id"].tolist()

    def having(self, *roles: str) -> list[int]:
        """Positions of the galaxies with any of these roles."""
        return [i for i, g in enumerate(self.ids) if self.roles[g] & set(roles)]


def _choose_validation_galaxies(
    predictions: pd.DataFrame, classes: Sequence[str], n_per_class: int, n_faithful: int, seed: int
) -> tuple[_Galaxies, dict[str, dict[str, pd.DataFrame]]]:
    """Gallery galaxies, one Figure 8 galaxy per class, and a seeded faithfulness sample."""
    roles: dict[str, set[str]] = {}
    galleries = {kind: select_gallery(predictions, classes, n_per_class, kind) for kind in GALLERY_KINDS}
    for kind, rows in galleries.items():
        for frame in rows.values():
            for galaxy in frame["id"]:
                roles.setdefault(str(galaxy), set()).add(f"gallery_{kind}")
    labels = predictions["label"].astype(str)
    for c in classes:  # Figure 8: the most confident correct galaxy of each class
        pool = galleries["correct"][c] if len(galleries["correct"][c]) else predictions[labels == c]
        if len(pool):
            roles.setdefault(str(pool["id"].iloc[0]), set()).add("feature_maps")
    rng = np.random.default_rng(seed)
    for c in classes if n_faithful else ():
        members = predictions[labels == c].sort_values("id", kind="stable")
        for galaxy in members["id"].iloc[np.sort(rng.permutation(len(members))[:n_faithful])]:
            roles.setdefault(str(galaxy), set()).add("faithfulness")
    ordered = [g for g in predictions["id"].astype(str) if g in roles]
    table = predictions.set_index(predictions["id"].astype(str)).loc[ordered].reset_index(drop=True)
    table["id"] = ordered
    return _Galaxies(table, roles), galleries


def _given_images(images: Sequence[str | os.PathLike]) -> _Galaxies:
    files = [Path(f) for f in images]
    if not files:
        raise SpiralArmsError("--images: give at least one image file")
    folder = next((f for f in files if f.is_dir()), None)
    if folder is not None:
        raise SpiralArmsError(f"{folder}: is a folder; give image files, e.g. --images {folder}/*.jpg")
    ids = _unique_ids(files)
    table = pd.DataFrame({"id": ids, "file": [str(f) for f in files], "label": None})
    return _Galaxies(table, {g: {"image", "feature_maps", "deletion"} for g in ids})


def _compute_maps(
    module,
    galaxies: _Galaxies,
    classes: Sequence[str],
    crop,
    grey: bool,
    layer: str | None,
    noise: float,
    samples: int,
    seed: int,
    batch_size: int,
    out: Path,
) -> None:
    """Read the pixels, predict, and compute and save both heat maps of every galaxy."""
    from spiralarms.predictions.inference import predict_arrays

    table = galaxies.table
    pixels = load_images(table["file"].tolist(), crop, grey)
    probs = predict_arrays(module, pixels, batch_size=batch_size)
    model = module.model
    if "pred" in table:
        # Explain the prediction that the galleries show (val_predictions.csv).
        targets = np.array([list(classes).index(str(p)) for p in table["pred"]], dtype=np.int64)
    else:
        targets = probs.argmax(axis=1)
        table["pred"] = [classes[t] for t in targets]
    table["prob"] = probs[np.arange(len(table)), targets]
    table["roles"] = [";".join(sorted(galaxies.roles[g])) for g in galaxies.ids]
    galaxies.pixels, galaxies.targets = pixels, targets
    galaxies.cams = gradcam_pp(model, pixels, target=targets, layer=layer, batch_size=batch_size)
    # One image at a time with its own seed: a galaxy's map does not depend on the others.
    galaxies.grads = np.concatenate(
        [
            smoothgrad(model, pixels[i : i + 1], target=targets[i : i + 1], noise=noise, samples=samples, seed=seed + i)
            for i in range(len(pixels))
        ]
    )
    for i, galaxy in enumerate(galaxies.ids):
        save_array(out / "maps" / f"{galaxy}_gradcampp.npy", galaxies.cams[i])
        save_array(out / "maps" / f"{galaxy}_smoothgrad.npy", galaxies.grads[i])


def _write_feature_maps(
    model, galaxies: _Galaxies, layers: dict[str, str], channels: int, out: Path, outputs: list[str]
) -> None:
    """Figure 8 for each chosen galaxy, with the raw activations."""
    table = galaxies.table
    for i in galaxies.having("feature_maps"):
        galaxy = galaxies.ids[i]
        fmaps = feature_maps(model, galaxies.pixels[i], list(layers.values()))
        save_array(out / "maps" / f"{galaxy}_feature_maps.npz", **fmaps)
        outputs.append(f"maps/{galaxy}_feature_maps.npz")
        rows = {f"{role}\n{name}": fmaps[name] for role, name in layers.items()}
        truth = table["label"].iloc[i]
        caption = f"{galaxy}: " + (f"true m={truth}, " if truth is not None else "")
        caption += f"predicted m={table['pred'].iloc[i]} ({table['prob'].iloc[i]:.2f})"
        fig = plot_feature_maps(galaxies.pixels[i], rows, channels=channels, title=caption)
        _save_figure(fig, out / "feature_maps" / f"{galaxy}.png", outputs, out)


def _panel(galaxies: _Galaxies, i: int, label, pred: str, prob: float) -> GalleryPanel:
    return GalleryPanel(
        galaxies.ids[i], galaxies.pixels[i], galaxies.cams[i], galaxies.grads[i], label, pred, float(prob)
    )


def _write_galleries(
    galaxies: _Galaxies,
    galleries: dict[str, dict[str, pd.DataFrame]],
    classes: Sequence[str],
    backbone: str,
    out: Path,
    outputs: list[str],
    notes: list[str],
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Figures 9 and 10; what they show, for explain.json."""
    position = {g: i for i, g in enumerate(galaxies.ids)}
    titles = {"correct": "most confident correct predictions", "wrong": "most confident wrong predictions"}
    shown: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for kind in GALLERY_KINDS:
        rows, shown[kind] = [], {}
        for c in classes:
            chosen = list(galleries[kind][c].itertuples())
            panels = [_panel(galaxies, position[str(r.id)], str(r.label), str(r.pred), r.prob) for r in chosen]
            rows.append(GalleryRow(f"m={c}", panels, f"no {kind} predictions for m={c}"))
            shown[kind][c] = [
                {"id": str(r.id), "label": str(r.label), "pred": str(r.pred), "prob": float(r.prob)} for r in chosen
            ]
            if not panels:
                notes.append(f"gallery_{kind}: no {kind} predictions for m={c}")
        _save_figure(
            plot_gallery(rows, title=f"{titles[kind]} ({backbone})"), out / f"gallery_{kind}.png", outputs, out
        )
    return shown


def _faithfulness(
    model,
    galaxies: _Galaxies,
    masks: dict[str, dict[str, np.ndarray]],
    classes: Sequence[str] | None,
    steps: int,
    baseline: str,
    seed: int,
    batch_size: int,
    out: Path,
    outputs: list[str],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Mask energy fractions and deletion curves; per-galaxy scores and their summary."""
    records, curves, fraction = [], {name: [] for name in (*MAP_NAMES, "random")}, None
    chosen = galaxies.having("faithfulness", "deletion")
    for k, i in enumerate(chosen):
        galaxy = galaxies.ids[i]
        record: dict[str, Any] = {"id": galaxy, "label": galaxies.table["label"].iloc[i]}
        for region, mask in masks.get(galaxy, {}).items():
            record[f"{region}_coverage"] = float(mask.mean())
            record[f"gradcampp_{region}"] = mask_energy_fraction(galaxies.cams[i], mask)
            record[f"smoothgrad_{region}"] = mask_energy_fraction(galaxies.grads[i], mask)
        for name, saliency in (("gradcampp", galaxies.cams[i]), ("smoothgrad", galaxies.grads[i]), ("random", None)):
            curve = deletion_curve(
                model,
                galaxies.pixels[i],
                saliency,
                target=int(galaxies.targets[i]),
                steps=steps,
                baseline=baseline,
                seed=seed + k,
                batch_size=max(batch_size, steps + 1),
            )
            record[f"auc_{name}"] = curve.auc
            curves[name].append(curve.probability)
            fraction = curve.fraction
        records.append(record)
    scores = pd.DataFrame(records)
    per_class = {c: scores[scores["label"].astype(str) == c] for c in classes or ()}
    summary: dict[str, Any] = {}
    if masks:
        columns = [f"{m}_{r}" for m in MAP_NAMES for r in ("galaxy", "arms")] + ["galaxy_coverage", "arms_coverage"]
        masked = scores.dropna(subset=["galaxy_coverage"])
        summary["mask_energy"] = {
            "overall": _summary(masked, columns),
            "per_class": {c: _summary(f.dropna(subset=["galaxy_coverage"]), columns) for c, f in per_class.items()},
        }
    columns = [f"auc_{n}" for n in (*MAP_NAMES, "random")]
    summary["deletion"] = {
        "steps": steps,
        "baseline": baseline,
        "blur_sigma_px": BLUR_FRACTION * max(galaxies.pixels.shape[-2:]) if baseline == "blur" else None,
        "overall": _summary(scores, columns),
        "per_class": {c: _summary(f, columns) for c, f in per_class.items()},
    }
    stacked = {name: np.stack(v) for name, v in curves.items()}
    save_array(out / "deletion_curves.npz", fraction=fraction, ids=np.array([galaxies.ids[i] for i in chosen]), **stacked)
    outputs.append("deletion_curves.npz")
    labels = {"gradcampp": "Grad-CAM++", "smoothgrad": "SmoothGrad", "random": "random order"}
    fig = plot_deletion_curves(
        {labels[n]: (fraction, v) for n, v in stacked.items()},
        title=f"deletion curves, {counted(len(chosen), 'galaxy', 'galaxies')} ({baseline} baseline)",
    )
    _save_figure(fig, out / "deletion_curves.png", outputs, out)
    return summary, scores.drop(columns=["label"])


def explain_run(
    run: str | os.PathLike,
    images: Sequence[str | os.PathLike] | None = None,
    out: str | os.PathLike | None = None,
    *,
    n_per_class: int = 3,
    noise: float = 0.1,
    samples: int = 25,
    n_faithful: int = 10,
    steps: int = 20,
    baseline: str = "blur",
    channels: int = 8,
    seed: int = 0,
    batch_size: int = 16,
    device: str | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Explain a trained run (frozen or fine-tuned backbone; grey or colour).

    Parameters
    ----------
    run : path
        A run folder (``checkpoints/best.ckpt``, ``split.csv``); with ``images``, a
        checkpoint file also works.
    images : sequence of path, optional
        Explain these image files (centre-cropped like the run's images) instead of
        the validation set: feature maps, Grad-CAM++, SmoothGrad and deletion curves
        for each; no galleries, no mask measures.
    out : path, optional
        Output folder; default ``RUN/explain``, or ``explain-images`` (in the run folder,
        or beside a checkpoint file) with ``images``.
    n_per_class : int, default 3
        Galaxies per class in each gallery.
    noise : float, default 0.1
        SmoothGrad noise standard deviation, as a fraction of the [0, 1] pixel range.
    samples : int, default 25
        SmoothGrad noisy copies per image.
    n_faithful : int, default 10
        Validation galaxies per true class (a seeded random sample) for the
        faithfulness measures; 0 skips them.
    steps : int, default 20
        Deletion-curve steps.
    baseline : {"blur", "sky"}, default "blur"
        Replacement of deleted pixels (see :mod:`spiralarms.explain.faithfulness`).
    channels : int, default 8
        Channels shown per layer in the feature-map figures.
    seed : int, default 0
        Seed of the faithfulness sample, the SmoothGrad noise and the random deletion
        order.
    batch_size : int, default 16
        Images per forward/backward pass.
    device : str, optional
        Torch device for the model (``"cpu"``, ``"cuda"``, ``"cuda:1"``); default
        ``"cuda"`` when a GPU is available, else ``"cpu"``.
    log : callable, optional
        Called with progress messages.

    Returns
    -------
    dict
        The content of ``explain.json`` (see the module docstring for the files).

    Raises
    ------
    SpiralArmsError
        On a missing run or checkpoint, unreadable images, or bad settings.
    """
    from spiralarms.models.loading import load_model

    started = time.perf_counter()
    say = log or (lambda _message: None)
    n_per_class = _check_int(n_per_class, "n_per_class", 1)
    n_faithful = _check_int(n_faithful, "n_faithful", 0)
    steps = _check_int(steps, "steps", 1)
    channels = _check_int(channels, "channels", 1)
    batch_size = _check_int(batch_size, "batch_size", 1)
    seed = _check_int(seed, "seed", 0)
    samples = _check_int(samples, "samples", 1)
    if baseline not in DELETION_BASELINES:
        raise SpiralArmsError(f"baseline {baseline!r}: choose {' or '.join(DELETION_BASELINES)}")
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not 0 <= noise <= 1:
        raise SpiralArmsError(f"noise must be in [0, 1] (fraction of the pixel range), got {noise!r}")

    run = Path(run)
    if images is None and run.is_file():
        raise SpiralArmsError(
            f"{run}: a checkpoint file needs --images; give a run folder to explain its validation set"
        )
    if not run.exists():
        raise SpiralArmsError(f"{run}: no such run folder or checkpoint")
    loaded = load_model(run)  # a run folder gives its best.ckpt
    module = loaded.module.to(_torch_device(device))
    model = module.model
    info = {**loaded.card.to_dict(), "checkpoint": loaded.source}
    if out is None:  # given images get their own folder: the validation explanation stays intact
        out = (run if run.is_dir() else run.parent) / ("explain" if images is None else "explain-images")
    out = Path(out)
    classes = [str(c) for c in info["classes"]]
    crop, grey = info["crop"], bool(info["grey"])
    notes: list[str] = []
    outputs: list[str] = []

    galleries: dict[str, dict[str, pd.DataFrame]] = {}
    if images is None:
        predictions = validation_predictions(run, module)
        galaxies, galleries = _choose_validation_galaxies(predictions, classes, n_per_class, n_faithful, seed)
    else:
        galaxies = _given_images(images)
    out.mkdir(parents=True, exist_ok=True)
    (out / "maps").mkdir(exist_ok=True)

    say(
        f"explaining {counted(len(galaxies.ids), 'galaxy', 'galaxies')} with {info['backbone']} "
        f"({'frozen' if info['frozen'] else 'fine-tuned'}, {'grey' if grey else 'colour'}, crop {crop})"
    )
    first = load_images(galaxies.table["file"].iloc[:1].tolist(), crop, grey)
    layer, _ = last_conv_stage(model, first)
    layers = feature_layers(model, first, LAYER_ROLES)
    say(f"Grad-CAM++ on {layer}; SmoothGrad with noise {noise:g} and {samples} samples")
    _compute_maps(module, galaxies, classes, crop, grey, layer, noise, samples, seed, batch_size, out)
    outputs.extend(f"maps/{g}_{m}.npy" for g in galaxies.ids for m in MAP_NAMES)

    say("feature maps of " + ", ".join(f"{role} {name}" for role, name in layers.items()))
    _write_feature_maps(model, galaxies, layers, channels, out, outputs)

    shown: dict[str, Any] = {}
    if images is None:
        shown = _write_galleries(galaxies, galleries, classes, info["backbone"], out, outputs, notes)
    else:
        rows = [
            GalleryRow(g, [_panel(galaxies, i, None, galaxies.table["pred"].iloc[i], galaxies.table["prob"].iloc[i])])
            for i, g in enumerate(galaxies.ids)
        ]
        _save_figure(plot_gallery(rows, title=f"explanations ({info['backbone']})"), out / "images.png", outputs, out)

    chosen = galaxies.having("faithfulness", "deletion")
    faithfulness: dict[str, Any] = {"n_galaxies": len(chosen)}
    table = galaxies.table
    if chosen:
        say(f"faithfulness on {counted(len(chosen), 'galaxy', 'galaxies')} (deletion: {steps} steps, {baseline} baseline)")
        if images is None:
            ids = [galaxies.ids[i] for i in chosen]
            masks, source, note = run_masks(run, ids, table["file"].iloc[chosen].tolist(), crop)
        else:
            masks, source, note = {}, None, "images given: no masks, mask measures skipped"
        notes.append(note)
        faithfulness["masks"] = {"source": source, "n": len(masks), "note": note}
        measured, scores = _faithfulness(
            model, galaxies, masks, classes if images is None else None, steps, baseline, seed, batch_size, out, outputs
        )
        faithfulness.update(measured)
        table = table.merge(scores, on="id", how="left")
    else:
        notes.append("faithfulness skipped (n_faithful = 0)")
    tables.write_table(table.drop(columns=[c for c in table.columns if c.startswith("p_")]), out / "galaxies.csv")
    outputs.append("galaxies.csv")

    summary = {
        "run": str(run),
        "checkpoint": info["checkpoint"],
        "out": str(out),
        "backbone": info["backbone"],
        "frozen": bool(info["frozen"]),
        "grey": grey,
        "crop": crop,
        "classes": classes,
        "device": str(model_device(model)),
        "n_galaxies": len(galaxies.ids),
        "source": "images" if images is not None else "validation set",
        "target": "predicted class",
        "gradcampp": {"layer": layer},
        "smoothgrad": {"noise": float(noise), "samples": samples, "seed": seed},
        "feature_layers": layers,
        "galleries": shown,
        "faithfulness": faithfulness,
        "notes": notes,
        "outputs": outputs,
        "seconds": round(time.perf_counter() - started, 2),
    }
    from spiralarms.reports.pages import explain_markdown, write_report_html

    write_report_html(out, "explain", title=f"Explanations: {info['backbone']}", markdown=explain_markdown(summary, out))
    summary["outputs"] += ["report.md", "report.html"]
    write_json(out / "explain.json", summary)
    say(f"wrote {out} (open report.html)")
    return summary
