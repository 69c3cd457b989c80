"""Model families, in folders that follow the taxonomy of generative models (Goodfellow 2016,
section 2.3): ``autoregressive/`` (fully visible belief nets), ``latent/`` (autoencoders and
VAEs), ``markov/`` (Boltzmann machines), ``adversarial/`` (GANs), and ``common/`` for the
pieces they share.

Importing this package imports every module under it, so each family registers itself in
:data:`MODELS` with its ``@MODELS.register`` decorator: that decorator is the only place a
family is named.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any

import torch

from genlab.config import ModelConfig
from genlab.models.base import DataInfo, GenerativeModel, LogLikelihood, Phase
from genlab.models.registry import MODELS
from genlab.models.run_config import (
    load_run_config,
    parse_model_config,
    run_config_from_dict,
    run_config_to_dict,
)
from genlab.resources import require_fits


def build_model(
    model: ModelConfig | Mapping[str, Any], data_info: DataInfo, *, ema_decay: float | None = None
) -> GenerativeModel:
    """Instantiate the family of a typed model config (or of a ``{"name": ..., ...}`` mapping)
    for data of the given shape/levels, keeping an average of its weights with ``ema_decay``
    (``train.ema_decay``; None: the family's default)."""
    config = parse_model_config(model)
    family = MODELS.get(config.family)
    decay = family.default_ema_decay if ema_decay is None else ema_decay
    _check_size(family, config, data_info, decay)
    built = family(config, data_info)
    built.keep_average(decay)
    return built


def _check_size(
    family: type[GenerativeModel], config: ModelConfig, info: DataInfo, ema_decay: float
) -> None:
    """Refuse, before allocating, a model whose training state cannot fit in memory: the
    family is built on the meta device (shapes only; every family must build there, which
    the contract tests check)."""
    with torch.device("meta"):
        sized = family(config, info)
        sized.keep_average(ema_decay)
    weights = sum(t.numel() * t.element_size() for t in (*sized.parameters(), *sized.buffers()))
    require_fits(
        TRAINING_COPIES * weights,
        f"a {config.family} model of {sum(p.numel() for p in sized.parameters()):,} parameters "
        "(weights, gradients and two optimiser moments)",
        "choose smaller model sizes (model.hidden, model.channels, ...)",
    )


TRAINING_COPIES = 4  # weights, gradients and Adam's two moments


def _import_families() -> None:
    """Import every module below this package: each family registers itself on import."""
    for module in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        importlib.import_module(module.name)


_import_families()


__all__ = [
    "MODELS",
    "DataInfo",
    "GenerativeModel",
    "LogLikelihood",
    "Phase",
    "build_model",
    "load_run_config",
    "parse_model_config",
    "run_config_from_dict",
    "run_config_to_dict",
]
