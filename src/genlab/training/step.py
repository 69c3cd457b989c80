"""How one optimisation step is computed: where, in which precision, and across how many ranks.

:class:`StepEngine` wraps the model's objective (``model.loss``) in a module whose forward is
the loss, so that DistributedDataParallel reduces the gradients of whatever the objective
used (each phase of a GAN uses its own parameters), ``torch.compile`` compiles it, and
autocast runs it in bf16 or fp16. fp16 gets a gradient scaler; bf16 and fp32 do not need one.
Parameters, gradients and optimiser state stay fp32 in every precision.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from genlab.config import TrainConfig
from genlab.models.base import GenerativeModel
from genlab.training.distributed import ProcessGroup

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class Objective(nn.Module):
    """``forward(x, phase, generator, y)`` is ``model.loss``: the one call DDP and compile
    see; the labels ``y`` reach only a conditional model."""

    def __init__(self, model: GenerativeModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, x: torch.Tensor, phase: str, generator: torch.Generator, y: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        return model_loss(self.model, x, phase, generator, y)


def model_loss(
    model: GenerativeModel,
    x: torch.Tensor,
    phase: str,
    generator: torch.Generator,
    y: torch.Tensor | None,
) -> dict[str, torch.Tensor]:
    """``model.loss`` of the batch ``x``, given its labels ``y`` when the model is
    conditional (which then needs them)."""
    if not model.conditional:
        return model.loss(x, phase, generator=generator)
    if y is None:
        raise ValueError("a conditional model's loss needs the batch's labels")
    return model.loss(x, phase, generator=generator, y=y.to(x.device))  # type: ignore[call-arg]


def has_convolutions(model: nn.Module) -> bool:
    """Whether any parameter is a 4-d convolution kernel (channels_last then helps)."""
    return any(p.dim() == 4 for p in model.parameters())


class StepEngine:
    def __init__(
        self,
        model: GenerativeModel,
        cfg: TrainConfig,
        device: torch.device,
        group: ProcessGroup | None,
        phases: int,
    ) -> None:
        self.device, self.group = device, group
        self.dtype = DTYPES[cfg.precision]
        self.channels_last = cfg.channels_last and has_convolutions(model)
        module: nn.Module = Objective(model)
        if group is not None:
            with warnings.catch_warnings():  # broadcast_buffers=False is what we mean: keep it
                warnings.filterwarnings("ignore", "`broadcast_buffers` is deprecated")
                module = self._wrap(module, device, phases)
        self.module: Any = torch.compile(module) if cfg.compile else module
        self.scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")

    @staticmethod
    def _wrap(module: nn.Module, device: torch.device, phases: int) -> nn.Module:
        return DistributedDataParallel(
            module,
            device_ids=[device.index] if device.type == "cuda" else None,
            # per-rank buffers (persistent chains, batch-norm statistics) stay per rank
            broadcast_buffers=False,
            # a phase of a multi-phase model (a GAN) leaves the other's parameters unused
            find_unused_parameters=phases > 1,
        )

    def loss(
        self,
        x: torch.Tensor,
        phase: str,
        generator: torch.Generator,
        y: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        enabled = self.dtype != torch.float32
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=enabled):
            return self.module(x, phase, generator, y)

    def step(
        self,
        loss: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        params: list[nn.Parameter],
        grad_clip: float | None,
    ) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss.float()).backward()
        if grad_clip is not None:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        return {"scaler": self.scaler.state_dict()} if self.scaler.is_enabled() else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler.is_enabled() and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
