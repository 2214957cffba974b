"""Training configuration: the ``data``, ``model``, ``augment`` and ``train`` sections.

Each section's defaults are the paper's settings (section 3.5; see
``docs/training.md`` for the reasoning). A YAML file holds any subset of the keys,
nested by section::

    model:
      backbone: zoobot-b0
    augment:
      order: paper
    train:
      max_epochs: 5

:func:`load_config` starts from the defaults, applies the file, then dotted overrides
such as ``"train.max_epochs=5"``; an unknown key or a bad value is a one-line
:class:`~spiralarms.errors.SpiralArmsError` naming the key (and the file).
:func:`save_config` writes the resolved configuration (every key) and
:func:`config_hash` gives a short, stable digest of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator

from spiralarms.catalog.classes import parse_merge
from spiralarms.config.base import Settings, read_yaml, resolve_config_path
from spiralarms.errors import SpiralArmsError

__all__ = [
    "DataConfig",
    "ModelConfig",
    "AugmentConfig",
    "TrainConfig",
    "ExperimentConfig",
    "MONITORS",
    "RUNTIME_KEYS",
    "CAP_SCOPES",
    "load_config",
    "save_config",
    "config_hash",
    "apply_overrides",
    "flatten",
]

#: Metrics that early stopping and checkpointing can follow, with their direction.
MONITORS: dict[str, str] = {"val_accuracy": "max", "val_macro_f1": "max", "val_loss": "min"}

#: Keys that change how a run executes but not its results; :func:`config_hash`
#: leaves them out (augmentation draws are seeded per image, so the number of
#: loader workers does not change them).
RUNTIME_KEYS: tuple[str, ...] = ("data.num_workers", "train.progress")

#: Values of ``data.cap_scope``: ``"dataset"``, the cap applies to the whole selected
#: set before the split (the paper); ``"train"``, to the training pool after it.
CAP_SCOPES: tuple[str, ...] = ("dataset", "train")

with warnings.catch_warnings():
    # The catalogue schema is called "schema" in every file and command; pydantic
    # warns that the name hides its deprecated BaseModel.schema(), which is unused.
    warnings.filterwarnings("ignore", message='Field name "schema"')

    class DataConfig(Settings):
        """Where the galaxies come from and how they are split and pre-processed.

        Attributes
        ----------
        catalog : str or None
            GZ2 or Kaggle catalogue file (CSV, Parquet, FITS), or a prepared store;
            ``spiralarms synth`` writes a catalogue. ``None`` until given.
        schema : {"auto", "gz2", "kaggle"}
            Catalogue schema; ``"auto"`` tells it from the id column.
        image_root : str or None
            Folder of the image files when the catalogue names them by id or through
            a mapping table; default ``<catalogue folder>/images``.
        mapping : str or None
            GZ2 filename mapping table (``gz2_filename_mapping.csv``).
        merge : str or None
            Class merge, ``"3,4"`` or ``"4,5+"``; ``None`` keeps all six classes.
        crop : int
            Side of the centre crop in pixels (the paper: 224 out of 424).
        grey : bool
            Read images as one grey channel (the Zoobot backbone is greyscale).
        val_fraction : float
            Validation share of the stratified split (the paper: 70:30).
        cap : int or None
            Per-class cap (the paper: 300); ``None`` uses all data.
        cap_scope : {"dataset", "train"}
            ``"dataset"`` caps the whole selected set before the split (the paper:
            validation holds about 30 % of each capped class); ``"train"`` caps the
            training pool after the split (validation keeps the natural mix).
        seed : int
            Seed of model initialisation, shuffling and augmentation, and of the split
            and the cap unless ``split_seed`` is given.
        split_seed : int or None
            Seed of the split and the cap; ``None`` uses ``seed``. Runs that share it
            (and the data) share their validation galaxies whatever their ``seed``.
        num_workers : int
            DataLoader worker processes for reading images.
        """

        catalog: str | None = None
        schema: Literal["auto", "gz2", "kaggle"] = "auto"
        image_root: str | None = None
        mapping: str | None = None
        merge: str | None = None
        crop: int = Field(224, ge=1)
        grey: bool = False
        val_fraction: float = Field(0.3, gt=0.0, lt=1.0)
        cap: int | None = Field(300, ge=1)
        cap_scope: Literal["dataset", "train"] = "dataset"
        seed: int = Field(0, ge=0)
        split_seed: int | None = Field(None, ge=0)
        num_workers: int = Field(0, ge=0)

        @field_validator("merge")
        @classmethod
        def _merge(cls, value: str | None) -> str | None:
            if value is not None:
                try:
                    parse_merge(value)
                except SpiralArmsError as exc:
                    raise ValueError(str(exc)) from None
            return value

        @property
        def effective_split_seed(self) -> int:
            """The seed of the split and the cap: ``split_seed``, else ``seed``."""
            return self.seed if self.split_seed is None else self.split_seed


class ModelConfig(Settings):
    """The network: a named backbone and the paper's head.

    Attributes
    ----------
    backbone : str
        Backbone name (``lite0-imagenet``, ``zoobot-b0``, ``v2m-imagenet`` or a timm
        model name; see :mod:`spiralarms.models.backbones`).
    weights : str or None
        Local weights file for the backbone, instead of the registry's source.
    pretrained : bool
        Load pretrained weights; ``False`` gives random weights (tests).
    hidden : int
        Width of the head's hidden layer (1024; the paper's text says 1028, its
        parameter counts fit 1024).
    frozen : bool or None
        Freeze the backbone (the paper's B0) or train all layers (V2M); ``None``
        takes the backbone's paper default.
    """

    backbone: str = Field("lite0-imagenet", min_length=1)
    weights: str | None = None
    pretrained: bool = True
    hidden: int = Field(1024, ge=1)
    frozen: bool | None = None


class AugmentConfig(Settings):
    """Training augmentation and the greyscale conversion (paper section 2.3).

    Attributes
    ----------
    rotation : float
        Largest rotation, degrees (the paper: 180, i.e. uniform in [-180, 180]).
    zoom : float
        Largest relative zoom in or out (the paper: 0.2).
    flips : bool
        Random horizontal and vertical flips.
    order : {"frame", "paper"}
        ``"frame"``: rotate and zoom the full frame about its centre, then crop, so
        no empty corners enter the crop (the default); ``"paper"``: the paper's
        Figure 2 order, crop then augment, corners filled by reflection as Keras'
        layers do.
    grey_method : {"luminance", "mean"}
        Colour to grey: ITU-R 601 luminance (Pillow, TensorFlow) or the plain mean of
        the channels (Zoobot's own pipeline).
    """

    rotation: float = Field(180.0, ge=0.0, le=180.0)
    zoom: float = Field(0.2, ge=0.0, lt=1.0)
    flips: bool = True
    order: Literal["frame", "paper"] = "frame"
    grey_method: Literal["luminance", "mean"] = "luminance"


class TrainConfig(Settings):
    """Optimisation, stopping, the embedding cache, imbalance options and the Trainer.

    Attributes
    ----------
    batch_size : int
        Images per batch (the paper: 16).
    lr : float
        Constant Adam learning rate (the paper: 1e-4, no schedule).
    max_epochs : int
        Upper bound on epochs (the paper: 50).
    patience : int
        Early stopping: epochs without a gain in ``monitor`` (the paper: 30).
    monitor : {"val_accuracy", "val_macro_f1", "val_loss"}
        Metric for early stopping and the best checkpoint (the paper: accuracy).
    embedding_cache : bool
        With a frozen backbone, compute pooled features once and train the head on
        them (ignored, with a warning, when the backbone is trained).
    cache_views : int
        Augmented views cached per training image; 0 caches the un-augmented view
        only (no augmentation).
    cache_eval_view : bool
        Also cache each training image's un-augmented view, as one more view.
    loss : {"cross_entropy", "weighted", "focal"}
        The paper's categorical cross-entropy, cross-entropy with class weights
        inverse to the training counts, or focal loss (``focal_gamma``).
    focal_gamma : float
        Focusing exponent of the focal loss.
    sampler : {"shuffle", "balanced"}
        A shuffle per epoch (the paper), or class-balanced draws with replacement.
    soft_labels : bool
        Train on the T11 vote fractions instead of the argmax label.
    calibrate : bool
        Fit a softmax temperature on the validation set after training and store it
        in the model card (``spiralarms predict`` applies it).
    accelerator, devices, strategy, num_nodes, precision, deterministic
        Passed to ``lightning.Trainer`` (``strategy="ddp"`` for several GPUs).
    progress : bool
        Progress bars (training and feature computation).
    """

    batch_size: int = Field(16, ge=1)
    lr: float = Field(1e-4, gt=0.0, allow_inf_nan=False)
    max_epochs: int = Field(50, ge=1)
    patience: int = Field(30, ge=0)
    monitor: Literal["val_accuracy", "val_macro_f1", "val_loss"] = "val_accuracy"
    embedding_cache: bool = True
    cache_views: int = Field(4, ge=0)
    cache_eval_view: bool = False
    loss: Literal["cross_entropy", "weighted", "focal"] = "cross_entropy"
    focal_gamma: float = Field(2.0, ge=0.0)
    sampler: Literal["shuffle", "balanced"] = "shuffle"
    soft_labels: bool = False
    calibrate: bool = False
    accelerator: str = "auto"
    devices: int | str | list[int] = "auto"
    strategy: str = "auto"
    num_nodes: int = Field(1, ge=1)
    precision: int | str = "32-true"
    deterministic: bool = True
    progress: bool = True

    @field_validator("devices")
    @classmethod
    def _devices(cls, value):
        ok = (
            (isinstance(value, int) and value >= -1 and value != 0)
            or (isinstance(value, str) and bool(value.strip()))
            or (isinstance(value, list) and bool(value) and all(i >= 0 for i in value))
        )
        if not ok:
            raise ValueError(
                f'must be "auto", a device count (-1 for all), a list of device indices or a string such as "0,1", '
                f"got {value!r}"
            )
        return value


#: Settings that name files, made absolute by :meth:`ExperimentConfig.with_absolute_paths`.
_PATH_KEYS = (("data", "catalog"), ("data", "image_root"), ("data", "mapping"), ("model", "weights"))


class ExperimentConfig(Settings):
    """A whole experiment: ``data``, ``model``, ``augment`` and ``train`` sections.

    Build one with :func:`load_config` (defaults, a YAML file, overrides) or
    :meth:`from_mapping`; :meth:`to_dict` and :func:`save_config` give it back.
    """

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "config") -> "ExperimentConfig":
        """Defaults updated by a nested mapping (see :meth:`Settings.from_mapping`)."""
        return cls.from_mapping(values, source)

    def with_absolute_paths(self) -> "ExperimentConfig":
        """A copy whose file paths are absolute, so a saved ``config.yaml`` works from anywhere.

        Its :func:`config_hash` is the one ``train_summary.json`` records.
        """
        config = self.model_copy(deep=True)
        for section, key in _PATH_KEYS:
            value = getattr(getattr(config, section), key)
            if value is not None:
                setattr(getattr(config, section), key, str(Path(value).expanduser().resolve()))
        return config

    def set(self, dotted: str, value: Any, source: str = "config") -> None:
        """Set one key, ``"section.key"``, in place, checked like a file's value.

        Raises
        ------
        SpiralArmsError
            On an unknown key or a value that does not fit the field.
        """
        if str(dotted).count(".") != 1 or not all(str(dotted).split(".")):
            raise SpiralArmsError(f"{source}: key {dotted!r} must be 'section.key', e.g. 'train.max_epochs'")
        updated = self.set_key(dotted, value, source=source)
        for name in type(self).model_fields:
            object.__setattr__(self, name, getattr(updated, name))


def apply_overrides(config: ExperimentConfig, overrides: Iterable[str], source: str = "override") -> ExperimentConfig:
    """Apply ``"section.key=value"`` strings in order; return ``config`` (changed in place).

    Raises
    ------
    SpiralArmsError
        If an override has no ``=``, names an unknown key, or its value does not fit.
    """
    updated = config.with_overrides(overrides, source)
    for name in type(config).model_fields:
        object.__setattr__(config, name, getattr(updated, name))
    return config


def load_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """The defaults, updated by a YAML file and then by dotted overrides.

    Parameters
    ----------
    path : str or path-like, optional
        YAML file with ``data``, ``model``, ``augment`` and ``train`` sections (any
        subset), or the name of a shipped configuration (``"b0-zoobot"``,
        ``"v2m-imagenet"``, ``"demo-lite0"``).
    overrides : iterable of str
        ``"section.key=value"`` strings, applied after the file, e.g.
        ``["train.max_epochs=5", "data.merge=3,4", "data.cap=null"]``.

    Returns
    -------
    ExperimentConfig

    Raises
    ------
    SpiralArmsError
        On a missing or unparsable file, an unknown key (named, with the file) or a
        bad value.
    """
    config = ExperimentConfig()
    if path is not None:
        file = resolve_config_path(path)
        config = ExperimentConfig.from_mapping(read_yaml(file), source=str(file))
    return config.with_overrides(overrides)


def save_config(config: ExperimentConfig, path: str | os.PathLike) -> Path:
    """Write the resolved configuration (every key) as YAML, atomically; return the path."""
    from spiralarms.io.atomic import write_text

    header = f"# spiralarms resolved configuration (config_hash {config_hash(config)})\n"
    body = yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=False)
    return write_text(path, header + body)  # a reader (another DDP rank) never sees half a file


def flatten(config: ExperimentConfig) -> dict[str, Any]:
    """``{"section.key": value}`` for every key."""
    return {f"{s}.{k}": v for s, entries in config.to_dict().items() for k, v in entries.items()}


def config_hash(config: ExperimentConfig, length: int = 12) -> str:
    """Short stable digest of the resolved configuration.

    The same settings give the same hash in any process and on any machine; the
    :data:`RUNTIME_KEYS` (progress bars, loader workers) are left out because they do
    not change results.
    """
    values = {k: v for k, v in flatten(config).items() if k not in RUNTIME_KEYS}
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]

