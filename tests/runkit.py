"""A small trained run for tests that need one run folder to read, mutate or misuse."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genlab import api
from genlab.evaluation import context as eval_context
from genlab.evaluation.feature_net import FeatureNetConfig, load_or_train_feature_net
from genlab.models import load_run_config
from genlab.runs import RunDir, sample_curve

# a tiny model of every family but the VAE and GAN (each test adds its own data and budget)
TINY_MODELS = {
    "ae": ["model.name=ae", "model.hidden=[16]", "model.code_dim=3"],
    "vae_warmup": ["model.kl_warmup_steps=40"],
    "pixelcnn": [
        "model.name=pixelcnn",
        "model.channels=8",
        "model.blocks=1",
        "model.head_hidden=8",
    ],
    "gated_pixelcnn": [
        "model.name=gated_pixelcnn",
        "model.channels=8",
        "model.layers=2",
        "model.head_hidden=8",
    ],
    "pixelrnn": [
        "model.name=pixelrnn",
        "model.channels=8",
        "model.layers=1",
        "model.head_hidden=8",
    ],
    "rbm_pcd": ["model.name=rbm", "model.hidden=12", "model.persistent=true", "model.chains=7"],
    "rbm_cd3": ["model.name=rbm", "model.hidden=12", "model.cd_k=3"],
    "dae_walkback": [
        "model.name=ae",
        "model.hidden=[16]",
        "model.code_dim=3",
        "model.denoising=0.3",
        "model.walkback=2",
    ],
}


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
