"""A comparison report's content, read from run folders: each run's eval.json, config,
finetune.json, training log and the images drawn for it; the metric table's row order, the
training curves and the claims table.

Reporting reads results and renders them; it never trains, evaluates or samples —
:mod:`genlab.compare` does that first.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab.errors import ConfigError, RunError
from genlab.evaluation.feature_net import FEATURE_NET_NAME
from genlab.evaluation.metrics import METRICS
from genlab.models import MODELS
from genlab.reporting.claims import CurvePoint, RunSummary, Verdict, check_claims
from genlab.reporting.plots import (
    fd_versus_steps,
    guidance_versus_weight,
    quality_vs_compute,
    sample_quality_vs_compute,
    training_curves,
)
from genlab.reporting.spread import SpreadRow, seed_spread
from genlab.reporting.taxonomy import taxonomy_figure
from genlab.runs import RunDir
from genlab.runs.model_io import stale_note
from genlab.runs.sample_curve import FD_PREFIX

IMAGE_KINDS = (
    ("samples", "Samples (seed 0), as the model defines them: a VAE's are x ~ p(x|z)"),
    ("means", "Mean images E[x|z] (a VAE's decoder means; seed 0, the same z as its samples)"),
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


@dataclass(frozen=True)
class Table:
    """A table a caller adds to the report (the zoo: how its budget was spent)."""

    title: str
    note: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass
class Report:
    entries: list[RunEntry]
    metric_order: list[str]
    claims: list[Verdict]
    curves: str | None
    out: Path
    compute: str | None = None  # the quality-vs-compute figure (likelihood families)
    sample_compute: str | None = None  # FD against compute (runs trained with train.fd_every)
    sample_protocol: str = ""  # the one-line caption of sample_compute: how FD was measured
    spread: list[SpreadRow] = field(default_factory=list)  # replicas' spread over seeds
    tables: tuple[Table, ...] = ()  # the caller's, shown after the list of runs
    taxonomy: str | None = None  # the tree of model kinds with the runs on its leaves
    steps_curve: str | None = None  # FD and images/s against sampling steps (diffusion)
    guidance_curve: str | None = None  # precision, recall, class agreement, FD against w


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
    records = run.read_metrics()
    return RunSummary(
        name=run.path.name,
        family=family,
        traits=traits,
        data_key=key,
        metrics=metrics,
        not_applicable=not_applicable,
        finetune=run.read_json(finetune_path) if finetune_path.exists() else None,
        curve=validation_curve(records),
        sample_curve=sample_curve(records),
        binarize=str(data.get("binarize") or "").split(" ")[0],  # "static (binarize_seed 0)"
        **replica(run.read_json(run.config_path)),
        **selection(run.info(), results),
        stale=stale_note(results, run, "eval.json"),
    )


def selection(info: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """Which weights a run's evaluation used, its epochs and its planned minimum (run.json,
    eval.json), as RunSummary fields; what is missing or malformed is left at the defaults."""

    def whole(value: Any) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    epochs, best = whole(info.get("epochs_completed")), whole(info.get("best_epoch"))
    weights = results.get("weights")
    if best:
        checkpoint = f"best validation epoch {best} of {epochs}"
    elif isinstance(weights, str) and weights.startswith("best validation"):
        checkpoint = weights  # early stopping in a run from before best_epoch was recorded
    else:
        checkpoint = f"final weights, epoch {epochs}" if epochs else ""
    return {
        "checkpoint": checkpoint,
        "epochs": epochs,
        "min_epochs": whole(info.get("planned_min_epochs")),
        "train_seconds": _seconds(info.get("train_seconds")),
    }


def _seconds(value: Any) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok and value > 0 else 0.0


BUDGET_KEYS = ("seed", "max_seconds", "max_steps")  # what may differ between replicas


def replica(config: Any) -> dict[str, Any]:
    """``seed`` and ``replica_key`` (the config without seed and budget) of a run's config."""
    train = config.get("train") if isinstance(config, dict) else None
    if not isinstance(train, dict):
        return {}
    seed = train.get("seed", 0)
    rest = {**config, "train": {k: v for k, v in train.items() if k not in BUDGET_KEYS}}
    return {
        "seed": seed if isinstance(seed, int) else 0,
        "replica_key": json.dumps(rest, sort_keys=True, default=str),
    }


