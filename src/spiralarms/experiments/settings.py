"""Experiment-level settings of a reproduction: data source, models and experiments.

A reproduction configuration (``configs/reproduce-paper.yaml``,
``configs/reproduce-quick.yaml``) says which experiments run, with which crop sizes,
seeds and models, on which data. Each *model* is named in the paper's words (``B0``,
``V2M``) and points to a training configuration (:mod:`spiralarms.config`: a shipped
name such as ``b0-zoobot`` or a YAML file) plus overrides::

    source:
      kind: catalog                 # or synthetic
      catalog: ~/gz2/catalog.parquet
    models:
      B0: {config: b0-zoobot, set: ["model.weights=~/zoobot-b0-grey.safetensors"]}
      V2M: {config: v2m-imagenet}
    set: ["train.accelerator=gpu"]  # every training run
    crop_sweep: {crops: [160, 192, 224, 256], seeds: [0, 1, 2, 3, 4]}

Dotted overrides reach any key (``crop_sweep.seeds=[0,1]``, ``models.B0.config=FILE``);
values are read as YAML. Unknown keys and bad values are one-line
:class:`~spiralarms.errors.SpiralArmsError` messages naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from spiralarms.catalog.classes import ARM_CLASSES, parse_merge
from spiralarms.config import coerce_value, resolve_config_path
from spiralarms.errors import SpiralArmsError
from spiralarms.experiments.backbones import BackbonesConfig
from spiralarms.experiments.class_configs import ClassConfigsConfig
from spiralarms.experiments.crop_sweep import SPLIT_MODES, CropSweepConfig
from spiralarms.experiments.downsampling import DownsamplingConfig

__all__ = [
    "SourceConfig",
    "ModelSpec",
    "ReproduceConfig",
    "EXPERIMENT_KEYS",
    "RUN_SECTIONS",
    "PAPER_CONFIG",
    "QUICK_CONFIG",
    "load_reproduce_config",
    "split_overrides",
    "check_run_overrides",
]

#: Shipped reproduction configurations.
PAPER_CONFIG = "reproduce-paper"
QUICK_CONFIG = "reproduce-quick"

#: Sections of a training configuration: overrides of these keys go to every run.
RUN_SECTIONS: tuple[str, ...] = ("data", "model", "train")

#: Training keys that the experiments set themselves, one value per run.
EXPERIMENT_KEYS: dict[str, str] = {
    "data.crop": "crop_sweep.crops and the experiments' crop",
    "data.seed": "crop_sweep.seeds and the experiments' seed",
    "data.split_seed": "crop_sweep.split and crop_sweep.split_seed (the other experiments split with their seed)",
    "data.cap": "crop_sweep.per_class and the experiments' cap",
    "data.merge": "class_configs.merges",
}

_SOURCE_KINDS = ("catalog", "synthetic")
_CHECKPOINTS = ("best", "all", "none")


@dataclass
class SourceConfig:
    """Where the galaxies come from.

    Attributes
    ----------
    kind : {"catalog", "synthetic"}
        ``catalog``: the real data, ``catalog`` below; ``synthetic``: synthetic
        galaxies rendered once into ``OUT/data`` and reused.
    catalog : str or None
        GZ2 catalogue (``ROOT/catalog.parquet`` from ``spiralarms data gz2 ROOT``) or a
        prepared store (``spiralarms prepare``, prepared without a merge).
    n_per_class : int
        Synthetic galaxies rendered per class (before the clean-sample cuts).
    size : int
        Side of the synthetic images in pixels (GZ2 cutouts: 424).
    seed : int
        Seed of the synthetic galaxies and of ``class_counts``.
    class_counts : dict of str to int, or None
        Largest number of galaxies kept per class after the cuts, e.g. a scaled-down
        copy of the paper's class imbalance on a balanced synthetic set; ``None``
        keeps every selected galaxy.
    """

    kind: str = "catalog"
    catalog: str | None = None
    n_per_class: int = 150
    size: int = 424
    seed: int = 0
    class_counts: dict[str, int] | None = None


@dataclass
class ModelSpec:
    """A model of the comparison: a training configuration and overrides.

    Attributes
    ----------
    config : str
        A shipped training configuration (``b0-zoobot``, ``v2m-imagenet``,
        ``demo-lite0``) or a YAML file (relative to the reproduction
        configuration's folder, or to the working directory).
    set : list of str
        ``section.key=value`` overrides for this model's runs, applied after the
        reproduction's own ``set`` (e.g. ``model.weights=PATH``).
    """

    config: str = "b0-zoobot"
    set: list[str] = field(default_factory=list)


def _paper_models() -> dict[str, ModelSpec]:
    return {"B0": ModelSpec("b0-zoobot"), "V2M": ModelSpec("v2m-imagenet")}


@dataclass
class ReproduceConfig:
    """A whole reproduction: data source, models, overrides and the four experiments.

    Attributes
    ----------
    name : str
        Short name, shown in the report (``paper``, ``quick``).
    notes : list of str
        Sentences shown in the report (e.g. what a reduced configuration changes).
    source : SourceConfig
    models : dict of str to ModelSpec
        Models by label, in the paper's words (``B0``, ``V2M``).
    set : list of str
        ``section.key=value`` overrides for every training run (e.g.
        ``train.accelerator=gpu``); the experiment keys (:data:`EXPERIMENT_KEYS`) are
        refused.
    checkpoints : {"best", "all", "none"}
        What a finished run keeps of ``checkpoints/``: ``best.ckpt`` only (the
        default; ``last.ckpt`` is a resume point, useless once the run is done),
        both, or neither (metrics only: a fine-tuned V2M checkpoint with its Adam
        state is about 650 MB).
    crop_sweep : CropSweepConfig
        Section 4.2.1, Figure 5.
    downsampling : DownsamplingConfig
        Section 4.2.2, Table 3.
    class_configs : ClassConfigsConfig
        Section 5.2, Figure 7.
    backbones : BackbonesConfig
        Section 5.1: the models side by side.
    base_dir : str or None
        Folder of the file the configuration came from (relative model
        configuration files are looked up there first); not a setting.
    """

    name: str = "paper"
    notes: list[str] = field(default_factory=list)
    source: SourceConfig = field(default_factory=SourceConfig)
    models: dict[str, ModelSpec] = field(default_factory=_paper_models)
    set: list[str] = field(default_factory=list)
    checkpoints: str = "best"
    crop_sweep: CropSweepConfig = field(default_factory=CropSweepConfig)
    downsampling: DownsamplingConfig = field(default_factory=DownsamplingConfig)
    class_configs: ClassConfigsConfig = field(default_factory=ClassConfigsConfig)
    backbones: BackbonesConfig = field(default_factory=BackbonesConfig)
    base_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every setting as plain values (YAML ready), without ``base_dir``."""
        values = dataclasses.asdict(self)
        values.pop("base_dir")
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "reproduce config") -> "ReproduceConfig":
        """Defaults updated by a nested mapping; unknown keys and bad values raise.

        Raises
        ------
        SpiralArmsError
            Naming the first unknown key or bad value, and ``source``.
        """
        if not isinstance(values, Mapping):
            raise SpiralArmsError(f"{source}: expected a mapping of settings, got {type(values).__name__}")
        config = cls()
        if "models" in values and values["models"] is not None:
            # A models mapping replaces the default pair rather than adding to it.
            config.models = {}
        _update(config, values, "", source)
        return config.validate(source)

    def set_key(self, dotted: str, value: Any, source: str = "override") -> None:
        """Set one key, ``"section.key"`` (``"models.B0.config"``); strings are read as YAML."""
        parts = str(dotted).split(".")
        if not all(parts):
            raise SpiralArmsError(f"{source}: bad key {dotted!r}")
        if isinstance(value, str):
            value = _yaml_value(value, dotted, source)
        nested: Any = value
        for part in reversed(parts[1:]):
            nested = {part: nested}
        _update(self, {parts[0]: nested}, "", source)

    def validate(self, source: str = "reproduce config") -> "ReproduceConfig":
        """Check values and cross-references; return ``self``.

        Raises
        ------
        SpiralArmsError
            Naming the first bad key.
        """

        def need(ok: bool, key: str, value: Any, rule: str) -> None:
            if not ok:
                raise SpiralArmsError(f"{source}: {key} must be {rule}, got {value!r}")

        s = self.source
        need(s.kind in _SOURCE_KINDS, "source.kind", s.kind, f"one of {', '.join(_SOURCE_KINDS)}")
        need(s.n_per_class >= 1, "source.n_per_class", s.n_per_class, "a positive integer")
        need(s.size >= 32, "source.size", s.size, "at least 32 pixels")
        need(s.seed >= 0, "source.seed", s.seed, "a non-negative integer")
        if s.class_counts is not None:
            for name, count in s.class_counts.items():
                need(name in ARM_CLASSES, f"source.class_counts.{name}", name, f"a class ({', '.join(ARM_CLASSES)})")
                need(count >= 1, f"source.class_counts.{name}", count, "a positive integer")
        need(self.checkpoints in _CHECKPOINTS, "checkpoints", self.checkpoints, f"one of {', '.join(_CHECKPOINTS)}")
        need(bool(self.models), "models", self.models, "at least one model")
        for label, spec in self.models.items():
            need(bool(spec.config.strip()), f"models.{label}.config", spec.config, "a configuration name or file")
            check_run_overrides(spec.set, f"{source}: models.{label}.set")
        check_run_overrides(self.set, f"{source}: set")

        sweep = self.crop_sweep
        need(bool(sweep.crops) and all(c >= 1 for c in sweep.crops), "crop_sweep.crops", sweep.crops,
             "a non-empty list of positive crop sizes")
        need(len(set(sweep.crops)) == len(sweep.crops), "crop_sweep.crops", sweep.crops, "distinct sizes")
        need(bool(sweep.seeds) and all(x >= 0 for x in sweep.seeds), "crop_sweep.seeds", sweep.seeds,
             "a non-empty list of non-negative seeds")
        need(len(set(sweep.seeds)) == len(sweep.seeds), "crop_sweep.seeds", sweep.seeds, "distinct seeds")
        need(len(sweep.classes) == 2 and len(set(sweep.classes)) == 2 and set(sweep.classes) <= set(ARM_CLASSES),
             "crop_sweep.classes", sweep.classes, f"two distinct classes of {', '.join(ARM_CLASSES)}")
        need(sweep.per_class >= 2, "crop_sweep.per_class", sweep.per_class, "at least 2")
        need(sweep.split in SPLIT_MODES, "crop_sweep.split", sweep.split, f"one of {', '.join(SPLIT_MODES)}")
        need(sweep.split_seed >= 0, "crop_sweep.split_seed", sweep.split_seed, "a non-negative integer")
        need(sweep.f1 == "macro" or sweep.f1 in sweep.classes, "crop_sweep.f1", sweep.f1,
             f"'macro' or one of {', '.join(sweep.classes)}")
        for section in ("downsampling", "class_configs", "backbones"):
            settings = getattr(self, section)
            need(settings.cap >= 1, f"{section}.cap", settings.cap, "a positive integer")
            need(settings.seed >= 0, f"{section}.seed", settings.seed, "a non-negative integer")
            need(settings.crop is None or settings.crop >= 1, f"{section}.crop", settings.crop,
                 "a positive crop size or null (the sweep's choice)")
        merges = []
        for merge in self.class_configs.merges:
            try:
                merges.append(parse_merge(merge))
            except SpiralArmsError as exc:
                raise SpiralArmsError(f"{source}: class_configs.merges: {exc}") from None
        need(len(set(merges)) == len(merges), "class_configs.merges", self.class_configs.merges, "distinct merges")

        references = [("crop_sweep.models", m) for m in sweep.models]
        references += [("downsampling.model", self.downsampling.model)]
        references += [("downsampling.compare", m) for m in self.downsampling.compare]
        references += [("class_configs.models", m) for m in self.class_configs.models]
        references += [("backbones.models", m) for m in self.backbones.models]
        for key, label in references:
            if label not in self.models:
                raise SpiralArmsError(
                    f"{source}: {key} names model {label!r}, which is not under models ({', '.join(self.models)})"
                )
        return self

    def model_config_path(self, label: str) -> str:
        """The training configuration of model ``label``: a file path or a shipped name."""
        name = self.models[label].config
        if self.base_dir is not None:
            beside = Path(self.base_dir) / Path(name).expanduser()
            if beside.is_file():
                return str(beside)
        return str(Path(name).expanduser()) if Path(name).expanduser().is_file() else name


