"""The one configuration layer: validated settings, YAML files, dotted overrides, one error format.

Every group of settings of the package (training runs, reproductions, prediction) is
a :class:`Settings`: a pydantic v2 model whose fields carry their types, defaults and
ranges declaratively. The same three operations serve them all:

- :meth:`Settings.from_mapping`: defaults updated by a nested mapping (a YAML file);
- :meth:`Settings.with_overrides`: dotted ``key=value`` overrides (``--set``), whose
  values are read as YAML (``[0, 1]``, ``null``, ``true``) unless they are text for a
  text field;
- :func:`settings_error`: every validation problem as one line,
  ``<source>: <key> must be <rule>, got <value>``, or ``unknown key 'train.epoch'
  (did you mean 'train.max_epochs'?)``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from spiralarms.errors import SpiralArmsError

__all__ = [
    "Settings",
    "settings_error",
    "read_yaml",
    "parse_override",
    "config_dirs",
    "available_configs",
    "resolve_config_path",
]

_NULL = {"null", "none", "~", ""}


class Settings(BaseModel):
    """Base of every settings group: unknown keys refused, values checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, coerce_numbers_to_str=True)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None, source: str = "config"):
        """The defaults updated by a nested mapping.

        Raises
        ------
        SpiralArmsError
            One line naming ``source`` and the first unknown key or bad value.
        """
        if values is None:
            values = {}
        if not isinstance(values, Mapping):
            raise SpiralArmsError(f"{source}: expected a mapping of settings, got {type(values).__name__}")
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            raise settings_error(exc, source, cls) from None

    def to_dict(self) -> dict[str, Any]:
        """Every setting as plain values (YAML and JSON ready)."""
        return self.model_dump(mode="json")

    def set_key(self, dotted: str, value: Any, source: str = "override", raw: str | None = None):
        """A copy with one dotted key set (``"train.max_epochs"``, ``"models.B0.config"``).

        Parameters
        ----------
        dotted : str
        value : object
            The new value (already parsed).
        source : str
            For the error message.
        raw : str, optional
            The text the value was parsed from, shown in the error message.

        Raises
        ------
        SpiralArmsError
            On an unknown key or a bad value.
        """
        parts = str(dotted).split(".")
        if not all(parts):
            raise SpiralArmsError(f"{source}: bad key {dotted!r}")
        data = self.model_dump()
        target, annotation = data, type(self)
        for depth, part in enumerate(parts[:-1]):
            model = _settings_type(annotation)
            if model is not None:
                if part not in model.model_fields:
                    raise SpiralArmsError(f"{source}: unknown key {'.'.join(parts[: depth + 1])!r}{_suggest(part, model, parts[:depth])}")
                annotation = model.model_fields[part].annotation
            else:
                # A mapping field (``models``): any key, each value of the mapping's type.
                annotation = _mapping_value(annotation)
            nested = target.get(part)
            if not isinstance(nested, dict):
                nested = {}
                target[part] = nested
            target = nested
        model = _settings_type(annotation)
        last = parts[-1]
        if model is not None and last not in model.model_fields:
            raise SpiralArmsError(f"{source}: unknown key {dotted!r}{_suggest(last, model, parts[:-1])}")
        target[last] = value
        try:
            return type(self).model_validate(data)
        except ValidationError as exc:
            raise settings_error(exc, source, type(self), raw={tuple(parts): raw} if raw is not None else None) from None

    def with_overrides(self, overrides: Iterable[str], source: str = "override"):
        """A copy with ``key=value`` overrides applied in order.

        Raises
        ------
        SpiralArmsError
            If an item has no ``=``, names an unknown key, or its value does not fit
            (the message quotes the item).
        """
        result = self
        for item in overrides:
            key, value, raw = parse_override(item, source)
            result = result.set_key(key, value, source=f"{source} {str(item)!r}", raw=raw)
        return result


def _settings_type(annotation: Any) -> type[Settings] | None:
    """The Settings class a field holds, if it holds one (``X`` or ``X | None``)."""
    candidates = [annotation, *(get_args(annotation) if _is_union(annotation) else ())]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, Settings):
            return candidate
    return None


def _mapping_value(annotation: Any) -> Any:
    """The value type of a ``dict[str, X]`` field (or ``X | None`` of one), else None."""
    for candidate in [annotation, *(get_args(annotation) if _is_union(annotation) else ())]:
        if get_origin(candidate) is dict:
            return get_args(candidate)[1]
    return None


def _suggest(key: str, model: type[Settings], prefix: list[str]) -> str:
    names = list(model.model_fields)
    close = difflib.get_close_matches(str(key), names, n=1)
    dotted = ".".join([*prefix, close[0]]) if close else None
    if dotted:
        return f" (did you mean {dotted!r}?)"
    return f"; keys are {', '.join(names)}" if names else ""