def epoch_curve(records: list[dict[str, Any]], key: str) -> tuple[CurvePoint, ...]:
    """(training seconds so far, images seen so far, ``record[key]``) after each epoch whose
    record holds a finite ``key``, from a run's metrics.jsonl. Seconds and images add up over
    every epoch record, with ``key`` or without: an epoch record's ``seconds`` time its
    training batches only (validation and callbacks, such as the FD measurement, come after),
    so the x-axes are training compute. Records with unreadable times are left out."""
    points: list[CurvePoint] = []
    seconds = images = 0.0
    for record in records:
        if record.get("kind") != "epoch":
            continue
        try:
            took, rate = float(record["seconds"]), float(record["images_per_s"])
        except (KeyError, TypeError, ValueError):
            continue
        if not all(math.isfinite(v) and v >= 0 for v in (took, rate)):
            continue
        seconds, images = seconds + took, images + took * rate
        try:
            value = float(record[key])
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(value):
            points.append(CurvePoint(seconds, images, value))
    return tuple(points)


def validation_curve(records: list[dict[str, Any]]) -> tuple[CurvePoint, ...]:
    """(training seconds so far, images seen so far, validation loss) after each epoch, from a
    run's metrics.jsonl; empty when it logged no one-phase validation loss."""
    return epoch_curve(records, "val/loss")


def sample_curve_key(records: list[dict[str, Any]]) -> str | None:
    """The record key of a run's sample-quality curve (``test/fd_cnn_<n>``), or None."""
    for record in records:
        if record.get("kind") == "epoch":
            for key in record:
                if key.startswith(FD_PREFIX):
                    return key
    return None


def sample_curve(records: list[dict[str, Any]]) -> tuple[CurvePoint, ...]:
    """(training seconds so far, images seen so far, FD) at each epoch the FD was measured
    (``train.fd_every``); empty when it never was."""
    key = sample_curve_key(records)
    return epoch_curve(records, key) if key is not None else ()


def sample_protocol(keys: dict[str, str]) -> str:
    """The caption of the FD-vs-compute figure; ``keys`` maps run names to their curve keys."""
    counts = {name: key.removeprefix(FD_PREFIX) for name, key in keys.items()}
    n = (
        next(iter(counts.values()))
        if len(set(counts.values())) == 1
        else ", ".join(f"{count} ({name})" for name, count in counts.items())
    )
    return (
        f"Fréchet distance in the feature network's ({FEATURE_NET_NAME}) space between N = {n} "
        "model samples and the first N test images, measured at epoch ends (train.fd_every); "
        "x: training seconds and images seen so far, measurement time excluded."
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
    runs: list[RunDir],
    out: str | Path,
    images: dict[str, dict[str, str]] | None = None,
    tables: tuple[Table, ...] = (),
) -> Report:
    """The report of evaluated runs; ``images`` maps a run's name to its drawn pictures
    (kind -> path relative to ``out``); ``tables`` are shown after the list of runs."""
    if not runs:
        raise ConfigError("compare needs at least one run folder")
    out = Path(out)
    images = images or {}
    entries = [
        RunEntry(run, summarise(run), run.read_json(run.config_path), images.get(run.path.name, {}))
        for run in runs
    ]
    records = {e.run.path.name: e.run.read_metrics() for e in entries}
    curves = training_curves(records, out / "images" / "curves.png")
    likelihood = {
        e.run.path.name: [(p.seconds, p.images, p.val_loss) for p in e.summary.curve]
        for e in entries
        if e.summary.traits.density in ("exact", "bound")
    }
    compute = quality_vs_compute(likelihood, out / "images" / "compute.png")
    fd_curves = {
        e.run.path.name: [(p.seconds, p.images, p.val_loss) for p in e.summary.sample_curve]
        for e in entries
        if e.summary.sample_curve
    }
    keys = {name: sample_curve_key(records[name]) or "" for name in fd_curves}
    sample_compute = sample_quality_vs_compute(fd_curves, out / "images" / "sample-compute.png")
    tree = taxonomy_figure([e.summary for e in entries], out / "images" / "taxonomy.png")
    step_points = {
        e.run.path.name: found[1]["points"]
        for e in entries
        if (found := e.summary.metric("fd_vs_steps")) is not None
    }
    steps = fd_versus_steps(step_points, out / "images" / "steps.png")
    guidance_points = {
        e.run.path.name: found[1]["points"]
        for e in entries
        if (found := e.summary.metric("guidance_curve_")) is not None
    }
    guidance = guidance_versus_weight(guidance_points, out / "images" / "guidance.png")
    return Report(
        entries,
        metric_order(entries),
        check_claims([e.summary for e in entries]),
        "images/curves.png" if curves else None,
        out,
        "images/compute.png" if compute else None,
        "images/sample-compute.png" if sample_compute else None,
        sample_protocol(keys) if sample_compute else "",
        seed_spread([e.summary for e in entries]),
        tables,
        "images/taxonomy.png" if tree else None,
        "images/steps.png" if steps else None,
        "images/guidance.png" if guidance else None,
    )