def _yaml_value(text: str, key: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise SpiralArmsError(f"{source}: {key}: cannot read {text!r} as a YAML value") from None


def _update(target: Any, values: Mapping[str, Any], prefix: str, source: str) -> None:
    """Set the fields of dataclass ``target`` from ``values``, recursively and checked."""
    hints = typing.get_type_hints(type(target))
    names = [f.name for f in dataclasses.fields(target) if f.name != "base_dir"]
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {prefix}{close[0]!r}?)" if close else f"; keys are {', '.join(names)}"
            raise SpiralArmsError(f"{source}: unknown key {dotted!r}{hint}")
        hint = hints[key]
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise SpiralArmsError(f"{source}: {dotted} must be a mapping of keys, got {value!r}")
            _update(current, value, f"{dotted}.", source)
        elif key == "models" and prefix == "":
            if not isinstance(value, Mapping):
                raise SpiralArmsError(f"{source}: models must map labels to {{config, set}}, got {value!r}")
            for label, spec in value.items():
                label = str(label)
                if isinstance(spec, str):
                    spec = {"config": spec}
                if spec is None or not isinstance(spec, Mapping):
                    raise SpiralArmsError(f"{source}: models.{label} must be a mapping {{config, set}}, got {spec!r}")
                model = target.models.get(label)
                if model is None:
                    if "config" not in spec:
                        raise SpiralArmsError(f"{source}: models.{label}: give its config (a name or a file)")
                    model = target.models[label] = ModelSpec(config="")
                _update(model, spec, f"models.{label}.", source)
        else:
            setattr(target, key, coerce_value(value, hint, dotted, source))


