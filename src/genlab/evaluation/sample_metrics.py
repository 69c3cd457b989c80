"""Sample-quality metrics in the feature network's space, registered in :data:`METRICS`.

Each compares n model samples with the first n evaluation images, n = ``eval.num_samples``
or the number of evaluation images if that is smaller, and reports as its ``floor`` the same
quantity for n real training images against those evaluation images: what a perfect model
would score at this sample size. Features are computed on the model's device.
Names carry the feature network, the neighbourhood size and the number of samples, e.g.
``fd_cnn_10k``, ``kid_cnn_10k``, ``precision_cnn_k3_10k``, ``coverage_cnn_k5_10k``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from genlab.evaluation.context import EvalContext, count_label
from genlab.evaluation.feature_net import FEATURE_NET_NAME
from genlab.evaluation.metrics import METRICS, Metric, MetricResult
from genlab.evaluation.sample_quality import (
    density_coverage,
    frechet_distance,
    kernel_inception_distance,
    precision_recall,
)
from genlab.evaluation.sharpness import relative_sharpness
from genlab.models.base import SupportsSample, SupportsSampleMeans


def source_not_applicable(source: str, ctx: EvalContext) -> str | None:
    """Why the model has no images of this source ("samples" or "means"), or None."""
    if source == "means":
        if not isinstance(ctx.model, SupportsSampleMeans):
            return f"the {ctx.model.family} family has no mean images E[x|z] apart from samples"
    elif not isinstance(ctx.model, SupportsSample):
        return f"the {ctx.model.family} family cannot sample"
    return None


def source_suffix(source: str) -> str:
    """The metric-name suffix of an image source: none for samples, ``_means`` for means."""
    return "" if source == "samples" else f"_{source}"


class SampleMetric(Metric):
    """A metric of ``(real features, fake features) -> value``; subclasses set the rest.
    ``source`` says which images are scored: the model's samples, or its mean images
    (a VAE's decoder means; the name then ends in ``_means``)."""

    prefix: str = ""
    unit: str = ""
    source: str = "samples"

    def format(self, entry: dict[str, Any]) -> str:
        return f"{entry['value']:.3f} (floor {entry['floor']:.3f})"

    def name(self, ctx: EvalContext) -> str:
        label = count_label(ctx.num_samples)
        return f"{self.prefix}_{FEATURE_NET_NAME}_{label}{source_suffix(self.source)}"

    def not_applicable(self, ctx: EvalContext) -> str | None:
        reason = source_not_applicable(self.source, ctx)
        if reason is not None:
            return reason
        if not ctx.has_labels():
            return "the data have no labels to train the feature network on"
        if min(ctx.images.shape[0], ctx.num_samples) < 2:
            return "needs at least two evaluation images and samples"
        return None

    def measure(
        self, real: torch.Tensor, fake: torch.Tensor, ctx: EvalContext, against: str
    ) -> dict[str, Any]:
        """``{"value": ..., other details}`` for one pair of feature sets; ``against`` names
        the second set ("samples" or "floor") for metrics that share work between them."""
        raise NotImplementedError

    def compute(self, ctx: EvalContext) -> MetricResult:
        real, fake = ctx.real_features(), ctx.sample_features(self.source)
        measured = self.measure(real, fake, ctx, self.source)
        floor = self.measure(real, ctx.floor_features(), ctx, "floor")
        _, net = ctx.feature_net()
        details = {k: v for k, v in measured.items() if k != "value"}
        details.update(
            {
                "floor": floor["value"],
                "source": self.source,
                "floor_protocol": "real training images against the evaluation images",
                "samples": int(fake.shape[0]),
                "real_images": int(real.shape[0]),
                "feature_net": {
                    "name": net["name"],
                    "test_accuracy": net["test_accuracy"],
                    "test_accuracy_binarised": net["test_accuracy_binarised"],
                },
            }
        )
        return MetricResult(self.name(ctx), measured["value"], self.unit, details)


@dataclass
class FrechetDistance(SampleMetric):
    description = "Fréchet distance between Gaussians fitted to real and sample features"
    prefix = "fd"

    def format(self, entry: dict[str, Any]) -> str:
        return f"{entry['value']:.2f} (floor {entry['floor']:.2f})"

    def measure(self, real, fake, ctx, against):  # noqa: ANN001, ANN201
        return {"value": frechet_distance(real, fake)}


@dataclass
class KernelDistance(SampleMetric):
    description = "KID: unbiased MMD^2, cubic polynomial kernel, mean and std over subsets"
    prefix = "kid"

    def format(self, entry: dict[str, Any]) -> str:
        spread = "" if entry.get("std") is None else f" ± {entry['std']:.4f}"
        return f"{entry['value']:.4f}{spread} (floor {entry['floor']:.4f})"

    def measure(self, real, fake, ctx, against):  # noqa: ANN001, ANN201
        cfg = ctx.cfg
        mean, std = kernel_inception_distance(
            real,
            fake,
            subsets=cfg.kid_subsets,
            subset_size=cfg.kid_subset_size,
            generator=ctx.choice_generator(),  # the same subsets on every device
        )
        if std is None:  # one subset: both sets whole
            return {
                "value": mean,
                "std": None,
                "subsets": 1,
                "subset_size": min(len(real), len(fake)),
            }
        return {"value": mean, "std": std, "subsets": cfg.kid_subsets}


@dataclass
class NeighbourhoodMetric(SampleMetric):
    """One of the two numbers of a k-NN manifold comparison (both computed once)."""

    description: str = ""
    prefix: str = ""
    pair: str = ""  # "pr" or "dc"
    position: int = 0
    direction = "higher"

    def k(self, ctx: EvalContext) -> int:
        return ctx.cfg.pr_k if self.pair == "pr" else ctx.cfg.dc_k

    def name(self, ctx: EvalContext) -> str:
        label = count_label(ctx.num_samples)
        return (
            f"{self.prefix}_{FEATURE_NET_NAME}_k{self.k(ctx)}_{label}{source_suffix(self.source)}"
        )

    def measure(self, real, fake, ctx, against):  # noqa: ANN001, ANN201
        k = self.k(ctx)
        function: Callable[..., tuple[float, float]] = (
            precision_recall if self.pair == "pr" else density_coverage
        )
        # precision and recall (density and coverage) come from one computation: do it once
        both = ctx.memo(f"{self.pair}:{against}", lambda: function(real, fake, k=k))
        return {"value": both[self.position], "k": k}


@dataclass
class Sharpness(Metric):
    """Laplacian energy of the samples relative to the real evaluation images (1.0 = as sharp
    as real data); no feature network involved, so it needs no labels."""

    description = (
        "Laplacian energy of samples / of real test images (1 = as sharp as real data; "
        "below 1 blurrier, above 1 sharper or noisier)"
    )
    direction = "higher"
    source: str = "samples"

    def name(self, ctx: EvalContext) -> str:
        return f"sharpness_lap_{count_label(ctx.num_samples)}{source_suffix(self.source)}"

    def format(self, entry: dict[str, Any]) -> str:
        return f"{entry['value']:.3f} ± {entry['stderr']:.3f} (real vs real {entry['floor']:.3f})"

    def not_applicable(self, ctx: EvalContext) -> str | None:
        reason = source_not_applicable(self.source, ctx)
        if reason is not None:
            return reason
        if min(ctx.images.shape[0], ctx.num_samples) < 2 or min(ctx.images.shape[-2:]) < 3:
            return "needs at least two evaluation images of at least 3x3 pixels"
        return None

    def compute(self, ctx: EvalContext) -> MetricResult:
        samples, _ = ctx.samples(self.source)
        real = ctx.images[: ctx.num_samples]
        value, stderr = relative_sharpness(samples, real)
        train = ctx.floor_images(real.shape[0]) if ctx.data is not None else None
        floor, floor_se = (
            relative_sharpness(train, real)
            if train is not None and train.shape[0] >= 2
            else (float("nan"), float("nan"))
        )
        details = {
            "stderr": stderr,
            "floor": floor,
            "floor_stderr": floor_se,
            "floor_protocol": "a seeded random choice of training images against the evaluation "
            "images",
            "samples": int(samples.shape[0]),
            "source": self.source,
            "protocol": "mean squared 3x3 Laplacian over interior pixels, samples / real",
        }
        return MetricResult(self.name(ctx), value, "", details)


MEANS_TOO = ("fd", "kid", "precision", "recall", "sharpness")  # also scored on mean images


def _register(name: str, metric: Metric) -> None:
    """Register ``metric``, and after it its ``<name>_means`` twin for the metrics that are
    also computed on mean images (a VAE's decoder means, labelled apart from its samples)."""
    METRICS.register(name)(metric)
    if name in MEANS_TOO:
        twin = copy.copy(metric)
        twin.source = "means"  # type: ignore[attr-defined]
        twin.description = f"{metric.description}; on the mean images E[x|z], not samples"
        METRICS.register(f"{name}_means")(twin)


_register("fd", FrechetDistance())
_register("sharpness", Sharpness())
_register("kid", KernelDistance())
for _name, _pair, _position, _text in (
    ("precision", "pr", 0, "fraction of samples inside the real k-NN manifold"),
    ("recall", "pr", 1, "fraction of real images inside the samples' k-NN manifold"),
    ("density", "dc", 0, "samples per real k-NN ball, divided by k (1 when alike)"),
    ("coverage", "dc", 1, "fraction of real k-NN balls holding at least one sample"),
):
    _register(_name, NeighbourhoodMetric(_text, _name, _pair, _position))
