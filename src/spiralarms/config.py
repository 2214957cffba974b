"""Experiment configuration: nested dataclasses, YAML files and dotted overrides.

An :class:`ExperimentConfig` has three sections, each a dataclass whose defaults are
the paper's settings (section 3.5; see ``docs/training.md`` for the reasoning):

- ``data`` (:class:`DataConfig`): catalogue, class merge, crop, split and cap;
- ``model`` (:class:`ModelConfig`): backbone, weights, head width, freezing;
- ``train`` (:class:`TrainConfig`): optimiser, epochs, early stopping, the embedding
  cache, and the Lightning ``Trainer`` settings (devices, DDP, precision).

A YAML file holds any subset of the keys, nested by section::

    model:
      backbone: zoobot-b0
    train:
      max_epochs: 5

:func:`load_config` starts from the defaults, applies the file, then dotted overrides
such as ``"train.max_epochs=5"``; an unknown key or a value of the wrong type is a
one-line :class:`~spiralarms.errors.SpiralArmsError` that names the key (and the
file). :func:`save_config` writes the resolved configuration (every key) and
:func:`config_hash` gives a short, stable digest of it.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import numbers
import os
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from spiralarms.catalog.classes import parse_merge
from spiralarms.errors import SpiralArmsError

__all__ = [
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "ExperimentConfig",
    "MONITORS",
    "CAP_SCOPES",
    "RUNTIME_KEYS",
    "load_config",
    "save_config",
    "config_hash",
    "apply_overrides",
    "flatten",
    "available_configs",
    "config_dirs",
    "resolve_config_path",
]

#: Metrics that early stopping and checkpointing can follow, with their direction.
MONITORS: dict[str, str] = {"val_accuracy": "max", "val_macro_f1": "max", "val_loss": "min"}

#: Keys that change how a run executes but not its results; :func:`config_hash`
#: leaves them out (augmentation draws are seeded per image, so the number of
#: loader workers does not change them).
RUNTIME_KEYS: tuple[str, ...] = ("data.num_workers", "train.progress")

_SCHEMAS = ("auto", "gz2", "kaggle")

#: Values of ``data.cap_scope``: ``"dataset"``, the cap applies to the whole selected
#: set before the split (the paper); ``"train"``, to the training pool after it.
CAP_SCOPES: tuple[str, ...] = ("dataset", "train")


@dataclass
class DataConfig:
    """Where the galaxies come from and how they are split and pre-processed.

    Attributes
    ----------
    catalog : str or None
        GZ2 or Kaggle catalogue file (CSV, Parquet, FITS); ``spiralarms synth``
        writes one. ``None`` until given.
    schema : {"auto", "gz2", "kaggle"}
        Catalogue schema; ``"auto"`` tells it from the id column.
    image_root : str or None
        Folder of the image files when the catalogue names them by id or through a
        mapping table; default ``<catalogue folder>/images``.
    mapping : str or None
        GZ2 filename mapping table (``gz2_filename_mapping.csv``), if images are
        named by asset id.
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
        Where the cap applies: ``"dataset"`` caps the whole selected set before the
        split (the paper: validation holds about 30 % of each capped class);
        ``"train"`` caps the training pool after the split (validation keeps the
        natural class mix), an option.
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
    schema: str = "auto"
    image_root: str | None = None
    mapping: str | None = None
    merge: str | None = None
    crop: int = 224
    grey: bool = False
    val_fraction: float = 0.3
    cap: int | None = 300
    cap_scope: str = "dataset"
    seed: int = 0
    split_seed: int | None = None
    num_workers: int = 0

    @property
    def effective_split_seed(self) -> int:
        """The seed of the split and the cap: ``split_seed``, else ``seed``."""
        return self.seed if self.split_seed is None else self.split_seed


@dataclass
class ModelConfig:
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

    backbone: str = "lite0-imagenet"
    weights: str | None = None
    pretrained: bool = True
    hidden: int = 1024
    frozen: bool | None = None


@dataclass
class TrainConfig:
    """Optimisation, stopping, the embedding cache and the Lightning Trainer.

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
    accelerator, devices, strategy, num_nodes, precision, deterministic
        Passed to ``lightning.Trainer`` (``strategy="ddp"`` for several GPUs).
    progress : bool
        Progress bars (training and feature computation).
    """

    batch_size: int = 16
    lr: float = 1e-4
    max_epochs: int = 50
    patience: int = 30
    monitor: str = "val_accuracy"
    embedding_cache: bool = True
    cache_views: int = 4
    cache_eval_view: bool = False
    accelerator: str = "auto"
    devices: int | str | list[int] = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: int | str = "32-true"
    deterministic: bool = True
    progress: bool = True


