"""Which galaxies the galleries of Figures 9 and 10 show.

Figure 9: for each class, the validation galaxies predicted correctly with the highest
probability ("top-scoring"). Figure 10: for each true class, the galaxies predicted
wrongly with the highest probability for the wrong class. A class without such a
galaxy keeps its row, empty and labelled.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from spiralarms.errors import SpiralArmsError
from spiralarms.io.run_folder import RunFolder

__all__ = ["GALLERY_KINDS", "select_gallery", "validation_predictions", "load_images"]

#: The two galleries: most confident correct (Figure 9) and wrong (Figure 10) galaxies.
GALLERY_KINDS: tuple[str, ...] = ("correct", "wrong")


def _check_predictions(predictions: pd.DataFrame, classes: Sequence[str]) -> None:
    if not isinstance(predictions, pd.DataFrame):
        raise SpiralArmsError(f"predictions: expected a pandas DataFrame, got {type(predictions).__name__}")
    needed = ["id", "label", "pred", *(f"p_{c}" for c in classes)]
    missing = [c for c in needed if c not in predictions.columns]
    if missing:
        raise SpiralArmsError(f"predictions: missing column(s) {', '.join(missing)}")


def select_gallery(
    predictions: pd.DataFrame,
    classes: Sequence[str],
    n_per_class: int = 3,
    kind: str = "correct",
) -> dict[str, pd.DataFrame]:
    """The most confident correct or wrong galaxies of each class.

    Parameters
    ----------
    predictions : pandas.DataFrame
        One row per galaxy with ``id``, ``label`` (true class), ``pred`` (predicted
        class) and ``p_<class>`` for every class, as ``val_predictions.csv``.
    classes : sequence of str
        Class names in order; one gallery row each.
    n_per_class : int, default 3
        Galaxies per row, at most.
    kind : {"correct", "wrong"}, default "correct"
        ``"correct"``: ``label == pred``, by decreasing probability of the class
        (Figure 9). ``"wrong"``: ``label != pred``, grouped by true class, by
        decreasing probability of the (wrong) predicted class (Figure 10).

    Returns
    -------
    dict
        ``{class: DataFrame}`` for every class, in class order, each with the columns
        of ``predictions`` plus ``prob`` (probability of the predicted class); an
        empty frame where the class has no such galaxy. Ties keep the input order.

    Raises
    ------
    SpiralArmsError
        On a missing column, an unknown ``kind`` or a bad ``n_per_class``.
    """
    if kind not in GALLERY_KINDS:
        raise SpiralArmsError(f"kind {kind!r}: choose {' or '.join(GALLERY_KINDS)}")
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, numbers.Integral) or n_per_class < 1:
        raise SpiralArmsError(f"n_per_class must be a positive integer, got {n_per_class!r}")
    classes = [str(c) for c in classes]
    _check_predictions(predictions, classes)
    table = predictions.copy()
    table["label"] = table["label"].astype(str)
    table["pred"] = table["pred"].astype(str)
    unknown = sorted(set(table["pred"]) - set(classes))
    if unknown:
        raise SpiralArmsError(f"predictions: predicted class(es) {', '.join(unknown)} not among {', '.join(classes)}")
    probs = table[[f"p_{c}" for c in classes]].to_numpy(dtype=np.float64)
    table["prob"] = probs[np.arange(len(table)), [classes.index(p) for p in table["pred"]]]
    chosen = table[(table["label"] == table["pred"]) == (kind == "correct")]
    return {
        c: chosen[chosen["label"] == c]
        .sort_values("prob", ascending=False, kind="stable")
        .head(int(n_per_class))
        .reset_index(drop=True)
        for c in classes
    }


def load_images(files: Sequence[str | os.PathLike], crop: int | None, grey: bool) -> torch.Tensor:
    """Read image files the way the classifier saw them at validation time.

    Parameters
    ----------
    files : sequence of path
    crop : int or None
        Centre-crop side (the run's ``crop``).
    grey : bool
        One luminance channel.

    Returns
    -------
    torch.Tensor
        ``(N, C, crop, crop)`` float32 in [0, 1].

    Raises
    ------
    SpiralArmsError
        If a file cannot be read or is smaller than the crop (the message names it).
    """
    from spiralarms.data.images import load_image
    from spiralarms.data.transforms import build_eval_transform

    transform = build_eval_transform(crop=crop, grey=grey)
    images = []
    for file in files:
        try:
            images.append(transform(load_image(file, grey=grey)))
        except SpiralArmsError as exc:
            message = str(exc)
            raise SpiralArmsError(message if str(file) in message else f"{file}: {message}") from None
    if not images:
        raise SpiralArmsError("no image files given")
    shapes = {tuple(i.shape) for i in images}
    if len(shapes) > 1:
        raise SpiralArmsError(
            f"images differ in size after the crop ({sorted(shapes)}); give a crop or same-size images"
        )
    return torch.stack(images)


def _read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"id": str, "label": str, "pred": str}, keep_default_na=False)


def validation_predictions(run_dir: str | os.PathLike, module=None, batch_size: int = 32) -> pd.DataFrame:
    """A run's validation galaxies with their prediction and image file.

    Reads ``RUN/val_predictions.csv`` (written by training) and joins the image files
    from ``RUN/split.csv``; if the predictions file is missing, predicts the
    ``split == "val"`` rows of ``split.csv`` with ``module`` (through
    :func:`spiralarms.predictions.predict_arrays`, the package's one inference path).

    Parameters
    ----------
    run_dir : path
        Run folder.
    module : ArmClassifierModule, optional
        The run's model, needed only when ``val_predictions.csv`` is missing; its
        card gives the classes, crop and grey setting.
    batch_size : int, default 32

    Returns
    -------
    pandas.DataFrame
        ``id``, ``label``, ``pred``, ``p_<class>`` and ``file`` (ids as strings).

    Raises
    ------
    SpiralArmsError
        If ``split.csv`` is missing or lacks columns, or there is no validation row.
    """
    run_dir = Path(run_dir)
    split_file = RunFolder(run_dir).require_split()
    split = _read_table(split_file)
    missing = [c for c in ("id", "label", "split", "file") if c not in split.columns]
    if missing:
        raise SpiralArmsError(f"{split_file}: missing column(s) {', '.join(missing)}")
    val = split[split["split"] == "val"].reset_index(drop=True)
    if val.empty:
        raise SpiralArmsError(f"{split_file}: no validation rows (split == 'val')")
    predictions_file = RunFolder(run_dir).val_predictions
    if predictions_file.is_file():
        predictions = _read_table(predictions_file)
        for column in ("id", "label", "pred"):
            if column not in predictions.columns:
                raise SpiralArmsError(f"{predictions_file}: missing column {column!r}")
        files = val.drop_duplicates("id").set_index("id")["file"]
        predictions["file"] = predictions["id"].map(files)
        lost = predictions["file"].isna()
        if lost.any():
            first = predictions.loc[lost, "id"].iloc[0]
            raise SpiralArmsError(f"{predictions_file}: {int(lost.sum())} id(s) not in split.csv (first {first})")
        return predictions
    if module is None:
        raise SpiralArmsError(f"{run_dir}: no val_predictions.csv; pass the model to predict the validation set")
    from spiralarms.data.dataset import GalaxyDataset
    from spiralarms.data.transforms import build_eval_transform
    from spiralarms.predictions.inference import predict_arrays

    card = module.card
    classes = [str(c) for c in card.classes]
    dataset = GalaxyDataset(val, classes, build_eval_transform(crop=card.crop, grey=card.grey), grey=card.grey,
                            label_column=None)
    p = predict_arrays(module, dataset, batch_size=batch_size)
    table = pd.DataFrame({"id": val["id"], "label": val["label"], "pred": [classes[i] for i in p.argmax(axis=1)]})
    for j, c in enumerate(classes):
        table[f"p_{c}"] = p[:, j]
    table["file"] = val["file"]
    return table
