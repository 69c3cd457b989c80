"""Figures of the comparison report: training curves, quality (validation loss, sample FD)
against compute, and 2-D views of latent spaces.

Figures are drawn with matplotlib's object API on an Agg canvas, so nothing touches pyplot's
global state or needs a display.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from genlab.fileio import atomic_path


def save_figure(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    return path


def loss_series(records: list[dict[str, Any]]) -> dict[str, tuple[list[float], list[float]]]:
    """``{term: (epochs, values)}`` of every training and validation loss in metrics.jsonl."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for record in records:
        if record.get("kind") != "epoch":
            continue
        for key, value in record.items():
            if key.endswith("loss") and (key.startswith("train/") or key.startswith("val/")):
                epochs, values = series.setdefault(key, ([], []))
                epochs.append(record["epoch"])
                values.append(value)
    return series


def training_curves(runs: dict[str, list[dict[str, Any]]], path: Path) -> Path | None:
    """One panel per run: its loss terms against epochs. None when no run logged an epoch."""
    panels = {name: loss_series(records) for name, records in runs.items()}
    panels = {name: series for name, series in panels.items() if series}
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    figure = Figure(figsize=(4.2 * cols, 3.2 * rows))
    for index, (name, series) in enumerate(panels.items()):
        axes = figure.add_subplot(rows, cols, index + 1)
        for key, (epochs, values) in series.items():
            style = "--" if key.startswith("val/") else "-"
            axes.plot(epochs, values, style, marker="o", markersize=3, label=key)
        axes.set_title(name, fontsize=9)
        axes.set_xlabel("epoch")
        axes.set_ylabel("loss")
        axes.legend(fontsize=7)
        axes.grid(alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, path)


def quality_vs_compute(
    curves: dict[str, list[tuple[float, float, float]]], path: Path
) -> Path | None:
    """Validation loss of every run on shared axes, against training seconds and against
    images seen: ``curves`` maps a run name to (seconds, images, loss) points (a run that
    validated once is one dot). None when no run has a point."""
    return _against_compute(
        curves,
        path,
        "validation loss (nats per image)",
        "quality vs compute (lower is better; a VAE's curve is its -ELBO)",
    )


def sample_quality_vs_compute(
    curves: dict[str, list[tuple[float, float, float]]], path: Path
) -> Path | None:
    """The Fréchet distance of every run's samples measured during training, on a log axis,
    against training seconds and images seen: ``curves`` maps a run name to (seconds, images,
    FD) points. None when no run has a point."""
    return _against_compute(
        curves,
        path,
        "FD of samples (feature network)",
        "sample quality vs compute (lower is better)",
        log=True,
    )


def _against_compute(
    curves: dict[str, list[tuple[float, float, float]]],
    path: Path,
    ylabel: str,
    title: str,
    *,
    log: bool = False,
) -> Path | None:
    """Two panels with a shared y-axis: ``(_, _, y)`` against seconds, then against images."""
    curves = {name: points for name, points in curves.items() if points}
    if not curves:
        return None
    figure = Figure(figsize=(10.0, 3.8))
    for index, (column, label) in enumerate(((0, "training seconds"), (1, "images seen"))):
        axes = figure.add_subplot(1, 2, index + 1, sharey=figure.axes[0] if index else None)
        for name, points in curves.items():
            xs = [p[column] for p in points]
            axes.plot(xs, [p[2] for p in points], marker="o", markersize=3, label=name)
        axes.set_xlabel(label)
        axes.set_ylabel(ylabel)
        if log:
            axes.set_yscale("log")
        axes.grid(alpha=0.3)
        if index == 0:
            axes.legend(fontsize=7)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return save_figure(figure, path)


def fd_versus_steps(curves: dict[str, list[dict[str, float]]], path: Path) -> Path | None:
    """An iterative sampler's FD (left) and images/s (right) against its number of sampling
    steps (log axis): ``curves`` maps a run name to the ``fd_vs_steps`` metric's points."""
    curves = {name: points for name, points in curves.items() if points}
    if not curves:
        return None
    figure = Figure(figsize=(10.0, 3.8))
    for index, (key, label) in enumerate((("fd", "FD of samples"), ("images_per_s", "images/s"))):
        axes = figure.add_subplot(1, 2, index + 1)
        for name, points in curves.items():
            axes.plot(
                [p["steps"] for p in points], [p[key] for p in points], marker="o", label=name
            )
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("sampling steps")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        if index == 0:
            axes.legend(fontsize=7)
    figure.suptitle("what an iterative sampler's steps buy (FD: lower is better)", fontsize=9)
    figure.tight_layout()
    return save_figure(figure, path)


GUIDANCE_PANELS = (
    (("precision", "recall"), "precision (solid), recall (dashed)"),
    (("class_agreement",), "class agreement"),
    (("fd",), "FD of samples"),
)


def guidance_versus_weight(curves: dict[str, list[dict[str, float]]], path: Path) -> Path | None:
    """Classifier-free guidance's trade: precision and recall, class agreement and FD against
    the guidance weight w (0 unconditional, 1 conditional): ``curves`` maps a run name to the
    ``guidance_curve`` metric's points. None when no run has a point."""
    curves = {name: points for name, points in curves.items() if points}
    if not curves:
        return None
    figure = Figure(figsize=(13.0, 3.8))
    for index, (keys, label) in enumerate(GUIDANCE_PANELS):
        axes = figure.add_subplot(1, len(GUIDANCE_PANELS), index + 1)
        for number, (name, points) in enumerate(curves.items()):
            weights = [p["guidance"] for p in points]
            for key, style in zip(keys, ("-", "--"), strict=False):
                axes.plot(
                    weights,
                    [p[key] for p in points],
                    style,
                    color=f"C{number}",
                    marker="o",
                    label=name if key == keys[0] else None,
                )
        axes.axvline(1.0, color="grey", linewidth=0.8, alpha=0.5)  # the conditional model
        axes.set_xlabel("guidance weight w")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        if index == 0:
            axes.legend(fontsize=7)
    figure.suptitle(
        "classifier-free guidance: fidelity (precision, class agreement) against diversity "
        "(recall); w = 1 is the conditional model",
        fontsize=9,
    )
    figure.tight_layout()
    return save_figure(figure, path)


def latent_scatter(codes: np.ndarray, labels: np.ndarray, title: str, path: Path) -> Path:
    """Codes (N, L) projected on their first two principal components, coloured by label."""
    centred = codes - codes.mean(0)
    if codes.shape[1] > 2:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        points = centred @ vt[:2].T  # (N, 2)
        axis = ("PC 1", "PC 2")
    else:
        points = np.pad(centred, ((0, 0), (0, 2 - codes.shape[1])))
        axis = ("z 1", "z 2")
    figure = Figure(figsize=(4.2, 3.8))
    axes = figure.add_subplot(1, 1, 1)
    scatter = axes.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=4, alpha=0.7)
    axes.set_title(title, fontsize=9)
    axes.set_xlabel(axis[0])
    axes.set_ylabel(axis[1])
    figure.colorbar(scatter, ax=axes, label="label")
    figure.tight_layout()
    return save_figure(figure, path)
