"""Which runs a claim compares: runs of a kind (by their family's traits), the best of them
by a metric, runs grouped by their data, and replicas (runs that differ only in train.seed)
reduced to the lowest seed, their fine-tuning runs pooled."""

from __future__ import annotations

import dataclasses
from typing import Any

from genlab.reporting.evidence import RunSummary


def variational(runs: list[RunSummary]) -> list[RunSummary]:
    return [r for r in runs if r.traits.variational]


def autoregressive(runs: list[RunSummary]) -> list[RunSummary]:
    return [r for r in runs if r.traits.autoregressive]


def adversarial(runs: list[RunSummary]) -> list[RunSummary]:
    return [r for r in runs if r.traits.adversarial]


def change_of_variables(runs: list[RunSummary]) -> list[RunSummary]:
    """Exact densities sampled in one pass: flows (not the autoregressive models)."""
    t = [r for r in runs if r.traits.density == "exact" and r.traits.sampling == "one_pass"]
    return [r for r in t if not r.traits.autoregressive]


def measured_in(
    runs: list[RunSummary], prefix: str, source: str = "samples"
) -> list[tuple[RunSummary, str, dict[str, Any]]]:
    """(run, metric name, entry) for every run with a metric named ``prefix...``."""
    return [(r, *found) for r in runs if (found := r.metric(prefix, source)) is not None]


def best_of(
    runs: list[RunSummary], prefix: str, lower_is_better: bool = True, source: str = "samples"
) -> tuple[RunSummary, str, dict[str, Any]] | None:
    found = measured_in(runs, prefix, source)
    if not found:
        return None
    sign = 1 if lower_is_better else -1
    return min(found, key=lambda item: sign * item[2]["value"])


def data_groups(runs: list[RunSummary]) -> list[list[RunSummary]]:
    """The runs grouped by their data (name, binarisation, fingerprint), in first-seen order:
    only runs on the same data are ever compared."""
    groups: dict[str, list[RunSummary]] = {}
    for run in runs:
        groups.setdefault(run.data_key, []).append(run)
    return list(groups.values())


def describe_data(run: RunSummary) -> str:
    """The protocol column of a verdict, e.g. "fashion-mnist, binarised (static)"."""
    name = run.data_key.split(" / ")[0]
    if not run.binarize:
        return name
    kind = "8-bit grey levels" if run.binarize == "none" else f"binarised ({run.binarize})"
    return f"{name}, {kind}"


def first_replicas(runs: list[RunSummary]) -> list[RunSummary]:
    """Of the runs that differ only in train.seed, the one with the lowest seed, its
    fine-tuning accuracies pooled over every replica that has them; others kept."""
    groups: dict[str, list[RunSummary]] = {}
    for run in runs:
        groups.setdefault(run.replica_key or run.name, []).append(run)
    lowest = {key: min(group, key=lambda r: r.seed) for key, group in groups.items()}
    kept = []
    for run in runs:
        key = run.replica_key or run.name
        if lowest[key] is run:
            kept.append(_pool_finetune(run, groups[key]))
    return kept


def _pool_finetune(run: RunSummary, replicas: list[RunSummary]) -> RunSummary:
    """``run`` with the per-seed accuracies of every replica's finetune.json in its own."""
    done = [r.finetune for r in replicas if r.finetune]
    if len(done) < 2 or run.finetune is None:
        return run
    pooled: dict[str, dict[str, dict[str, Any]]] = {}
    for variant, sizes in run.finetune["results"].items():
        pooled[variant] = {}
        for size, entry in sizes.items():
            accs = [
                a for f in done for a in f["results"].get(variant, {}).get(size, {}).get("runs", [])
            ]
            pooled[variant][size] = {**entry, "runs": accs}
    return dataclasses.replace(run, finetune={**run.finetune, "results": pooled})


def iterative(runs: list[RunSummary]) -> list[RunSummary]:
    """Iterative samplers: denoising diffusion and flow matching."""
    return [r for r in runs if r.traits.sampling == "iterative"]


def slowest_one_pass(runs: list[RunSummary]) -> tuple[RunSummary, str, dict[str, Any]] | None:
    """The one-pass sampler (one network pass per image: not chains, not iterative or
    autoregressive samplers) with the fewest images/s: what "slow sampling" is measured
    against."""
    one_pass = [r for r in runs if r.traits.sampling == "one_pass"]
    return best_of(one_pass, "sample_images_per_s", lower_is_better=True)
