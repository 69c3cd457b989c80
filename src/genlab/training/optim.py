"""Optimisers and learning-rate schedules built from :class:`~genlab.config.TrainConfig`."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from genlab.config import TrainConfig


def build_optimizer(
    params: Iterable[nn.Parameter],
    cfg: TrainConfig,
    *,
    lr: float | None = None,
    betas: tuple[float, float] | None = None,
) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD with (heavy-ball) ``train.momentum``; the fused kernel (one pass
    over all parameters) is used on CPU and CUDA, which is several times faster than the
    per-tensor loop for small models. ``lr`` and ``betas`` override the config's (a model
    phase may set its own)."""
    params = [p for p in params if p.requires_grad]
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.lr if lr is None else lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            fused=fused,
        )
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    b = betas if betas is not None else cfg.betas
    return cls(
        params,
        lr=cfg.lr if lr is None else lr,
        betas=(float(b[0]), float(b[1])),
        weight_decay=cfg.weight_decay,
        fused=fused,
    )


def build_schedule(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_steps``, then constant, cosine to zero, or step decay."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = cfg.warmup_steps

    def factor(step: int) -> float:
        scale = min(1.0, (step + 1) / warmup) if warmup else 1.0
        if cfg.schedule == "cosine":
            progress = min(1.0, max(0, step - warmup) / max(1, total - warmup))
            scale *= 0.5 * (1.0 + math.cos(math.pi * progress))
        elif cfg.schedule == "step":
            scale *= cfg.step_gamma ** (step // (cfg.step_size_epochs * steps_per_epoch))
        return scale

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