@dataclass
class ExperimentConfig:
    """A whole experiment: ``data``, ``model`` and ``train`` sections.

    Build one with :func:`load_config` (defaults, a YAML file, overrides) or
    :meth:`from_dict`; :meth:`to_dict` and :func:`save_config` give it back.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Every key, nested by section, as plain Python values (YAML/JSON ready)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "config") -> "ExperimentConfig":
        """Defaults updated by a nested mapping; unknown keys and bad values raise.

        Parameters
        ----------
        values : mapping
            ``{"data": {...}, "model": {...}, "train": {...}}``, any subset.
        source : str, default "config"
            Where the values come from, for error messages (a file name).

        Returns
        -------
        ExperimentConfig

        Raises
        ------
        SpiralArmsError
            Naming the first unknown key or bad value, and ``source``.
        """
        config = cls()
        if not isinstance(values, Mapping):
            raise SpiralArmsError(f"{source}: expected a mapping of sections, got {type(values).__name__}")
        for section, entries in values.items():
            _check_section(section, source)
            if entries is None:
                continue
            if not isinstance(entries, Mapping):
                raise SpiralArmsError(f"{source}: section {section!r} must be a mapping of keys, got {entries!r}")
            for key, value in entries.items():
                config.set(f"{section}.{key}", value, source=source)
        config.validate(source)
        return config

    def set(self, dotted: str, value: Any, source: str = "config") -> None:
        """Set one key, ``"section.key"``, converting ``value`` to the field's type.

        A string is parsed by the field type (``"5"`` for an int, ``"1e-4"`` for a
        float, ``"true"``/``"false"`` for a bool, ``"null"``/``"none"`` for an
        optional key); other values must already have the right type.

        Raises
        ------
        SpiralArmsError
            On an unknown key or a value that does not fit the field's type.
        """
        section, key = _split_key(dotted, source)
        target = getattr(self, section)
        hints = typing.get_type_hints(type(target))
        if key not in hints:
            raise SpiralArmsError(f"{source}: unknown key {dotted!r}{_suggest(section, key, hints)}")
        setattr(target, key, coerce_value(value, hints[key], dotted, source))

    def validate(self, source: str = "config") -> "ExperimentConfig":
        """Check value ranges; return ``self``.

        Raises
        ------
        SpiralArmsError
            Naming the first key whose value is out of range.
        """
        d, m, t = self.data, self.model, self.train

        def need(ok: bool, key: str, value: Any, rule: str) -> None:
            if not ok:
                raise SpiralArmsError(f"{source}: {key} must be {rule}, got {value!r}")

        need(d.schema in _SCHEMAS, "data.schema", d.schema, f"one of {', '.join(_SCHEMAS)}")
        need(d.crop >= 1, "data.crop", d.crop, "a positive number of pixels")
        need(0.0 < d.val_fraction < 1.0, "data.val_fraction", d.val_fraction, "strictly between 0 and 1")
        need(d.cap is None or d.cap >= 1, "data.cap", d.cap, "a positive integer or null (all data)")
        need(d.cap_scope in CAP_SCOPES, "data.cap_scope", d.cap_scope, f"one of {', '.join(CAP_SCOPES)}")
        need(d.seed >= 0, "data.seed", d.seed, "a non-negative integer")
        need(d.split_seed is None or d.split_seed >= 0, "data.split_seed", d.split_seed,
             "a non-negative integer or null (data.seed)")
        need(d.num_workers >= 0, "data.num_workers", d.num_workers, "a non-negative integer")
        if d.merge is not None:
            try:
                parse_merge(d.merge)
            except SpiralArmsError as exc:
                raise SpiralArmsError(f"{source}: data.merge: {exc}") from None
        need(bool(m.backbone.strip()), "model.backbone", m.backbone, "a backbone name")
        need(m.hidden >= 1, "model.hidden", m.hidden, "a positive integer")
        need(t.batch_size >= 1, "train.batch_size", t.batch_size, "a positive integer")
        need(t.lr > 0 and math.isfinite(t.lr), "train.lr", t.lr, "a positive number")
        need(t.max_epochs >= 1, "train.max_epochs", t.max_epochs, "a positive integer")
        need(t.patience >= 0, "train.patience", t.patience, "a non-negative integer")
        need(t.monitor in MONITORS, "train.monitor", t.monitor, f"one of {', '.join(MONITORS)}")
        need(t.cache_views >= 0, "train.cache_views", t.cache_views, "a non-negative integer")
        need(t.num_nodes >= 1, "train.num_nodes", t.num_nodes, "a positive integer")
        devices = t.devices
        need(
            (isinstance(devices, int) and devices >= -1 and devices != 0)
            or (isinstance(devices, str) and bool(devices.strip()))
            or (isinstance(devices, list) and bool(devices) and all(i >= 0 for i in devices)),
            "train.devices",
            devices,
            '"auto", a device count (-1 for all), a list of device indices or a string such as "0,1"',
        )
        return self


def _check_section(section: Any, source: str) -> None:
    names = [f.name for f in dataclasses.fields(ExperimentConfig)]
    if section not in names:
        hint = difflib.get_close_matches(str(section), names, n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else f"; sections are {', '.join(names)}"
        raise SpiralArmsError(f"{source}: unknown key {section!r}{extra}")


def _split_key(dotted: str, source: str) -> tuple[str, str]:
    parts = str(dotted).split(".")
    if len(parts) != 2 or not all(parts):
        raise SpiralArmsError(f"{source}: key {dotted!r} must be 'section.key', e.g. 'train.max_epochs'")
    _check_section(parts[0], source)
    return parts[0], parts[1]


def _suggest(section: str, key: str, hints: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(hints), n=1)
    return f" (did you mean '{section}.{close[0]}'?)" if close else ""


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NULL = {"null", "none", "~", ""}


def coerce_value(value: Any, hint: Any, key: str, source: str) -> Any:
    """Convert a configuration value to the type ``hint``, or fail with one line.

    Handles ``str``, ``int``, ``float``, ``bool``, optional and union types,
    ``list[...]`` (items of a union, ``None`` included) and ``dict[str, ...]``.
    Strings are parsed by the type (``"5"``, ``"1e-4"``, ``"true"``, ``"null"``), as
    command-line overrides arrive; integers stand for strings where a class name is
    wanted (YAML reads ``2`` as a number). Shared by every configuration of the
    package (training runs here, reproductions in :mod:`spiralarms.experiments`).

    Parameters
    ----------
    value : object
    hint : type
        The dataclass field's type.
    key, source : str
        The dotted key and where the value came from, for the error message.

    Raises
    ------
    SpiralArmsError
        If the value does not fit the type.
    """
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    if isinstance(value, str) and type(None) in options and value.strip().lower() in _NULL:
        return None
    if value is None:
        if type(None) in options:
            return None
        raise SpiralArmsError(f"{source}: {key} must not be null ({_describe(options)})")
    for option in options:
        if option is type(None):
            continue
        converted = _convert(value, option)
        if converted is not _FAIL:
            return converted
    raise SpiralArmsError(f"{source}: {key} must be {_describe(options)}, got {value!r}")


_FAIL = object()


def _convert(value: Any, option: Any) -> Any:
    """``value`` as type ``option``, or ``_FAIL``; strings are parsed, others checked."""
    origin = typing.get_origin(option)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            return _FAIL
        (item,) = typing.get_args(option)
        kinds = typing.get_args(item) if _is_union(item) else (item,)
        out = []
        for v in value:
            converted = None if v is None and type(None) in kinds else _FAIL
            for kind in kinds:
                if converted is not _FAIL:
                    break
                if kind is not type(None):
                    converted = _convert(v, kind)
            if converted is _FAIL:
                return _FAIL
            out.append(converted)
        return out
    if origin is dict:
        if not isinstance(value, Mapping):
            return _FAIL
        _, kind = typing.get_args(option)
        out = {}
        for k, v in value.items():
            converted = _convert(v, kind)
            if converted is _FAIL:
                return _FAIL
            out[str(k)] = converted
        return out
    if option is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        return _FAIL
    if option is int:
        if isinstance(value, bool):
            return _FAIL
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                return _FAIL
        return _FAIL
    if option is float:
        if isinstance(value, bool):
            return _FAIL
        if isinstance(value, numbers.Real):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                return _FAIL
        return _FAIL
    if option is str:
        if isinstance(value, str):
            return value
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return str(value)
        return _FAIL
    return _FAIL


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _plural_of(kind: Any) -> str:
    """Plural words for a type in error messages (``int`` -> ``"integers"``)."""
    return {bool: "true/false", int: "integers", float: "numbers", str: "strings", type(None): "null"}.get(kind, str(kind))


def _describe(options: Iterable[Any]) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    words = []
    for option in options:
        args = typing.get_args(option)
        if typing.get_origin(option) is list:
            items = typing.get_args(args[0]) if _is_union(args[0]) else args
            words.append("a list of " + " or ".join(_plural_of(i) for i in items))
        elif typing.get_origin(option) is dict:
            words.append("a mapping of names to " + _plural_of(args[1]))
        else:
            words.append(names.get(option, str(option)))
    return " or ".join(words)


def apply_overrides(config: ExperimentConfig, overrides: Iterable[str], source: str = "override") -> ExperimentConfig:
    """Apply ``"section.key=value"`` strings in order; return ``config`` (changed in place).

    Raises
    ------
    SpiralArmsError
        If an override has no ``=``, names an unknown key, or its value does not fit.
    """
    for item in overrides:
        text = str(item)
        if "=" not in text:
            raise SpiralArmsError(f"{source} {text!r}: expected 'section.key=value', e.g. 'train.max_epochs=5'")
        key, value = text.split("=", 1)
        config.set(key.strip(), value.strip(), source=f"{source} {text!r}")
    return config


def config_dirs() -> list[Path]:
    """Folders searched for shipped configurations named without a path.

    The configurations ship inside the package (``spiralarms/configs``), so a name
    such as ``b0-zoobot`` works from any installation, not only a source checkout.
    """
    here = Path(__file__).resolve().parent
    return [d for d in (here / "configs",) if d.is_dir()]


def available_configs() -> list[str]:
    """Names of the shipped configurations (``b0-zoobot``, ``v2m-imagenet``, ...)."""
    return sorted({p.stem for d in config_dirs() for p in d.glob("*.yaml")})


def resolve_config_path(path: str | os.PathLike) -> Path:
    """A config file path, or a shipped configuration's name (``"demo-lite0"``).

    Raises
    ------
    SpiralArmsError
        If neither a file nor a shipped configuration of that name exists.
    """
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    bare = candidate.parent == Path(".") and candidate.suffix in ("", ".yaml")
    if bare:
        for folder in config_dirs():
            shipped = folder / f"{candidate.stem}.yaml"
            if shipped.is_file():
                return shipped
    names = available_configs()
    hint = f"; shipped configurations: {', '.join(names)}" if bare and names else ""
    raise SpiralArmsError(f"{path}: no such config file{hint}")


def load_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """The defaults, updated by a YAML file and then by dotted overrides.

    Parameters
    ----------
    path : str or path-like, optional
        YAML file with ``data``, ``model`` and ``train`` sections (any subset), or
        the name of a shipped configuration (``"b0-zoobot"``, ``"v2m-imagenet"``,
        ``"demo-lite0"``; see :func:`available_configs`).
    overrides : iterable of str
        ``"section.key=value"`` strings, applied after the file, e.g.
        ``["train.max_epochs=5", "data.merge=3,4", "data.cap=null"]``.

    Returns
    -------
    ExperimentConfig
        Validated.

    Raises
    ------
    SpiralArmsError
        On a missing or unparsable file, an unknown key (named, with the file) or a
        bad value.
    """
    config = ExperimentConfig()
    if path is not None:
        path = resolve_config_path(path)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpiralArmsError(f"{source}: cannot read config file: {exc.strerror or exc}") from None
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SpiralArmsError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from None
        config = ExperimentConfig.from_dict(values or {}, source=source)
    apply_overrides(config, overrides)
    return config.validate()


def save_config(config: ExperimentConfig, path: str | os.PathLike) -> Path:
    """Write the resolved configuration (every key) as YAML; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# spiralarms resolved configuration (config_hash {config_hash(config)})\n"
    body = yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=False)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(header + body, encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader (another DDP rank) never sees half a file
    return path


def flatten(config: ExperimentConfig) -> dict[str, Any]:
    """``{"section.key": value}`` for every key."""
    return {f"{s}.{k}": v for s, entries in config.to_dict().items() for k, v in entries.items()}


def config_hash(config: ExperimentConfig, length: int = 12) -> str:
    """Short stable digest of the resolved configuration.

    The same settings give the same hash in any process and on any machine; the
    :data:`RUNTIME_KEYS` (progress bars, loader workers) are left out because they do
    not change results.

    Parameters
    ----------
    config : ExperimentConfig
    length : int, default 12
        Hex digits to keep (of SHA-256).

    Returns
    -------
    str
    """
    values = {k: v for k, v in flatten(config).items() if k not in RUNTIME_KEYS}
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]
