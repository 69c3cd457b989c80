"""The spread over seeds: runs that differ only in train.seed (and their time budget) are
replicas of one configuration; for each metric they all measured, the mean, the standard
deviation over seeds and the range."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from genlab.reporting.evidence import RunSummary


@dataclass(frozen=True)
class SpreadRow:
    runs: tuple[str, ...]  # the replicas' names, lowest seed first
    metric: str
    mean: float
    sd: float  # sample standard deviation over seeds
    low: float
    high: float


def seed_spread(runs: list[RunSummary]) -> list[SpreadRow]:
    """One row per metric of every group of two or more replicas, in run order."""
    groups: dict[str, list[RunSummary]] = {}
    for run in runs:
        if run.replica_key:
            groups.setdefault(run.replica_key, []).append(run)
    rows = []
    for group in groups.values():
        if len(group) < 2:
            continue
        group = sorted(group, key=lambda r: r.seed)
        names = tuple(r.name for r in group)
        for metric in group[0].metrics:
            values = [r.metrics.get(metric, {}).get("value") for r in group]
            numbers = [float(v) for v in values if isinstance(v, int | float)]
            if len(numbers) != len(group) or not all(map(math.isfinite, numbers)):
                continue
            rows.append(
                SpreadRow(
                    names,
                    metric,
                    statistics.fmean(numbers),
                    statistics.stdev(numbers),
                    min(numbers),
                    max(numbers),
                )
            )
    return rows
