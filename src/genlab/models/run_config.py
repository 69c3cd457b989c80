"""A whole run config, model section included: the family's typed config is chosen from the
model registry by ``model.name``.

>>> config = load_run_config("configs/vae_mlp_digits.yaml", ["train.epochs=2"])
>>> config.model.family, config.model.latent_dim   # a typed VAEConfig
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genlab.config import ModelConfig, RunConfig
from genlab.config_parse import apply_override, load_yaml, parse_dataclass, to_dict
from genlab.errors import ConfigError
from genlab.models.registry import MODELS

DEFAULT_FAMILY = "vae"


def parse_model_config(model: Mapping[str, Any] | ModelConfig | None) -> ModelConfig:
    """The family's typed config from a ``model:`` mapping that names the family."""
    if isinstance(model, ModelConfig):
        return model
    if model is None:
        model = {"name": DEFAULT_FAMILY}
    if not isinstance(model, Mapping):
        raise ConfigError(f"model must be a mapping with a name, e.g. {{name: vae}}; got {model!r}")
    fields = dict(model)
    name = fields.pop("name", DEFAULT_FAMILY)
    if not isinstance(name, str) or name not in MODELS:
        raise ConfigError(
            f"model.name: unknown model {name!r}; valid models: {', '.join(MODELS.names())}"
        )
    config: ModelConfig = parse_dataclass(MODELS.get(name).config_class, fields, "model")
    return config


def run_config_from_dict(tree: Mapping[str, Any]) -> RunConfig:
    """Validate a plain config tree (from YAML, overrides or config.json) into a RunConfig;
    the model section is checked first, so a bad key fails before any data is touched."""
    if not isinstance(tree, Mapping):
        raise ConfigError(f"a run config must be a mapping of sections, got {tree!r}")
    sections = _moved_settings(dict(tree))
    model = parse_model_config(sections.pop("model", None))
    return parse_dataclass(RunConfig, {**sections, "model": model}, "")


def _moved_settings(sections: dict[str, Any]) -> dict[str, Any]:
    """A config written before a setting moved reads as today's: ``model.ema_decay`` (the GAN's
    own until every family could keep an average) is ``train.ema_decay``."""
    model, train = sections.get("model"), sections.get("train")
    if isinstance(model, Mapping) and "ema_decay" in model:
        if train is not None and not isinstance(train, Mapping):
            return sections
        train = dict(train or {})
        if "ema_decay" in train:
            raise ConfigError(
                "model.ema_decay and train.ema_decay are one setting: keep train.ema_decay"
            )
        model = dict(model)
        train["ema_decay"] = model.pop("ema_decay")
        sections = {**sections, "model": model, "train": train}
    return sections


def load_run_config(
    path: str | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> RunConfig:
    """Load a YAML config (or the defaults) and apply ``a.b=c`` overrides; validate everything."""
    tree: dict[str, Any] = load_yaml(path) if path else {}
    for assignment in overrides:
        apply_override(tree, assignment)
    return run_config_from_dict(tree)


def run_config_to_dict(config: RunConfig, *, runtime: bool = True) -> dict[str, Any]:
    """The fully resolved config as plain values, ``model.name`` first. ``runtime=False``
    leaves out how this process ran (progress, threads, runs_dir): what config.json keeps."""
    tree: dict[str, Any] = to_dict(config, runtime=runtime)
    tree["model"] = {"name": config.model.family, **tree["model"]}
    return tree


__all__ = ["load_run_config", "parse_model_config", "run_config_from_dict", "run_config_to_dict"]
