"""How the zoo shares its training time: measured, not guessed.

A short pilot trains each entry for a few steps on this machine and device and turns the
measured images/s into seconds per epoch. The plan then gives every run its minimum epochs
(:attr:`ZooEntry.min_epochs`) first, and the time left by entry weight; when the minimums do
not fit, the time is shared max-min fairly (see :func:`allocate`). A run that ends sooner
than planned (fixed epochs, or :data:`MAX_EPOCHS`) hands its unused time to the runs still
to train.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from genlab.zoo.entries import ZooEntry

PILOT_STEPS = 30  # training steps the pilot times per entry
FIXED_MARGIN = 1.5  # planned time over the pilot's estimate for a fixed-epoch run
# an epoch's time beyond the pilot's training speed: sample grids, checkpoints, the best
# weights, the FD curve (the 30-minute zoo's time-limited runs reached 80-90 % of the minimum
# epochs planned at the bare pilot speed)
EPOCH_MARGIN = 1.2
VALIDATION_COST = 1 / 3  # a validation image costs about a third of a training image (no backward)


@dataclass
class Slot:
    """One training run of the plan."""

    entry: ZooEntry
    seed: int
    epoch_seconds: float  # measured by the pilot
    seconds: float = 0.0  # the training time limit planned for it
    seeds_of_entry: int = 1

    @property
    def label(self) -> str:
        return self.entry.name + (f" seed {self.seed}" if self.seed else "")

    @property
    def need(self) -> float:
        """Seconds for its minimum epochs, with :data:`EPOCH_MARGIN` for what an epoch does
        besides training."""
        return self.entry.min_epochs * self.epoch_seconds * EPOCH_MARGIN

    @property
    def weight(self) -> float:
        """Its part of the spare time; seeds of one entry share the entry's weight."""
        return self.entry.weight / self.seeds_of_entry


def epoch_seconds(images_per_s: float, train: int, val: int) -> float:
    """Seconds an epoch takes at the pilot's speed, validation included."""
    if not images_per_s > 0 or not math.isfinite(images_per_s):
        return math.inf
    return (train + VALIDATION_COST * val) / images_per_s


def allocate(slots: list[Slot], seconds: float) -> None:
    """Set every slot's ``seconds`` from ``seconds`` of training time in all. A run with a
    fixed epoch count (:attr:`ZooEntry.fixed_epochs`) is planned first, at its pilot's
    estimate with a margin of :data:`FIXED_MARGIN`, and no time limit cuts it (its schedule
    must finish; it hands back what it does not use). The others share what is left: each
    run's minimum first, then the spare time by weight. When the minimums do not fit, the time
    is shared max-min fairly: each run gets min(its minimum, L), with L set so that the time
    is used up, so the cheap runs still reach their minimum and the expensive ones get equal
    time."""
    fixed = [s for s in slots if s.entry.fixed_epochs]
    for slot in fixed:
        estimate = slot.entry.min_epochs * slot.epoch_seconds  # at the pilot's bare speed
        slot.seconds = estimate * FIXED_MARGIN if math.isfinite(estimate) else 0.0
    seconds = max(0.0, seconds - sum(s.seconds for s in fixed))
    slots = [s for s in slots if not s.entry.fixed_epochs]
    if not slots:
        return
    needs = [
        s.need if math.isfinite(s.need) else seconds  # not timed: as if it needed everything
        for s in slots
    ]
    if sum(needs) >= seconds:
        level = fair_level(needs, seconds)
        for slot, need in zip(slots, needs, strict=True):
            slot.seconds = min(need, level)
        return
    spare, weights = seconds - sum(needs), sum(s.weight for s in slots)
    for slot, need in zip(slots, needs, strict=True):
        share = slot.weight / weights if weights > 0 else 1 / len(slots)
        slot.seconds = need + spare * share


def fair_level(needs: list[float], seconds: float) -> float:
    """The L with sum(min(need, L)) = seconds (needs adding up to at least seconds)."""
    left, count = seconds, len(needs)
    for need in sorted(needs):
        if need * count >= left:  # every run from here on is capped at the same level
            return left / count
        left, count = left - need, count - 1
    return max(needs, default=0.0)


def hand_on(unused: float, later: list[Slot]) -> None:
    """Give time a finished run left unused to the time-limited runs still to train, by
    weight (by need when none of them has a weight); a fixed-epoch run that took longer than
    planned (``unused`` < 0) takes its overrun from them the same way, down to a second each."""
    later = [s for s in later if not s.entry.fixed_epochs]
    if unused == 0 or not later:
        return
    weights = [s.weight for s in later]
    if sum(weights) <= 0:
        weights = [max(s.need, 1e-9) for s in later]
    total = sum(weights)
    for slot, weight in zip(later, weights, strict=True):
        slot.seconds = max(1.0, slot.seconds + unused * weight / total)


def planned_epochs(slot: Slot) -> float:
    return slot.seconds / slot.epoch_seconds if slot.epoch_seconds > 0 else math.inf
