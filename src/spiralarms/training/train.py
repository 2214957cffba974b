"""Train a classifier from an :class:`~spiralarms.config.ExperimentConfig` into a run folder.

Run folder layout::

    RUN/
      config.yaml           resolved configuration (every key, absolute paths)
      split.csv             id, label, split (train/val), file of every galaxy used
      history.csv           one row per epoch (train_loss, val_loss, val_accuracy, ...)
      checkpoints/best.ckpt best epoch by train.monitor (the final model)
      checkpoints/last.ckpt latest epoch (resume point)
      metrics.json          validation metrics of the best weights (docs/contract.md, "Files")
      val_predictions.csv   id, label, predicted label and p_<class> per validation galaxy
      train_summary.json    epochs run, best epoch, timings, class counts, cache use
      cache/                embedding cache files (frozen backbones)

Lightning runs the loop, checkpoints, early stopping and multi-device training; the
Trainer's accelerator, devices, strategy (``"ddp"`` for several GPUs), num_nodes and
precision come from the ``train`` section.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from torch.utils.data import DataLoader

from spiralarms import __version__
from spiralarms.catalog.classes import arm_classes
from spiralarms.catalog.selection import read_clean_sample, vote_fractions
from spiralarms.config import (
    MONITORS,
    RUNTIME_KEYS,
    ExperimentConfig,
    config_hash,
    flatten,
    load_config,
    save_config,
)
from spiralarms.data.images import scan_images
from spiralarms.data.store import PreparedStore, is_prepared_store
from spiralarms.errors import SpiralArmsError, SpiralArmsWarning
from spiralarms.runtime import build_trainer, call_trainer, harmless_warnings_off, is_first_process
from spiralarms.predictions.inference import predict_arrays
from spiralarms.models.backbones import build_classifier
from spiralarms.models.fusion import inference_batch_size
from spiralarms.models.loading import read_checkpoint
from spiralarms.models.losses import class_weights_from_counts
from spiralarms.models.metrics import classification_metrics
from spiralarms.models.module import ArmClassifierModule
from spiralarms.models.temperature import apply_temperature, fit_temperature
from spiralarms.training.checkpointing import AtomicCheckpointIO, checkpoint_progress, store_temperature
from spiralarms.training.datamodule import ID_COLUMNS, EpochSync, FeatureDataModule, GalaxyDataModule
from spiralarms.training.embedding_cache import EmbeddingCache
from spiralarms.training.history import HistoryCallback, read_history
from spiralarms.io.atomic import write_json as _write_json
from spiralarms.io.locks import OutputLock, hold_output
from spiralarms.io.tables import write_table
from spiralarms.io.run_folder import RunFolder
from spiralarms._words import counted

__all__ = ["TrainResult", "train", "load_selection", "RUN_FILES", "RESUMABLE_KEYS"]

#: Files of a run folder that ``resume=False`` removes (the cache is kept).
RUN_FILES: tuple[str, ...] = RunFolder.TRAINING_FILES

#: Keys that may differ between a run folder's config.yaml and a resumed run.
RESUMABLE_KEYS: tuple[str, ...] = RUNTIME_KEYS + (
    "train.max_epochs",
    "train.accelerator",
    "train.devices",
    "train.strategy",
    "train.num_nodes",
)


@dataclass
class TrainResult:
    """What :func:`train` produced.

    Attributes
    ----------
    run_dir : Path
    checkpoint : Path
        ``checkpoints/best.ckpt``: the final model (best weights kept).
    last_checkpoint : Path
        ``checkpoints/last.ckpt``: the resume point.
    metrics : dict
        ``metrics.json`` content (validation set, best weights); empty on DDP ranks
        other than 0.
    summary : dict
        ``train_summary.json`` content.
    classes : tuple of str
    config : ExperimentConfig
        The resolved configuration.
    history : pandas.DataFrame
        ``history.csv`` content.
    """

    run_dir: Path
    checkpoint: Path
    last_checkpoint: Path
    metrics: dict[str, Any]
    summary: dict[str, Any]
    classes: tuple[str, ...]
    config: ExperimentConfig
    history: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)


def load_selection(config: ExperimentConfig) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Read the catalogue, apply the clean-sample cuts and find every image file.

    Returns
    -------
    table : pandas.DataFrame
        The selected galaxies with ``label`` and an absolute ``file`` column.
    classes : tuple of str
        Class names after the merge.

    Raises
    ------
    SpiralArmsError
        If no catalogue is configured, nothing is selected, or selected galaxies
        have no image file (the message counts them and names the first).
    """
    data = config.data
    if data.catalog is None:
        raise SpiralArmsError("data.catalog: no catalogue given (set data.catalog in the config or override it)")
    if is_prepared_store(data.catalog):
        return _store_selection(config)
    if Path(data.catalog).is_dir():
        PreparedStore(data.catalog)  # an unfinished store says so; any other folder is not a catalogue
        raise SpiralArmsError(f"{data.catalog}: a folder, neither a catalogue file nor a prepared store")
    selection = read_clean_sample(
        data.catalog, schema=data.schema, merge=data.merge, resolve_images=True, mapping=data.mapping, image_dir=data.image_root
    )
    if len(selection.selected) == 0:
        raise SpiralArmsError(f"{data.catalog}: no galaxy passes the clean-sample cuts")
    selected = selection.selected
    missing = np.array([f is None or not os.path.isfile(f) for f in selected["file"]])
    if missing.sum() * 2 > len(selected):
        # Most files absent: the image folder or mapping is wrong, not a few files.
        id_column = next((c for c in ID_COLUMNS if c in selected.columns), None)
        first = selected[id_column].to_numpy()[missing][0] if id_column else selected.index[missing][0]
        raise SpiralArmsError(
            f"{data.catalog}: {int(missing.sum())} of {len(selected)} selected galaxies have no image file "
            f"(first: {id_column or 'row'} {first}); check data.image_root or data.mapping"
        )
    return _without_unreadable(selected, str(data.catalog)), tuple(selection.classes)


