"""Model comparison (paper section 5.1): B0 against V2M, or any backbones.

Each model is trained on the down-sampled six-class data (the configuration that
section 4.2.2 retains) and its per-class precision, recall and F1 are set side by
side, with the paper's Table 3 values for B0 and V2M. A model is any label of the
reproduction's ``models`` mapping, i.e. any training configuration: the registry's
``zoobot-b0``, ``v2m-imagenet``, ``lite0-imagenet`` or a timm name as
``model.backbone``, frozen or trained.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pandas as pd
from pydantic import Field

from spiralarms.catalog.classes import ARM_CLASSES
from spiralarms.config import ExperimentConfig
from spiralarms.experiments.paper import table3_value
from spiralarms.experiments.runner import CappedRunsSettings, RunSpec, run_config

__all__ = ["EXPERIMENT", "SETTING", "BackbonesConfig", "plan_backbones", "model_comparison"]

#: The experiment's name in ``runs.csv``.
EXPERIMENT = "backbones"
#: Its one setting.
SETTING = "down-sampled"


class BackbonesConfig(CappedRunsSettings):
    """Settings of the model comparison.

    With the fields of :class:`~spiralarms.experiments.runner.CappedRunsSettings`.

    Attributes
    ----------
    models : list of str
        Model labels compared (the paper: B0 and V2M).
    cap : int
        Per-class cap (the paper: 300), applied as the models' ``data.cap_scope`` says
        (before the split, the paper's).
    """

    models: list[str] = Field(default_factory=lambda: ["B0", "V2M"])


def plan_backbones(
    settings: BackbonesConfig,
    configs: Mapping[str, ExperimentConfig],
    crop_for: Callable[[str, int | None], int],
    table: Mapping | None = None,
) -> list[RunSpec]:
    """One down-sampled six-class run per model.

    Parameters
    ----------
    settings : BackbonesConfig
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
        config = run_config(configs[model], crop=crop_for(model, settings.crop), seed=settings.seed, cap=settings.cap)
        specs.append(RunSpec(EXPERIMENT, SETTING, model, config, dict(table or {})))
    return specs


def model_comparison(
    runs: pd.DataFrame, models: Sequence[str] | None = None, classes: Sequence[str] = ARM_CLASSES
) -> pd.DataFrame:
    """Per-class precision, recall and F1 of each model, with the paper's F1 and the difference.

    Parameters
    ----------
    runs : pandas.DataFrame
        ``runs.csv`` rows; the model comparison's are used.
    models : sequence of str, optional
        Column order; default: the models in order of appearance.
    classes : sequence of str
        Rows; a final ``macro`` row gives the macro F1 (the paper's: the mean of
        its six per-class F1 values).

    Returns
    -------
    pandas.DataFrame
        Columns ``m``, then per model ``<model>_precision``, ``<model>_recall``,
        ``<model>_f1``, ``<model>_paper_f1``, ``<model>_f1_difference`` (ours -
        paper; empty where the paper has no value).
    """
    part = runs[runs["experiment"] == EXPERIMENT]
    models = list(models) if models is not None else list(pd.unique(part["model"]))
    out = pd.DataFrame({"m": [*classes, "macro"]})
    for model in models:
        rows = part[part["model"] == model]
        row = rows.iloc[0] if len(rows) else pd.Series(dtype=float)
        out[f"{model}_precision"] = [_value(row, f"precision_{c}") for c in classes] + [float("nan")]
        out[f"{model}_recall"] = [_value(row, f"recall_{c}") for c in classes] + [float("nan")]
        out[f"{model}_f1"] = [_value(row, f"f1_{c}") for c in classes] + [_value(row, "macro_f1")]
        paper = [table3_value(model, "down", c, "f1") for c in classes]
        macro = sum(paper) / len(paper) if all(p is not None for p in paper) else None
        out[f"{model}_paper_f1"] = pd.to_numeric(pd.Series([*paper, macro], dtype=object), errors="coerce")
        out[f"{model}_f1_difference"] = out[f"{model}_f1"] - out[f"{model}_paper_f1"]
    return out


def _value(row: pd.Series, key: str) -> float:
    """A number from a runs.csv row; ``nan`` where the column or the value is missing."""
    return float(row[key]) if key in row.index and pd.notna(row[key]) else float("nan")