def split_overrides(items: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split ``key=value`` overrides into reproduction keys and training-run keys.

    Keys of the ``data``, ``model`` and ``train`` sections go to every training run;
    the others (``crop_sweep.seeds``, ``source.catalog``, ``models.B0.config``) are
    settings of the reproduction.

    Returns
    -------
    reproduce, runs : list of str

    Raises
    ------
    SpiralArmsError
        If an item has no ``=``.
    """
    reproduce, runs = [], []
    for item in items:
        text = str(item)
        if "=" not in text:
            raise SpiralArmsError(
                f"--set {text!r}: expected KEY=VALUE, e.g. crop_sweep.seeds=[0,1] or train.max_epochs=5"
            )
        key = text.split("=", 1)[0].strip()
        (runs if key.split(".", 1)[0] in RUN_SECTIONS else reproduce).append(text)
    return reproduce, runs


def check_run_overrides(items: Iterable[str], source: str) -> list[str]:
    """Refuse training overrides that the experiments set per run; return the items.

    Raises
    ------
    SpiralArmsError
        If an item is not ``section.key=value`` of a training section, or sets one of
        :data:`EXPERIMENT_KEYS`.
    """
    items = [str(i) for i in items]
    for item in items:
        key = item.split("=", 1)[0].strip()
        if "=" not in item or key.split(".", 1)[0] not in RUN_SECTIONS:
            raise SpiralArmsError(f"{source}: {item!r} must be 'section.key=value' with section data, model or train")
        if key in EXPERIMENT_KEYS:
            raise SpiralArmsError(f"{source}: {key} is set by the experiments; change {EXPERIMENT_KEYS[key]} instead")
    return items


def load_reproduce_config(
    path: str | Path | None = None, *, quick: bool = False, overrides: Iterable[str] = ()
) -> ReproduceConfig:
    """The reproduction settings: a file (or a shipped one) and dotted overrides.

    Parameters
    ----------
    path : str or path-like, optional
        YAML file, or a shipped name (``reproduce-paper``, ``reproduce-quick``).
        Default: ``reproduce-quick`` with ``quick``, else ``reproduce-paper``.
    quick : bool, default False
        Use the shipped quick configuration (synthetic galaxies, a CPU budget).
    overrides : iterable of str
        ``key=value`` settings of the reproduction (``crop_sweep.seeds=[0,1]``);
        values are read as YAML.

    Returns
    -------
    ReproduceConfig
        Validated.

    Raises
    ------
    SpiralArmsError
        If both ``path`` and ``quick`` are given, the file is missing or not YAML, or a
        key or value is bad.
    """
    if path is not None and quick:
        raise SpiralArmsError("give --config or --quick, not both (--quick is the shipped reproduce-quick config)")
    name = path if path is not None else (QUICK_CONFIG if quick else PAPER_CONFIG)
    file = resolve_config_path(name)
    try:
        values = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SpiralArmsError(f"{file}: not valid YAML: {' '.join(str(exc).split())}") from None
    config = ReproduceConfig.from_dict(values, source=str(file))
    config.base_dir = str(file.resolve().parent)
    for item in overrides:
        text = str(item)
        if "=" not in text:
            raise SpiralArmsError(f"--set {text!r}: expected KEY=VALUE")
        key, value = text.split("=", 1)
        config.set_key(key.strip(), value.strip(), source=f"--set {text!r}")
    return config.validate(f"{file} with overrides" if overrides else str(file))
