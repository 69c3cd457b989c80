"""A comparison report's content, read from run folders: each run's eval.json, config,
finetune.json, training log and the images drawn for it; the metric table's row order, the
training curves and the claims table.

Reporting reads results and renders them; it never trains, evaluates or samples —
:mod:`genlab.compare` does that first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab.errors import ConfigError, RunError
from genlab.evaluation.metrics import METRICS
from genlab.models import MODELS
from genlab.reporting.claims import CurvePoint, RunSummary, Verdict, check_claims
from genlab.reporting.plots import quality_vs_compute, training_curves
from genlab.runs import RunDir

IMAGE_KINDS = (
    ("samples", "Samples (seed 0)"),
    ("reconstructions", "Reconstructions (test images above, reconstructions below)"),
    ("interpolations", "Interpolations (in the latent space)"),
    ("latent", "Latent space (2-D view, coloured by label)"),
    ("chains", "Markov chains over time (rows: chains from test images; columns: steps)"),
)


@dataclass
class RunEntry:
    run: RunDir
    summary: RunSummary
    config: dict[str, Any]
    images: dict[str, str] = field(default_factory=dict)  # kind -> path relative to the report


@dataclass
class Report:
    entries: list[RunEntry]
    metric_order: list[str]
    claims: list[Verdict]
    curves: str | None
    out: Path
    compute: str | None = None  # the quality-vs-compute figure (likelihood families)


def summarise(run: RunDir) -> RunSummary:
    """What the claims need from a run folder's eval.json (and finetune.json)."""
    results = run.read_json(run.eval_path)
    try:
        family, metrics, not_applicable = (
            results["family"],
            results["metrics"],
            results["not_applicable"],
        )
        if not (
            isinstance(family, str)
            and family in MODELS
            and isinstance(metrics, dict)
            and all(isinstance(m, dict) and "value" in m for m in metrics.values())
            and isinstance(not_applicable, dict)
        ):
            raise TypeError
        traits = MODELS.get(family).traits
    except (KeyError, TypeError):
        raise RunError(
            f"{run.eval_path} is not a genlab evaluation; run `genlab eval {run.path}`"
        ) from None
    data = results.get("data", {})
    key = f"{data.get('name')} / {data.get('binarize')} / {data.get('fingerprint')}"
    finetune_path = run.path / "finetune.json"
    return RunSummary(
        name=run.path.name,
        family=family,
        traits=traits,
        data_key=key,
        metrics=metrics,
        not_applicable=not_applicable,
        finetune=run.read_json(finetune_path) if finetune_path.exists() else None,
        curve=validation_curve(run.read_metrics()),
    )


def validation_curve(records: list[dict[str, Any]]) -> tuple[CurvePoint, ...]:
    """(training seconds so far, images seen so far, validation loss) after each epoch, from a
    run's metrics.jsonl; empty when it logged no one-phase validation loss."""
    points: list[CurvePoint] = []
    seconds = images = 0.0
    for record in records:
        if record.get("kind") != "epoch":
            continue
        try:
            took, rate, loss = (float(record[k]) for k in ("seconds", "images_per_s", "val/loss"))
        except (KeyError, TypeError, ValueError):
            continue
        if not all(math.isfinite(v) and v >= 0 for v in (took, rate)) or not math.isfinite(loss):
            continue
        seconds, images = seconds + took, images + took * rate
        points.append(CurvePoint(seconds, images, loss))
    return tuple(points)


def metric_order(entries: list[RunEntry]) -> list[str]:
    """Registry order, then any metric an older eval.json holds that is no longer registered."""
    order = METRICS.names_in_order()
    for entry in entries:
        for value in entry.summary.metrics.values():
            base = value.get("metric", "?")
            if base not in order:
                order.append(base)
    return order


def build_report(
    runs: list[RunDir], out: str | Path, images: dict[str, dict[str, str]] | None = None
) -> Report:
    """The report of evaluated runs; ``images`` maps a run's name to its drawn pictures
    (kind -> path relative to ``out``)."""
    if not runs:
        raise ConfigError("compare needs at least one run folder")
    out = Path(out)
    images = images or {}
    entries = [
        RunEntry(run, summarise(run), run.read_json(run.config_path), images.get(run.path.name, {}))
        for run in runs
    ]
    curves = training_curves(
        {e.run.path.name: e.run.read_metrics() for e in entries}, out / "images" / "curves.png"
    )
    likelihood = {
        e.run.path.name: [(p.seconds, p.images, p.val_loss) for p in e.summary.curve]
        for e in entries
        if e.summary.traits.density in ("exact", "bound")
    }
    compute = quality_vs_compute(likelihood, out / "images" / "compute.png")
    return Report(
        entries,
        metric_order(entries),
        check_claims([e.summary for e in entries]),
        "images/curves.png" if curves else None,
        out,
        "images/compute.png" if compute else None,
    )
