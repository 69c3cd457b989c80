"""Render a comparison :class:`~genlab.reporting.report.Report` as Markdown and as HTML.

Each metric formats its own cells and declares its direction (the arrow); nothing here
knows a metric or a family by name.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from genlab.evaluation.metrics import METRICS, Metric
from genlab.fileio import atomic_write_text
from genlab.reporting.report import IMAGE_KINDS, Report


def _metric(base: str) -> Metric | None:
    return METRICS.get(base) if base in METRICS else None


def format_value(entry: dict[str, Any]) -> str:
    """A metric's cell, formatted by the metric itself (a plain number if it is unknown)."""
    metric = _metric(entry.get("metric", ""))
    return metric.format(entry) if metric is not None else f"{entry['value']:.4g}"


def metric_rows(report: Report) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """``[(row label, [(cell text, not-applicable reason or None) per run])]``."""
    rows = []
    for base in report.metric_order:
        cells: list[tuple[str, str | None]] = []
        names: list[str] = []
        for entry in report.entries:
            found = [(n, m) for n, m in entry.summary.metrics.items() if m.get("metric") == base]
            if found:
                name, entry_metric = found[0]
                names.append(name)
                cells.append((format_value(entry_metric), None))
            elif base in entry.summary.not_applicable:
                cells.append(("n/a", entry.summary.not_applicable[base]))
            else:
                cells.append(("not evaluated", "not in this run's eval.metrics"))
        if names:
            metric = _metric(base)
            arrow = "" if metric is None else " ↑" if metric.direction == "higher" else " ↓"
            label = " / ".join(dict.fromkeys(names)) + arrow
            rows.append((label, cells))
    return rows


def _describe(entry: Any) -> str:
    model = entry.config.get("model", {})
    data = entry.config.get("data", {})
    detail = ", ".join(
        f"{k}={model[k]}"
        for k in (
            "architecture",
            "encoder",
            "likelihood",
            "latent_dim",
            "code_dim",
            "loss",
            "channels",
        )
        if k in model and not (k == "channels" and model.get("encoder") in ("mlp", "linear"))
    )
    text = f"{model.get('name')} ({detail}) on {data.get('name')}, binarize={data.get('binarize')}"
    summary = entry.summary
    if summary.checkpoint:
        text += f"; evaluated: {summary.checkpoint}"
    if summary.min_epochs:
        text += f" (planned minimum {summary.min_epochs} epochs)"
    if summary.stale:
        text += f"; **{summary.stale}** (run `genlab eval` again)"
    return text


SPREAD_NOTE = (
    "Runs that differ only in train.seed: each metric's mean, standard deviation over seeds "
    "and range. The claims use the lowest seed's run."
)


def first_clause(evidence: str, width: int = 220) -> str:
    """The first clause of a verdict's evidence (up to its first "; " outside parentheses),
    cut at ``width``."""
    depth, end = 0, len(evidence)
    for i, char in enumerate(evidence):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and evidence.startswith("; ", i):
            end = i
            break
    first = evidence[:end]
    return first if len(first) <= width else first[: width - 1].rstrip() + "…"


