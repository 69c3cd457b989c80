"""Model families. Importing this package registers every family in :data:`MODELS`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from genlab.config import ModelConfig
from genlab.models import autoencoder as _autoencoder  # noqa: F401  (registers "ae")
from genlab.models import gan as _gan  # noqa: F401  (registers "gan")
from genlab.models import pixelcnn as _pixelcnn  # noqa: F401  (pixelcnn, gated_pixelcnn)
from genlab.models import pixelrnn as _pixelrnn  # noqa: F401  (registers "pixelrnn")
from genlab.models import rbm as _rbm  # noqa: F401  (registers "rbm")
from genlab.models import vae as _vae  # noqa: F401  (registers "vae")
from genlab.models.base import DataInfo, GenerativeModel, LogLikelihood, Phase
from genlab.models.registry import MODELS
from genlab.models.run_config import (
    load_run_config,
    parse_model_config,
    run_config_from_dict,
    run_config_to_dict,
)
from genlab.resources import require_fits


def build_model(model: ModelConfig | Mapping[str, Any], data_info: DataInfo) -> GenerativeModel:
    """Instantiate the family of a typed model config (or of a ``{"name": ..., ...}`` mapping)
    for data of the given shape/levels."""
    config = parse_model_config(model)
    family = MODELS.get(config.family)
    _check_size(family, config, data_info)
    return family(config, data_info)


def _check_size(family: type[GenerativeModel], config: ModelConfig, info: DataInfo) -> None:
    """Refuse, before allocating, a model whose training state cannot fit in memory: the
    family is built on the meta device (shapes only; every family must build there, which
    the contract tests check)."""
    with torch.device("meta"):
        sized = family(config, info)
    weights = sum(t.numel() * t.element_size() for t in (*sized.parameters(), *sized.buffers()))
    require_fits(
        TRAINING_COPIES * weights,
        f"a {config.family} model of {sum(p.numel() for p in sized.parameters()):,} parameters "
        "(weights, gradients and two optimiser moments)",
        "choose smaller model sizes (model.hidden, model.channels, ...)",
    )


TRAINING_COPIES = 4  # weights, gradients and Adam's two moments


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
