"""The contract every generative model family fulfils, and its optional capabilities.

A family is an ``nn.Module`` subclass of :class:`GenerativeModel`, registered by name in
:data:`genlab.models.MODELS`. The Trainer only ever calls :meth:`GenerativeModel.phases` and
:meth:`GenerativeModel.loss`; evaluation checks the capability protocols below and reports a
metric as not applicable when a model lacks the capability it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import torch
from torch import nn

LikelihoodKind = Literal["exact", "iwae_bound", "elbo"]


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about its data: image shape and number of grey levels."""

    shape: tuple[int, int, int]  # (C, H, W)
    levels: int  # 2 for binarised data, 256 for 8-bit grey levels

    @property
    def num_dims(self) -> int:
        c, h, w = self.shape
        return c * h * w


@dataclass(frozen=True)
class Phase:
    """One optimisation phase: its name, the parameters it updates and how often it runs.

    Most families have a single phase ``"main"``. A GAN has ``"discriminator"`` (``repeats``
    = n_critic) and ``"generator"``; each phase gets its own optimiser from the Trainer.
    """

    name: str
    parameters: Callable[[], Iterable[nn.Parameter]]
    repeats: int = 1
    lr: float | None = None  # overrides train.lr for this phase's optimiser
    betas: tuple[float, float] | None = None  # overrides train.betas for this phase's optimiser


@dataclass(frozen=True)
class LogLikelihood:
    """Per-image log p(x) in nats, and whether it is exact or a lower bound (and which)."""

    values: torch.Tensor  # (B,) nats
    kind: LikelihoodKind
    stderr: torch.Tensor | None = None  # (B,) Monte-Carlo standard error of each value, if any


class GenerativeModel(nn.Module):
    """Base class of every family.

    Subclasses set ``family`` (the registry name) and ``config_class`` (a frozen dataclass),
    take ``(config, data_info)`` in ``__init__`` and implement :meth:`loss`.
    """

    family: ClassVar[str]
    config_class: ClassVar[type]
    description: ClassVar[str] = ""  # one line, shown by `genlab list`

    def __init__(self, config: Any, data_info: DataInfo) -> None:
        super().__init__()
        self.config = config
        self.data_info = data_info

    def phases(self) -> list[Phase]:
        """The optimisation phases, run in order every training iteration."""
        return [Phase("main", self.parameters)]

    def after_step(self, phase: str) -> None:
        """Called by the Trainer after each optimiser step of ``phase`` (e.g. to update an
        exponential moving average of some weights). The default does nothing."""

    def loss(
        self,
        x: torch.Tensor,
        phase: str,
        *,
        generator: torch.Generator | None = None,
        step: int = 0,
    ) -> dict[str, torch.Tensor]:
        """Objective for one batch ``x`` (B, C, H, W) in one phase.

        Returns a dict with a scalar ``"loss"`` to minimise (mean over the batch) plus named
        scalar terms for logging. ``step`` is the global optimisation step (for annealing
        schedules such as KL warm-up); ``generator`` drives every random draw.
        """
        raise NotImplementedError


@runtime_checkable
class SupportsLikelihood(Protocol):
    def log_likelihood(
        self, x: torch.Tensor, *, k: int, generator: torch.Generator | None = None
    ) -> LogLikelihood: ...


@runtime_checkable
class SupportsElbo(Protocol):
    def elbo_terms(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]: ...


@runtime_checkable
class SupportsEncode(Protocol):
    def encode(self, x: torch.Tensor) -> Any: ...


@runtime_checkable
class SupportsDecode(Protocol):
    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class SupportsReconstruct(Protocol):
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class SupportsSample(Protocol):
    """``sample`` returns n images (n, C, H, W) in [0, 1]; ``progress`` asks for a progress bar
    where sampling is slow (autoregressive models)."""

    def sample(
        self, n: int, *, generator: torch.Generator | None = None, progress: bool = False
    ) -> torch.Tensor: ...


@runtime_checkable
class SupportsReconstructionLikelihood(Protocol):
    def reconstruction_log_prob(self, x: torch.Tensor) -> torch.Tensor: ...


def code_of(encoded: Any) -> torch.Tensor:
    """The point code of an ``encode`` result: a tensor as is, a distribution's mean."""
    return encoded if isinstance(encoded, torch.Tensor) else encoded.mean
