"""Model families. Importing this package registers every family in :data:`MODELS`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


def build_model(model: ModelConfig | Mapping[str, Any], data_info: DataInfo) -> GenerativeModel:
    """Instantiate the family of a typed model config (or of a ``{"name": ..., ...}`` mapping)
    for data of the given shape/levels."""
    config = parse_model_config(model)
    return MODELS.get(config.family)(config, data_info)


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
