"""A comparison report's content, read from run folders: each run's eval.json, config,
finetune.json, training log and the images drawn for it; the metric table's row order, the
training curves and the claims table.

Reporting reads results and renders them; it never trains, evaluates or samples —
:mod:`genlab.compare` does that first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab.errors import ConfigError, RunError
from genlab.evaluation.metrics import METRICS
from genlab.models import MODELS
from genlab.reporting.claims import RunSummary, Verdict, check_claims
from genlab.reporting.plots import training_curves
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
    )


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
    return Report(
        entries,
        metric_order(entries),
        check_claims([e.summary for e in entries]),
        "images/curves.png" if curves else None,
        out,
    )
