"""Representation and speed metrics, registered in :data:`METRICS` beside the others.

- ``probe_logreg_acc_n<L>``: test accuracy of multinomial logistic regression on the encoder's
  codes (posterior means for a VAE), fitted on ``eval.probe_labels`` class-balanced training
  labels, with the raw-pixel probe on the same labels as ``pixel_baseline``.
- ``sample_images_per_s``: images per second drawn by ``model.sample`` (the evaluation samples
  when the sample-quality metrics drew them, else ``eval.speed_samples`` images). For
  autoregressive models, the naive sampler (a full forward pass per pixel) and the cached one are
  also timed on the same ``NAIVE_BATCH`` images with the same noise, as ``naive_images_per_s``,
  ``cached_images_per_s_same_batch`` and their ratio ``cached_speedup``.
- ``train_images_per_s``: training throughput recorded by the Trainer in the run's run.json.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch

from genlab import noise
from genlab.devices import describe, synchronize
from genlab.evaluation.context import EvalContext
from genlab.evaluation.features import CONDITIONAL_CODES, encode_images
from genlab.evaluation.metrics import METRICS, Metric, MetricResult
from genlab.evaluation.probe import probe_features
from genlab.models.autoregressive.sampling import AutoregressiveModel, sample_autoregressive
from genlab.models.base import SupportsEncode, SupportsSample, device_of

NAIVE_BATCH = 2  # images drawn by both autoregressive samplers for the speed-up


WARMUP_SAMPLES = 8  # images drawn, untimed, before the sampling speed is timed


def _timed(function, device: torch.device) -> tuple[torch.Tensor, float]:  # noqa: ANN001
    """``function()``'s result and the seconds it took, its work on ``device`` included."""
    start = time.perf_counter()
    with torch.no_grad():
        result = function()
    synchronize(device)
    return result, time.perf_counter() - start


def sampler_speedup(model: AutoregressiveModel, seed: int) -> dict[str, float | bool]:
    """Naive against cached sampling of the same NAIVE_BATCH images from the same noise."""
    runs, device = {}, device_of(model)
    for sampler in ("naive", "cached"):
        generator = noise.generator(seed, device)
        runs[sampler] = _timed(
            lambda s=sampler, g=generator: sample_autoregressive(
                model, NAIVE_BATCH, generator=g, sampler=s
            ),
            device,
        )
    (naive, naive_s), (cached, cached_s) = runs["naive"], runs["cached"]
    return {
        "naive_images_per_s": NAIVE_BATCH / naive_s,
        "cached_images_per_s_same_batch": NAIVE_BATCH / cached_s,
        "cached_speedup": naive_s / cached_s,
        "samplers_identical": bool(torch.equal(naive, cached)),
        "speedup_batch": NAIVE_BATCH,
    }


@dataclass
class ProbeAccuracy(Metric):
    """A linear probe on the codes. Not applicable to a conditional model: its encoder is
    given the label, so its codes carry the answer the probe is asked for."""

    description = "linear probe (logistic regression) test accuracy on the encoder's codes"
    direction = "higher"

    def format(self, entry: dict[str, Any]) -> str:
        return f"{entry['value']:.3f} (pixels {entry['pixel_baseline']:.3f})"

    def not_applicable(self, ctx: EvalContext) -> str | None:
        if not isinstance(ctx.model, SupportsEncode):
            return f"the {ctx.model.family} family has no encoder to probe"
        if ctx.model.conditional:  # its codes carry the label the probe is asked for
            return CONDITIONAL_CODES.format(family=ctx.model.family)
        if not ctx.has_labels():
            return "the data have no labels to probe with"
        return None

    def compute(self, ctx: EvalContext) -> MetricResult:
        labels = ctx.cfg.probe_labels
        train_images = ctx.data.tensor("train")
        train_labels = ctx.data.train.labels.numpy()
        test_labels = ctx.data.split(ctx.split).labels.numpy()[: ctx.images.shape[0]]
        codes_train, _ = encode_images(ctx.model, train_images)
        codes_test, _ = encode_images(ctx.model, ctx.images)
        sizes, seeds = (labels,), (ctx.cfg.seed,)

        def accuracy(train: torch.Tensor, test: torch.Tensor) -> float:
            result = probe_features(  # scikit-learn: on the CPU
                train.cpu().numpy().reshape(train.shape[0], -1),
                train_labels,
                test.cpu().numpy().reshape(test.shape[0], -1),
                test_labels,
                sizes=sizes,
                seeds=seeds,
                classifiers=("logreg",),
            )
            return float(result["logreg"][str(labels)]["mean"])

        classes = np.unique(train_labels).size
        return MetricResult(
            f"probe_logreg_acc_n{labels}",
            accuracy(codes_train, codes_test),
            "accuracy",
            {
                "labels": labels,
                "code": "posterior mean" if ctx.model.traits.variational else "code",
                "code_dim": int(codes_train.shape[1]),
                "pixel_baseline": accuracy(train_images, ctx.images),
                "chance": 1.0 / classes,
            },
        )


