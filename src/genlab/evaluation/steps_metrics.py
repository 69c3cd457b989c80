"""What an iterative sampler's steps buy: FD and sampling speed against the number of steps
(a diffusion's DDIM/DDPM steps, a flow-matching ODE's), registered in :data:`METRICS`.

For each step count of ``eval.steps_curve`` that the model can take, ``eval.steps_curve_samples``
samples are drawn from one seed (the same starting noise for every count) and scored by FD in
the feature network's space against as many evaluation images; the time to draw them gives
images/s. The metric's value is the FD at the most steps measured; the points are its curve
(the report draws it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import torch

from genlab.evaluation.context import EvalContext
from genlab.evaluation.feature_net import FEATURE_NET_NAME
from genlab.evaluation.metrics import METRICS, Metric, MetricResult
from genlab.evaluation.sample_quality import frechet_distance
from genlab.models.base import SupportsStepSampling, device_of
from genlab.noise import generator as noise_generator


def step_counts(model: SupportsStepSampling, asked: tuple[int, ...]) -> list[int]:
    """The step counts of ``asked`` the model can sample with (a DDPM has at most T)."""
    return sorted({s for s in asked if s <= model.max_sample_steps})


@dataclass
class FdVersusSteps(Metric):
    description = (
        "an iterative sampler (diffusion, flow matching): FD and images/s against the number "
        "of sampling steps (eval.steps_curve, eval.steps_curve_samples samples each); the value "
        "is the FD at the most steps"
    )
    by_default = True

    def format(self, entry: dict[str, Any]) -> str:
        points = ", ".join(
            f"{p['steps']}: {p['fd']:.2f} ({p['images_per_s']:.1f}/s)" for p in entry["points"]
        )
        return f"{entry['value']:.3f} at {entry['points'][-1]['steps']} steps [{points}]"

    def name(self, ctx: EvalContext) -> str:
        return f"fd_vs_steps_{FEATURE_NET_NAME}_n{ctx.cfg.steps_curve_samples}"

    def not_applicable(self, ctx: EvalContext) -> str | None:
        if not isinstance(ctx.model, SupportsStepSampling):
            return f"the {ctx.model.family} family has no choice of sampling steps"
        if not ctx.has_labels():
            return "the data have no labels to train the feature network on"
        if not step_counts(ctx.model, ctx.cfg.steps_curve):
            return "none of eval.steps_curve is a step count the model can take"
        return None

    def compute(self, ctx: EvalContext) -> MetricResult:
        model = cast(SupportsStepSampling, ctx.model)  # checked by not_applicable
        n = min(ctx.cfg.steps_curve_samples, ctx.images.shape[0])
        net, record = ctx.feature_net()
        real = net.features_of(ctx.images[:n])
        device = device_of(ctx.model)
        points = []
        for steps in ctx.bar(step_counts(model, ctx.cfg.steps_curve), "fd_vs_steps"):
            generator = noise_generator(ctx.cfg.seed, device)  # the same noise for every count
            start = time.perf_counter()
            with torch.no_grad():
                images = model.sample_with(n, steps=steps, generator=generator)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - start
            fd = frechet_distance(real, net.features_of(images))
            points.append({"steps": steps, "fd": fd, "images_per_s": n / seconds})
        details = {
            "points": points,
            "samples": n,
            "feature_net": {"name": record["name"], "test_accuracy": record["test_accuracy"]},
            "protocol": "one seed for every step count; FD against the first n test images",
        }
        return MetricResult(self.name(ctx), points[-1]["fd"], "", details)


METRICS.register("fd_vs_steps")(FdVersusSteps())
