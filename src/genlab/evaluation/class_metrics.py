"""Whether conditioning on the class works: metrics of a conditional model (``model.conditional``)
registered in :data:`METRICS`; each is not applicable, saying why, to an unconditional model
or to data without labels.

- ``class_agreement_cnn_n<N>``: N samples drawn for the classes in turn (labels 0, 1, ...,
  C-1, 0, 1, ...; ``eval.class_samples``) and classified by the data set's feature network (a
  CNN classifier trained on the data's labels): the share assigned to the class asked for,
  with its binomial standard error, per class, and the same network's accuracy on the real
  evaluation images as the ceiling (a perfect conditional model scores it, not 1).
- ``fd_intra_class_cnn_n<N>``: the same samples, class by class: the mean over classes of the
  Fréchet distance between the samples of a class and as many evaluation images of that class
  in the feature network's space, with as floor the same for training images of the class.
  Per-class sets are small, so FD's small-sample bias is large: read it against its floor.
- ``gen_classifier_acc_<protocol>``: the generative classifier of a conditional density,
  p(y | x) = p(x | y) p(y) / sum_y' p(x | y') p(y') (Bayes' rule on the model's own
  likelihoods, :func:`~genlab.models.common.conditioning.class_posterior`), and its test
  accuracy; named with the likelihood's protocol as the ``nll`` metric is (``_exact``,
  ``_iwae_k1000``). Where log p(x | y) is a bound, the posterior is that of the bounds. Its
  details hold the conditional NLL -log p(x | y_true), the marginal -log p(x) (what ``nll``
  reports for the model) and their mean difference, the information the label gives about
  the image, which cannot exceed H(y) on average.

The guidance curve of a classifier-free-guided sampler is in ``guidance_metrics.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import torch

from genlab import noise
from genlab.evaluation.bits import bits_per_dim
from genlab.evaluation.context import SAMPLE_BATCH, EvalContext
from genlab.evaluation.feature_net import FEATURE_NET_NAME, FeatureNet
from genlab.evaluation.metrics import (
    METRICS,
    Metric,
    MetricResult,
    NegativeLogLikelihood,
    evaluation_labels,
    mean_and_sem,
)
from genlab.evaluation.sample_quality import frechet_distance
from genlab.models.base import (
    LogLikelihood,
    SupportsLikelihood,
    SupportsPartitionEstimate,
    SupportsSample,
)
from genlab.models.common.conditioning import (
    class_posterior,
    prior_entropy_bits,
)
from genlab.resources import require_fits

UNCONDITIONAL = "the model is unconditional (model.conditional: false): no class to ask for"


def conditional_not_applicable(ctx: EvalContext) -> str | None:
    """Why ``ctx`` has no classes to measure conditioning by, or None."""
    if not ctx.model.conditional:
        return UNCONDITIONAL
    if not ctx.has_labels() or evaluation_labels(ctx) is None:
        return "the data have no labels to train the feature network on and score classes by"
    return None


def labels_in_turn(n: int, classes: int, device: torch.device) -> torch.Tensor:
    """n labels 0, 1, ..., classes-1, 0, 1, ...: each class n / classes times (to one)."""
    return torch.arange(n, device=device) % classes


def draw_for_labels(
    drawer: Callable[..., torch.Tensor],
    labels: torch.Tensor,
    generator: torch.Generator,
    bar: Callable[[list[torch.Tensor]], Iterable[torch.Tensor]] = iter,
) -> torch.Tensor:
    """One image per label from ``drawer(size, generator=..., y=labels)`` in batches of
    :data:`SAMPLE_BATCH`, without gradients, clamped to [0, 1]."""
    with torch.no_grad():
        chunks = [
            drawer(y.shape[0], generator=generator, y=y)
            for y in bar(list(labels.split(SAMPLE_BATCH)))
        ]
    return torch.cat(chunks).clamp_(0, 1)


def predicted_classes(net: FeatureNet, features: torch.Tensor) -> torch.Tensor:
    """The feature network's class (int64 (N,), CPU) for features it computed."""
    with torch.no_grad():
        return net.head(features).argmax(1).cpu()


