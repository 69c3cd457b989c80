"""What a run's model can draw, read from its config without loading its weights: the model
is built on torch's ``meta`` device (shapes only, no memory, no parameters initialised) and
its capability protocols are checked, as the CLI's commands check them on the real model."""

from __future__ import annotations

from typing import Any

import torch

from genlab.config import RunConfig
from genlab.models import DataInfo, GenerativeModel, build_model
from genlab.models.base import (
    SupportsDecode,
    SupportsEncode,
    SupportsGenerate,
    SupportsGuidance,
    SupportsMarkovChain,
    SupportsReconstruct,
    SupportsSample,
    SupportsStepSampling,
    SupportsTemperature,
    code_of,
)
from genlab.serve.limits import CHAIN_DEFAULT_STEPS, MAX_STEPS


def meta_model(config: RunConfig, info: DataInfo) -> GenerativeModel:
    """The run's model built on the meta device: its class and structure, no weights."""
    with torch.device("meta"):
        return build_model(config.model, info, ema_decay=config.train.ema_decay)


def chain_ready(model: object) -> bool:
    return isinstance(model, SupportsMarkovChain) and model.chain_not_available() is None


def code_size(model: GenerativeModel) -> int:
    """The length of an encoder's codes (flattened), found on a meta batch where the model
    allows it, else from its config (latent_dim) or the image size (a flow's codes)."""
    try:
        with torch.no_grad():
            x = torch.zeros(1, *model.data_info.shape, device="meta")
            given = {"y": torch.zeros(1, dtype=torch.long, device="meta")} if model.classes else {}
            encoder: Any = model
            return int(code_of(encoder.encode(x, **given)).flatten(1).shape[1])
    except Exception:  # a model whose encoder reads values (meta tensors have none)
        size = getattr(model.config, "latent_dim", None)
        return int(size) if isinstance(size, int) else model.data_info.num_dims


def capabilities(model: GenerativeModel, config: RunConfig) -> dict[str, Any]:
    """The run page's switches: which requests this model answers and with what ranges."""
    found: Any = model  # its protocols are checked below
    iterative = isinstance(model, SupportsStepSampling)
    chain = chain_ready(model)
    steps = "iterative" if iterative else "chain" if chain else None
    max_steps = None
    default_steps = None
    if iterative:
        max_steps = min(int(found.max_sample_steps), MAX_STEPS)
        default_steps = min(int(getattr(model.config, "sample_steps", max_steps)), max_steps)
    elif chain:
        max_steps, default_steps = MAX_STEPS, CHAIN_DEFAULT_STEPS
    encoder = isinstance(model, SupportsEncode) and isinstance(model, SupportsDecode)
    generator = not encoder and isinstance(model, SupportsGenerate)
    latent_dim = code_size(model) if encoder else int(found.latent_dim) if generator else None
    return {
        "family": model.family,
        "sampling": model.traits.sampling,
        "sample": isinstance(model, SupportsSample) or iterative or chain,
        "temperature": isinstance(model, SupportsTemperature),
        "steps": steps,
        "max_steps": max_steps,
        "default_steps": default_steps,
        "chain": chain or iterative,
        "classes": list(model.classes),
        "guidance": isinstance(model, SupportsGuidance) and model.guidance_not_available() is None,
        "latent": "encoder" if encoder else "generator" if generator else None,
        "latent_dim": latent_dim,
        "variational": model.traits.variational,
        "reconstruct": isinstance(model, SupportsReconstruct),
        "manifold": latent_dim == 2,
    }
