"""The taxonomy of generative models (Goodfellow 2016, section 2.3, as cs231n 2017 lecture 13
draws it) with the runs of a report placed on its leaves, each with its headline number.

A run's leaf follows from its family's traits (never its name) and, for a family whose
instances differ, from what the run measured: an autoencoder is on the Markov-chain leaf of
the implicit branch (GSN, the denoising-autoencoder chain) when its chain was evaluated, and
beside the tree otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from genlab.reporting.evidence import RunSummary
from genlab.reporting.plots import save_figure


@dataclass(frozen=True)
class Leaf:
    key: str
    title: str
    examples: str  # the models the lecture names on this leaf
    x: float  # centre in figure units (0..1)
    branch: str  # the node it hangs from


# the inner nodes: key -> (title, x, y, parent)
NODES = {
    "root": ("maximum likelihood", 0.42, 0.95, ""),
    "explicit": ("explicit density", 0.27, 0.8, "root"),
    "implicit": ("implicit density", 0.74, 0.8, "root"),
    "tractable": ("tractable density", 0.13, 0.63, "explicit"),
    "approximate": ("approximate density", 0.41, 0.63, "explicit"),
}
LEAF_Y = 0.42
LINE = 0.03  # height of a line of run text, in figure units
LEAVES = (
    Leaf(
        "fully_visible", "fully visible belief nets", "NADE, MADE, PixelRNN/CNN", 0.05, "tractable"
    ),
    Leaf(
        "change_of_variables",
        "change of variables",
        "nonlinear ICA, RealNVP, Glow",
        0.2,
        "tractable",
    ),
    Leaf("variational", "variational", "VAE", 0.34, "approximate"),
    Leaf("boltzmann", "Markov chain", "Boltzmann machine", 0.48, "approximate"),
    Leaf("gsn", "Markov chain", "GSN, denoising-AE chain", 0.66, "implicit"),
    Leaf("direct", "direct", "GAN", 0.82, "implicit"),
)
BESIDE = (
    Leaf("diffusion", "since 2020: iterative", "diffusion, flow matching", 0.95, ""),
    Leaf("autoencoder", "beside the tree", "autoencoders (no density)", 0.95, ""),
)


def leaf_of(run: RunSummary) -> str:
    """The key of the leaf a run sits on."""
    t = run.traits
    if t.autoregressive:
        return "fully_visible"
    if t.adversarial:
        return "direct"
    if t.variational:
        return "variational"
    if t.sampling == "iterative":
        return "diffusion"
    if t.density == "exact":
        return "change_of_variables"
    if t.sampling == "chain" and t.density in ("estimate", "bound"):
        return "boltzmann"
    if t.sampling == "chain" and run.metric("chain_fd") is not None:
        return "gsn"
    return "autoencoder"


def headline(run: RunSummary) -> str:
    """The one number that best describes the run on its leaf: bits/dim of its likelihood
    (exact, a bound or an estimate), else the FD of its samples or chains, else its
    reconstruction error; "" when it measured none of these."""
    for prefix in ("nll_", "elbo"):
        found = run.metric(prefix)
        if found is not None and "bits_per_dim" in found[1]:
            return f"{found[1]['bits_per_dim']:.3f} bits/dim ({found[0]})"
    found = run.metric("fd_")
    if found is not None:
        return f"{found[0]} {found[1]['value']:.1f}"
    found = run.metric("chain_fd")
    if found is not None and found[1].get("fd"):
        return f"chain FD {found[1]['fd'][-1]:.1f} after {found[1]['steps'][-1]} steps"
    found = run.metric("recon_mse")
    if found is not None:
        return f"recon MSE {found[1]['value']:.4f}"
    return ""


def placements(runs: list[RunSummary]) -> dict[str, list[str]]:
    """Leaf key -> lines "run: headline" for every run, in run order."""
    placed: dict[str, list[str]] = {}
    for run in runs:
        number = headline(run)
        data = "" if not run.binarize else " (8-bit)" if run.binarize == "none" else " (binary)"
        line = f"{run.name}{data}" + (f": {number}" if number else "")
        placed.setdefault(leaf_of(run), []).append(line)
    return placed


def taxonomy_figure(runs: list[RunSummary], path: Path) -> Path | None:
    """The tree with each leaf's runs and headline numbers under it; None without runs."""
    if not runs:
        return None
    placed = placements(runs)
    lines = max(sum(len(_wrap(line).splitlines()) for line in v) for v in placed.values())
    bottom = LEAF_Y - 0.1 - LINE * lines
    figure = Figure(figsize=(17, 6.5 * (1.0 - bottom)))
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(-0.04, 1.04)
    axes.set_ylim(bottom, 1.0)
    axes.axis("off")
    node_box = {"boxstyle": "round,pad=0.4", "facecolor": "#eef", "edgecolor": "#669"}
    for key, (title, x, y, parent) in NODES.items():
        if parent:
            _, px, py, _ = NODES[parent]
            axes.plot([px, x], [py - 0.03, y + 0.03], color="#669", linewidth=1)
        axes.text(x, y, title, ha="center", va="center", fontsize=10, bbox=node_box)
        del key
    for leaf in LEAVES + BESIDE:
        y = LEAF_Y if leaf in LEAVES else (0.8 if leaf.key == "diffusion" else 0.6)
        if leaf.branch:
            _, px, py, _ = NODES[leaf.branch]
            axes.plot([px, leaf.x], [py - 0.03, y + 0.05], color="#669", linewidth=1)
        filled = bool(placed.get(leaf.key))
        box = {
            "boxstyle": "round,pad=0.4",
            "facecolor": "#d8f5d0" if filled else "#f4f4f4",
            "edgecolor": "#6a6" if filled else "#aaa",
            "linestyle": "-" if leaf.branch else "--",
        }
        axes.text(
            leaf.x,
            y,
            f"{leaf.title}\n({leaf.examples})",
            ha="center",
            va="center",
            fontsize=8.5,
            bbox=box,
        )
        runs_here = placed.get(leaf.key, [])
        text = "\n".join(_wrap(line) for line in runs_here) if runs_here else "no run"
        axes.text(
            leaf.x,
            y - 0.07,
            text,
            ha="center",
            va="top",
            fontsize=7.5,
            color="#222" if runs_here else "#999",
        )
    return save_figure(figure, path)


def _wrap(line: str, width: int = 30) -> str:
    """A run's line broken before its number when long, so leaves do not overlap."""
    if len(line) <= width or ": " not in line:
        return line
    name, number = line.split(": ", 1)
    return f"{name}:\n  {number}"