def binomial_stderr(share: float, n: int) -> float:
    """The standard error of a share of n independent yes/no outcomes."""
    return math.sqrt(share * (1 - share) / n) if n > 0 else float("nan")


def net_record(record: dict[str, Any]) -> dict[str, Any]:
    return {"name": record["name"], "test_accuracy": record["test_accuracy"]}


# -- shared work (computed once per context) ------------------------------------------------
def class_samples(ctx: EvalContext) -> tuple[torch.Tensor, torch.Tensor]:
    """(eval.class_samples images on the device, their labels on the device): the model's
    samples for the classes in turn, drawn once for every class metric."""

    def draw() -> tuple[torch.Tensor, torch.Tensor]:
        model = cast(SupportsSample, ctx.model)  # checked by not_applicable
        n = ctx.cfg.class_samples
        require_fits(
            4 * n * ctx.info.num_dims,
            f"eval.class_samples={n:,} samples",
            "lower eval.class_samples",
        )
        labels = labels_in_turn(n, ctx.model.num_classes, ctx.device)
        bar = lambda chunks: ctx.bar(chunks, "class samples", len(chunks))  # noqa: E731
        return draw_for_labels(model.sample, labels, ctx.generator(), bar), labels

    return ctx.memo("class_samples", draw)


def class_sample_features(ctx: EvalContext) -> torch.Tensor:
    return ctx.memo(
        "class_sample_features", lambda: ctx.feature_net()[0].features_of(class_samples(ctx)[0])
    )


def evaluation_features(ctx: EvalContext) -> torch.Tensor:
    """The feature network's features of every evaluation image (on the device)."""
    return ctx.memo("evaluation_features", lambda: ctx.feature_net()[0].features_of(ctx.images))


def sample_not_applicable(ctx: EvalContext) -> str | None:
    reason = conditional_not_applicable(ctx)
    if reason is not None:
        return reason
    if not isinstance(ctx.model, SupportsSample):
        return f"the {ctx.model.family} family cannot sample"
    return None


@dataclass
class ClassAgreement(Metric):
    description = (
        "a conditional model's samples (eval.class_samples, the classes in turn) that the "
        "feature network assigns to the class asked for, against its accuracy on the real "
        "evaluation images (the ceiling)"
    )
    direction = "higher"

    def name(self, ctx: EvalContext) -> str:
        return f"class_agreement_{FEATURE_NET_NAME}_n{ctx.cfg.class_samples}"

    def format(self, entry: dict[str, Any]) -> str:
        return f"{entry['value']:.3f} ± {entry['stderr']:.3f} (ceiling {entry['ceiling']:.3f})"

    def not_applicable(self, ctx: EvalContext) -> str | None:
        return sample_not_applicable(ctx)

    def compute(self, ctx: EvalContext) -> MetricResult:
        net, record = ctx.feature_net()
        _, asked = class_samples(ctx)
        asked = asked.cpu()
        agree = predicted_classes(net, class_sample_features(ctx)) == asked
        truth = cast(torch.Tensor, evaluation_labels(ctx))  # checked by not_applicable
        correct = predicted_classes(net, evaluation_features(ctx)) == truth
        classes = ctx.model.classes
        value = agree.double().mean().item()
        details = {
            "stderr": binomial_stderr(value, agree.numel()),
            "ceiling": correct.double().mean().item(),
            "per_class": _per_class(agree, asked, classes),
            "ceiling_per_class": _per_class(correct, truth, classes),
            "samples": int(agree.numel()),
            "real_images": int(correct.numel()),
            "chance": 1.0 / len(classes),
            "prior_entropy_bits": prior_entropy_bits(ctx.model.get_buffer("class_log_prior")),
            "feature_net": net_record(record),
            "protocol": "labels 0..C-1 in turn, one seed; the feature network's argmax class",
        }
        return MetricResult(self.name(ctx), value, "", details)


