"""Training runs of a reproduction, cached by the hash of their resolved configuration.

Each run of an experiment is a :class:`RunSpec`: a resolved training configuration
(:class:`~spiralarms.config.ExperimentConfig`) and, where the experiment selects its
galaxies further than the configuration says (the binary 2-vs-3 subset of the crop
sweep, a class-count profile of the data source), a description of those steps.
Its key is the configuration's :func:`~spiralarms.config.config_hash`, combined with
that description when there is one; the run lives in ``OUT/runs/<key>``.

:class:`RunCache` runs specs one by one:

- a run whose ``metrics.json`` exists and whose ``train_summary.json`` carries the
  spec's configuration hash is *finished*: it is read, not trained;
- any other run is trained with :func:`~spiralarms.training.train`, which resumes
  from ``checkpoints/last.ckpt`` when a previous attempt was killed;
- the same key met twice in one reproduction (the down-sampled B0 run is Table 3's,
  Figure 7's and section 5.1's) trains once.

Every run shares one embedding cache folder (``OUT/cache``): a frozen backbone's
features are reused by any run with the same backbone, images, labels, transforms,
views and seed, e.g. the validation set of the all-data and down-sampled runs, or
every run after a change of epochs, learning rate or head width.

``runs.csv`` has one row per run of an experiment (:data:`RUNS_COLUMNS`, then
per class: precision, recall, F1, support (validation galaxies) and training
galaxies, :data:`CLASS_PREFIXES`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from spiralarms.catalog.classes import ARM_CLASSES, arm_classes, class_mapping
from spiralarms.config import ExperimentConfig, Settings, config_hash
from spiralarms.data.splits import downsample_per_class
from spiralarms.data.store import PreparedStore, is_prepared_store
from spiralarms.errors import SpiralArmsError
from spiralarms.training import train
from spiralarms.training.datamodule import STRATA_COLUMN
from spiralarms.training.train import load_selection
from spiralarms.io.atomic import write_json
from spiralarms.io.run_folder import RunFolder
from spiralarms.io.tables import write_table

__all__ = [
    "CappedRunsSettings",
    "RunSpec",
    "RunCache",
    "RUNS_COLUMNS",
    "CLASS_ORDER",
    "METRIC_PREFIXES",
    "CLASS_PREFIXES",
    "resolve_config",
    "select_table",
    "limit_per_class",
    "read_runs",
    "read_run_table",
    "write_runs",
    "class_columns",
]

#: Every class name a configuration can have, in the order of the paper's tables.
CLASS_ORDER: tuple[str, ...] = ("1", "2", "3", "3,4", "4", "4,5+", "5+", "?")

#: Per-class metric columns of ``runs.csv``: ``<prefix>_<class>`` (``support``: the
#: class's validation galaxies).
METRIC_PREFIXES: tuple[str, ...] = ("precision", "recall", "f1", "support")

#: Every per-class column prefix: the metrics, then ``train`` (training galaxies).
CLASS_PREFIXES: tuple[str, ...] = (*METRIC_PREFIXES, "train")

#: Columns of ``runs.csv`` before the per-class ones.
RUNS_COLUMNS: tuple[str, ...] = (
    "experiment",
    "setting",
    "model",
    "backbone",
    "frozen",
    "seed",
    "crop",
    "merge",
    "cap",
    "cap_scope",
    "split_seed",
    "classes",
    "n_train",
    "n_val",
    "macro_f1",
    "accuracy",
    "epochs_run",
    "best_epoch",
    "cache_views",
    "wall_seconds",
    "status",
    "run_dir",
    "run_key",
    "config_hash",
)

#: Written into each run folder: the spec that made it.
SPEC_FILE = "reproduce.json"

def resolve_config(config: ExperimentConfig) -> ExperimentConfig:
    """A copy with absolute file paths, as :func:`~spiralarms.training.train` resolves them."""
    return config.with_absolute_paths()


def run_config(
    base: ExperimentConfig,
    *,
    crop: int,
    seed: int,
    cap: int | None,
    merge: str | None = None,
    split_seed: int | None = None,
) -> ExperimentConfig:
    """A copy of a model's training configuration with one run's data settings.

    Parameters
    ----------
    base : ExperimentConfig
        The model's configuration (left unchanged).
    crop, seed : int
        Centre crop and seed of the run.
    cap : int or None
        Per-class cap (``None``: all data); where it applies is the configuration's
        ``data.cap_scope``.
    merge : str or None
        Class merge (``"3,4"``, ``"4,5+"``) or ``None``.
    split_seed : int or None
        Seed of the split and the cap, when it is not the run's ``seed`` (runs that
        share one split).
    """
    config = copy.deepcopy(base)
    config.data.crop, config.data.seed = int(crop), int(seed)
    config.data.cap, config.data.merge = cap, merge
    config.data.split_seed = None if split_seed is None else int(split_seed)
    return config


class CappedRunsSettings(Settings):
    """Settings shared by the experiments of capped, one-seed runs (Table 3, Figure 7, section 5.1).

    Attributes
    ----------
    enabled : bool
        Run it.
    cap : int
        Per-class cap (the paper: 300, down-sampled), before the split unless the
        models' ``data.cap_scope`` is ``train``.
    seed : int
        Seed of every run.
    crop : int or None
        Crop size; ``None`` takes the crop sweep's choice for each model (see
        :func:`~spiralarms.experiments.reproduce.run_reproduction`).
    """

    enabled: bool = True
    cap: int = Field(300, ge=1)
    seed: int = Field(0, ge=0)
    crop: int | None = Field(None, ge=1)


@dataclass
class RunSpec:
    """One training run of an experiment.

    Attributes
    ----------
    experiment : str
        ``crop_sweep``, ``downsampling``, ``class_configs`` or ``backbones``.
    setting : str
        The experiment's setting, in the paper's words (``crop=224``, ``all data``,
        ``down-sampled``, ``3,4 merged``).
    model : str
        Model label (``B0``, ``V2M``).
    config : ExperimentConfig
        The training configuration, resolved (absolute paths).
    table : dict
        Selection steps beyond the configuration: ``class_counts`` (largest count
        per class, with ``counts_seed``) and ``subset`` (``classes``, ``per_class``,
        ``seed``: a balanced subset of some classes). Empty for none.
    """

    experiment: str
    setting: str
    model: str
    config: ExperimentConfig
    table: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.config = resolve_config(self.config)

    @property
    def seed(self) -> int:
        """The run's seed (initialisation, shuffling, augmentation; the split's too unless split_seed is set)."""
        return int(self.config.data.seed)

    @property
    def split_seed(self) -> int:
        """The seed of the run's split and cap."""
        return int(self.config.data.effective_split_seed)

    @property
    def config_hash(self) -> str:
        """:func:`~spiralarms.config.config_hash` of the resolved configuration."""
        return config_hash(self.config)

    @property
    def key(self) -> str:
        """The run's cache key: the configuration hash, with the table steps if any."""
        if not self.table:
            return self.config_hash
        text = json.dumps({"config": self.config_hash, "table": self.table}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def limit_per_class(labels: Sequence[str], counts: Mapping[str, int], seed: int = 0) -> np.ndarray:
    """Keep at most ``counts[c]`` items of each class ``c``, drawn at random.

    Parameters
    ----------
    labels : sequence of str
    counts : mapping of class to int
        Classes not named are kept whole.
    seed : int, default 0

    Returns
    -------
    numpy.ndarray
        Sorted int64 positions of the items kept.
    """
    y = np.array([str(v) for v in labels], dtype=object)
    rng = np.random.default_rng(seed)
    kept = []
    for name in sorted(set(y)):  # sorted: the draw does not depend on row order
        members = np.flatnonzero(y == name)
        limit = counts.get(name)
        if limit is not None and len(members) > limit:
            members = rng.choice(members, size=int(limit), replace=False)
        kept.append(members)
    return np.sort(np.concatenate(kept)).astype(np.int64) if kept else np.empty(0, dtype=np.int64)


def select_table(
    base: pd.DataFrame, merge: str | None, steps: Mapping[str, Any]
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """A run's galaxies and classes from the six-class selection.

    Parameters
    ----------
    base : pandas.DataFrame
        The clean sample with six-class ``label`` (and ``file``) columns.
    merge : str or None
        The run's class merge (``data.merge``).
    steps : mapping
        :attr:`RunSpec.table`: ``class_counts`` then ``subset``, in that order.

    Returns
    -------
    table : pandas.DataFrame
        With ``label`` after the merge and ``label_original`` (six classes), which
        the split stratifies by: every merge splits the same galaxies.
    classes : tuple of str

    Raises
    ------
    SpiralArmsError
        If a subset class has fewer than two galaxies.
    """
    table = base.reset_index(drop=True)
    if STRATA_COLUMN not in table.columns:
        # A prepared store has no label_original: its six-class label is the stratum,
        # so that a merge still splits as the six-class run does.
        table = table.assign(**{STRATA_COLUMN: table["label"].astype(str)})
    if steps.get("class_counts"):
        keep = limit_per_class(table["label"].astype(str), steps["class_counts"], steps.get("counts_seed", 0))
        table = table.iloc[keep].reset_index(drop=True)
    classes = arm_classes(merge)
    subset = steps.get("subset")
    if subset:
        wanted = [str(c) for c in subset["classes"]]
        table = table[table["label"].astype(str).isin(wanted)].reset_index(drop=True)
        counts = table["label"].astype(str).value_counts()
        short = [c for c in wanted if counts.get(c, 0) < 2]
        if short:
            raise SpiralArmsError(
                f"the {' vs '.join(wanted)} subset has {int(counts.get(short[0], 0))} galaxies of class {short[0]}: "
                "need at least 2 per class"
            )
        keep = downsample_per_class(table["label"].astype(str), cap=int(subset["per_class"]), seed=int(subset["seed"]))
        table = table.iloc[keep].reset_index(drop=True)
        classes = tuple(c for c in ARM_CLASSES if c in wanted)
    if merge is not None:
        table = table.assign(label=table["label"].astype(str).map(class_mapping(merge)))
    return table, tuple(classes)


def class_columns(classes: Sequence[str]) -> list[str]:
    """Per-class columns for ``classes``, in :data:`CLASS_PREFIXES` and :data:`CLASS_ORDER` order."""
    ordered = [c for c in CLASS_ORDER if c in classes] + sorted(set(classes) - set(CLASS_ORDER))
    return [f"{prefix}_{c}" for prefix in CLASS_PREFIXES for c in ordered]


def write_runs(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> pd.DataFrame:
    """Write ``runs.csv`` (atomically) and return it as a table.

    Parameters
    ----------
    rows : sequence of mapping
        One per run of an experiment (:meth:`RunCache.run` gives them).
    path : path-like

    Returns
    -------
    pandas.DataFrame
    """
    classes = {k.split("_", 1)[1] for row in rows for k in row if k.split("_", 1)[0] in CLASS_PREFIXES}
    frame = pd.DataFrame(list(rows), columns=[*RUNS_COLUMNS, *class_columns(classes)])
    # Counts stay integers where a cell is empty (cap of all-data runs, support of absent classes).
    counts = ["seed", "crop", "cap", "split_seed", "n_train", "n_val", "epochs_run", "best_epoch", "cache_views"]
    counts += [c for c in frame.columns if c.startswith(("support_", "train_"))]
    frame[counts] = frame[counts].apply(pd.to_numeric, errors="coerce").astype("Int64")
    write_table(frame, path)
    return frame


def read_run_table(out: str | Path, run_dir: str, name: str) -> pd.DataFrame | None:
    """A run folder's CSV table (ids and classes as text), or ``None`` if absent."""
    path = Path(out) / run_dir / name
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype={"id": str, "label": str, "pred": str, "split": str}, keep_default_na=False)


def read_runs(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ``runs.csv`` (class-like columns as strings).

    Raises
    ------
    SpiralArmsError
        If the file is missing or lacks a column of :data:`RUNS_COLUMNS`.
    """
    path = Path(path)
    if not path.is_file():
        raise SpiralArmsError(f"{path}: no runs table (run 'spiralarms reproduce' first)")
    frame = pd.read_csv(path, dtype={"setting": str, "model": str, "merge": str, "classes": str, "run_dir": str,
                                     "run_key": str, "config_hash": str, "backbone": str, "status": str,
                                     "cap_scope": str})
    missing = [c for c in RUNS_COLUMNS if c not in frame.columns]
    if missing:
        raise SpiralArmsError(f"{path}: not a runs table, no column {missing[0]!r}")
    return frame


class RunCache:
    """Run experiment specs, skipping finished runs and resuming killed ones.

    Parameters
    ----------
    out : path-like
        The reproduction folder; runs go to ``out/runs/<key>``.
    cache_dir : path-like, optional
        Shared embedding cache folder; default ``out/cache``.
    progress : bool, default False
        Progress bars while training.
    log : callable, optional
        Receives one line per run.
    checkpoints : {"best", "all", "none"}, default "best"
        What a run keeps of ``checkpoints/`` once finished: ``best.ckpt``, both
        files, or nothing.

    Attributes
    ----------
    n_trained : int
        Runs trained (or resumed) by this object.
    n_cached : int
        Runs found finished.
    """

    def __init__(
        self,
        out: str | os.PathLike,
        *,
        cache_dir: str | os.PathLike | None = None,
        progress: bool = False,
        log: Callable[[str], Any] | None = None,
        checkpoints: str = "best",
    ):
        if checkpoints not in ("best", "all", "none"):
            raise SpiralArmsError(f"checkpoints {checkpoints!r}: choose best, all or none")
        self.out = Path(out)
        self.checkpoints = checkpoints
        self.runs_dir = self.out / "runs"
        self.cache_dir = Path(cache_dir) if cache_dir is not None else self.out / "cache"
        self.progress = bool(progress)
        self.log = log or (lambda message: None)
        self.n_trained = 0
        self.n_cached = 0
        self._selections: dict[tuple, tuple[pd.DataFrame, tuple[str, ...]]] = {}
        self._seen: dict[str, tuple[dict, dict]] = {}
        self._count = 0

    def run_dir(self, spec: RunSpec) -> Path:
        """Folder of a spec's run."""
        return self.runs_dir / spec.key

    def is_finished(self, spec: RunSpec) -> bool:
        """Whether the run folder holds this spec's finished run.

        Finished: ``metrics.json`` exists and ``train_summary.json`` and
        ``reproduce.json`` carry the spec's configuration hash and key.
        """
        folder = self.run_dir(spec)
        try:
            summary = json.loads(RunFolder(folder).train_summary.read_text(encoding="utf-8"))
            recorded = json.loads((folder / SPEC_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return (
            RunFolder(folder).metrics.is_file()
            and summary.get("config_hash") == spec.config_hash
            and recorded.get("key") == spec.key
        )

    def selection(self, config: ExperimentConfig) -> tuple[pd.DataFrame, tuple[str, ...]]:
        """The six-class clean sample of a configuration's data source (read once)."""
        d = config.data
        # grey only matters for a prepared store (it holds one colour mode)
        store = bool(d.catalog) and is_prepared_store(d.catalog)
        key = (d.catalog, d.schema, d.image_root, d.mapping, d.grey if store else None)
        if key not in self._selections:
            base = copy.deepcopy(config)
            base.data.merge = None
            base.data.crop = 1  # the crop is checked per run (a prepared store holds one size)
            self._selections[key] = load_selection(base)
        return self._selections[key]

    def run(self, spec: RunSpec) -> dict[str, Any]:
        """Train (or read) a spec's run; its ``runs.csv`` row.

        Returns
        -------
        dict
            The row: :data:`RUNS_COLUMNS` and per-class metrics.

        Raises
        ------
        SpiralArmsError
            From training (missing data or weights, a bad configuration), or if a
            prepared store holds crops smaller than the run's.
        """
        self._count += 1
        folder = self.run_dir(spec)
        label = f"[{self._count}] {spec.experiment} {spec.model} {spec.setting} seed={spec.seed}"
        if spec.key in self._seen:
            metrics, summary = self._seen[spec.key]
            status = "shared"
        elif self.is_finished(spec):
            metrics = json.loads(RunFolder(folder).metrics.read_text(encoding="utf-8"))
            summary = json.loads(RunFolder(folder).train_summary.read_text(encoding="utf-8"))
            status = "cached"
            self.n_cached += 1
        else:
            metrics, summary, status = self._train(spec, folder, label)
            self.n_trained += 1
        self._seen[spec.key] = (metrics, summary)
        self.log(f"{label}: {status}, macro F1 {metrics['macro_f1']:.3f} ({summary.get('wall_seconds', 0):.0f} s)")
        return self._row(spec, folder, metrics, summary, status)

    def _train(self, spec: RunSpec, folder: Path, label: str) -> tuple[dict, dict, str]:
        config = copy.deepcopy(spec.config)
        config.train.progress = self.progress
        self._check_store_crop(config)
        base, _ = self.selection(config)
        table, classes = select_table(base, config.data.merge, spec.table)
        resumed = RunFolder(folder).last_checkpoint.is_file()
        folder.mkdir(parents=True, exist_ok=True)
        record = {"key": spec.key, "config_hash": spec.config_hash, "experiment": spec.experiment,
                  "setting": spec.setting, "model": spec.model, "table": spec.table}
        write_json(folder / SPEC_FILE, record)
        self.log(f"{label}: {'resuming' if resumed else 'training'} in {folder}")
        started = time.perf_counter()
        result = train(config, folder, resume=True, table=table, classes=classes, cache_dir=self.cache_dir)
        result.summary.setdefault("wall_seconds", time.perf_counter() - started)
        self._prune(folder)
        return result.metrics, result.summary, "resumed" if resumed else "trained"

    def _prune(self, folder: Path) -> None:
        """Drop the checkpoints a finished run does not keep (``checkpoints`` setting)."""
        if self.checkpoints == "all":
            return
        RunFolder(folder).last_checkpoint.unlink(missing_ok=True)
        if self.checkpoints == "none":
            RunFolder(folder).best_checkpoint.unlink(missing_ok=True)

    @staticmethod
    def _check_store_crop(config: ExperimentConfig) -> None:
        catalog = config.data.catalog
        if catalog and is_prepared_store(catalog):
            store_crop = PreparedStore(catalog).crop
            if store_crop < config.data.crop:
                raise SpiralArmsError(
                    f"{catalog}: the store holds {store_crop}-pixel crops but a run needs {config.data.crop}; "
                    "use the catalogue (catalog.parquet) or a store prepared with --crop 424"
                )

    def _row(self, spec: RunSpec, folder: Path, metrics: dict, summary: dict, status: str) -> dict[str, Any]:
        c = spec.config
        n_train = summary.get("n_train", {})
        n_val = summary.get("n_val", {})
        cache = summary.get("embedding_cache") or {}
        row: dict[str, Any] = {
            "experiment": spec.experiment,
            "setting": spec.setting,
            "model": spec.model,
            "backbone": c.model.backbone,
            "frozen": c.model.frozen,
            "seed": spec.seed,
            "crop": c.data.crop,
            "merge": c.data.merge or "all",
            "cap": c.data.cap,
            "cap_scope": c.data.cap_scope,
            "split_seed": spec.split_seed,
            "classes": " ".join(metrics["classes"]),
            "n_train": int(sum(n_train.values())) if isinstance(n_train, Mapping) else n_train,
            "n_val": int(sum(n_val.values())) if isinstance(n_val, Mapping) else n_val,
            "macro_f1": metrics["macro_f1"],
            "accuracy": metrics["accuracy"],
            "epochs_run": summary.get("epochs_run"),
            "best_epoch": summary.get("best_epoch"),
            "cache_views": len(cache.get("views", ())) if cache.get("used") else 0,
            "wall_seconds": summary.get("wall_seconds"),
            "status": status,
            "run_dir": os.path.relpath(folder, self.out),
            "run_key": spec.key,
            "config_hash": spec.config_hash,
        }
        for name in metrics["classes"]:
            for prefix in METRIC_PREFIXES:
                row[f"{prefix}_{name}"] = metrics["per_class"][name][prefix]
            if isinstance(n_train, Mapping):
                row[f"train_{name}"] = n_train.get(name)
        return row
