"""When training has diverged: a loss that is NaN or infinite, or that has exploded.

A NaN or an infinity stops training at once. An explosion is a finite loss out of all
proportion to the recent ones: a step's loss counts as exploded when

    |loss| > explode_factor * (median of |loss| over the last WINDOW unexploded steps + 1),

each phase of a model judged against its own history (the ``+ 1`` keeps a loss near zero
from making every step look like an explosion); ``explode_steps`` exploded steps in a row
stop training. The divergence is then dated to the first step of that streak: the weights
before it are the last that trained normally.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

WINDOW = 100  # steps of history a phase's median is taken over


@dataclass(frozen=True)
class Divergence:
    """Training diverged: ``step`` is the first step (1-based) whose loss was bad."""

    step: int
    phase: str
    value: float
    rule: str  # what made the loss bad, in words


class DivergenceWatch:
    """Judges each step's loss per phase; :meth:`check` returns a :class:`Divergence` once
    the loss is non-finite or has exploded for ``steps`` steps in a row. Its history is part
    of the training state, so a resumed run judges exactly as the uninterrupted one."""

    def __init__(self, factor: float | None, steps: int) -> None:
        self.factor, self.steps = factor, steps
        self.history: dict[str, deque[float]] = {}
        self.streak: dict[str, list[int]] = {}  # phase -> [first step, length]

    def check(self, phase: str, value: float, step: int) -> Divergence | None:
        """Judge the loss ``value`` of ``phase`` at ``step`` (1-based)."""
        if not math.isfinite(value):
            return Divergence(step, phase, value, "not a finite number")
        if self.factor is None:
            return None
        history = self.history.setdefault(phase, deque(maxlen=WINDOW))
        limit = self.factor * (_median(history) + 1.0) if history else math.inf
        if abs(value) <= limit:
            history.append(abs(value))
            self.streak.pop(phase, None)
            return None
        first, length = self.streak.get(phase, [step, 0])
        self.streak[phase] = [first, length + 1]
        if length + 1 < self.steps:
            return None
        return Divergence(
            first,
            phase,
            value,
            f"more than {self.factor:g} x (its running median {_median(history):.4g} + 1) for "
            f"{self.steps} steps in a row",
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "history": {k: list(v) for k, v in self.history.items()},
            "streak": {k: list(v) for k, v in self.streak.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = {
            k: deque((float(x) for x in v), maxlen=WINDOW) for k, v in state["history"].items()
        }
        self.streak = {k: [int(v[0]), int(v[1])] for k, v in state["streak"].items()}


def _median(values: deque[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return 0.5 * (ordered[middle - 1] + ordered[middle])
