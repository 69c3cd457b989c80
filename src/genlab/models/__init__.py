"""Model families. Importing this package registers every family in :data:`MODELS`."""

from __future__ import annotations

from typing import Any

from genlab.config_parse import parse_dataclass
from genlab.errors import ConfigError
from genlab.models import autoencoder as _autoencoder  # noqa: F401  (registers "ae")
from genlab.models import gan as _gan  # noqa: F401  (registers "gan")
from genlab.models import pixelcnn as _pixelcnn  # noqa: F401  (pixelcnn, gated_pixelcnn)
from genlab.models import pixelrnn as _pixelrnn  # noqa: F401  (registers "pixelrnn")
from genlab.models import vae as _vae  # noqa: F401  (registers "vae")
from genlab.models.base import DataInfo, GenerativeModel, LogLikelihood, Phase
from genlab.models.registry import MODELS


def parse_model_config(model: dict[str, Any]) -> Any:
    """The family's typed config from a ``model:`` mapping that names the family."""
    if "name" not in model:
        raise ConfigError(f"model.name is missing; valid models: {', '.join(MODELS.names())}")
    fields = dict(model)
    name = fields.pop("name")
    try:
        family = MODELS.get(name)
    except Exception as exc:
        raise ConfigError(f"model.name: {exc}") from None
    return parse_dataclass(family.config_class, fields, "model")


def build_model(model: dict[str, Any], data_info: DataInfo) -> GenerativeModel:
    """Instantiate the family named by ``model['name']`` for data of the given shape/levels."""
    config = parse_model_config(model)
    return MODELS.get(model["name"])(config, data_info)


__all__ = [
    "MODELS",
    "DataInfo",
    "GenerativeModel",
    "LogLikelihood",
    "Phase",
    "build_model",
    "parse_model_config",
]
