"""What classifier-free guidance (Ho & Salimans 2022) buys and costs: fidelity (precision,
class agreement) and diversity (recall) against the guidance weight, registered in
:data:`METRICS` as ``guidance_curve_cnn_n<N>``.

For each weight w of ``eval.guidance_curve`` (w = 0 the unconditional model, w = 1 the
conditional one, w > 1 pushed further towards the class), N = ``eval.guidance_curve_samples``
samples are drawn for the classes in turn (labels 0, 1, ..., C-1, 0, ...) from one seed (the
same starting noise for every weight) and scored in the feature network's space against the
first N evaluation images: FD, improved precision and recall (Kynkäänniemi et al. 2019, k =
``eval.pr_k``) and the share the network assigns to the class asked for. Each share carries a
binomial standard error (which leaves out the dependence through the k-NN radii, so it is a
little optimistic). The metric's value is the lowest FD on the curve; the points are the
curve the report draws and the claim "guidance trades diversity for fidelity" reads.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, cast

from genlab.evaluation.class_metrics import (
    binomial_stderr,
    conditional_not_applicable,
    draw_for_labels,
    labels_in_turn,
    net_record,
    predicted_classes,
)
from genlab.evaluation.context import EvalContext
from genlab.evaluation.feature_net import FEATURE_NET_NAME
from genlab.evaluation.metrics import METRICS, Metric, MetricResult
from genlab.evaluation.sample_quality import frechet_distance, precision_recall
from genlab.models.base import SupportsGuidance
from genlab.noise import generator as noise_generator


def guidance_weights(asked: tuple[float, ...]) -> list[float]:
    """The weights of ``asked``, each once, in increasing order."""
    return sorted(set(asked))


@dataclass
class GuidanceCurve(Metric):
    description = (
        "classifier-free guidance: FD, precision, recall and class agreement of a conditional "
        "sampler at each weight of eval.guidance_curve (eval.guidance_curve_samples samples, "
        "the classes in turn, one seed); the value is the lowest FD on the curve"
    )

    def name(self, ctx: EvalContext) -> str:
        return f"guidance_curve_{FEATURE_NET_NAME}_n{self.samples(ctx)}"

    def samples(self, ctx: EvalContext) -> int:
        """Samples per weight, and evaluation images compared with: the same number."""
        return min(ctx.cfg.guidance_curve_samples, ctx.images.shape[0])

    def format(self, entry: dict[str, Any]) -> str:
        points = ", ".join(
            f"w={p['guidance']:g}: FD {p['fd']:.2f}, P {p['precision']:.2f}, "
            f"R {p['recall']:.2f}, class {p['class_agreement']:.2f}"
            for p in entry["points"]
        )
        return f"{entry['value']:.2f} at w={entry['best_guidance']:g} [{points}]"

    def not_applicable(self, ctx: EvalContext) -> str | None:
        if not isinstance(ctx.model, SupportsGuidance):
            return f"the {ctx.model.family} family has no classifier-free guidance"
        reason = conditional_not_applicable(ctx) or ctx.model.guidance_not_available()
        if reason is not None:
            return reason
        if self.samples(ctx) <= ctx.cfg.pr_k:
            return f"needs more than eval.pr_k={ctx.cfg.pr_k} samples and evaluation images"
        return None

    def compute(self, ctx: EvalContext) -> MetricResult:
        model = cast(SupportsGuidance, ctx.model)  # checked by not_applicable
        n, k = self.samples(ctx), ctx.cfg.pr_k
        net, record = ctx.feature_net()
        real = net.features_of(ctx.images[:n])
        labels = labels_in_turn(n, ctx.model.num_classes, ctx.device)
        points = []
        for w in ctx.bar(guidance_weights(ctx.cfg.guidance_curve), "guidance_curve"):
            guided = functools.partial(model.sample_guided, guidance=w)
            # the same noise for every weight: differences are the guidance's, not the draws'
            images = draw_for_labels(guided, labels, noise_generator(ctx.cfg.seed, ctx.device))
            fake = net.features_of(images)
            precision, recall = precision_recall(real, fake, k=k)
            agreement = (predicted_classes(net, fake) == labels.cpu()).double().mean().item()
            points.append(
                {
                    "guidance": w,
                    "fd": frechet_distance(real, fake),
                    "precision": precision,
                    "precision_stderr": binomial_stderr(precision, n),
                    "recall": recall,
                    "recall_stderr": binomial_stderr(recall, n),
                    "class_agreement": agreement,
                    "class_agreement_stderr": binomial_stderr(agreement, n),
                }
            )
        best = min(points, key=lambda p: p["fd"])
        details = {
            "points": points,
            "best_guidance": best["guidance"],
            "samples": n,
            "k": k,
            "feature_net": net_record(record),
            "protocol": "one seed for every weight, labels 0..C-1 in turn; FD, precision and "
            "recall against the first n evaluation images",
        }
        return MetricResult(self.name(ctx), best["fd"], "", details)


METRICS.register("guidance_curve")(GuidanceCurve())
