"""What a verdict rests on: one run's summary (its metrics and learning curves) and the rule
that turns two measured numbers into holds / does not hold / not decided at this budget.

A comparison is **not decided** when the two numbers' 95 % intervals overlap
(``|a - b| <= 2 sqrt(se_a^2 + se_b^2)``), or when the run that is behind was still learning:
its validation loss fell by more than the metric's standard error over the last 20 % of its
training time (:data:`MOVING_TAIL`). The evidence then says why, and for a curve still moving,
how much more training time a linear extrapolation of that last stretch would need to close
the gap (an optimistic figure: learning curves flatten).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from genlab.models.base import Traits
from genlab.models.declarations import BINARISED as BINARY
from genlab.models.declarations import GREY, THRESHOLDED

MOVING_TAIL = 0.2  # the last fifth of a run's training time decides whether it still learns
UNDECIDED = "not decided at this budget"


@dataclass(frozen=True)
class CurvePoint:
    seconds: float  # training seconds so far
    images: float  # training images seen so far
    val_loss: float  # validation loss after this epoch (nats per image for likelihood families)


@dataclass(frozen=True)
class RunSummary:
    """What the report needs from one run folder."""

    name: str
    family: str
    traits: Traits  # the family's, from the model registry: claims select runs by these
    data_key: str  # data name, binarisation and fingerprint: runs compare only within one key
    metrics: dict[str, dict[str, Any]]  # eval.json "metrics"
    not_applicable: dict[str, str]
    finetune: dict[str, Any] | None = None  # finetune.json, if `genlab finetune` ran
    curve: tuple[CurvePoint, ...] = ()  # validation loss by training time (metrics.jsonl)
    # FD of samples by training time (train.fd_every): each point's val_loss holds the FD
    sample_curve: tuple[CurvePoint, ...] = ()
    binarize: str = ""  # the data's binarisation: "static", "dynamic" or "none" (grey levels)
    seed: int = 0  # train.seed
    replica_key: str = ""  # the config without seed and budget: runs with one key are replicas
    checkpoint: str = ""  # which weights were evaluated: "best validation epoch 14 of 20", ...
    epochs: int = 0  # epochs the run completed
    min_epochs: int = 0  # the minimum its plan gave it (a zoo's), 0 when none was planned
    train_seconds: float = 0.0  # run.json's training time (0: not recorded)
    stale: str | None = None  # why eval.json no longer describes the exported weights

    def short_of_minimum(self) -> str:
        """Why the run cannot carry a verdict against it ("" when it can): it stopped before
        the minimum epochs it was planned."""
        if self.min_epochs and self.epochs < self.min_epochs:
            return (
                f"{self.name} trained {self.epochs} of the {self.min_epochs} epochs planned as "
                "its minimum: a longer budget would decide it"
            )
        return ""

    def metric(self, prefix: str, source: str = "samples") -> tuple[str, dict[str, Any]] | None:
        """The first metric whose name starts with ``prefix`` (e.g. 'nll_iwae', 'fd_'), of
        the model's samples or (``source="means"``) of its mean images."""
        for name, entry in self.metrics.items():
            if name.startswith(prefix) and entry.get("source", "samples") == source:
                return name, entry
        return None


def protocol_of(binarize: str) -> str:
    """The protocol of data with this binarisation."""
    return {"none": GREY, "threshold": THRESHOLDED}.get(binarize, BINARY)


@dataclass(frozen=True)
class Verdict:
    claim: str
    measure: str
    verdict: str  # "holds" | "does not hold" | "not decided at this budget" | "not measured"
    evidence: str
    protocol: str = ""  # the data the verdict was computed on, e.g. "fashion-mnist, binarised"


def verdict_of(ok: bool) -> str:
    return "holds" if ok else "does not hold"


MIN_CURVE = 3  # validation points a run needs before its curve can be called flat


def still_learning(run: RunSummary, stderr: float) -> tuple[float, float] | None:
    """(improvement, seconds) of the validation loss over the last :data:`MOVING_TAIL` of the
    run's training time, when that improvement exceeds ``stderr``; None when the curve had
    flattened. A run with fewer than :data:`MIN_CURVE` validation points cannot be judged:
    (nan, its training seconds)."""
    curve = run.curve
    if len(curve) < MIN_CURVE:
        return float("nan"), curve[-1].seconds if curve else 0.0
    start = curve[-1].seconds * (1 - MOVING_TAIL)
    before = [p for p in curve if p.seconds <= start] or [curve[0]]
    first = before[-1]
    improvement = first.val_loss - curve[-1].val_loss
    took = curve[-1].seconds - first.seconds
    return (improvement, took) if improvement > stderr and took > 0 else None


