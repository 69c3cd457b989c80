"""What the Trainer talks to: callbacks, batch sources, and the result of a fit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import torch

# the Trainer (genlab.training.trainer imports this module, so it is not imported here)
Trainer = Any


class Callback:
    """Base class: every event does nothing; ``state_key`` None means no checkpointed state."""

    state_key: str | None = None

    def setup(self, trainer: Trainer) -> None:
        """Called once when the Trainer is built (before any state is loaded)."""

    def on_fit_start(self, trainer: Trainer) -> None: ...

    def on_step_end(
        self, trainer: Trainer, terms: dict[str, torch.Tensor], images: int
    ) -> None: ...

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None: ...

    def on_fit_end(self, trainer: Trainer, result: TrainResult) -> None: ...

    def on_diverged(self, trainer: Trainer) -> None: ...

    def on_exit(self, trainer: Trainer) -> None:
        """Called last, however the fit ended (finished, diverged, an exception, a second
        signal): the place to undo what ``on_fit_start`` set up."""

    def describe_recovery(self) -> str | None:
        """Where a diverged run can be picked up again (a checkpoint), if this callback knows."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class BatchSource(Protocol):
    def __len__(self) -> int: ...

    def epoch(
        self, epoch: int, start_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]: ...


@dataclass
class TrainResult:
    steps: int
    epochs_completed: int
    stopped_early: bool
    finished: bool  # False when a budget (max_steps, max_seconds) interrupted the schedule
    best_val_loss: float | None
    images_per_s: float
    stop_reason: str = ""  # "max_steps" or "max_seconds" when interrupted
    best_epoch: int | None = None  # the epoch of best_val_loss
    best_step: int | None = None  # the step at the end of that epoch


__all__ = ["BatchSource", "Callback", "TrainResult"]
