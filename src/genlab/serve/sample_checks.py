"""A drawing request checked against what the run's model can do: temperature only for
flows, steps only for chains and iterative samplers (within the model's own maximum), a class
only for a conditional run and only one of its classes, guidance only for a guidable
diffusion. Each refusal is a 400 in one line; the numbers' own ranges were checked before the
request was queued (:mod:`genlab.serve.params`)."""

from __future__ import annotations

from genlab.class_choice import class_index
from genlab.errors import ConfigError
from genlab.models.base import (
    GenerativeModel,
    SupportsGuidance,
    SupportsSample,
    SupportsStepSampling,
    SupportsTemperature,
)
from genlab.serve.capabilities import chain_ready
from genlab.serve.drawing import SampleRequest
from genlab.serve.limits import MAX_STEPS
from genlab.serve.problems import bad_request

CHAIN_STEPS = 200  # a chain picture's default length


def class_of(model: GenerativeModel, label: str | None) -> int | None:
    """The index of the class ``label`` names (a name, any case, or an index)."""
    if label is None:
        return None
    if not model.classes:
        raise bad_request(
            f"class is for conditional runs; this {model.family} run is unconditional"
        )
    try:
        return class_index(model.classes, label, "class")
    except ConfigError as refused:
        raise bad_request(str(refused)) from None


def _max_steps(model: GenerativeModel) -> int | None:
    if isinstance(model, SupportsStepSampling):
        return min(int(model.max_sample_steps), MAX_STEPS)
    return MAX_STEPS if chain_ready(model) else None


def sample_request(
    model: GenerativeModel,
    n: int,
    seed: int,
    temperature: float | None,
    steps: int | None,
    label: str | None,
    guidance: float | None,
) -> SampleRequest:
    family = model.family
    top = _max_steps(model)
    if not (isinstance(model, SupportsSample) or top is not None):
        raise bad_request(
            f"the {family} family cannot sample: it has no prior over its codes and no chain "
            "(a plain autoencoder); explore its latent space instead"
        )
    if temperature is not None:
        if not isinstance(model, SupportsTemperature):
            raise bad_request(
                f"temperature is for flows (Gaussian latents); the {family} family has none"
            )
        if steps is not None or guidance is not None:
            raise bad_request("temperature does not go with steps or guidance")
    if steps is not None:
        if top is None:
            raise bad_request(
                f"steps is for chains and iterative samplers; the {family} family draws in one go"
            )
        if steps > top:
            raise bad_request(f"steps must be in [1, {top}] for this run, got {steps}")
    if guidance is not None:
        if not isinstance(model, SupportsGuidance):
            raise bad_request(
                f"guidance is classifier-free guidance of a conditional diffusion; the {family} "
                "family has none"
            )
        why = model.guidance_not_available()
        if why is not None:
            raise bad_request(f"this run cannot be guided: {why}")
    return SampleRequest(n, seed, temperature, steps, class_of(model, label), guidance)


def chain_request(
    model: GenerativeModel, steps: int | None, label: str | None
) -> tuple[int, int | None]:
    """(chain length or sampler steps, class index) of a chain picture."""
    top = _max_steps(model)
    if top is None:
        raise bad_request(
            f"the {model.family} family has no Markov chain or iterative sampler to show "
            "step by step"
        )
    if steps is None:
        if isinstance(model, SupportsStepSampling):
            steps = min(int(getattr(model.config, "sample_steps", top)), top)
        else:
            steps = CHAIN_STEPS
    if steps > top:
        raise bad_request(f"steps must be in [1, {top}] for this run, got {steps}")
    return steps, class_of(model, label)
