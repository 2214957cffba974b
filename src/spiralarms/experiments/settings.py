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

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from spiralarms.catalog.classes import ARM_CLASSES, parse_merge
from spiralarms.config import Settings, read_yaml, resolve_config_path
from spiralarms.errors import SpiralArmsError
from spiralarms.experiments.backbone_comparison import BackbonesConfig
from spiralarms.experiments.class_configs import ClassConfigsConfig
from spiralarms.experiments.crop_sweep import CropSweepConfig
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

class SourceConfig(Settings):
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
    preset : str or None
        Renderer preset of the synthetic galaxies
        (:data:`spiralarms.data.synthetic.PRESETS`); ``None``: the embedded default.
    class_counts : dict of str to int, or None
        Largest number of galaxies kept per class after the cuts, e.g. a scaled-down
        copy of the paper's class imbalance on a balanced synthetic set; ``None``
        keeps every selected galaxy.
    """

    kind: Literal["catalog", "synthetic"] = "catalog"
    catalog: str | None = None
    n_per_class: int = Field(150, ge=1)
    size: int = Field(424, ge=32)
    seed: int = Field(0, ge=0)
    preset: str | None = None
    class_counts: dict[str, int] | None = None

    @field_validator("class_counts")
    @classmethod
    def _known_classes(cls, counts: dict[str, int] | None) -> dict[str, int] | None:
        for name, count in (counts or {}).items():
            if name not in ARM_CLASSES:
                raise ValueError(f"keyed by classes ({', '.join(ARM_CLASSES)}), got {name!r}")
            if count < 1:
                raise ValueError(f"positive counts, got {name}: {count}")
        return counts


class ModelSpec(Settings):
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

    config: str = Field("b0-zoobot", min_length=1)
    set: list[str] = Field(default_factory=list)


def _paper_models() -> dict[str, ModelSpec]:
    return {"B0": ModelSpec(config="b0-zoobot"), "V2M": ModelSpec(config="v2m-imagenet")}


class ReproduceConfig(Settings):
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
    notes: list[str] = Field(default_factory=list)
    source: SourceConfig = Field(default_factory=SourceConfig)
    models: dict[str, ModelSpec] = Field(default_factory=_paper_models, min_length=1)
    set: list[str] = Field(default_factory=list)
    checkpoints: Literal["best", "all", "none"] = "best"
    crop_sweep: CropSweepConfig = Field(default_factory=CropSweepConfig)
    downsampling: DownsamplingConfig = Field(default_factory=DownsamplingConfig)
    class_configs: ClassConfigsConfig = Field(default_factory=ClassConfigsConfig)
    backbones: BackbonesConfig = Field(default_factory=BackbonesConfig)
    base_dir: str | None = Field(None, exclude=True)

    @field_validator("models", mode="before")
    @classmethod
    def _model_shorthand(cls, models: Any) -> Any:
        # ``B0: b0-zoobot`` is short for ``B0: {config: b0-zoobot}``.
        if isinstance(models, Mapping):
            return {str(k): ({"config": v} if isinstance(v, str) else v) for k, v in models.items()}
        return models

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "reproduce config") -> "ReproduceConfig":
        """Defaults updated by a nested mapping (a ``models`` mapping replaces the pair).

        Raises
        ------
        SpiralArmsError
            Naming the first unknown key or bad value, and ``source``.
        """
        return cls.from_mapping(values, source).check(source)

    def check(self, source: str = "reproduce config") -> "ReproduceConfig":
        """Check what the field types cannot: sweep lists, merges, overrides, model references.

        Raises
        ------
        SpiralArmsError
            Naming the first bad key.
        """

        def need(ok: bool, key: str, value: Any, rule: str) -> None:
            if not ok:
                raise SpiralArmsError(f"{source}: {key} must be {rule}, got {value!r}")

        for label, spec in self.models.items():
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
        need(sweep.f1 == "macro" or sweep.f1 in sweep.classes, "crop_sweep.f1", sweep.f1,
             f"'macro' or one of {', '.join(sweep.classes)}")
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
    config = ReproduceConfig.from_mapping(read_yaml(file), source=str(file))
    config = config.with_overrides(overrides, source="--set")
    config.base_dir = str(file.resolve().parent)
    return config.check(f"{file} with overrides" if overrides else str(file))
