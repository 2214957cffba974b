"""Evaluate a trained run on its validation set: metrics.json, figures, Markdown table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from spiralarms.errors import SpiralArmsError
from spiralarms.evaluation.figures import save_confusion_figures
from spiralarms.evaluation.evaluation_report import metrics_markdown
from spiralarms.io.atomic import save_figure, write_json, write_text
from spiralarms.io.run_folder import RunFolder
from spiralarms.models.metrics import classification_metrics


def evaluate_run(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    split: str = "val",
    batch_size: int | None = None,
    num_workers: int | None = None,
    progress: bool = True,
    prediction: dict | None = None,
) -> dict:
    """Predict a run's validation galaxies with its best weights and write the evaluation.

    Parameters
    ----------
    run_dir : path
        A run folder written by ``spiralarms train`` (``checkpoints/best.ckpt`` and
        ``split.csv`` with ``file``, ``label`` and ``split`` columns).
    out_dir : path, optional
        Where to write; default the run folder.
    split : str, default "val"
        Which rows of ``split.csv`` to evaluate.
    batch_size, num_workers : int or None
        Prediction settings (``None``: the engine's defaults).
    progress : bool, default True
    prediction : dict, optional
        Further :class:`~spiralarms.predictions.PredictionSettings` (``accelerator``,
        ``precision``, ``tta``, ...).

    Returns
    -------
    dict
        The metrics (``metrics.json``, docs/contract.md "Files"). Files written: ``metrics.json``,
        ``confusion_counts.png``, ``confusion_normalised.png``, ``metrics.md``,
        ``predictions.csv`` (per galaxy: true label, probabilities, predicted label),
        ``calibration.json`` (ordinal error, temperature and ECE before and after),
        ``reliability.png``, ``coverage.png`` and ``coverage.csv``.
    """
    from spiralarms.catalog.readers import write_table
    from spiralarms.predictions import load_model, predict

    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir
    written = RunFolder(out_dir)
    split_file = RunFolder(run_dir).require_split()
    table = pd.read_csv(split_file, dtype={"label": str, "id": str})
    for column in ("file", "label", "split"):
        if column not in table.columns:
            raise SpiralArmsError(f"{split_file}: missing column {column!r}")
    rows = table[table["split"] == split].reset_index(drop=True)
    if rows.empty:
        raise SpiralArmsError(f"{split_file}: no rows with split == {split!r}")

    loaded = load_model(run_dir)
    classes = tuple(loaded.card.classes)
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions_file = written.predictions
    inputs = pd.DataFrame({"id": rows["id"] if "id" in rows else rows.index.astype(str), "file": rows["file"]})
    # Predicted into a scratch Parquet file: predictions.csv is written below, with the true labels.
    scratch = out_dir / ".predictions.parquet"
    predict(
        loaded,
        inputs,
        scratch,
        batch_size=batch_size,
        num_workers=num_workers,
        overwrite=True,
        progress=progress,
        **(prediction or {}),
    )
    predicted = pd.read_parquet(scratch)
    scratch.unlink()
    predicted["label"] = predicted["label"].fillna("")
    unreadable = predicted["error"] != ""
    if unreadable.any():
        first = predicted[unreadable].iloc[0]
        raise SpiralArmsError(
            f"{int(unreadable.sum())} validation image(s) unreadable, first {first['file']}: {first['error']}"
        )
    predicted.insert(2, "true_label", rows["label"].to_numpy())
    write_table(predicted, predictions_file)

    metrics = classification_metrics(rows["label"].to_numpy(), predicted["label"].to_numpy(), classes)
    beyond = beyond_accuracy(predicted[[f"p_{c}" for c in classes]].to_numpy(), rows["label"], classes, out_dir)
    write_json(written.metrics, metrics)
    write_json(out_dir / "calibration.json", beyond)
    save_confusion_figures(metrics, out_dir)
    write_text(
        written.metrics_md,
        f"# Evaluation of {run_dir.name} ({split} set, {len(rows)} galaxies)\n\n" + metrics_markdown({**metrics, **beyond}),
    )
    return metrics


def beyond_accuracy(probs, labels, classes, out_dir: str | Path | None = None) -> dict:
    """Calibration, ordinal error and abstention of a set of predictions.

    Parameters
    ----------
    probs : array-like, (N, k)
    labels : sequence of str
        True class names.
    classes : sequence of str
    out_dir : path, optional
        Also write ``reliability.png``, ``coverage.png`` and ``coverage.csv`` there.

    Returns
    -------
    dict
        ``{"ordinal": {...}, "calibration": {...}}`` (see
        :mod:`spiralarms.evaluation.calibration`).
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from spiralarms.catalog.readers import write_table
    from spiralarms.evaluation.calibration import (
        apply_temperature,
        calibration_summary,
        coverage_accuracy,
        ordinal_metrics,
        reliability_table,
    )
    from spiralarms.evaluation.figures import plot_coverage, plot_reliability

    classes = [str(c) for c in classes]
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[str(v)] for v in labels], dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    calibration = calibration_summary(p, y)
    result = {"ordinal": ordinal_metrics(y, p.argmax(axis=1), classes), "calibration": calibration}
    if out_dir is not None:
        out_dir = Path(out_dir)
        scaled = apply_temperature(p, calibration["temperature"])
        fig = plot_reliability({"as trained": reliability_table(p, y),
                                f"temperature {calibration['temperature']:.2f}": reliability_table(scaled, y)})
        save_figure(fig, out_dir / "reliability.png", dpi=110)
        plt.close(fig)
        curve = coverage_accuracy(p, y)
        write_table(curve, out_dir / "coverage.csv")
        fig = plot_coverage({"validation set": curve})
        save_figure(fig, out_dir / "coverage.png", dpi=110)
        plt.close(fig)
    return result
