"""Running a model's Markov chain (:class:`~genlab.models.base.SupportsMarkovChain`) for a
number of steps, keeping snapshots of its state along the way."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from tqdm.auto import tqdm

from genlab.errors import ConfigError
from genlab.models.base import GenerativeModel, SupportsMarkovChain


def require_chain(model: GenerativeModel) -> SupportsMarkovChain:
    """The model as a Markov chain, or a one-line error saying why it cannot run one."""
    if not isinstance(model, SupportsMarkovChain):
        raise ConfigError(f"the {model.family} family defines no Markov chain to run")
    reason = model.chain_not_available()
    if reason is not None:
        raise ConfigError(reason)
    return model


def snapshot_steps(steps: int, count: int = 8) -> list[int]:
    """About ``count`` steps from 0 to ``steps``, spaced geometrically (0, 1, 3, 10, ...),
    for pictures of a chain over time."""
    if steps <= 0:
        return [0]
    points = torch.logspace(0, torch.log10(torch.tensor(float(steps))).item(), count - 1)
    return sorted({0, steps, *(int(round(p)) for p in points.tolist())})


@torch.no_grad()
def run_chain(
    model: GenerativeModel,
    start: torch.Tensor,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    record: Iterable[int] = (),
    progress: bool = False,
) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Run ``steps`` transitions from ``start`` (n, C, H, W). Returns the final state and the
    states after each step count in ``record`` (0 is the start itself)."""
    chain = require_chain(model)
    wanted = set(record)
    x = start
    snapshots = {0: x.clone()} if 0 in wanted else {}
    for step in tqdm(
        range(1, steps + 1), desc="chain", unit="step", disable=not progress, leave=False
    ):
        x = chain.chain_step(x, generator=generator)
        if step in wanted:
            snapshots[step] = x.clone()
    return x, snapshots