def _per_class(
    hits: torch.Tensor, labels: torch.Tensor, classes: tuple[str, ...]
) -> dict[str, float]:
    """{class name: share of hits among the items of that class} (classes with items)."""
    return {
        name: hits[labels == c].double().mean().item()
        for c, name in enumerate(classes)
        if bool((labels == c).any())
    }


@dataclass
class IntraClassFrechetDistance(Metric):
    description = (
        "mean over classes of the FD between a conditional model's samples of a class (the "
        "class_agreement samples) and as many evaluation images of that class; floor: training "
        "images of the class against the same evaluation images"
    )

    def name(self, ctx: EvalContext) -> str:
        return f"fd_intra_class_{FEATURE_NET_NAME}_n{ctx.cfg.class_samples}"

    def format(self, entry: dict[str, Any]) -> str:
        return f"{entry['value']:.2f} (floor {entry['floor']:.2f})"

    def not_applicable(self, ctx: EvalContext) -> str | None:
        reason = sample_not_applicable(ctx)
        if reason is not None:
            return reason
        classes = ctx.model.num_classes
        if ctx.cfg.class_samples < 2 * classes:
            return (
                f"eval.class_samples={ctx.cfg.class_samples} gives fewer than two samples to "
                f"each of the {classes} classes"
            )
        counts = torch.bincount(cast(torch.Tensor, evaluation_labels(ctx)), minlength=classes)
        few = [ctx.model.classes[c] for c in range(classes) if counts[c] < 2]
        if few:
            return f"the evaluation images hold fewer than two images of class {few[0]!r}"
        return None

    def compute(self, ctx: EvalContext) -> MetricResult:
        net, record = ctx.feature_net()
        fake, (_, asked) = class_sample_features(ctx), class_samples(ctx)
        truth = cast(torch.Tensor, evaluation_labels(ctx))
        real = evaluation_features(ctx)
        train_labels = ctx.data.train.labels.long()
        order = noise.permutation(train_labels.shape[0], ctx.choice_generator())
        train_images = ctx.data.tensor("train")
        per_class, floors, sizes = {}, {}, {}
        for c, name in enumerate(ctx.model.classes):
            samples = fake[asked == c]
            real_index = torch.nonzero(truth == c).flatten()[: samples.shape[0]]
            count = real_index.numel()
            reference = real[real_index.to(real.device)]
            per_class[name] = frechet_distance(reference, samples[:count])
            train_index = order[train_labels[order] == c][:count]
            if train_index.numel() >= 2:
                floors[name] = frechet_distance(
                    reference, net.features_of(train_images[train_index])
                )
            sizes[name] = count
        value = sum(per_class.values()) / len(per_class)
        details = {
            "per_class": per_class,
            "floor": sum(floors.values()) / len(floors) if floors else float("nan"),
            "floor_per_class": floors,
            "floor_protocol": "as many training images of the class (a seeded choice) against "
            "the same evaluation images",
            "images_per_class": sizes,
            "samples": int(fake.shape[0]),
            "feature_net": net_record(record),
            "protocol": "the class_agreement samples of each class against as many of the "
            "first evaluation images of that class",
        }
        return MetricResult(self.name(ctx), value, "", details)


def classify(
    model: Any, results: list[LogLikelihood]
) -> tuple[torch.Tensor, torch.Tensor, LogLikelihood]:
    """The generative classifier on a batch, from every class's likelihood result: (log
    P(x | y) (B, C), log p(y | x) (B, C), both float64 on the CPU, and the first class's
    result, which names the protocol). log P(x | y) is of the discrete image: for a density
    on dequantised images its bound, a shift by the same constant for every class, which
    leaves the posterior as it is."""
    dims = model.data_info.num_dims
    values = torch.stack([r.discrete(dims).values for r in results], 1).cpu().double()
    prior = model.get_buffer("class_log_prior").cpu().double()
    return values, class_posterior(values, prior), results[0]


