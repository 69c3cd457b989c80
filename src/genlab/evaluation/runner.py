"""Run the configured metrics on one split and collect a JSON-ready result."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import torch
from tqdm.auto import tqdm

from genlab.config import EvalConfig
from genlab.errors import ConfigError
from genlab.evaluation.metrics import METRICS
from genlab.models.base import GenerativeModel


def check_metric_names(cfg: EvalConfig) -> None:
    unknown = [m for m in cfg.metrics if m not in METRICS]
    if unknown:
        raise ConfigError(
            f"eval.metrics: unknown metric(s) {', '.join(map(repr, unknown))}; "
            f"valid metrics: {', '.join(METRICS.names())}"
        )


def evaluate(
    model: GenerativeModel,
    data: Any,
    cfg: EvalConfig,
    *,
    split: str = "test",
    progress: bool = True,
) -> dict[str, Any]:
    """Every metric in ``cfg.metrics`` on ``split``; inapplicable ones say why instead."""
    check_metric_names(cfg)
    images = data.tensor(split)  # (N, C, H, W) as the model sees them
    if cfg.max_images is not None:
        images = images[: cfg.max_images]
    info = model.data_info
    model.eval()
    metrics: dict[str, Any] = {}
    not_applicable: dict[str, str] = {}
    for base in cfg.metrics:
        metric = METRICS.get(base)
        reason = metric.not_applicable(model)
        if reason is not None:
            not_applicable[base] = reason
            continue
        generator = torch.Generator().manual_seed(cfg.seed)
        batches_total = -(-images.shape[0] // cfg.batch_size)

        def bar(it: Iterable[Any], _name: str = base, _total: int = batches_total) -> Iterable[Any]:
            return tqdm(
                it,
                total=_total,
                desc=_name,
                unit="batch",
                disable=not progress,
                leave=False,
                dynamic_ncols=True,
            )

        start = time.perf_counter()
        with torch.no_grad():
            result = metric.compute(
                model, lambda: images.split(cfg.batch_size), info, cfg, generator, bar
            )
        metrics[result.name] = {**result.to_json(), "seconds": time.perf_counter() - start}
    return {
        "split": split,
        "images": int(images.shape[0]),
        "protocol": {"iwae_k": cfg.iwae_k, "seed": cfg.seed, "batch_size": cfg.batch_size},
        "metrics": metrics,
        "not_applicable": not_applicable,
    }
