"""The zoo's models: the entries every family declares (``zoo_entries``), one per family and
protocol, with what its budget rests on; a family that declares none is left out.

Two protocols, each for the claims it can decide (``reporting.claims`` picks the data group):

- **binarised**: statically binarised images, so the VAE's IWAE bound, the autoregressive
  models' exact NLL and the RBM's AIS estimate are likelihoods of the same binary test set;
- **grey levels**: 8-bit images, for sample quality: a GAN on grey levels against a VAE with a
  discrete 8-bit likelihood, whose samples and decoder means are scored apart.
"""

from __future__ import annotations

import re

from genlab.errors import ConfigError
from genlab.models import MODELS
from genlab.models.declarations import BINARISED, BINARIZE, GREY, ZooEntry


def declared_entries() -> tuple[ZooEntry, ...]:
    """Every registered family's zoo entries (``zoo_entries`` on the family), the binarised
    protocol first, each in the order the families registered."""
    entries = [e for name in MODELS.names_in_order() for e in MODELS.get(name).zoo_entries]
    return tuple(sorted(entries, key=lambda e: list(BINARIZE).index(e.protocol)))


ZOO: tuple[ZooEntry, ...] = declared_entries()
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


__all__ = [
    "BINARISED",
    "BINARIZE",
    "GREY",
    "ZOO",
    "ZooEntry",
    "check_seeds",
    "declared_entries",
    "eval_samples",
    "parse_budget",
    "select",
]