@dataclass
class GenerativeClassifier(Metric):
    description = (
        "a conditional density's own classifier p(y|x) = p(x|y) p(y) / p(x): test accuracy, "
        "named with the likelihood's protocol as nll is; the conditional NLL -log p(x|y) and "
        "the information the label gives in its details (costs the number of classes times nll)"
    )
    direction = "higher"

    def format(self, entry: dict[str, Any]) -> str:
        return (
            f"{entry['value']:.3f} ± {entry['stderr']:.3f} (-log p(x|y) "
            f"{entry['conditional_nll_nats']:.2f} nats, label gives "
            f"{entry['label_information_bits']:.2f} of H(y) {entry['prior_entropy_bits']:.2f} bits)"
        )

    def not_applicable(self, ctx: EvalContext) -> str | None:
        if not ctx.model.conditional:
            return UNCONDITIONAL
        if isinstance(ctx.model, SupportsPartitionEstimate) or not isinstance(
            ctx.model, SupportsLikelihood
        ):
            return f"the {ctx.model.family} family has no likelihood p(x | y) to classify with"
        if evaluation_labels(ctx) is None:
            return "the evaluation images have no labels to score the classifier against"
        return None

    def compute(self, ctx: EvalContext) -> MetricResult:
        model, cfg, dims = ctx.model, ctx.cfg, ctx.info.num_dims
        truth = cast(torch.Tensor, evaluation_labels(ctx))
        k = model.likelihood_samples(cfg)
        generator = ctx.generator(stream=k)  # the nll metric's stream: the same draws
        prior = model.get_buffer("class_log_prior").cpu().double()
        given, marginal, posterior, first, start = [], [], [], None, 0
        for batch, x in enumerate(ctx.batch_bar("gen_classifier", cfg.likelihood_images)):
            results = ctx.class_results(batch, x, k, generator)  # shared with nll
            values, log_posterior, result = classify(model, results)
            first = first or result
            y, start = truth[start : start + x.shape[0]], start + x.shape[0]
            given.append(values.gather(1, y.unsqueeze(1)).squeeze(1))
            marginal.append(torch.logsumexp(values + prior, dim=1))
            posterior.append(log_posterior)
        assert first is not None  # the evaluation split is never empty
        log_posterior, log_px_y, log_px = map(torch.cat, (posterior, given, marginal))
        labels = truth[:start]
        right = log_posterior.argmax(1) == labels
        accuracy = right.double().mean().item()
        cond_nll, cond_se = mean_and_sem(-log_px_y)
        # E[log p(x|y) - log p(x)] = E[log p(y|x) - log p(y)] <= E[-log p(y)], which is H(y)
        # when the test classes have the training frequencies (for bounds as for exact)
        information = (log_px_y - log_px).mean().item() / math.log(2.0)
        details: dict[str, Any] = {
            "kind": first.discrete(dims).kind,
            "stderr": binomial_stderr(accuracy, right.numel()),
            "images": int(right.numel()),
            "per_class": _per_class(right, labels, model.classes),
            "chance": 1.0 / model.num_classes,
            "majority": prior.exp().max().item(),
            "conditional_nll_nats": cond_nll,
            "conditional_bits_per_dim": bits_per_dim(cond_nll, dims),
            "conditional_stderr_images": cond_se,
            "marginal_nll_nats": -log_px.mean().item(),
            "posterior_nll_nats": -log_posterior.gather(1, labels.unsqueeze(1)).mean().item(),
            "label_information_bits": information,
            "prior_entropy_bits": prior_entropy_bits(prior),
            "protocol": "Bayes' rule on the model's log p(x|y) for every class and its p(y)",
        }
        if first.discrete(dims).kind == "iwae_bound":
            details["k"] = cfg.iwae_k
        name = NegativeLogLikelihood.name_of(first, cfg.iwae_k)
        return MetricResult(
            f"gen_classifier_acc_{name.removeprefix('nll_')}", accuracy, "", details
        )


METRICS.register("class_agreement")(ClassAgreement())
METRICS.register("fd_intra_class")(IntraClassFrechetDistance())
METRICS.register("gen_classifier")(GenerativeClassifier())
