"""All data against down-sampled data (paper section 4.2.2, Table 3).

The B0 model is trained once on all the data (heavily imbalanced: about 10,000
galaxies with m = 2, fewer than 35 with m = 4 or 5+) and once with each class capped
at 300 galaxies (the majority classes m = 2 and ? randomly sub-sampled), each set
split 70:30 after its own down-sampling, as the paper (Figure 6 shows both sets);
Table 3 gives per-class precision, recall and F1 of both, the relative change of F1,
and the V2M model trained on the down-sampled data for comparison (section 5.1).
The relative change is ``(F1_down - F1_all) / F1_all``, which reproduces the
paper's "Diff. in F1-Score" column (m = 1: (0.872 - 0.535) / 0.535 = 63.0 %).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import pandas as pd
from pydantic import Field

from spiralarms.catalog.classes import ARM_CLASSES
from spiralarms.config import ExperimentConfig
from spiralarms.experiments.paper import TABLE3_F1_CHANGE, table3_value
from spiralarms.experiments.runner import CappedRunsSettings, RunSpec, run_config

__all__ = [
    "EXPERIMENT",
    "ALL_DATA",
    "DOWN_SAMPLED",
    "DownsamplingConfig",
    "plan_downsampling",
    "relative_change",
    "table3",
]

#: The experiment's name in ``runs.csv``.
EXPERIMENT = "downsampling"
#: Its two settings, in the paper's words.
ALL_DATA = "all data"
DOWN_SAMPLED = "down-sampled"

_METRICS = ("precision", "recall", "f1")


class DownsamplingConfig(CappedRunsSettings):
    """Settings of the all-data against down-sampled comparison.

    With the fields of :class:`~spiralarms.experiments.runner.CappedRunsSettings`.

    Attributes
    ----------
    model : str
        The model trained both ways (the paper: B0).
    compare : list of str
        Models shown trained on the down-sampled data only (the paper: V2M).
    cap : int
        Per-class cap of the down-sampled runs (the paper: 300), before their split
        unless ``data.cap_scope`` is ``train``.
    """

    model: str = "B0"
    compare: list[str] = Field(default_factory=lambda: ["V2M"])


def plan_downsampling(
    settings: DownsamplingConfig,
    configs: Mapping[str, ExperimentConfig],
    crop_for: Callable[[str, int | None], int],
    table: Mapping | None = None,
) -> list[RunSpec]:
    """The runs of Table 3: the model on all data and down-sampled, the others down-sampled.

    Parameters
    ----------
    settings : DownsamplingConfig
    configs : mapping of str to ExperimentConfig
        Each model's training configuration.
    crop_for : callable
        ``crop_for(model, crop)`` -> the crop size to use.
    table : mapping, optional
        Selection steps of the data source.

    Returns
    -------
    list of RunSpec
    """
    specs = []
    runs = [(settings.model, ALL_DATA, None), (settings.model, DOWN_SAMPLED, settings.cap)]
    runs += [(m, DOWN_SAMPLED, settings.cap) for m in settings.compare if m != settings.model]
    for model, setting, cap in runs:
        config = run_config(configs[model], crop=crop_for(model, settings.crop), seed=settings.seed, cap=cap)
        specs.append(RunSpec(EXPERIMENT, setting, model, config, dict(table or {})))
    return specs


def relative_change(before: float, after: float) -> float:
    """``(after - before) / before``; ``nan`` when ``before`` is 0 or missing.

    >>> round(relative_change(0.535, 0.872), 3)
    0.63
    """
    if before is None or after is None or not math.isfinite(before) or not math.isfinite(after) or before == 0:
        return float("nan")
    return (after - before) / before


def table3(
    runs: pd.DataFrame, model: str = "B0", compare: Sequence[str] = ("V2M",), classes: Sequence[str] = ARM_CLASSES
) -> pd.DataFrame:
    """Table 3 from ``runs.csv``, with the paper's values beside.

    Parameters
    ----------
    runs : pandas.DataFrame
        ``runs.csv`` rows; the down-sampling experiment's are used.
    model : str, default "B0"
        The model trained on all data and down-sampled.
    compare : sequence of str, default ("V2M",)
        Models trained on the down-sampled data, shown beside.
    classes : sequence of str
        Rows (the six T11 classes).

    Returns
    -------
    pandas.DataFrame
        One row per class ``m``; columns ``<model>_all_<metric>``,
        ``<model>_down_<metric>`` (metric: precision, recall, f1), ``f1_change``
        (relative), ``<compare>_down_<metric>``, then the same with a ``paper_``
        prefix (empty where the paper has no value). Missing runs give empty cells.
    """
    part = runs[runs["experiment"] == EXPERIMENT]
    columns = [(model, "all"), (model, "down")] + [(m, "down") for m in compare if m != model]
    out = pd.DataFrame({"m": list(classes)})

    def row_of(label: str, data: str) -> pd.Series | None:
        setting = ALL_DATA if data == "all" else DOWN_SAMPLED
        rows = part[(part["model"] == label) & (part["setting"] == setting)]
        return rows.iloc[0] if len(rows) else None

    for label, data in columns:
        row = row_of(label, data)
        for metric in _METRICS:
            name = f"{metric}_"
            values = [row.get(name + c, float("nan")) if row is not None else float("nan") for c in classes]
            out[f"{label}_{data}_{metric}"] = pd.to_numeric(pd.Series(values), errors="coerce")
    out["f1_change"] = [
        relative_change(a, b) for a, b in zip(out[f"{model}_all_f1"], out[f"{model}_down_f1"], strict=True)
    ]
    for label, data in columns:
        for metric in _METRICS:
            out[f"paper_{label}_{data}_{metric}"] = [table3_value(label, data, c, metric) for c in classes]
    out["paper_f1_change"] = [TABLE3_F1_CHANGE.get(c) if model == "B0" else None for c in classes]
    return out
