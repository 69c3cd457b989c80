"""A small trained run for tests that need one run folder to read, mutate or misuse."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genlab import api
from genlab.evaluation import context as eval_context
from genlab.evaluation.feature_net import FeatureNetConfig, load_or_train_feature_net
from genlab.models import MODELS, load_run_config
from genlab.models.declarations import TinyConfig
from genlab.runs import RunDir, sample_curve


def tiny_overrides_of(family: str, tiny: TinyConfig) -> list[str]:
    """A family's declared tiny configuration as command-line overrides."""
    out = [f"model.name={family}"]
    out += [f"model.{k}={json.dumps(v)}" for k, v in tiny.model.items()]
    out += [f"train.{k}={json.dumps(v)}" for k, v in tiny.train.items()]
    if tiny.levels == 256:
        out.append("data.binarize=none")
    return out


def tiny_variants() -> dict[str, list[str]]:
    """Every registered family's tiny configurations (``tiny_configs``), by variant name, as
    overrides: the tests that cover every family read these, never a hand list."""
    variants: dict[str, list[str]] = {}
    for family, cls in MODELS.items():
        for variant, tiny in cls.tiny_configs.items():
            assert variant not in variants, f"two families declare the tiny config {variant!r}"
            variants[variant] = tiny_overrides_of(family, tiny)
    return variants


TINY_MODELS = tiny_variants()


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


# a feature network that trains in a moment, for tests of protocols rather than of the network
QUICK_FEATURE_NET = FeatureNetConfig(width=4, feature_dim=16, epochs=1, min_steps=30)


def use_quick_feature_net(monkeypatch: Any) -> Callable[..., Any]:
    """Make training-time FD curves and evaluation use QUICK_FEATURE_NET; returns the loader."""
    quick = functools.partial(load_or_train_feature_net, cfg=QUICK_FEATURE_NET)
    monkeypatch.setattr(sample_curve, "load_or_train_feature_net", quick)
    monkeypatch.setattr(eval_context, "load_or_train_feature_net", quick)
    return quick
