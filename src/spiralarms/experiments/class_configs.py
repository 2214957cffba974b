"""Class configurations (paper section 5.2, Figure 7).

Both models are trained on the down-sampled data in three configurations: all six
classes, m = 3 and 4 merged (``3,4``) and m = 4 and 5+ merged (``4,5+``); Figure 7
shows their row-normalised validation confusion matrices (rows: GZ2 label, columns:
prediction), models in rows and configurations in columns.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field

from spiralarms.catalog.classes import parse_merge
from spiralarms.config import ExperimentConfig
from spiralarms.errors import SpiralArmsError
from spiralarms.evaluation.metrics import normalised_confusion
from spiralarms.experiments.paper import FIGURE7_CLAIMS
from spiralarms.experiments.runner import CappedRunsSettings, RunSpec, run_config
from spiralarms.io.run_folder import RunFolder

__all__ = [
    "EXPERIMENT",
    "ClassConfigsConfig",
    "setting_name",
    "merge_name",
    "plan_class_configs",
    "confusion_matrices",
    "plot_figure7",
    "check_claims",
]

#: The experiment's name in ``runs.csv``.
EXPERIMENT = "class_configs"


class ClassConfigsConfig(CappedRunsSettings):
    """Settings of the class-configuration comparison.

    With the fields of :class:`~spiralarms.experiments.runner.CappedRunsSettings`.

    Attributes
    ----------
    models : list of str
        Model labels (the paper: B0 and V2M, Figure 7's rows).
    merges : list of str or None
        Class configurations (Figure 7's columns): ``None`` (or ``all``) for six
        classes, ``"3,4"``, ``"4,5+"``.
    cap : int
        Per-class cap of the six-class set (the paper: 300, down-sampled), before the
        split unless ``data.cap_scope`` is ``train``; every merge shares that split.
    """

    models: list[str] = Field(default_factory=lambda: ["B0", "V2M"])
    merges: list[str | None] = Field(default_factory=lambda: [None, "3,4", "4,5+"])


def merge_name(merge: str | None) -> str:
    """``"all"`` for no merge, else the merge as written (``"3,4"``)."""
    members = parse_merge(merge)
    return "all" if members is None else ",".join(members)


def setting_name(merge: str | None) -> str:
    """The configuration in the paper's words: ``all classes``, ``3,4 merged``."""
    name = merge_name(merge)
    return "all classes" if name == "all" else f"{name} merged"


def plan_class_configs(
    settings: ClassConfigsConfig,
    configs: Mapping[str, ExperimentConfig],
    crop_for: Callable[[str, int | None], int],
    table: Mapping | None = None,
) -> list[RunSpec]:
    """The runs of Figure 7: every model x class configuration.

    Parameters
    ----------
    settings : ClassConfigsConfig
    configs : mapping of str to ExperimentConfig
    crop_for : callable
        ``crop_for(model, crop)`` -> the crop size to use.
    table : mapping, optional
        Selection steps of the data source.

    Returns
    -------
    list of RunSpec
    """
    specs = []
    for model in settings.models:
        for merge in settings.merges:
            members = parse_merge(merge)
            config = run_config(
                configs[model],
                crop=crop_for(model, settings.crop),
                seed=settings.seed,
                cap=settings.cap,
                merge=None if members is None else ",".join(members),
            )
            specs.append(RunSpec(EXPERIMENT, setting_name(merge), model, config, dict(table or {})))
    return specs


def confusion_matrices(runs: pd.DataFrame, out: str | Path) -> dict[tuple[str, str], dict]:
    """The confusion matrices of the class-configuration runs, from their ``metrics.json``.

    Parameters
    ----------
    runs : pandas.DataFrame
        ``runs.csv`` rows; the class-configuration experiment's are used.
    out : path-like
        The reproduction folder (``run_dir`` is relative to it).

    Returns
    -------
    dict
        ``(model, merge name) -> {"classes": [...], "counts": array, "normalised":
        array}``, in the order of the rows.

    Raises
    ------
    SpiralArmsError
        If a run's ``metrics.json`` is missing.
    """
    found = {}
    for _, row in runs[runs["experiment"] == EXPERIMENT].iterrows():
        path = RunFolder(Path(out) / str(row["run_dir"])).metrics
        try:
            metrics = json.loads(path.read_text(encoding="utf-8"))
        except OSError:
            raise SpiralArmsError(f"{path}: missing; rerun 'spiralarms reproduce' to finish the run") from None
        counts = np.asarray(metrics["confusion_matrix"], dtype=int)
        merge = row["merge"] if isinstance(row["merge"], str) else "all"
        found[(str(row["model"]), merge)] = {
            "classes": list(metrics["classes"]),
            "counts": counts,
            "normalised": normalised_confusion(counts),
        }
    return found


def plot_figure7(matrices: Mapping[tuple[str, str], dict], models: Sequence[str], merges: Sequence[str]):
    """Figure 7: row-normalised confusion matrices, models in rows, configurations in columns.

    Parameters
    ----------
    matrices : mapping
        :func:`confusion_matrices` output.
    models : sequence of str
        Row order (model labels).
    merges : sequence of str
        Column order (merge names: ``all``, ``3,4``, ``4,5+``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from spiralarms.evaluation.figures import plot_confusion_matrix

    fig, axes = plt.subplots(len(models), len(merges), figsize=(4.6 * len(merges), 4.2 * len(models)), squeeze=False)
    for i, model in enumerate(models):
        for j, merge in enumerate(merges):
            ax = axes[i][j]
            entry = matrices.get((model, merge))
            title = f"{model}, {setting_name(None if merge == 'all' else merge)}"
            if entry is None:
                ax.set_axis_off()
                ax.set_title(f"{title}: not run")
                continue
            plot_confusion_matrix(entry["counts"], entry["classes"], normalise=True, title=title, ax=ax)
    fig.tight_layout()
    return fig


def check_claims(matrices: Mapping[tuple[str, str], dict]) -> pd.DataFrame:
    """The paper's statements about Figure 7 beside the reproduced values.

    Parameters
    ----------
    matrices : mapping
        :func:`confusion_matrices` output.

    Returns
    -------
    pandas.DataFrame
        One row per claim of :data:`~spiralarms.experiments.paper.FIGURE7_CLAIMS`
        whose model and configuration were run: ``model, config, cell, paper, ours,
        difference, holds, source``. ``cell`` is ``true -> pred`` or ``min diagonal``;
        ``holds`` tells whether ours satisfies the stated comparison.
    """
    rows = []
    for claim in FIGURE7_CLAIMS:
        entry = matrices.get((claim["model"], claim["config"]))
        if entry is None:
            continue
        classes, values = entry["classes"], entry["normalised"]
        if claim["pred"] == "diagonal_min":
            cell = "min diagonal"
            ours = float(np.min(np.diag(values)))
        else:
            cell = f"{claim['true']} -> {claim['pred']}"
            if claim["true"] not in classes or claim["pred"] not in classes:
                continue
            ours = float(values[classes.index(claim["true"]), classes.index(claim["pred"])])
        paper, op = claim["value"], claim["op"]
        holds = {"=": math.isclose(ours, paper, abs_tol=0.05), ">=": ours >= paper, ">": ours > paper}[op]
        rows.append({
            "model": claim["model"],
            "config": claim["config"],
            "cell": cell,
            "paper": f"{'' if op == '=' else op + ' '}{paper:.3g}",
            "ours": ours,
            "difference": ours - paper,
            "holds": bool(holds),
            "source": claim["source"],
        })
    return pd.DataFrame(rows, columns=["model", "config", "cell", "paper", "ours", "difference", "holds", "source"])