def _without_unreadable(selected: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check every image decodes; leave out the ones that do not, saying so.

    One corrupt JPEG among thousands should not stop a training run, nor vanish from
    the accounting: the rows left out travel in ``attrs["unreadable"]`` (``file``,
    ``error``), which :func:`train` writes to ``unreadable.csv`` in the run folder.
    """
    report = scan_images([f or "" for f in selected["file"]], workers=min(4, os.cpu_count() or 1))
    bad = ~report["ok"].to_numpy(bool)
    if not bad.any():
        return selected
    first = report[bad].iloc[0]
    warnings.warn(
        f"{source}: {counted(int(bad.sum()), 'selected galaxy', 'selected galaxies')} with an unreadable image left out "
        f"(first: {first['file']}: {first['error']}); the run folder's unreadable.csv lists them",
        SpiralArmsWarning,
        stacklevel=3,
    )
    kept = selected[~bad].reset_index(drop=True)
    kept.attrs["unreadable"] = report.loc[bad, ["file", "error"]].reset_index(drop=True)
    return kept


def _store_selection(config: ExperimentConfig) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The usable rows of a prepared store, after checking it fits the config.

    The store already holds the clean sample (``spiralarms prepare`` applied the
    cuts). Rows whose image could not be decoded are left out with a warning that
    counts them; ``report.csv`` in the store names each with its reason.
    """
    data = config.data
    store = PreparedStore(data.catalog)
    if store.grey != data.grey:
        raise SpiralArmsError(
            f"{data.catalog}: the store is {'grey' if store.grey else 'colour'} but data.grey is {data.grey}"
        )
    if store.crop < data.crop:
        raise SpiralArmsError(f"{data.catalog}: the store holds {store.crop}-pixel crops, smaller than data.crop={data.crop}")
    if tuple(store.classes) != tuple(arm_classes(data.merge)):
        raise SpiralArmsError(
            f"{data.catalog}: the store's classes {', '.join(store.classes)} do not match data.merge={data.merge}"
        )
    table = store.table.rename(columns={"row": "store_row"})
    usable = table["ok"].to_numpy(bool)
    if not usable.all():
        warnings.warn(
            f"{data.catalog}: {counted(int((~usable).sum()), 'galaxy', 'galaxies')} with an unreadable image left out "
            f"(see {store.path / 'report.csv'})",
            stacklevel=2,
        )
    table = table[usable].reset_index(drop=True)
    if table.empty:
        raise SpiralArmsError(f"{data.catalog}: the store has no usable image")
    return table, tuple(store.classes)


def _without_empty_classes(table: pd.DataFrame, classes: Sequence[str], source: str) -> tuple[str, ...]:
    """Leave out, with a warning, classes that no selected galaxy has.

    A class that a merge or the cuts leave empty cannot be learnt or measured; kept,
    it would add an F1 of 0 to the macro F1 of every run.
    """
    present = set(table["label"].astype(str))
    empty = [c for c in classes if c not in present]
    if not empty:
        return tuple(classes)
    kept = tuple(c for c in classes if c in present)
    if len(kept) < 2:
        raise SpiralArmsError(f"{source}: the selected galaxies hold {len(kept)} class(es); training needs two")
    warnings.warn(
        f"{source}: no selected galaxy has class {', '.join(empty)}; trained on {', '.join(kept)} "
        "(an empty class would add an F1 of 0 to the macro F1)",
        SpiralArmsWarning,
        stacklevel=3,
    )
    return kept


def _warn_of_empty_split_classes(counts: dict[str, dict[str, int]], source) -> None:
    """Warn where the split leaves a class without a training or validation galaxy (a small catalogue).

    Such a class cannot be learnt, or its F1 is 0 by definition and drags the macro F1 down.
    """
    for part, what in (("train", "not learnt"), ("val", "an F1 of 0 each in the macro F1")):
        empty = [c for c, n in counts[part].items() if n == 0]
        if empty:
            n = sum(counts[part].values())
            warnings.warn(
                f"{source}: the {'training' if part == 'train' else 'validation'} set "
                f"({counted(n, 'galaxy', 'galaxies')}) has no galaxy of class {', '.join(empty)} ({what}); "
                "give more galaxies",
                SpiralArmsWarning,
                stacklevel=3,
            )


def _classes_of(table: pd.DataFrame, merge: str | None) -> tuple[str, ...]:
    """Classes present in ``table['label']``: the T11 order first, others sorted."""
    present = set(table["label"].astype(str))
    ordered = [c for c in arm_classes(merge) if c in present]
    return tuple(ordered + sorted(present - set(ordered)))


def _check_resumable(config: ExperimentConfig, saved: Path) -> None:
    """Refuse to resume a run folder trained with different settings."""
    if not saved.is_file():
        return
    before = flatten(load_config(saved))
    now = flatten(config)
    changed = [k for k in now if k not in RESUMABLE_KEYS and before.get(k) != now[k]]
    if changed:
        details = ", ".join(f"{k} ({before.get(k)!r} -> {now[k]!r})" for k in changed[:3])
        raise SpiralArmsError(
            f"{saved.parent}: cannot resume, the configuration differs in {details}; "
            "use a new run folder or start afresh (--no-resume; resume=False)"
        )


def _source_states(datasets) -> list[tuple[str, int, int]]:
    """Path, size and modification time (ns) of every file the datasets read pixels from
    (image files, or a prepared store's image array): a plain stat each, make's rule,
    far cheaper than reading them again."""
    paths = dict.fromkeys(p for dataset in datasets for p in dataset.source_files())
    return [(p, (s := os.stat(p)).st_size, s.st_mtime_ns) for p in paths]


def _check_resumable_data(split: pd.DataFrame, sources: list[tuple[str, int, int]], saved: Path) -> None:
    """Refuse to resume a run folder trained on other galaxies, labels or image files.

    The run's ``split.csv`` says which galaxies it trained and validated on, and it was
    written when the run began: another split, or an image file (``sources``, from
    :func:`_source_states`) changed since, means other data (a re-rendered or
    replaced set under the same catalogue path).
    """
    if not saved.is_file():
        return
    before = pd.read_csv(saved, dtype=str, keep_default_na=False)
    now = split.astype(str)
    columns = ["id", "label", "split", "file"]
    if list(before.columns[: len(columns)]) != columns or len(before) != len(now) or not (
        before[columns].to_numpy() == now[columns].to_numpy()
    ).all():
        raise SpiralArmsError(
            f"{saved.parent}: cannot resume, the galaxies, labels or split differ from the run's "
            f"({len(before)} rows in its split.csv, {len(now)} now); use a new run folder or start afresh (--no-resume; resume=False)"
        )
    began = saved.stat().st_mtime_ns
    changed = [path for path, _, mtime in sources if mtime > began]
    if changed:
        raise SpiralArmsError(
            f"{saved.parent}: cannot resume, {len(changed)} image file(s) changed since the run began "
            f"(e.g. {changed[0]}); use a new run folder or start afresh (--no-resume; resume=False)"
        )


def _clear_run(run_dir: Path) -> None:
    """Remove a previous run's outputs (not the embedding cache)."""
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)


