"""Predict arm-number classes for a folder of images or a catalogue, at survey scale.

Output (Parquet or CSV by suffix) has one row per input, in input order: ``id``,
``file``, one probability column ``p_<class>`` per class, ``label`` (the most
probable class) and ``error`` (empty when the image was read; otherwise the reason,
with probabilities and label left missing). No row is ever dropped.

Work is streamed in chunks: each chunk is written atomically as a part file in
``<out>.parts/`` before the next starts, so memory does not grow with the number of
inputs, and a killed run resumes from its finished parts without duplicates. The
parts are joined into ``<out>`` at the end and then removed.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from spiralarms.catalog import schema as sch
from spiralarms.catalog.readers import WRITE_SUFFIXES, read_table, resolve_image_paths, write_table
from spiralarms.data.dataset import GalaxyDataset, collate_with_errors
from spiralarms.data.transforms import build_eval_transform, tta_views
from spiralarms.errors import SpiralArmsError

#: Error recorded for a catalogue row whose image path could not be resolved.
NO_FILE = "no image file for this row"


@dataclass
class PredictionSummary:
    """What a prediction run did.

    Attributes
    ----------
    out : Path
        The output table.
    n_inputs : int
        Rows written (one per input).
    n_errors : int
        Rows whose image could not be read (``error`` not empty).
    n_resumed : int
        Rows taken from part files of an earlier, interrupted run.
    counts : dict
        Predicted label counts, in class order.
    """

    out: Path
    n_inputs: int
    n_errors: int
    n_resumed: int
    counts: dict[str, int]

    def to_dict(self) -> dict:
        """JSON-ready summary."""
        return {
            "out": str(self.out),
            "n_inputs": self.n_inputs,
            "n_errors": self.n_errors,
            "n_resumed": self.n_resumed,
            "counts": self.counts,
        }


def image_folder_inputs(folder: str | os.PathLike) -> pd.DataFrame:
    """Every regular, non-hidden file of a folder as a prediction input.

    Files that are not images are kept: prediction reports them in ``error``
    rather than skipping them silently.

    Parameters
    ----------
    folder : path

    Returns
    -------
    pandas.DataFrame
        Columns ``id`` (file name without suffix) and ``file`` (absolute path), sorted
        by file name.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SpiralArmsError(f"{folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise SpiralArmsError(f"{folder}: no files to predict on")
    return pd.DataFrame({"id": [p.stem for p in files], "file": [str(p.resolve()) for p in files]})


def catalog_inputs(path: str | os.PathLike, image_dir=None, mapping=None) -> pd.DataFrame:
    """Rows of a catalogue as prediction inputs, with their image paths.

    Parameters
    ----------
    path : path
        Any table (CSV, CSV.gz, Parquet, FITS) with a path column (``file``, ...) or
        an id column naming ``<image_dir>/<id>.jpg``.
    image_dir, mapping : optional
        See :func:`spiralarms.catalog.readers.resolve_image_paths`.

    Returns
    -------
    pandas.DataFrame
        Columns ``id`` and ``file`` (missing where no path resolves).
    """
    table = read_table(path)
    table = resolve_image_paths(table, path, mapping=mapping, image_dir=image_dir)
    id_column = next((c for c in ("id", *sch.GZ2_ID_COLUMNS, sch.KAGGLE_ID) if c in table.columns), None)
    ids = table[id_column] if id_column is not None else pd.Series(np.arange(len(table)))
    return pd.DataFrame({"id": ids.to_numpy(), "file": table["file"].to_numpy()})


def prediction_inputs(input_path: str | os.PathLike, image_dir=None, mapping=None) -> pd.DataFrame:
    """Inputs from a folder of images or from a catalogue file (by what the path is)."""
    input_path = Path(input_path)
    if not input_path.exists():
        raise SpiralArmsError(f"{input_path}: no such file or folder")
    if input_path.is_dir():
        return image_folder_inputs(input_path)
    return catalog_inputs(input_path, image_dir=image_dir, mapping=mapping)


def _parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def _finished_rows(parts: Path) -> tuple[list[Path], set[int]]:
    """Part files of an earlier run and the input rows they hold."""
    files = sorted(parts.glob("part-*.parquet")) if parts.is_dir() else []
    rows: set[int] = set()
    for f in files:
        rows.update(pd.read_parquet(f, columns=["_row"])["_row"].tolist())
    return files, rows


def _write_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Write a part under a temporary name, then rename: a kill never leaves half a part."""
    tmp = path.with_name(path.name + ".tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


@torch.no_grad()
def _predict_chunk(model, chunk: pd.DataFrame, classes, transform, grey, batch_size, num_workers, tta) -> pd.DataFrame:
    """Probabilities for one chunk of inputs; unreadable images keep their row."""
    has_file = chunk["file"].notna().to_numpy()
    probs = np.full((len(chunk), len(classes)), np.nan, dtype=np.float32)
    errors = np.array([""] * len(chunk), dtype=object)
    errors[~has_file] = NO_FILE
    readable = chunk[has_file]
    if len(readable):
        dataset = GalaxyDataset(
            readable, classes, transform=transform, grey=grey, label_column=None, on_error="report"
        )
        loader = DataLoader(
            dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_with_errors
        )
        out, errs = [], []
        for images, _, batch_errors in loader:
            if tta > 1:
                views = tta_views(images, tta)  # (tta, N, C, H, W)
                p = torch.stack([model.predict_proba(v) for v in views]).mean(0)
            else:
                p = model.predict_proba(images)
            out.append(p.float().cpu().numpy())
            errs += batch_errors
        block = np.concatenate(out)
        bad = np.array([bool(e) for e in errs])
        block[bad] = np.nan
        probs[has_file] = block
        errors[has_file] = errs
    frame = pd.DataFrame({"_row": chunk.index.to_numpy(), "id": chunk["id"].to_numpy(), "file": chunk["file"].to_numpy()})
    for k, name in enumerate(classes):
        frame[f"p_{name}"] = probs[:, k]
    ok = ~np.isnan(probs).any(axis=1)
    labels = np.array([None] * len(chunk), dtype=object)
    labels[ok] = np.asarray(classes, dtype=object)[probs[ok].argmax(axis=1)]
    frame["label"] = labels
    frame["error"] = errors
    # One type per column across parts (ids may be text in one table, ints in another).
    frame["id"] = frame["id"].astype(str)
    frame["file"] = frame["file"].astype(object).where(frame["file"].notna(), None)
    return frame


def predict_table(
    model,
    inputs: pd.DataFrame,
    out: str | os.PathLike,
    *,
    classes,
    crop: int | None = 224,
    grey: bool = False,
    batch_size: int = 64,
    num_workers: int = 0,
    chunk_size: int = 4096,
    tta: int = 1,
    resume: bool = True,
    progress: bool = True,
) -> PredictionSummary:
    """Predict every input row and write the output table.

    Parameters
    ----------
    model : ArmClassifier
        A trained classifier (``predict_proba`` gives softmax probabilities).
    inputs : pandas.DataFrame
        Columns ``id`` and ``file`` (see :func:`prediction_inputs`).
    out : path
        Output table, ``.parquet``/``.pq`` or ``.csv``/``.csv.gz``.
    classes : sequence of str
        Class names of the model's outputs, in order.
    crop : int or None, default 224
        Centre crop, as in training.
    grey : bool, default False
        Greyscale input, as in training.
    batch_size, num_workers : int
        DataLoader settings.
    chunk_size : int, default 4096
        Rows per part file: memory is bounded by one chunk.
    tta : int, default 1
        Test-time augmentation: average over this many exact rotations/flips
        (1 = off, the paper's setting; up to 8).
    resume : bool, default True
        Reuse the part files of an interrupted run of the same output.
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    PredictionSummary
    """
    out = Path(out)
    if not any(out.name.lower().endswith(s) for s in WRITE_SUFFIXES):
        raise SpiralArmsError(f"{out}: output must end in {', '.join(WRITE_SUFFIXES)}")
    if not 1 <= tta <= 8:
        raise SpiralArmsError(f"--tta must be from 1 to 8, got {tta}")
    if chunk_size < 1 or batch_size < 1:
        raise SpiralArmsError("chunk_size and batch_size must be positive")
    classes = tuple(str(c) for c in classes)
    inputs = inputs.reset_index(drop=True)
    parts = _parts_dir(out)
    if not resume and parts.exists():
        shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    part_files, done = _finished_rows(parts)
    todo = inputs.index[~inputs.index.isin(list(done))]
    transform = build_eval_transform(crop=crop, grey=grey)
    model.eval()
    bar = tqdm(total=len(inputs), initial=len(done), unit="img", desc="predict", disable=not progress)
    next_part = len(part_files)
    for start in range(0, len(todo), chunk_size):
        chunk = inputs.loc[todo[start : start + chunk_size]]
        frame = _predict_chunk(model, chunk, classes, transform, grey, batch_size, num_workers, tta)
        _write_atomically(frame, parts / f"part-{next_part:06d}.parquet")
        next_part += 1
        bar.update(len(chunk))
    bar.close()

    result = pd.concat([pd.read_parquet(f) for f in sorted(parts.glob("part-*.parquet"))], ignore_index=True)
    result = result.sort_values("_row").drop_duplicates("_row")
    if len(result) != len(inputs):
        raise SpiralArmsError(f"{parts}: holds {len(result)} rows for {len(inputs)} inputs; rerun with resume off")
    result = result.drop(columns="_row").reset_index(drop=True)
    tmp = out.with_name(out.name + ".tmp" + "".join(out.suffixes))
    write_table(result, tmp)
    os.replace(tmp, out)
    shutil.rmtree(parts)
    counts = result["label"].value_counts().reindex(classes, fill_value=0)
    return PredictionSummary(
        out=out,
        n_inputs=int(len(result)),
        n_errors=int((result["error"] != "").sum()),
        n_resumed=len(done),
        counts={k: int(v) for k, v in counts.items()},
    )