SPEED_REPEATS = 5  # timed calls of a fast sampler; the best one counts
SPEED_SECONDS = 1.0  # no further repeat once the timed calls took this long


def _best_time(draw, device: torch.device) -> float:  # noqa: ANN001
    """The shortest of up to SPEED_REPEATS timed calls, stopping once they took SPEED_SECONDS
    together: a single call of a fast sampler lasts milliseconds, and a hiccup of the machine
    would be its whole measurement (a slow sampler is timed once)."""
    best, spent = math.inf, 0.0
    for _ in range(SPEED_REPEATS):
        _, seconds = _timed(draw, device)
        best, spent = min(best, seconds), spent + seconds
        if spent >= SPEED_SECONDS:
            break
    return best


@dataclass
class SamplingSpeed(Metric):
    description = "images per second drawn by the model's sampler (single process, one device)"
    direction = "higher"

    def format(self, entry: dict[str, Any]) -> str:
        text = f"{entry['value']:,.1f} images/s"
        if "cached_speedup" in entry:
            text += f" (cached sampler {entry['cached_speedup']:.0f}x the naive one)"
        return text

    def not_applicable(self, ctx: EvalContext) -> str | None:
        if not isinstance(ctx.model, SupportsSample):
            return f"the {ctx.model.family} family cannot sample"
        return None

    def compute(self, ctx: EvalContext) -> MetricResult:
        if ctx.has("samples"):
            images, seconds = ctx.samples()
            count, how = images.shape[0], "the evaluation samples"
        else:
            count, how = ctx.cfg.speed_samples, "eval.speed_samples images"
            model = cast(SupportsSample, ctx.model)  # checked by not_applicable
            # a first small call pays the one-time costs (kernels, allocations) untimed: a
            # single timed call of 100 images is otherwise dominated by them for fast samplers
            _timed(
                lambda: model.sample(min(count, WARMUP_SAMPLES), generator=ctx.generator()),
                ctx.device,
            )
            seconds = _best_time(lambda: model.sample(count, generator=ctx.generator()), ctx.device)
        details: dict[str, object] = {
            "images": int(count),
            "seconds": seconds,
            "measured_on": how,
            "threads": torch.get_num_threads(),
            "device": describe(ctx.device),
        }
        if isinstance(ctx.model, AutoregressiveModel):
            details.update(sampler_speedup(ctx.model, ctx.cfg.seed))
        return MetricResult("sample_images_per_s", count / seconds, "images/s", details)


@dataclass
class TrainingSpeed(Metric):
    description = "training images per second, as the Trainer measured them"
    direction = "higher"

    def format(self, entry: dict[str, Any]) -> str:
        return f"{entry['value']:,.1f} images/s"

    def not_applicable(self, ctx: EvalContext) -> str | None:
        if not ctx.run_info or not ctx.run_info.get("train_images_per_s"):
            return "no training record: evaluate a run folder trained by genlab"
        return None

    def compute(self, ctx: EvalContext) -> MetricResult:
        info = ctx.run_info or {}
        return MetricResult(
            "train_images_per_s",
            float(info["train_images_per_s"]),
            "images/s",
            {"train_seconds": info.get("train_seconds"), "threads": info.get("threads")},
        )


METRICS.register("probe")(ProbeAccuracy())
METRICS.register("sample_speed")(SamplingSpeed())
METRICS.register("train_speed")(TrainingSpeed())
