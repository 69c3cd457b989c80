"""Drawing n images from a model the way ``genlab sample`` asks: the checks that a request
fits the model (one-line refusals) and the one dispatch over the family's samplers (guided,
iterative, a Markov chain, decoder means, a tempered flow, its own), in chunks. ``genlab
sample`` writes what it draws as a grid (:mod:`genlab.visuals`); ``genlab serve`` answers it."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import cast

import torch

from genlab.errors import ConfigError, RunError
from genlab.models.base import (
    GenerativeModel,
    SupportsGuidance,
    SupportsMarkovChain,
    SupportsSample,
    SupportsSampleMeans,
    SupportsStepSampling,
    SupportsTemperature,
)
from genlab.models.markov.chain import require_chain, run_chain


def positive(value: int, what: str) -> None:
    if value < 1:
        raise ConfigError(f"{what} must be a positive integer, got {value}")


SAMPLE_CHUNK = 1024  # images drawn at once: what sampling holds besides the images is bounded


def _in_chunks(
    n: int, draw: Callable[..., torch.Tensor], labels: torch.Tensor | None = None
) -> torch.Tensor:
    """n images drawn SAMPLE_CHUNK at a time (one draw when n is no more), moved to the CPU
    as they come, so a model's working memory does not grow with n. With ``labels`` (a
    conditional model asked for classes) each call gets its chunk's labels as ``y``."""
    parts = []
    with torch.no_grad():
        for start in range(0, n, SAMPLE_CHUNK):
            size = min(SAMPLE_CHUNK, n - start)
            given = {} if labels is None else {"y": labels[start : start + size]}
            parts.append(draw(size, **given).cpu())
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def check_sampler(model: GenerativeModel, means: bool, temperature: float | None) -> None:
    """A one-line refusal unless the model has the one-go sampler asked for."""
    if not isinstance(model, SupportsSample):
        if isinstance(model, SupportsMarkovChain) and model.chain_not_available() is None:
            raise ConfigError(
                f"this {model.family} run samples by running its denoising chain: give the "
                "chain length, e.g. --steps 1000"
            )
        raise RunError(
            f"the {model.family} family cannot sample: a plain autoencoder has no prior over "
            "its codes to sample from; use `genlab reconstruct` or `genlab interpolate`, train "
            "a denoising one (model.denoising > 0, model.loss=bce) and use --steps, or train a vae"
        )
    if means and not isinstance(model, SupportsSampleMeans):
        raise RunError(
            f"the {model.family} family has no mean images apart from its samples; "
            "drop --means (it is for a vae, whose decoder means differ from its samples)"
        )
    if temperature is not None and not isinstance(model, SupportsTemperature):
        raise ConfigError(
            f"the {model.family} family has no sampling temperature; drop --temperature "
            "(it is for flows, whose latents have a Gaussian prior)"
        )


def check_guidance(model: GenerativeModel, guidance: float, steps: int | None) -> None:
    """A one-line refusal unless the model can be sampled with guidance ``guidance``."""
    if not math.isfinite(guidance):
        raise ConfigError(f"--guidance must be a finite number, got {guidance}")
    if not isinstance(model, SupportsGuidance):
        raise ConfigError(
            f"--guidance is classifier-free guidance of a conditional diffusion; the "
            f"{model.family} family has none (drop --guidance)"
        )
    why = model.guidance_not_available()
    if why is not None:
        raise ConfigError(f"--guidance: this {model.family} run cannot be guided: {why}")
    if steps is not None:
        positive(steps, "--steps")


def draw(
    model: GenerativeModel,
    n: int,
    generator: torch.Generator,
    *,
    steps: int | None = None,
    sampler: str | None = None,
    eta: float | None = None,
    temperature: float | None = None,
    means: bool = False,
    labels: torch.Tensor | None = None,
    guidance: float | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """n images (on the CPU) drawn the way ``genlab sample`` draws them, from a request the
    caller has checked: with classifier-free guidance, an iterative sampler in ``steps``, a
    Markov chain of ``steps`` transitions from noise, decoder means, a tempered flow, or the
    family's own sampler; ``labels`` (n,) for a conditional model asked for classes. The
    one-go samplers draw SAMPLE_CHUNK images at a time."""
    if guidance is not None:
        guide = cast(SupportsGuidance, model)
        return _in_chunks(
            n,
            lambda k, **y: guide.sample_guided(
                k,
                guidance=guidance,
                steps=steps,
                sampler=sampler,
                eta=eta,
                generator=generator,
                progress=progress,
                **y,
            ),
            labels,
        )
    if isinstance(model, SupportsStepSampling) and not (means or temperature is not None):
        return _in_chunks(
            n,
            lambda k, **y: model.sample_with(
                k,
                steps=steps,
                sampler=sampler,
                eta=eta,
                generator=generator,
                progress=progress,
                **y,
            ),
            labels,
        )
    if steps is not None:
        start = require_chain(model).chain_start(n, generator=generator)
        images, _ = run_chain(model, start, steps, generator=generator, progress=progress)
        return images.cpu()
    if means:
        averaged = cast(SupportsSampleMeans, model)
        return _in_chunks(
            n, lambda k, **y: averaged.sample_means(k, generator=generator, **y), labels
        )
    if temperature is not None:
        tempered = cast(SupportsTemperature, model)
        return _in_chunks(
            n,
            lambda k, **y: tempered.sample_tempered(
                k, temperature=temperature, generator=generator, progress=progress, **y
            ),
            labels,
        )
    sampling = cast(SupportsSample, model)
    return _in_chunks(
        n, lambda k, **y: sampling.sample(k, generator=generator, progress=progress, **y), labels
    )