def render_markdown(report: Report) -> str:
    """The page in the order a reader asks: the verdicts (one line of evidence each), the
    runs on the taxonomy, the images and curves, then the runs, the budget, every metric, the
    spread over seeds and each verdict's evidence in full."""
    names = [e.run.path.name for e in report.entries]
    lines = ["# genlab comparison report", "", "## Claims", "", CLAIMS_NOTE, ""]
    lines += ["| claim | data | verdict | evidence |", "|---|---|---|---|"]
    for n, v in enumerate(report.claims, 1):
        lines.append(
            f"| {v.claim} | {v.protocol or '—'} | **{v.verdict}** | {first_clause(v.evidence)} "
            f"([{n}](#evidence-in-full)) |"
        )
    if any(v.claim.startswith(LIKELIHOOD_CLAIM) for v in report.claims):
        lines += ["", PROTOCOLS_NOTE]
    if report.taxonomy:
        lines += ["", "## The runs on the taxonomy", "", TAXONOMY_NOTE, ""]
        lines.append(f"![the taxonomy of generative models]({report.taxonomy})")
    for kind, title in IMAGE_KINDS:
        shown = [(e.run.path.name, e.images[kind]) for e in report.entries if kind in e.images]
        if shown:
            lines += ["", f"## {title}", ""]
            lines += [f"**{name}**\n\n![{name} {kind}]({path})\n" for name, path in shown]
    if report.compute or report.sample_compute:
        lines += ["", "## Quality vs compute"]
    if report.compute:
        lines += ["", f"![quality vs compute]({report.compute})"]
    if report.sample_compute:
        lines += ["", f"![sample quality vs compute]({report.sample_compute})", ""]
        lines.append(f"*{report.sample_protocol}*")
    if report.steps_curve:
        lines += ["", f"![FD and speed vs sampling steps]({report.steps_curve})", ""]
        lines.append(f"*{STEPS_CAPTION}*")
    if report.guidance_curve:
        lines += ["", "## Classifier-free guidance", ""]
        lines += [f"![guidance: fidelity against diversity]({report.guidance_curve})", ""]
        lines.append(f"*{GUIDANCE_CAPTION}*")
    if report.curves:
        lines += ["", "## Training curves", "", f"![training curves]({report.curves})"]
    lines += ["", "## Runs", ""]
    lines += [f"- **{e.run.path.name}**: {_describe(e)}" for e in report.entries]
    for table in report.tables:
        lines += ["", f"## {table.title}", "", table.note, ""]
        lines += ["| " + " | ".join(table.header) + " |", "|---" * len(table.header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    lines += ["", "## Metrics", "", "| metric | " + " | ".join(names) + " |"]
    lines.append("|---|" + "---|" * len(names))
    for label, cells in metric_rows(report):
        lines.append(f"| {label} | " + " | ".join(text for text, _ in cells) + " |")
    if report.spread:
        lines += ["", "## Spread over seeds", "", SPREAD_NOTE, ""]
        lines += ["| runs | metric | mean | sd | range |", "|---|---|---|---|---|"]
        lines += [
            f"| {', '.join(r.runs)} | {r.metric} | {r.mean:.4g} | {r.sd:.2g} | "
            f"{r.low:.4g} – {r.high:.4g} |"
            for r in report.spread
        ]
    lines += ["", "## Evidence in full", ""]
    lines += [
        f"{n}. **{v.claim}** ({v.measure}; {v.protocol or 'no data'}): **{v.verdict}**. "
        f"{v.evidence}"
        for n, v in enumerate(report.claims, 1)
    ]
    return "\n".join(lines) + "\n"


LIKELIHOOD_CLAIM = "PixelRNN/PixelCNN reach better likelihood than a VAE"
PROTOCOLS_NOTE = (
    "Why the likelihood claim can differ between protocols: stochastic binarisation draws each "
    "pixel once from Bernoulli(its grey level), noise that is independent from pixel to pixel "
    "given the grey image. A VAE's decoder, whose pixels are independent given z, models such "
    "noise at no cost, while a fully visible model gains nothing from its pixel-to-pixel "
    "dependencies there. Thresholding (pixel > 0.5) adds no noise and leaves sharp shapes "
    "whose pixels depend on each other; on 8-bit grey levels a 256-way softmax meets the VAE's "
    "discretised logistic and the flow's dequantised density. The published results that "
    "PixelCNNs beat VAEs are on MNIST, whose digits are nearly binary already, where the "
    "protocols almost coincide; on grey garments they need not agree."
)

CLAIMS_NOTE = (
    "Each claim is decided on the runs of one data protocol: holds / does not hold only when "
    "the difference is beyond two standard errors, the run behind reached its planned minimum "
    "epochs and its validation curve had flattened by the checkpoint evaluated; otherwise not "
    "decided at this budget, saying what is missing. The first clause of the evidence is "
    "here; the numbered evidence in full is at the end of the page."
)


TAXONOMY_NOTE = (
    "Generative models by how they define a density (Goodfellow 2016; cs231n 2017 lecture 13), "
    "each leaf with the runs of this report on it and their headline number: bits/dim of a "
    "likelihood (exact, a bound or an estimate, as its metric's name says), else the FD of "
    "samples or chains. Grey leaves have no run here."
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #bbb; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef; }
td.na { color: #999; }
.holds { background: #d8f5d0; } .does-not-hold { background: #f9d6d5; }
.not-measured { background: #eee; } .not-decided-at-this-budget { background: #fdf1c7; }
.row { display: flex; flex-wrap: wrap; gap: 1.5em; }
.row figure { margin: 0; } .row img { max-width: 360px; image-rendering: pixelated; }
figcaption { font-size: 13px; }
"""


def render_html(report: Report) -> str:
    """The page of :func:`render_markdown`, in the same order, as HTML."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>genlab comparison</title><style>{STYLE}</style></head><body>",
        "<h1>genlab comparison report</h1>",
        f"<h2>Claims</h2><p>{esc(CLAIMS_NOTE)}</p><table id='claims'>",
        "<tr><th>claim</th><th>data</th><th>verdict</th><th>evidence</th></tr>",
    ]
    for n, v in enumerate(report.claims, 1):
        css = v.verdict.replace(" ", "-")
        parts.append(
            f"<tr><td>{esc(v.claim)}</td><td>{esc(v.protocol or '—')}</td>"
            f"<td class='{css}'><b>{esc(v.verdict)}</b></td><td>{esc(first_clause(v.evidence))} "
            f"<a href='#evidence-{n}'>[{n}]</a></td></tr>"
        )
    parts.append("</table>")
    if any(v.claim.startswith(LIKELIHOOD_CLAIM) for v in report.claims):
        parts.append(f"<p>{esc(PROTOCOLS_NOTE)}</p>")
    if report.taxonomy:
        parts.append(f"<h2>The runs on the taxonomy</h2><p>{esc(TAXONOMY_NOTE)}</p>")
        parts.append(f"<img id='taxonomy' src='{esc(report.taxonomy)}' alt='taxonomy'>")
    parts += _html_figures(report)
    parts.append("<h2>Runs</h2><ul>")
    parts += [
        f"<li><b>{esc(e.run.path.name)}</b>: {esc(_describe(e))}</li>" for e in report.entries
    ]
    parts.append("</ul>")
    for table in report.tables:
        parts.append(f"<h2>{esc(table.title)}</h2><p>{esc(table.note)}</p><table>")
        parts.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in table.header) + "</tr>")
        parts += [
            "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in table.rows
        ]
        parts.append("</table>")
    parts += _html_metrics(report)
    if report.spread:
        parts.append(f"<h2>Spread over seeds</h2><p>{esc(SPREAD_NOTE)}</p><table id='spread'>")
        parts.append("<tr><th>runs</th><th>metric</th><th>mean</th><th>sd</th><th>range</th></tr>")
        parts += [
            f"<tr><td>{esc(', '.join(r.runs))}</td><td>{esc(r.metric)}</td><td>{r.mean:.4g}</td>"
            f"<td>{r.sd:.2g}</td><td>{r.low:.4g} – {r.high:.4g}</td></tr>"
            for r in report.spread
        ]
        parts.append("</table>")
    parts.append("<h2>Evidence in full</h2><ol>")
    parts += [
        f"<li id='evidence-{n}'><b>{esc(v.claim)}</b> ({esc(v.measure)}; "
        f"{esc(v.protocol or 'no data')}): <b>{esc(v.verdict)}</b>. {esc(v.evidence)}</li>"
        for n, v in enumerate(report.claims, 1)
    ]
    parts.append("</ol></body></html>")
    return "\n".join(parts) + "\n"


def _html_figures(report: Report) -> list[str]:
    """Images side by side per kind, then quality against compute and the training curves."""
    esc, parts = html.escape, []
    for kind, title in IMAGE_KINDS:
        shown = [(e.run.path.name, e.images[kind]) for e in report.entries if kind in e.images]
        if shown:
            parts.append(f"<h2>{esc(title)}</h2><div class='row'>")
            parts += [
                f"<figure><img src='{esc(p)}' alt='{esc(n)} {kind}'>"
                f"<figcaption>{esc(n)}</figcaption></figure>"
                for n, p in shown
            ]
            parts.append("</div>")
    if report.compute or report.sample_compute:
        parts.append("<h2 id='compute'>Quality vs compute</h2>")
    if report.compute:
        parts.append(f"<img src='{esc(report.compute)}' alt='quality vs compute'>")
    if report.sample_compute:
        parts.append(
            f"<figure><img src='{esc(report.sample_compute)}' alt='sample quality vs compute'>"
            f"<figcaption>{esc(report.sample_protocol)}</figcaption></figure>"
        )
    if report.steps_curve:
        parts.append(
            "<h2 id='steps'>Sampling steps</h2>"
            f"<figure><img src='{esc(report.steps_curve)}' alt='FD and speed vs sampling steps'>"
            f"<figcaption>{esc(STEPS_CAPTION)}</figcaption></figure>"
        )
    if report.guidance_curve:
        parts.append(
            "<h2 id='guidance'>Classifier-free guidance</h2>"
            f"<figure><img src='{esc(report.guidance_curve)}' alt='guidance: fidelity against "
            f"diversity'><figcaption>{esc(GUIDANCE_CAPTION)}</figcaption></figure>"
        )
    if report.curves:
        parts.append(f"<h2>Training curves</h2><img src='{esc(report.curves)}' alt='curves'>")
    return parts


STEPS_CAPTION = (
    "FD (feature network) and images/s of an iterative sampler against its number of steps: "
    "one seed, eval.steps_curve_samples samples per count (the fd_vs_steps metric)"
)


GUIDANCE_CAPTION = (
    "Precision and recall (k-NN manifolds), class agreement and FD (feature network) of a "
    "conditional sampler against the guidance weight w: one seed for every weight, "
    "eval.guidance_curve_samples samples for the classes in turn (the guidance_curve metric)"
)


def _html_metrics(report: Report) -> list[str]:
    esc = html.escape
    parts = ["<h2>Metrics</h2><table id='metrics'><tr><th>metric</th>"]
    parts += [f"<th>{esc(e.run.path.name)}</th>" for e in report.entries]
    parts.append("</tr>")
    for label, cells in metric_rows(report):
        parts.append(f"<tr><th>{esc(label)}</th>")
        for text, reason in cells:
            if reason is None:
                parts.append(f"<td>{esc(text)}</td>")
            else:
                parts.append(f"<td class='na' title='{esc(reason)}'>{esc(text)}</td>")
        parts.append("</tr>")
    parts.append("</table>")
    return parts


def write_report(report: Report) -> Path:
    """Write ``report.md`` and ``index.html`` into the report folder; returns the HTML path."""
    report.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(report.out / "report.md", render_markdown(report))
    return atomic_write_text(report.out / "index.html", render_html(report))
