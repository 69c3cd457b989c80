"""Pictures drawn from a model in memory: sample grids and chains over time, returned as PNG
bytes (nothing is written to disk). The requests' numbers were checked against the run's
capabilities before they got here (:mod:`genlab.serve.app`)."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from genlab import noise
from genlab.drawing import draw
from genlab.errors import ConfigError
from genlab.imagegrid import grid_array
from genlab.models.base import (
    GenerativeModel,
    SupportsSample,
    SupportsStepSampling,
    device_of,
)
from genlab.models.markov.chain import require_chain, run_chain, snapshot_steps
from genlab.serve.capabilities import chain_ready
from genlab.serve.limits import CHAIN_DEFAULT_STEPS

CHAIN_COLUMNS = 8  # snapshots of a chain picture, the start and the end included


def png(images: torch.Tensor, ncol: int | None = None, *, at_least: int = 0) -> bytes:
    """Images (N, C, H, W) in [0, 1] as a PNG grid (tiles enlarged to ``at_least`` pixels
    where asked, else as :func:`genlab.imagegrid.grid_array` enlarges them)."""
    images = images.detach().float().cpu()
    side = max(images.shape[2], images.shape[3])
    if at_least > side:
        scale = math.ceil(at_least / side)
        images = images.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    array = grid_array(images, ncol)
    return png_of_array(array)


def png_of_array(array: Any) -> bytes:
    """A uint8 (H, W, C) array with C of 1 or 3 as PNG bytes."""
    picture = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


@dataclass(frozen=True)
class SampleRequest:
    n: int
    seed: int
    temperature: float | None = None
    steps: int | None = None
    label: int | None = None  # a class index of a conditional model
    guidance: float | None = None


def samples(model: GenerativeModel, request: SampleRequest) -> torch.Tensor:
    """``request.n`` images drawn now, on the CPU, as ``genlab sample`` draws them
    (:func:`genlab.drawing.draw`): the family's own sampler, a chain of ``steps`` transitions
    for Markov-chain families (CHAIN_DEFAULT_STEPS where a family samples only by its chain),
    an iterative sampler in ``steps``; the same images for the same request."""
    where = device_of(model)
    n, steps = request.n, request.steps
    one_go = isinstance(model, SupportsSample) or isinstance(model, SupportsStepSampling)
    if steps is None and not one_go:
        steps = CHAIN_DEFAULT_STEPS
    labels = None if request.label is None else torch.full((n,), request.label, device=where)
    images = draw(
        model,
        n,
        noise.generator(request.seed, where),
        steps=steps,
        temperature=request.temperature,
        labels=labels,
        guidance=request.guidance,
    )
    return images.float().cpu()


def chain(
    model: GenerativeModel, *, n: int, steps: int, seed: int, label: int | None = None
) -> tuple[torch.Tensor, int]:
    """Tiles (n * columns, C, H, W), row-major, and the number of columns: each row a chain
    (a Markov-chain family, from noise, its state after 0, 1, 3, ... ``steps`` transitions)
    or a sample (an iterative sampler: its state at evenly spaced steps of ``steps``, then
    the image)."""
    where = device_of(model)
    generator = noise.generator(seed, where)
    if chain_ready(model):
        record = snapshot_steps(steps, CHAIN_COLUMNS - 1)
        start = require_chain(model).chain_start(n, generator=generator)
        _, states = run_chain(model, start, steps, generator=generator, record=record)
        tiles = torch.stack([states[s] for s in record], dim=1).flatten(0, 1)
        return tiles.float().cpu(), len(record)
    if isinstance(model, SupportsStepSampling):
        tiles = _sampler_states(model, n, steps, generator, label)
        return tiles, tiles.shape[0] // n
    raise ConfigError(
        f"the {model.family} family has no chain or iterative sampler to show step by step"
    )


def _sampler_states(
    model: Any, n: int, steps: int, generator: torch.Generator, label: int | None
) -> torch.Tensor:
    """The states an iterative sampler passes through (what its network is given at each
    step, from [-1, 1] to [0, 1]) at CHAIN_COLUMNS - 1 evenly spaced steps, then the image."""
    network = getattr(model, "net", None)
    if not isinstance(network, torch.nn.Module):
        raise ConfigError(f"the {model.family} family does not show its sampler's steps")
    seen: dict[float, torch.Tensor] = {}

    def keep(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        x, t = args[0], args[1]
        key = float(t.flatten()[0]) if isinstance(t, torch.Tensor) else float(t)
        if key not in seen:
            seen[key] = x[:n].detach().float().cpu()

    given: dict[str, Any] = {}
    if label is not None:
        given["y"] = torch.full((n,), label, device=device_of(model))
    handle = network.register_forward_pre_hook(keep)
    try:
        with torch.no_grad():
            final = model.sample_with(n, steps=steps, generator=generator, **given).float().cpu()
    finally:
        handle.remove()
    states = list(seen.values())
    picks = sorted(
        {round(i * (len(states) - 1) / (CHAIN_COLUMNS - 2)) for i in range(CHAIN_COLUMNS - 1)}
    )
    shown = [((states[i].clamp(-1, 1) + 1) / 2) for i in picks] if states else []
    return torch.stack([*shown, final], dim=1).flatten(0, 1)
