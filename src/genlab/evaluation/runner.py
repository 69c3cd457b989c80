"""Run the configured metrics on one split and collect a JSON-ready result.

The device rule: **evaluation runs where the model is.** The caller puts the model on a device
(:func:`~genlab.runs.open_run` does, from ``eval.device`` / ``--device``); nothing here picks a
device or moves the model. The data stay on the CPU as they are loaded; each batch of images
is moved to the model's device, the model's noise is drawn there with a generator made on that
device (``genlab.noise``), and so are the samples, the feature network and its features, the
probes' codes and the fine-tuned classifiers. Choices of images (subsets, orders) are drawn on
the CPU, so the same images are used on every device. Numbers come back to the CPU
(``.cpu()``, ``.item()``) for the JSON result. On the CPU every result is bitwise what it was
before devices existed; on a GPU the noise comes from another generator, so results agree
within Monte-Carlo error, not bitwise. scikit-learn's probes (logistic regression, k-NN)
run on the CPU, on codes brought back from the device.
"""

from __future__ import annotations

import time
from typing import Any

from genlab.config import EvalConfig
from genlab.errors import ConfigError
from genlab.evaluation import class_metrics as _class_metrics  # noqa: F401  (registers metrics)
from genlab.evaluation import guidance_metrics as _guidance  # noqa: F401  (registers metrics)
from genlab.evaluation import markov_metrics as _markov_metrics  # noqa: F401  (registers metrics)
from genlab.evaluation import run_metrics as _run_metrics  # noqa: F401  (registers metrics)
from genlab.evaluation import sample_metrics as _sample_metrics  # noqa: F401  (registers metrics)
from genlab.evaluation import steps_metrics as _steps_metrics  # noqa: F401  (registers metrics)
from genlab.evaluation.context import EvalContext
from genlab.evaluation.metrics import METRICS, default_metrics
from genlab.models.base import GenerativeModel


def metric_names(cfg: EvalConfig) -> tuple[str, ...]:
    """``eval.metrics``, or the registry's default metrics when it is not set."""
    return default_metrics() if cfg.metrics is None else cfg.metrics


def check_metric_names(cfg: EvalConfig) -> None:
    unknown = [m for m in metric_names(cfg) if m not in METRICS]
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
    run_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every metric in ``cfg.metrics`` on ``split``; inapplicable ones say why instead.

    ``data`` needs ``tensor(split)``; the probe and sample-quality metrics also use its
    labels and training split. ``run_info`` (a run's run.json) feeds ``train_speed``.
    """
    check_metric_names(cfg)
    images = data.tensor(split)  # (N, C, H, W) as the model sees them
    if cfg.max_images is not None:
        images = images[: cfg.max_images]
    model.eval()
    ctx = EvalContext(
        model, images, cfg, data=data, run_info=run_info, split=split, progress=progress
    )
    metrics: dict[str, Any] = {}
    not_applicable: dict[str, str] = {}
    for base in metric_names(cfg):
        metric = METRICS.get(base)
        reason = metric.not_applicable(ctx)
        if reason is not None:
            not_applicable[base] = reason
            continue
        start = time.perf_counter()
        result = metric.compute(ctx)
        metrics[result.name] = {
            "metric": base,
            **result.to_json(),
            "seconds": time.perf_counter() - start,
        }
    return {
        "split": split,
        "images": int(images.shape[0]),
        "protocol": {
            "iwae_k": cfg.iwae_k,
            "seed": cfg.seed,
            "batch_size": cfg.batch_size,
            "num_samples": cfg.num_samples,
        },
        "metrics": metrics,
        "not_applicable": not_applicable,
    }
