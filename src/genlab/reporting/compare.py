"""``genlab compare RUN...``: a set of runs turned into ``report/index.html`` and
``report/report.md``, with every image next to them so the page works offline.

For each run: its eval.json (evaluated first when missing), sample grid, reconstructions and
interpolations when the family has them, training curves, and a 2-D view of the latent space
coloured by label for models with an encoder; then the claims table of DESIGN.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab.errors import ConfigError, GenlabError
from genlab.evaluation.features import encode_images
from genlab.models.base import SupportsEncode
from genlab.reporting.claims import RunSummary, Verdict, check_claims
from genlab.reporting.plots import latent_scatter, training_curves
from genlab.reporting.run_dir import RunDir

LATENT_POINTS = 2000  # test images shown in the latent-space view


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


def _summary(run: RunDir) -> RunSummary:
    results = run.read_json(run.eval_path)
    data = results.get("data", {})
    key = f"{data.get('name')} / {data.get('binarize')} / {data.get('fingerprint')}"
    finetune_path = run.path / "finetune.json"
    return RunSummary(
        name=run.path.name,
        family=results["family"],
        data_key=key,
        metrics=results["metrics"],
        not_applicable=results["not_applicable"],
        finetune=run.read_json(finetune_path) if finetune_path.exists() else None,
    )


def _images(entry: RunEntry, out: Path, progress: bool) -> None:
    """Sample grid, reconstructions, interpolations and latent view, where the family has them."""
    from genlab import api
    from genlab.representation import load_run

    run, name = entry.run, entry.run.path.name
    folder = out / "images"
    makers = {
        "samples": lambda p: api.sample(run, n=64, seed=0, out=p, progress=progress),
        "reconstructions": lambda p: api.reconstruct(run, n=16, seed=0, out=p),
        "interpolations": lambda p: api.interpolate(run, pairs=4, steps=8, seed=0, out=p),
    }
    for kind, make in makers.items():
        try:
            make(folder / f"{name}-{kind}.png")
        except GenlabError:
            continue  # the family cannot do this: the report says "not available"
        entry.images[kind] = f"images/{name}-{kind}.png"
    _, _, model, data = load_run(run)
    labels = data.split("test").labels
    if isinstance(model, SupportsEncode) and labels is not None:
        codes, _ = encode_images(model, data.tensor("test")[:LATENT_POINTS])
        path = folder / f"{name}-latent.png"
        title = f"{name}: {'posterior means' if entry.summary.family == 'vae' else 'codes'}"
        latent_scatter(codes.numpy(), labels[:LATENT_POINTS].numpy(), title, path)
        entry.images["latent"] = f"images/{name}-latent.png"


def build_report(
    runs: list[str | Path | RunDir], out: str | Path, *, progress: bool = True
) -> Report:
    """Evaluate runs lacking eval.json, draw their images and check the claims."""
    from genlab import api
    from genlab.config import ALL_METRICS

    if not runs:
        raise ConfigError("compare needs at least one run folder")
    opened = [r if isinstance(r, RunDir) else RunDir.open(r) for r in runs]
    names = [r.path.name for r in opened]
    if len(set(names)) != len(names):
        raise ConfigError(f"the same run is named twice: {', '.join(names)}")
    for run in opened:  # every run must be usable before anything is written
        run.require_model()
    out = Path(out)
    entries = []
    for run in opened:
        if not run.eval_path.exists():
            if progress:
                print(f"evaluating {run.path} (it has no eval.json yet)")
            api.evaluate(run, progress=progress)
        entry = RunEntry(run, _summary(run), run.read_json(run.config_path))
        _images(entry, out, progress)
        entries.append(entry)
    order = [m for m in ALL_METRICS]
    for entry in entries:
        for value in entry.summary.metrics.values():
            if value.get("metric") not in order:
                order.append(value.get("metric", "?"))
    curves = training_curves(
        {e.run.path.name: e.run.read_metrics() for e in entries}, out / "images" / "curves.png"
    )
    return Report(
        entries,
        order,
        check_claims([e.summary for e in entries]),
        "images/curves.png" if curves else None,
        out,
    )


def compare(
    runs: list[str | Path | RunDir], out: str | Path = "report", *, progress: bool = True
) -> Path:
    """Write ``out/index.html`` and ``out/report.md``; returns the HTML file's path."""
    from genlab.reporting.report_render import render_html, render_markdown

    report = build_report(runs, out, progress=progress)
    report.out.mkdir(parents=True, exist_ok=True)
    (report.out / "report.md").write_text(render_markdown(report))
    html = report.out / "index.html"
    html.write_text(render_html(report))
    return html
