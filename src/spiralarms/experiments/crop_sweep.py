"""Selection of the image size (paper section 4.2.1, Figure 5).

Binary classifiers of m = 2 against m = 3 are trained on a balanced subset of at
most 300 galaxies per class, five runs per crop size "using the same training
configuration": by default the five runs share one split of the subset
(``split="shared"``, split seed ``split_seed``) and differ in their training seed
(initialisation, shuffling, augmentation); ``split="per_run"`` draws each run's split
from its own seed instead. Per size, the mean F1, its
standard deviation and the coefficient of variation CV = sigma / mu over the runs
are computed, and the size with the lowest CV is chosen ("a favourable balance
between stability and performance"). The paper chose 224 for both models.

The paper does not say which F1 of the binary task it reports; the default here is
the macro F1 (the mean of the two classes' F1), and ``f1`` names a class instead
(``"3"``: the F1 of m = 3, scikit-learn's binary default with m = 3 positive). The
crop sizes of Figure 5 are not in the text either: the default grid brackets 224
in 32-pixel steps, from 128 up to the whole 424 frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from spiralarms.config import ExperimentConfig, Settings
from spiralarms.errors import SpiralArmsError
from spiralarms.evaluation.metrics import repeat_statistics
from spiralarms.experiments.runner import RunSpec, run_config

__all__ = [
    "EXPERIMENT",
    "SPLIT_MODES",
    "CropSweepConfig",
    "plan_crop_sweep",
    "f1_column",
    "crop_statistics",
    "choose_crop",
]

#: The experiment's name in ``runs.csv``.
EXPERIMENT = "crop_sweep"

#: How the runs of one crop size are split: one split for all (``shared``, the
#: paper's "same training configuration") or one per run seed (``per_run``).
SPLIT_MODES: tuple[str, ...] = ("shared", "per_run")


class CropSweepConfig(Settings):
    """Settings of the crop-size sweep.

    Attributes
    ----------
    enabled : bool
        Run it.
    models : list of str
        Model labels swept (the paper: B0 and V2M).
    crops : list of int
        Centre-crop sizes in pixels (of the 424 frame).
    seeds : list of int
        One run per seed and size (the paper: five runs).
    classes : list of str
        The two classes of the binary task (the paper: 2 and 3).
    per_class : int
        Galaxies per class in the balanced subset, before the 70:30 split (the
        paper: 300; m = 3 has 298 on the real data).
    subset_seed : int
        Seed of the subset draw: every run of the sweep sees the same galaxies.
    split : {"shared", "per_run"}
        ``shared``: every run uses the split of ``split_seed`` and its own seed sets
        initialisation, shuffling and augmentation only (the paper's "same training
        configuration"); ``per_run``: each run's seed sets its split too.
    split_seed : int
        Seed of the shared split.
    f1 : str
        ``"macro"``, or a class of ``classes`` whose F1 is used.
    """

    enabled: bool = True
    models: list[str] = Field(default_factory=lambda: ["B0", "V2M"])
    crops: list[int] = Field(default_factory=lambda: [128, 160, 192, 224, 256, 288, 320, 384, 424])
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    classes: list[str] = Field(default_factory=lambda: ["2", "3"])
    per_class: int = Field(300, ge=2)
    subset_seed: int = Field(0, ge=0)
    split: Literal["shared", "per_run"] = "shared"
    split_seed: int = Field(0, ge=0)
    f1: str = "macro"


def plan_crop_sweep(
    settings: CropSweepConfig, configs: Mapping[str, ExperimentConfig], table: Mapping | None = None
) -> list[RunSpec]:
    """The sweep's runs: every model x crop size x seed.

    Parameters
    ----------
    settings : CropSweepConfig
    configs : mapping of str to ExperimentConfig
        Each model's training configuration (data source and overrides applied).
    table : mapping, optional
        Selection steps of the data source (``class_counts``), kept in every run.

    Returns
    -------
    list of RunSpec
        With ``data.crop``, ``data.seed``, ``data.cap = per_class``, no merge and, for
        a shared split, ``data.split_seed``; the binary subset in :attr:`RunSpec.table`.
    """
    split_seed = settings.split_seed if settings.split == "shared" else None
    subset = {"classes": list(settings.classes), "per_class": settings.per_class, "seed": settings.subset_seed}
    specs = []
    for model in settings.models:
        for crop in settings.crops:
            for seed in settings.seeds:
                config = run_config(configs[model], crop=crop, seed=seed, cap=settings.per_class,
                                    split_seed=split_seed)
                specs.append(RunSpec(EXPERIMENT, f"crop={crop}", model, config, {**(table or {}), "subset": subset}))
    return specs


def f1_column(f1: str = "macro") -> str:
    """The ``runs.csv`` column of the sweep's F1: ``macro_f1`` or ``f1_<class>``."""
    return "macro_f1" if f1 == "macro" else f"f1_{f1}"


def crop_statistics(runs: pd.DataFrame, f1: str = "macro") -> pd.DataFrame:
    """Mean F1, standard deviation and CV per model and crop size.

    Parameters
    ----------
    runs : pandas.DataFrame
        ``runs.csv`` rows; those of the crop sweep are used.
    f1 : str, default "macro"
        Which F1 (see :class:`CropSweepConfig`).

    Returns
    -------
    pandas.DataFrame
        Columns ``model, crop, n, mean, std, cv, cv_percent`` (std with ``ddof=1``,
        :func:`~spiralarms.evaluation.metrics.repeat_statistics`), sorted by model
        (in order of appearance) and crop.

    Raises
    ------
    SpiralArmsError
        If the F1 column is missing.
    """
    column = f1_column(f1)
    sweep = runs[runs["experiment"] == EXPERIMENT]
    if sweep.empty:
        return pd.DataFrame(columns=["model", "crop", "n", "mean", "std", "cv", "cv_percent"])
    if column not in sweep.columns:
        raise SpiralArmsError(f"runs table: no column {column!r} for the crop sweep's F1 ({f1})")
    # One value per run: a run shared by two rows (same key) counts once.
    sweep = sweep.drop_duplicates(subset=["model", "crop", "seed"])
    rows = []
    for model in pd.unique(sweep["model"]):
        part = sweep[sweep["model"] == model]
        for crop in sorted(pd.unique(part["crop"])):
            stats = repeat_statistics(part.loc[part["crop"] == crop, column].astype(float).to_numpy())
            rows.append({"model": model, "crop": int(crop), **stats, "cv_percent": 100.0 * stats["cv"]})
    return pd.DataFrame(rows, columns=["model", "crop", "n", "mean", "std", "cv", "cv_percent"])


def choose_crop(statistics: pd.DataFrame) -> dict[str, int]:
    """The crop size with the lowest CV, per model (the paper's rule).

    Ties (e.g. one run per size, CV 0 everywhere) go to the higher mean F1, then to
    the smaller crop. Sizes whose CV is undefined (mean F1 of 0) are chosen only if
    no other size is left.

    Parameters
    ----------
    statistics : pandas.DataFrame
        :func:`crop_statistics` output.

    Returns
    -------
    dict of str to int
        Model label -> chosen crop size.
    """
    chosen = {}
    for model in pd.unique(statistics["model"]):
        part = statistics[statistics["model"] == model]
        cv = part["cv"].astype(float).to_numpy()
        order = np.lexsort((part["crop"].to_numpy(), -part["mean"].to_numpy(), np.where(np.isnan(cv), np.inf, cv)))
        chosen[str(model)] = int(part["crop"].to_numpy()[order[0]])
    return chosen
