"""Query parameters, each checked against its bounds before any work is queued: a value out
of range, not a number, NaN or infinite is a 400 with one line naming the parameter and the
range."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from genlab.serve.problems import bad_request

MAX_TEXT = 64  # characters of a number a request may send
MAX_SEED = 2**31 - 1
_INTEGER = re.compile(r"[+-]?[0-9]+")


def text(query: Mapping[str, str], name: str) -> str | None:
    """The parameter as sent, None when absent or empty."""
    value = query.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def integer(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """An integer parameter in [low, high] (``default`` when absent)."""
    raw = text(query, name)
    if raw is None:
        return default
    return integer_value(raw, name, low, high)


def integer_value(raw: str, name: str, low: int, high: int) -> int:
    if len(raw) > MAX_TEXT or not _INTEGER.fullmatch(raw):
        raise bad_request(f"{name} must be an integer in [{low}, {high}], got {raw[:20]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise bad_request(f"{name} must be in [{low}, {high}], got {value}")
    return value


def optional_integer(query: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    raw = text(query, name)
    return None if raw is None else integer_value(raw, name, low, high)


def number_value(raw: str, name: str, low: float, high: float, *, open_low: bool = False) -> float:
    """A finite number in [low, high] (or (low, high] with ``open_low``)."""
    bounds = f"{'(' if open_low else '['}{low:g}, {high:g}]"
    try:
        value = float(raw) if len(raw) <= MAX_TEXT else math.nan
    except ValueError:
        raise bad_request(f"{name} must be a number in {bounds}, got {raw[:20]!r}") from None
    if not math.isfinite(value):
        raise bad_request(f"{name} must be a finite number in {bounds}, got {raw[:20]!r}")
    if value < low or value > high or (open_low and value == low):
        raise bad_request(f"{name} must be in {bounds}, got {value:g}")
    return value


def optional_number(
    query: Mapping[str, str], name: str, low: float, high: float, *, open_low: bool = False
) -> float | None:
    raw = text(query, name)
    return None if raw is None else number_value(raw, name, low, high, open_low=open_low)


def seed(query: Mapping[str, str]) -> int:
    return integer(query, "seed", 0, 0, MAX_SEED)


def choice(query: Mapping[str, str], name: str, default: str, options: tuple[str, ...]) -> str:
    raw = text(query, name)
    if raw is None:
        return default
    if raw not in options:
        raise bad_request(f"{name} must be one of {', '.join(options)}, got {raw[:20]!r}")
    return raw


def numbers(raw: str | None, name: str, most: int, low: float, high: float) -> list[float]:
    """A comma-separated list of at most ``most`` finite numbers in [low, high]."""
    if raw is None:
        return []
    parts = raw.split(",")
    if len(parts) > most:
        raise bad_request(f"{name} takes at most {most} numbers, got {len(parts)}")
    return [number_value(p.strip(), name, low, high) for p in parts]


def names(raw: str | None, name: str, most: int) -> list[str]:
    """A comma-separated list of at most ``most`` distinct non-empty names."""
    found = [p.strip() for p in (raw or "").split(",") if p.strip()]
    if not found:
        raise bad_request(f"{name} must name at least one run, e.g. {name}=a,b")
    if len(found) > most:
        raise bad_request(f"{name} names at most {most} runs, got {len(found)}")
    if len(set(found)) != len(found):
        raise bad_request(f"{name} names a run twice")
    return found
