"""How each table of a reproduction capped and split its galaxies, in words and counts.

The paper caps every class at 300 galaxies, then splits the capped set 70:30
(section 4.2.2), and compares its models, and its class configurations, on the same
validation galaxies (sections 5.1 and 5.2). Every run records its cap, where the cap
applied (``cap_scope``), its split seed and its per-class training and validation
counts in ``runs.csv``; this module turns those into the protocol sentence under
each table of the report, checks from each run's ``split.csv`` whether compared runs
really validated on the same galaxies, and tabulates the split sizes against the
paper's (about 30 % of each capped class).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from spiralarms.experiments.paper import CLASS_COUNTS, PAPER_CAP, PAPER_CLASSES, PAPER_VAL_FRACTION
from spiralarms.experiments.runner import CLASS_ORDER, read_run_table
from spiralarms.io.run_folder import RunFolder

__all__ = [
    "cap_words",
    "split_words",
    "validation_ids",
    "shared_validation",
    "class_counts",
    "split_size_rows",
    "paper_split_cells",
]


def _int(value) -> int | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else int(number)


def cap_words(row: pd.Series) -> str:
    """``"capped at 300 per class before the 70:30 split"`` and the like, for one run."""
    cap = _int(row.get("cap"))
    if cap is None:
        return "no cap, split 70:30"
    if str(row.get("cap_scope")) == "train":
        return (f"split 70:30, then the training pool capped at {cap} per class (validation keeps the natural "
                "class mix; the paper caps before the split)")
    return f"capped at {cap} per class, then split 70:30 (the paper's order)"


def split_words(part: pd.DataFrame) -> str:
    """The split seeds of a group of runs: one shared split, or one per run."""
    seeds = sorted({s for s in (_int(v) for v in part["split_seed"]) if s is not None})
    if len(seeds) == 1:
        return f"one split (split seed {seeds[0]}) shared by every run"
    return f"one split per run (split seeds {', '.join(map(str, seeds))})"


def validation_ids(out: str | Path, row: pd.Series) -> frozenset[str] | None:
    """The validation galaxies of a run, from its ``split.csv``; ``None`` if absent."""
    split = read_run_table(out, str(row.get("run_dir", "")), RunFolder.SPLIT)
    if split is None:
        return None
    return frozenset(split.loc[split["split"] == "val", "id"])


def shared_validation(out: str | Path, part: pd.DataFrame) -> str:
    """Whether the runs of ``part`` validated on the same galaxies, as a sentence.

    Checked from the runs' ``split.csv`` where they exist; otherwise from the
    recorded split seeds and caps alone.
    """
    if len(part) < 2:
        return ""
    found = [validation_ids(out, r) for _, r in part.iterrows()]
    if all(ids is not None for ids in found):
        n = len(found[0])
        if all(ids == found[0] for ids in found[1:]):
            return f"{_all(len(part))} validated on the same {n} galaxies (checked: identical validation ids)."
        return f"The {len(part)} runs validated on different galaxies (their validation ids differ)."
    keys = part[["split_seed", "cap", "cap_scope"]].astype(str).drop_duplicates()
    if len(keys) == 1:
        return f"{_all(len(part))} share the split seed, cap and cap scope, hence one validation set."
    return f"The {len(part)} runs differ in split seed, cap or cap scope: their validation sets differ."


def _all(n: int) -> str:
    return "Both runs" if n == 2 else f"All {n} runs"


def class_counts(row: pd.Series) -> dict[str, tuple[int, int]]:
    """``{class: (validation, training)}`` galaxies of a run, classes in table order."""
    classes = str(row.get("classes", "")).split()
    ordered = [c for c in CLASS_ORDER if c in classes] + [c for c in classes if c not in CLASS_ORDER]
    out = {}
    for name in ordered:
        val, train = _int(row.get(f"support_{name}")), _int(row.get(f"train_{name}"))
        if val is not None and train is not None:
            out[name] = (val, train)
    return out


def _cells(counts: dict[str, tuple[int, int]]) -> str:
    return ", ".join(f"m={c} {v}/{v + t}" for c, (v, t) in counts.items())


def paper_split_cells(cap: int = PAPER_CAP, fraction: float = PAPER_VAL_FRACTION) -> str:
    """The paper's expected validation counts: ``fraction`` of each class capped at ``cap``."""
    cells = []
    for name in PAPER_CLASSES:
        capped = min(CLASS_COUNTS[name], cap)
        cells.append(f"m={name} ≈{fraction * capped:.0f}/{capped}")
    return ", ".join(cells)


def split_size_rows(runs: pd.DataFrame, experiments: Sequence[str]) -> list[list[str]]:
    """One row per distinct split of the reproduction, for the split-size table.

    Runs of one experiment with the same setting (crop sizes pooled for the sweep),
    cap, cap scope, split seed and classes share a split; the row lists their models
    and, per class, validation / (validation + training) galaxies.
    """
    rows = []
    for experiment in experiments:
        part = runs[runs["experiment"] == experiment]
        if part.empty:
            continue
        part = part.assign(_setting=part["setting"] if experiment != "crop_sweep" else "every crop size")
        keys = ["_setting", "cap", "cap_scope", "split_seed", "classes"]
        for _, group in part.groupby(keys, sort=False, dropna=False):
            first = group.iloc[0]
            counts = class_counts(first)
            n_val = sum(v for v, _ in counts.values())
            n_all = sum(v + t for v, t in counts.values())
            share = f"{100 * n_val / n_all:.0f} %" if n_all else "–"
            cap = _int(first["cap"])
            rows.append([
                experiment,
                str(first["_setting"]),
                ", ".join(dict.fromkeys(group["model"].astype(str))),
                "none" if cap is None else str(cap),
                "–" if cap is None else ("whole set, before the split" if first["cap_scope"] != "train"
                                         else "training pool only"),
                str(_int(first["split_seed"])),
                _cells(counts) or "–",
                share,
            ])
    return rows