def crossing(a: tuple[CurvePoint, ...], b: tuple[CurvePoint, ...]) -> float | None:
    """The first training time (s) at which curve ``a`` goes from above ``b`` to at or below
    it, both interpolated linearly between epochs; None if they do not cross where both exist."""
    if len(a) < 2 or len(b) < 2:
        return None
    times = sorted({p.seconds for p in (*a, *b)})
    start, end = max(a[0].seconds, b[0].seconds), min(a[-1].seconds, b[-1].seconds)
    times = [t for t in times if start <= t <= end]
    gaps = [(t, _at(a, t) - _at(b, t)) for t in times]
    for (t0, g0), (t1, g1) in zip(gaps, gaps[1:], strict=False):
        if g0 > 0 >= g1:
            return t0 + (t1 - t0) * g0 / (g0 - g1)
    return None


def _at(curve: tuple[CurvePoint, ...], t: float) -> float:
    for p, q in zip(curve, curve[1:], strict=False):
        if p.seconds <= t <= q.seconds:
            w = (t - p.seconds) / (q.seconds - p.seconds) if q.seconds > p.seconds else 0.0
            return p.val_loss + w * (q.val_loss - p.val_loss)
    return curve[-1].val_loss


def _trend(behind: RunSummary, stderr: float) -> str:
    """Whether more training time could decide a difference within its intervals: what the
    validation curve of the run behind did over its last :data:`MOVING_TAIL`."""
    moving = still_learning(behind, stderr)
    if moving is None:
        return (
            f"; {behind.name}'s validation loss had flattened (its last {MOVING_TAIL:.0%} of "
            f"training gained less than the s.e. {stderr:.2f}): more time for these models is "
            "unlikely to decide it, a larger model might"
        )
    if math.isnan(moving[0]):
        return ""
    improvement, seconds = moving
    return (
        f"; {behind.name} was still learning ({improvement:.2f} nats in the last {seconds:.0f} s "
        "of training)"
    )


def _stderr(entry: dict[str, Any]) -> float:
    return float(entry.get("stderr_images", entry.get("stderr", 0.0)) or 0.0)


def compare_lower(
    a: tuple[RunSummary, str, dict[str, Any]],
    b: tuple[RunSummary, str, dict[str, Any]],
    *,
    curves: bool = True,
    lower_is_better: bool = True,
) -> tuple[str, str]:
    """Verdict on "a's metric is lower than b's", three-valued: the intervals must not
    overlap, the run behind must have reached the minimum epochs it was planned, and
    (``curves``: when the metric is the one the validation loss tracks) it must have stopped
    learning by its selected checkpoint. The run behind is the one with the worse value: the
    higher, or the lower where ``lower_is_better`` is False (a caller asking whether a's
    sharpness is lower than b's). (verdict, why)."""
    (run_a, _, ma), (run_b, _, mb) = a, b
    se = (_stderr(ma) ** 2 + _stderr(mb) ** 2) ** 0.5
    gap = mb["value"] - ma["value"]  # > 0: a is lower
    b_worse = (gap > 0) == lower_is_better  # b's value is the higher / the lower one
    behind, metric = (run_b, mb) if b_worse else (run_a, ma)
    if abs(gap) <= 2 * se:
        why = f"the difference {gap:+.2f} is within 2 s.e. ({2 * se:.2f})"
        return UNDECIDED, why + (_trend(behind, _stderr(metric)) if curves else "")
    short = behind.short_of_minimum()
    if short:
        return UNDECIDED, f"difference {gap:+.2f} (2 s.e. {2 * se:.2f}), but {short}"
    moving = still_learning(behind, _stderr(metric)) if curves else None
    if moving is not None and math.isnan(moving[0]):
        return UNDECIDED, (
            f"{behind.name} logged {len(behind.curve)} validation point(s) in {moving[1]:.0f} s "
            f"of training: too few (< {MIN_CURVE}) to tell whether it had stopped learning; "
            "give it a budget for several epochs"
        )
    if moving is not None:
        improvement, seconds = moving
        rate = improvement / seconds
        need = abs(gap) / rate if rate > 0 else float("inf")
        return UNDECIDED, (
            f"{behind.name} was still learning: its validation loss fell {improvement:.2f} nats "
            f"in the last {seconds:.0f} s of training (> s.e. {_stderr(metric):.2f}); at that "
            f"rate about {need:.0f} s more would close the gap of {abs(gap):.2f}"
        )
    flat = "; the curve behind had flattened" if curves else ""
    return verdict_of(gap > 0), f"difference {gap:+.2f} (2 s.e. {2 * se:.2f}){flat}"
