"""The zoo's models: one entry per family and protocol, with what its budget rests on.

Two protocols, each for the claims it can decide (``reporting.claims`` picks the data group):

- **binarised**: statically binarised images, so the VAE's IWAE bound, the autoregressive
  models' exact NLL and the RBM's AIS estimate are likelihoods of the same binary test set;
- **grey levels**: 8-bit images, for sample quality: a GAN on grey levels against a VAE with a
  discrete 8-bit likelihood, whose samples and decoder means are scored apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from genlab.errors import ConfigError

BINARISED, GREY = "binarised", "grey levels"
BINARIZE = {BINARISED: "static", GREY: "none"}  # data.binarize of each protocol


@dataclass(frozen=True)
class ZooEntry:
    name: str  # the entry's label in zoo.json and progress lines
    family: str
    protocol: str  # BINARISED or GREY
    weight: float  # its part of the time left once every entry has its minimum epochs
    min_epochs: int  # epochs the budget is planned to give it first, where it allows
    model: dict[str, Any]
    train: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)
    finetune: bool = False  # also run the short fine-tuning comparison (encoder families)
    cheap: bool = False  # trained once per seed with --seeds N
    fixed_epochs: bool = False  # train.epochs, not the time limit, ends its training


# as configs/rbm_fashion.yaml: PCD needs its learning rate to decay, so a fixed epoch count
# (about 40 s on 2 cores for Fashion-MNIST) rather than the time limit ends its training
RBM_EPOCHS = 10
RBM_TRAIN: dict[str, Any] = {
    "epochs": RBM_EPOCHS,
    "batch_size": 100,
    "lr": 1e-3,
    "schedule": "cosine",
    "weight_decay": 1e-4,
}
# Adam 2e-3 learns faster per epoch than 1e-3 for all three (validation NLL by epoch in
# BENCHMARKS.md: PixelRNN 246.2, 243.7, 241.6 against 249.5, 245.6, 243.7)
AR_TRAIN = {"batch_size": 64, "lr": 2e-3}
FD_CURVE = {"fd_every": 1, "fd_samples": 1000}  # sample quality against compute while training

ZOO: tuple[ZooEntry, ...] = (
    ZooEntry(
        "vae",
        "vae",
        BINARISED,
        0.10,
        20,
        {"encoder": "mlp", "hidden": [400], "latent_dim": 20},
        cheap=True,
    ),
    ZooEntry(
        "ae",
        "ae",
        BINARISED,
        0.05,
        5,
        {"encoder": "conv", "channels": [32, 64], "code_dim": 20},
        finetune=True,
        cheap=True,
    ),
    ZooEntry(
        "pixelcnn",
        "pixelcnn",
        BINARISED,
        0.15,
        3,
        {"channels": 16, "blocks": 4, "kernel": 3, "first_kernel": 7, "head_hidden": 64},
        AR_TRAIN,
    ),
    ZooEntry(
        "gated_pixelcnn",
        "gated_pixelcnn",
        BINARISED,
        0.20,
        3,
        {"channels": 24, "layers": 5, "kernel": 3, "first_kernel": 7, "head_hidden": 64},
        AR_TRAIN,
    ),
    ZooEntry(
        "pixelrnn",
        "pixelrnn",
        BINARISED,
        0.20,
        3,
        {"channels": 16, "layers": 2, "kernel": 3, "first_kernel": 7, "head_hidden": 64},
        AR_TRAIN,
    ),
    ZooEntry(
        "rbm",
        "rbm",
        BINARISED,
        0.0,
        RBM_EPOCHS,
        {"hidden": 500, "cd_k": 1, "persistent": True, "chains": 100},
        RBM_TRAIN,
        cheap=True,
        fixed_epochs=True,
    ),
    ZooEntry(
        "gan-grey",
        "gan",
        GREY,
        0.25,
        5,
        # half the DCGAN widths of configs/dcgan_fashion.yaml: 2.5x the images per CPU second
        # and a lower FD within the zoo's minutes (BENCHMARKS.md)
        {"architecture": "dcgan", "latent_dim": 64, "channels": [32, 64]},
        {"batch_size": 64, **FD_CURVE},
    ),
    ZooEntry(
        "vae-grey",
        "vae",
        GREY,
        0.05,
        20,
        {"encoder": "mlp", "hidden": [400], "latent_dim": 20, "likelihood": "logistic"},
        {**FD_CURVE, "fd_every": 5},  # an epoch takes seconds: measure every fifth
        eval={"iwae_k": 100},  # its bits/dim are context here: a cheaper bound
        cheap=True,
    ),
)
EVAL_SHARE = 0.2  # of the budget, kept for evaluation and the report
MAX_BUDGET_HOURS = 1000
MAX_EPOCHS = 100  # the time limit, not the epoch count, ends training in practice
MAX_SEEDS = 10


def parse_budget(text: str) -> float:
    """'30m', '1h', '90s', '1h30m' or plain seconds -> seconds."""
    match = re.fullmatch(
        r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text
    )
    if not text.strip() or match is None or not any(match.groups()):
        raise ConfigError(f"budget {text!r} is not a duration; use e.g. 30m, 1h, 1h30m or 900s")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = 3600 * hours + 60 * minutes + seconds
    if total <= 0:
        raise ConfigError(f"budget must be positive, got {text!r}")
    if total > MAX_BUDGET_HOURS * 3600:
        raise ConfigError(f"budget {text!r} is over {MAX_BUDGET_HOURS} hours; give a shorter one")
    return total


def eval_samples(budget: float) -> int:
    """Samples for the sample-quality metrics: fewer on short budgets (the name says how many)."""
    return 10000 if budget >= 4 * 3600 else 2000 if budget >= 20 * 60 else 500


def select(families: list[str] | None, registered: list[str]) -> list[ZooEntry]:
    """The entries of every registered family (or of those named, in the zoo's order)."""
    available = [e for e in ZOO if e.family in registered]
    if not families:
        return available
    unknown = sorted(set(families) - {e.family for e in available})
    if unknown:
        valid = ", ".join(dict.fromkeys(e.family for e in available))
        raise ConfigError(
            f"unknown or unavailable zoo families {', '.join(unknown)}; valid: {valid}"
        )
    return [e for e in available if e.family in families]


def check_seeds(seeds: int) -> int:
    if not 1 <= seeds <= MAX_SEEDS:
        raise ConfigError(f"--seeds must be between 1 and {MAX_SEEDS}, got {seeds}")
    return seeds
