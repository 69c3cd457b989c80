"""A small trained run for tests that need one run folder to read, mutate or misuse."""

from __future__ import annotations

from pathlib import Path

from genlab import api
from genlab.models import load_run_config
from genlab.runs import RunDir


def train_small(root: Path, *extra: str) -> RunDir:
    """One epoch of a tiny VAE on digits, its run folder under ``root/runs``."""
    overrides = [
        "data.name=digits",
        "model.hidden=[8]",
        "model.latent_dim=2",
        "train.epochs=1",
        "train.progress=false",
        f"runs_dir={root / 'runs'}",
        *extra,
    ]
    return api.train(load_run_config(None, overrides))