def parse_override(item: str, source: str = "override") -> tuple[str, Any, str]:
    """``"train.max_epochs=5"`` -> ``("train.max_epochs", 5, "5")``.

    The value is read as YAML (``[0, 1]``, ``true``, ``null``, ``1e-4`` stays text
    for the field to convert), except where YAML would read plain text as a mapping
    (a path with ``": "`` in it stays text).

    Raises
    ------
    SpiralArmsError
        If the item has no ``=``.
    """
    text = str(item)
    if "=" not in text:
        raise SpiralArmsError(f"{source} {text!r}: expected 'section.key=value', e.g. 'train.max_epochs=5'")
    key, raw = (part.strip() for part in text.split("=", 1))
    if raw.lower() in _NULL:
        return key, None, raw
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return key, raw, raw
    if isinstance(value, dict) and not raw.startswith("{"):
        value = raw
    return key, value, raw


_RULES = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "finite_number": "a finite number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping of keys",
    "model_type": "a mapping of keys",
    "model_attributes_type": "a mapping of keys",
}


def _rule(error: dict) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "literal_error":
        return f"one of {ctx.get('expected', '').replace(' or ', ', ')}".replace("'", "")
    if kind == "greater_than_equal":
        ge = ctx.get("ge")
        return {0: "a non-negative number", 1: "a positive integer"}.get(ge, f"at least {ge}")
    if kind == "greater_than":
        return "a positive number" if ctx.get("gt") == 0 else f"greater than {ctx.get('gt')}"
    if kind == "less_than":
        return f"less than {ctx.get('lt')}"
    if kind == "less_than_equal":
        return f"at most {ctx.get('le')}"
    if kind == "too_short":
        return "not empty"
    return _RULES.get(kind, error["msg"][0].lower() + error["msg"][1:] if error["msg"] else kind)


def settings_error(exc: ValidationError, source: str, model: type[Settings], raw: dict | None = None) -> SpiralArmsError:
    """One line for the first problem of a pydantic validation error.

    Unions report one error per alternative; the most specific is chosen (a range
    rather than a type mismatch of another alternative).
    """
    errors = exc.errors(include_url=False)
    error = errors[0]
    clean = _key_path(model, error["loc"])
    key = ".".join(clean)
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _model_at(model, clean[:-1])
        return SpiralArmsError(f"{source}: unknown key {key!r}{_suggest(clean[-1], parent, clean[:-1]) if parent else ''}")
    if kind == "spiralarms":
        return SpiralArmsError(f"{source}: {error['msg']}")
    if kind in ("model_type", "model_attributes_type", "dict_type") and len(clean) == 1:
        return SpiralArmsError(f"{source}: section {key!r} must be a mapping of keys, got {error['input']!r}")
    if error.get("input") is None and kind in _RULES and kind not in ("model_type", "dict_type"):
        shown = (raw or {}).get(tuple(clean))
        if shown is None:
            return SpiralArmsError(f"{source}: {key} must not be null ({_rule(error)})")
        return SpiralArmsError(f"{source}: {key} must be {_rule(error)}, got {shown!r}")
    if kind == "value_error":
        message = str(error["msg"]).removeprefix("Value error, ")
        return SpiralArmsError(f"{source}: {key}: {message}" if key else f"{source}: {message}")
    shown = (raw or {}).get(tuple(clean), error.get("input"))
    return SpiralArmsError(f"{source}: {key} must be {_rule(error)}, got {shown!r}")


def _key_path(model: type[Settings], loc) -> list[str]:
    """The user's key path of a pydantic error location, without pydantic's type tags.

    Union members tag the location (``('train', 'devices', 'list[int]', 0)``); the
    tags are dropped by following the annotations.
    """
    path: list[str] = []
    annotation: Any = model
    for part in loc:
        part = str(part)
        if _is_union(annotation):
            members = {_tag(a): a for a in get_args(annotation)}
            if part in members:
                annotation = members[part]
                continue
            inner = [a for a in get_args(annotation) if a is not type(None)]
            annotation = inner[0] if len(inner) == 1 else annotation
        if isinstance(annotation, type) and issubclass(annotation, Settings) and part in annotation.model_fields:
            path.append(part)
            annotation = annotation.model_fields[part].annotation
        elif get_origin(annotation) is dict:
            path.append(part)
            annotation = get_args(annotation)[1]
        elif get_origin(annotation) is list:
            path.append(part)
            annotation = get_args(annotation)[0]
        elif not part.startswith("function-"):
            path.append(part)
    return path


def _is_union(annotation: Any) -> bool:
    import types
    import typing

    return get_origin(annotation) in (typing.Union, types.UnionType)


def _tag(annotation: Any) -> str:
    """pydantic's location tag of a union member (``int``, ``list[int]``, ``ModelSpec``)."""
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace(" ", "")


def _model_at(model: type[Settings], path: list[str]) -> type[Settings] | None:
    for part in path:
        if model is None or part not in model.model_fields:
            return None
        model = _settings_type(model.model_fields[part].annotation)
    return model


def read_yaml(path: str | os.PathLike) -> Any:
    """A YAML file's content, or a one-line error naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpiralArmsError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SpiralArmsError(f"{path}: not a YAML config file (not UTF-8 text)") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpiralArmsError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None


def config_dirs() -> list[Path]:
    """Folders searched for shipped configurations named without a path.

    The configurations ship inside the package (``spiralarms/configs``), so a name
    such as ``b0-zoobot`` works from any installation, not only a source checkout.
    """
    here = Path(__file__).resolve().parent.parent
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
