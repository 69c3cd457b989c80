"""Turn plain dicts (from YAML and ``a.b=c`` overrides) into typed, frozen dataclasses.

Unknown keys, wrong types and values outside a ``Literal`` are :class:`ConfigError`s whose
message names the offending key and lists what is valid.
"""

from __future__ import annotations

import dataclasses
import re
import types
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from genlab.errors import ConfigError

T = TypeVar("T")


def parse_dataclass(cls: type[T], data: Any, where: str) -> T:
    """Build ``cls`` from ``data`` (a mapping), validating every field by its type hint."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping of keys to values, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key{'s' if len(unknown) > 1 else ''} "
            + ", ".join(repr(_join(where, k)) for k in unknown)
            + f"; valid keys in {where or 'the config'}: {', '.join(sorted(fields))}"
        )
    hints = get_type_hints(cls)
    kwargs = {name: _coerce(hints[name], value, _join(where, name)) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where or 'config'}: {exc}") from None


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: invalid value {value!r}")
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices:
            raise ConfigError(
                f"{where}: invalid value {value!r}; valid values: {', '.join(map(repr, choices))}"
            )
        return value
    if origin in (tuple, list):
        args = get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return parse_dataclass(hint, value, where)  # type: ignore[arg-type]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if hint is dict or get_origin(hint) is dict:
        if isinstance(value, dict):
            return dict(value)
        raise ConfigError(f"{where}: expected a mapping, got {value!r}")
    if isinstance(hint, type) and isinstance(value, hint):
        return value  # a section parsed beforehand (the family's model config)
    raise TypeError(
        f"unsupported config type {hint!r} at {where}"
    )  # a bug in genlab, not user input


def to_dict(obj: Any, *, runtime: bool = True) -> Any:
    """The inverse of :func:`parse_dataclass`: plain JSON/YAML-ready values. With
    ``runtime=False``, fields whose metadata marks them ``runtime`` are left out."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: to_dict(getattr(obj, f.name), runtime=runtime)
            for f in dataclasses.fields(obj)
            if runtime or not f.metadata.get("runtime")
        }
    if isinstance(obj, (tuple, list)):
        return [to_dict(v, runtime=runtime) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v, runtime=runtime) for k, v in obj.items()}
    return obj


def apply_override(tree: dict[str, Any], assignment: str) -> None:
    """Apply one ``a.b=c`` override in place; ``c`` is parsed as YAML (``1e-3``, ``null``)."""
    if "=" not in assignment:
        raise ConfigError(
            f"override {assignment!r} must look like key.subkey=value, e.g. train.epochs=5"
        )
    path, _, raw = assignment.partition("=")
    keys = [k for k in path.strip().split(".")]
    if not all(keys):
        raise ConfigError(f"override {assignment!r} has an empty key; write e.g. train.epochs=5")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"override {assignment!r}: value is not valid YAML ({_one_line(exc)})"
        ) from None
    value = _yaml_float(value, raw)
    node = tree
    for key in keys[:-1]:
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override {assignment!r}: {key!r} is a value, not a section")
        node = child
    node[keys[-1]] = value


_SCIENTIFIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def _yaml_float(value: Any, raw: str) -> Any:
    """YAML 1.1 reads ``1e-3`` as a string; accept it as the number a user means."""
    if isinstance(value, str) and _SCIENTIFIC.match(raw.strip()):
        return float(raw.strip())
    return value


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def load_yaml(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path!r} is not valid YAML: {_one_line(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path!r} must hold a mapping at the top level")
    return _fix_floats(data)


def _fix_floats(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _fix_floats(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_fix_floats(v) for v in node]
    if isinstance(node, str):
        return _yaml_float(node, node)
    return node


__all__ = ["parse_dataclass", "to_dict", "apply_override", "load_yaml"]
