"""Byte-level mutation fuzzing shared by the fuzz tests (Hypothesis)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BUDGETS = [
    pytest.param(60, id="quick"),
    pytest.param(2000, id="long", marks=pytest.mark.slow),
]


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` after one to six byte-level edits."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


def fuzz(budget: int, original: bytes, check: Callable[[bytes], None]) -> None:
    """Run ``check`` on ``budget`` mutations of ``original``."""

    @settings(
        max_examples=budget,
        deadline=None,
        database=None,  # nothing written into the checkout
        derandomize=budget <= 100,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(mutated(original))
    def run(data: bytes) -> None:
        check(data)

    run()
