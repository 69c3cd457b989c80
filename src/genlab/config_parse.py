"""Turn plain dicts (from YAML and ``a.b=c`` overrides) into typed, frozen dataclasses.

Unknown keys, wrong types and values outside a ``Literal`` are :class:`ConfigError`s whose
message names the offending key and lists what is valid.
"""

from __future__ import annotations

import dataclasses
import math
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
    ranges = getattr(cls, "RANGES", {})
    for name, value in kwargs.items():
        if name in ranges:
            _check_range(value, ranges[name], _join(where, name))
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where or 'config'}: {exc}") from None


def _check_range(value: Any, bounds: tuple[float, float], where: str) -> None:
    """Every number in ``value`` (a number, a list of numbers or None) lies in ``bounds``."""
    low, high = bounds
    for item in value if isinstance(value, tuple) else (value,):
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            if not low <= item <= high:
                raise ConfigError(
                    f"{where}: {item!r} is outside the valid range [{low:g}, {high:g}]"
                )


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
        if isinstance(hint, type) and isinstance(value, hint):
            return value  # already typed (a family's model config inside a RunConfig)
        return parse_dataclass(hint, value, where)  # type: ignore[arg-type]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{where}: expected a finite number, got {value!r}")
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
        value = parse_yaml(raw) if raw.strip() else ""
    except RecursionError:
        raise ConfigError(f"override {assignment!r}: value nests too deeply") from None
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


MAX_CONFIG_BYTES = 1 << 20  # a config file is a few hundred bytes; 1 MiB is not a config


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, minus what a config never needs and an attacker can abuse:
    duplicate keys in a mapping are errors (YAML would keep the last silently), and anchors
    and aliases (``&a`` / ``*a``, the "billion laughs" expansion) are refused."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise ConfigError(
                f"YAML aliases (*name) are not accepted in a config (line {mark.line + 1}); "
                "write the values out"
            )
        event = self.peek_event()
        if getattr(event, "anchor", None) is not None:
            raise ConfigError(
                f"YAML anchors (&name) are not accepted in a config (line "
                f"{event.start_mark.line + 1}); write the values out"
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise ConfigError(
                    f"line {key_node.start_mark.line + 1}: a mapping key must be a plain "
                    "word or number"
                )
            if key in seen:
                raise ConfigError(
                    f"key {key!r} appears twice in one mapping (line "
                    f"{key_node.start_mark.line + 1}); keep one"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str) -> Any:
    """YAML text through the strict loader (no duplicate keys, no aliases)."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506  (a SafeLoader subclass)


def load_yaml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path!r} is a directory; give a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"config file {path!r} cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path!r} is over 1 MiB; a genlab config is a few lines")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path!r} is not UTF-8 text (byte {exc.start}); give a YAML file"
        ) from None
    if "\x00" in text:
        raise ConfigError(f"config file {path!r} holds NUL bytes; give a YAML text file")
    try:
        data = parse_yaml(text)
    except ConfigError as exc:
        raise ConfigError(f"config file {path!r}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path!r} is not valid YAML: {_one_line(exc)}") from None
    except RecursionError:
        raise ConfigError(f"config file {path!r} nests too deeply to be a config") from None
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