@contextlib.contextmanager
def _scoped_process_state() -> Iterator[None]:
    """Restore random states, determinism flags and Lightning's env variables on exit.

    Lightning's ``seed_everything`` and ``deterministic=True`` change process-wide
    settings; a call to :func:`train` leaves the caller's process as it found it.
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    env_keys = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS", "CUBLAS_WORKSPACE_CONFIG")
    env = {k: os.environ.get(k) for k in env_keys}
    cuda_devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=cuda_devices):
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cudnn
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _make_trainer(config: ExperimentConfig, run_dir: Path, callbacks: Sequence[L.Callback]) -> L.Trainer:
    """The Lightning Trainer with the history, early-stopping and checkpoint callbacks."""
    t = config.train
    mode = MONITORS[t.monitor]
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best",
        monitor=t.monitor,
        mode=mode,
        save_top_k=1,
        enable_version_counter=False,
        auto_insert_metric_name=False,
    )
    # A second callback writes last.ckpt after every epoch: ModelCheckpoint's own
    # save_last=True only updates it in epochs where the best checkpoint changed
    # (Lightning >= 2.5), so a kill would lose the epochs since the last gain.
    latest = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="last",
        monitor=None,
        save_top_k=1,
        enable_version_counter=False,
        auto_insert_metric_name=False,
    )
    stopping = EarlyStopping(monitor=t.monitor, mode=mode, patience=t.patience, min_delta=0.0)
    trainer = build_trainer(
        plugins=[AtomicCheckpointIO()],
        max_epochs=t.max_epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        num_nodes=t.num_nodes,
        precision=t.precision,
        deterministic=t.deterministic,
        callbacks=[EpochSync(), HistoryCallback(run_dir / "history.csv"), stopping, checkpoint, latest, *callbacks],
        logger=False,
        default_root_dir=run_dir,
        # Bars only on a terminal: a log file or a batch job's output gets none.
        enable_progress_bar=t.progress and sys.stdout.isatty(),
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    return trainer


def _cached_datamodule(
    model, images: GalaxyDataModule, config: ExperimentConfig, cache_dir: Path, trainer: L.Trainer
) -> tuple[FeatureDataModule, dict[str, Any]]:
    """Compute or reuse the embedding cache; the data module over it and a report."""
    d, t = config.data, config.train
    device = trainer.strategy.root_device
    cache = EmbeddingCache(
        model,
        cache_dir,
        batch_size=inference_batch_size(False) if device.type == "cpu"
        else max(inference_batch_size(True), t.batch_size),
        num_workers=d.num_workers,
        device=device,
        progress=t.progress and trainer.is_global_zero,
    )
    common = {"crop": d.crop, "grey": d.grey, "eval_transform": repr(images.eval_transform)}

    def files_of(dataset) -> dict[str, list]:
        # With the sizes and modification times of what the pixels come from: an image
        # replaced in place (a re-rendered set under the same names) gets new features.
        return {"files": list(dataset.files), "sources": _source_states([dataset])}

    train_features = cache.features(
        "train",
        images.train_eval_dataset,
        images.train_augment_dataset,
        views=t.cache_views,
        include_eval_view=t.cache_eval_view,
        seed=d.seed,
        identity={
            **common,
            **files_of(images.train_eval_dataset),
            "labels": images.train_eval_dataset.labels.tolist(),
            "train_transform": repr(images.train_transform),
        },
    )
    val_features = cache.features(
        "val",
        images.val_dataset,
        identity={**common, **files_of(images.val_dataset), "labels": images.val_dataset.labels.tolist()},
    )
    datamodule = FeatureDataModule(
        train_features,
        val_features,
        batch_size=t.batch_size,
        seed=d.seed,
        device=device if trainer.world_size == 1 else None,
    )
    report = {
        "used": True,
        "views": list(train_features.views),
        "train_file": str(train_features.path),
        "val_file": str(val_features.path),
        "reused": bool(train_features.reused and val_features.reused),
        "build_seconds": train_features.seconds + val_features.seconds,
        "n_features": int(train_features.features.shape[-1]),
    }
    return datamodule, report


def train(
    config: ExperimentConfig,
    run_dir: str | os.PathLike,
    resume: bool = True,
    *,
    table: pd.DataFrame | None = None,
    classes: Sequence[str] | None = None,
    callbacks: Sequence[L.Callback] = (),
    cache_dir: str | os.PathLike | None = None,
) -> TrainResult:
    """Train the configured classifier and write a run folder.

    Steps: read and select the catalogue (or take ``table``); split it (stratified,
    seeded, every class capped, by default before the split); build the model; with a frozen backbone and
    ``train.embedding_cache``, compute or reuse the cached features and train the
    head on them, else train on images; keep the best epoch by ``train.monitor``
    (early stopping after ``train.patience`` epochs without a gain); evaluate the
    best weights on the validation set.

    Parameters
    ----------
    config : ExperimentConfig
    run_dir : str or path-like
        Output folder (created). See the module docstring for its layout.
    resume : bool, default True
        If ``run_dir/checkpoints/last.ckpt`` exists, continue from it (model,
        optimiser, early-stopping and checkpoint states, epoch counter); shuffling
        and augmentation are seeded by epoch, so the result equals an uninterrupted
        run. A finished run is not trained further (unless ``train.max_epochs``
        grew). ``False`` starts afresh and removes the folder's previous outputs
        (the embedding cache is kept).
    table : pandas.DataFrame, optional
        An already selected catalogue (columns ``label``, ``file`` and an id),
        instead of reading ``config.data.catalog``.
    classes : sequence of str, optional
        Class names for ``table``; default: the T11 classes (after
        ``data.merge``) present in it.
    callbacks : sequence of lightning.Callback
        Extra callbacks for the Trainer.
    cache_dir : str or path-like, optional
        Folder of the embedding cache files; default ``run_dir/cache``. Runs that
        share one reuse each other's features wherever the cache key (backbone
        weights, images, labels, transforms, views, seed) agrees.

    Returns
    -------
    TrainResult

    Raises
    ------
    SpiralArmsError
        On a bad configuration, an unreadable catalogue, missing images, or an
        attempt to resume a run folder whose configuration differs (other than in
        :data:`RESUMABLE_KEYS`) or whose galaxies, labels, split or image files do,
        or while another training run writes ``run_dir``.
    """
    run_dir = Path(run_dir)
    # Under DDP every process runs train(); the first (rank 0) holds the folder, so
    # that a second run into it stops instead of resuming checkpoints being written.
    with hold_output(run_dir, "training run") if is_first_process() else OutputLock():
        return _train(config, run_dir, resume, table, classes, callbacks, cache_dir)


def _train(config, run_dir: Path, resume, table, classes, callbacks, cache_dir) -> TrainResult:
    """The work of :func:`train`, while the run folder is held."""
    started = time.perf_counter()
    config = config.with_absolute_paths()
    run_dir.mkdir(parents=True, exist_ok=True)
    last = run_dir / "checkpoints" / "last.ckpt"
    resuming = bool(resume) and last.is_file()
    if resuming:
        _check_resumable(config, run_dir / "config.yaml")

    if table is None:
        table, classes = load_selection(config)
    else:
        for column in ("label", "file"):
            if column not in table.columns:
                raise SpiralArmsError(f"table: no column {column!r}")
        classes = tuple(classes) if classes is not None else _classes_of(table, config.data.merge)
    classes = _without_empty_classes(table, classes, str(config.data.catalog or "table"))

    d, m, t = config.data, config.model, config.train
    with _scoped_process_state(), harmless_warnings_off():
        trainer = _make_trainer(config, run_dir, callbacks)
        # Under DDP every process runs this function; only rank 0 touches the folder.
        # The other ranks start when rank 0 calls fit, after it has cleared and written.
        if not resume and trainer.is_global_zero:
            _clear_run(run_dir)
        L.seed_everything(d.seed, workers=True, verbose=False)
        model = build_classifier(
            m.backbone,
            len(classes),
            hidden=m.hidden,
            frozen=m.frozen,
            grey=d.grey,
            weights=m.weights,
            pretrained=m.pretrained,
        )
        device = trainer.strategy.root_device
        images = GalaxyDataModule(
            table, classes, d, batch_size=t.batch_size, pin_memory=device.type == "cuda", augment=config.augment
        )
        counts = images.class_counts()
        if trainer.is_global_zero:
            _warn_of_empty_split_classes(counts, d.catalog)
        if resuming:
            sources = _source_states([images.train_eval_dataset, images.val_dataset])
            _check_resumable_data(images.split_table(), sources, run_dir / "split.csv")
        module = ArmClassifierModule.from_model(
            model,
            classes,
            lr=t.lr,
            loss=t.loss,
            class_weights=class_weights_from_counts(list(counts["train"].values())) if t.loss == "weighted" else None,
            focal_gamma=t.focal_gamma,
            backbone=m.backbone,
            grey=d.grey,
            grey_method=config.augment.grey_method,
            crop=d.crop,
            merge=d.merge,
            training={
                "catalog": d.catalog,
                "n_train": sum(counts["train"].values()),
                "n_val": sum(counts["val"].values()),
                "class_counts": counts,
                "config_hash": config_hash(config),
            },
        )

        use_cache = t.embedding_cache and model.frozen
        if t.embedding_cache and not model.frozen:
            warnings.warn(
                f"train.embedding_cache ignored: backbone {m.backbone!r} is trained (model.frozen=false); "
                "training on images",
                stacklevel=2,
            )
        if use_cache:
            cache_folder = Path(cache_dir) if cache_dir is not None else run_dir / "cache"
            datamodule, cache_report = _cached_datamodule(model, images, config, cache_folder, trainer)
        else:
            datamodule, cache_report = images, {"used": False}
        soft = vote_fractions(images.train_table, classes, d.merge) if t.soft_labels else None
        datamodule.use_recipe(images.train_labels, balanced=t.sampler == "balanced", soft_targets=soft)

        if trainer.is_global_zero:
            save_config(config, run_dir / "config.yaml")
            if "unreadable" in table.attrs:
                write_table(table.attrs["unreadable"], run_dir / "unreadable.csv")
            write_table(images.split_table(), run_dir / "split.csv")
        start_epoch, finished = checkpoint_progress(last) if resuming else (0, False)
        datamodule.set_epoch(start_epoch)
        fit_started = time.perf_counter()
        if not finished:  # a run ended by early stopping stays ended
            call_trainer(trainer.fit, module, datamodule=datamodule, ckpt_path=str(last) if resuming else None)
        fit_seconds = time.perf_counter() - fit_started

        best_path = run_dir / "checkpoints" / "best.ckpt"
        best_path = best_path if best_path.is_file() else last
        result = TrainResult(run_dir, best_path, last, {}, {}, tuple(classes), config)
        if not trainer.is_global_zero:
            return result
        epochs_run, stopped_early = checkpoint_progress(last)
        best = read_checkpoint(best_path)
        module.load_state_dict(best["state_dict"])
        probs = predict_arrays(module, datamodule.val_dataloader(), device=device)
        targets = _targets(datamodule.val_dataloader())
        module.cpu()
        temperature = None
        if t.calibrate:
            temperature = fit_temperature(probs, targets)
            probs = apply_temperature(probs, temperature)
            store_temperature(best_path, temperature)

    preds = probs.argmax(axis=1)
    metrics = classification_metrics(targets, preds, classes)
    _write_json(run_dir / "metrics.json", metrics)
    _write_predictions(run_dir / "val_predictions.csv", images, classes, targets, preds, probs)
    history = read_history(run_dir / "history.csv")
    best_epoch = int(best.get("epoch", -1))
    best_rows = history.loc[history["epoch"] == best_epoch, t.monitor]
    summary = {
        "epochs_run": epochs_run,
        "max_epochs": t.max_epochs,
        "best_epoch": best_epoch,
        "best_score": float(best_rows.iloc[0]) if len(best_rows) else None,
        "monitor": t.monitor,
        "stopped_early": stopped_early,
        "resumed_from_epoch": start_epoch if resuming else None,
        "wall_seconds": time.perf_counter() - started,
        "fit_seconds": fit_seconds,
        "n_train": images.class_counts()["train"],
        "n_val": images.class_counts()["val"],
        "classes": list(classes),
        "embedding_cache": cache_report,
        "recipe": {"loss": t.loss, "sampler": t.sampler, "soft_labels": t.soft_labels, "temperature": temperature},
        "device": str(device),
        "config_hash": config_hash(config),
        "spiralarms_version": __version__,
    }
    _write_json(run_dir / "train_summary.json", summary)
    result.metrics, result.summary, result.history = metrics, summary, history
    return result


def _targets(loader: DataLoader) -> np.ndarray:
    """Class indices of a validation loader, in order."""
    dataset = loader.dataset
    labels = getattr(dataset, "labels", None)
    if labels is None:
        raise SpiralArmsError("validation dataset without labels")
    return np.asarray(torch.as_tensor(labels).cpu(), dtype=np.int64)


def _write_predictions(path: Path, images: GalaxyDataModule, classes, targets, preds, probs) -> None:
    """Validation predictions: id, label, pred, p_<class> (loader order = val_table order)."""
    split = images.split_table()
    val = split[split["split"] == "val"].reset_index(drop=True)
    frame = pd.DataFrame({"id": val["id"], "label": [classes[i] for i in targets], "pred": [classes[i] for i in preds]})
    for j, name in enumerate(classes):
        frame[f"p_{name}"] = probs[:, j]
    write_table(frame, path)
