"""What this machine can hold: refuse work whose memory cannot fit before allocating it."""

from __future__ import annotations

import os

from genlab.errors import ConfigError


def physical_memory_bytes() -> int:
    """Total physical memory (bytes); a large number where the platform does not say."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 1 << 50


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1000
    raise AssertionError("unreachable")


def require_fits(needed: float, what: str, fix: str) -> None:
    """A one-line error when ``needed`` bytes exceed this machine's physical memory."""
    total = physical_memory_bytes()
    if needed > total:
        raise ConfigError(
            f"{what} needs about {human_bytes(needed)}, more than this machine's "
            f"{human_bytes(total)} of memory; {fix}"
        )
