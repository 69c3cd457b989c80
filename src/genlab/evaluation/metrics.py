"""The metric registry, and the likelihood metrics. Every metric has one signature::

    metric.compute(ctx: EvalContext) -> MetricResult

and a name that carries its protocol (``nll_iwae_k1000``, ``nll_exact``, ``elbo``,
``fd_cnn_10k``). A metric that does not apply to a model says why in
:meth:`Metric.not_applicable`, never a number. Each metric also declares its
``direction`` (higher or lower is better), whether it runs ``by_default``, and how its
result reads (:meth:`Metric.format`): the metric list, the report's arrows and cells and the
CLI's lines all come from here. Sample-quality metrics live in ``sample_metrics.py``, probe
and speed metrics in ``run_metrics.py``; both register here.

Adding a metric is one class in one of those files, registered with ``METRICS.register``.
A metric computes on the model's device (``ctx.batches()`` are there, ``ctx.generator()``
draws there) and brings per-image values back to the CPU (``.cpu()``) for its statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, cast

import torch

from genlab.evaluation.bits import bits_per_dim
from genlab.evaluation.context import EvalContext
from genlab.models.base import (
    LogLikelihood,
    SupportsElbo,
    SupportsLikelihood,
    SupportsPartitionEstimate,
    SupportsReconstruct,
    SupportsReconstructionLikelihood,
)
from genlab.models.common.conditioning import marginal_of
from genlab.registry import Registry


@dataclass
class MetricResult:
    name: str
    value: float
    unit: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit, **self.details}


class Metric:
    description: str = ""
    direction: ClassVar[Literal["higher", "lower"]] = "lower"  # which way is better
    by_default: ClassVar[bool] = True  # run when eval.metrics is not set

    def format(self, entry: dict[str, Any]) -> str:
        """One line for a result (``entry`` as stored in eval.json): value, unit, spread."""
        unit = f" {entry['unit']}" if entry.get("unit") else ""
        return f"{entry['value']:.4g}{unit}"

    def not_applicable(self, ctx: EvalContext) -> str | None:
        """None if the metric applies to ``ctx.model`` (and its data), else the reason."""
        return None

    def compute(self, ctx: EvalContext) -> MetricResult:
        raise NotImplementedError


METRICS: Registry[Metric] = Registry("metric")


def default_metrics() -> tuple[str, ...]:
    """The metrics ``eval.metrics: null`` means: every registered one that runs by default."""
    return tuple(n for n in METRICS.names_in_order() if METRICS.get(n).by_default)


def mean_and_sem(values: torch.Tensor) -> tuple[float, float]:
    values = values.double()
    sem = values.std().item() / math.sqrt(values.numel()) if values.numel() > 1 else 0.0
    return values.mean().item(), sem


@dataclass
class NegativeLogLikelihood(Metric):
    description = (
        "-log p(x) on the test set in nats and bits/dim: exact for autoregressive models, the "
        "IWAE bound with eval.iwae_k samples for VAEs (named nll_iwae_k<K>), and for a "
        "continuous density on dequantised data the bound on the discrete image's likelihood "
        "(nll_dequant_k<K>, K draws of the uniform noise); a diffusion's variational bound "
        "(nll_diffusion_bound_t<N>) and a flow-matching model's ODE estimate "
        "(nll_ode_<solver>_s<steps>_p<probes>_k<K>)"
    )

    def format(self, entry: dict[str, Any]) -> str:
        spread = [f"{entry['bits_per_dim']:.4f} bits/dim", f"s.e. {entry['stderr_images']:.3g}"]
        if "stderr_mc" in entry:
            spread.append(f"MC s.e. {entry['stderr_mc']:.3g}")
        return f"{entry['value']:.2f} nats ({', '.join(spread)})"

    def not_applicable(self, ctx: EvalContext) -> str | None:
        if isinstance(ctx.model, SupportsPartitionEstimate):
            return f"the {ctx.model.family} family's likelihood needs log Z: see nll_ais"
        if not isinstance(ctx.model, SupportsLikelihood):
            return f"the {ctx.model.family} family defines no likelihood"
        return None

    def compute(self, ctx: EvalContext) -> MetricResult:
        model = cast(SupportsLikelihood, ctx.model)  # checked by not_applicable
        cfg, info = ctx.cfg, ctx.info
        values, continuous, mc_var = [], [], []
        first: LogLikelihood | None = None
        k = ctx.model.likelihood_samples(cfg)
        generator = ctx.generator(stream=k)  # independent draws for each k
        for batch, x in enumerate(ctx.batch_bar("nll", cfg.likelihood_images)):
            if ctx.model.conditional:  # log p(x) from the C likelihoods gen_classifier reads
                prior = ctx.model.get_buffer("class_log_prior")
                result = marginal_of(ctx.class_results(batch, x, k, generator), prior)
            else:
                result = model.log_likelihood(x, k=k, generator=generator)
            first = first or result
            continuous.append(-result.values.cpu().double())
            values.append(-result.discrete(info.num_dims).values.cpu().double())
            if result.stderr is not None:
                mc_var.append(result.stderr.cpu().double().square())
        assert first is not None  # the test split is never empty
        nll = torch.cat(values)
        mean, sem_images = mean_and_sem(nll)
        kind = first.discrete(info.num_dims).kind
        details: dict[str, Any] = {
            "kind": kind,
            "bits_per_dim": bits_per_dim(mean, info.num_dims),
            "stderr_images": sem_images,
            "images": nll.numel(),
        }
        if first.of == "dequantised":
            assert first.levels is not None
            # the continuous density's own NLL; its bits/dim with the dequantisation term are
            # those of the bound above, by the one definition of bits/dim
            density_nll = torch.cat(continuous).mean().item()
            details["bits_per_dim"] = bits_per_dim(
                density_nll, info.num_dims, continuous_density_levels=first.levels
            )
            details["continuous_nll_nats"] = density_nll
            details["dequantisation"] = f"uniform, {first.samples} draw(s) of u per image"
        if kind == "iwae_bound":
            details["k"] = cfg.iwae_k
        if first.method is not None:
            details["method"] = first.method
        details["noise"] = f"seeded by eval.seed and k={k}: independent of other k"
        if mc_var:
            details["stderr_mc"] = math.sqrt(torch.cat(mc_var).sum().item()) / nll.numel()
        return MetricResult(self.name_of(first, cfg.iwae_k), mean, "nats", details)

    @staticmethod
    def name_of(result: LogLikelihood, iwae_k: int) -> str:
        """The metric's name carries its protocol: ``nll_exact``, ``nll_iwae_k1000``,
        ``nll_dequant_k1`` (a dequantised density's bound with k draws of u per image), or
        ``nll_<protocol>`` where the estimator names its own (``nll_diffusion_bound_t100``)."""
        if result.protocol is not None:
            return f"nll_{result.protocol}"
        if result.of == "dequantised":
            return f"nll_dequant_k{result.samples}"
        return {"exact": "nll_exact", "iwae_bound": f"nll_iwae_k{iwae_k}"}.get(
            result.kind, f"nll_{result.kind}"
        )


@dataclass
class Elbo(Metric):
    """The test ELBO. Not applicable to a conditional model: its ELBO bounds log p(x | y),
    which does not compare with an unconditional model's; its log p(x) is the nll metric's
    (through the sum over classes), its -log p(x | y) the gen_classifier metric's."""

    description = "test ELBO in nats with its reconstruction and KL terms"
    direction = "higher"

    def format(self, entry: dict[str, Any]) -> str:
        return (
            f"{entry['value']:.2f} nats (recon {entry['recon_nats']:.2f}, "
            f"KL {entry['kl_nats']:.2f}, s.e. {entry['stderr_images']:.3g})"
        )

    def not_applicable(self, ctx: EvalContext) -> str | None:
        if not isinstance(ctx.model, SupportsElbo):
            return f"the {ctx.model.family} family has no evidence lower bound"
        if ctx.model.conditional:  # its nll is log p(x) through the sum over classes
            return (
                "a conditional model's ELBO bounds log p(x | y), not log p(x): see nll for "
                "log p(x) and gen_classifier for -log p(x | y)"
            )
        return None

    def compute(self, ctx: EvalContext) -> MetricResult:
        model = cast(SupportsElbo, ctx.model)  # checked by not_applicable
        info, generator = ctx.info, ctx.generator()
        parts: dict[str, list[torch.Tensor]] = {"elbo": [], "recon": [], "kl": []}
        for x in ctx.batch_bar("elbo"):
            terms = model.elbo_terms(x, generator=generator)
            for key in parts:
                parts[key].append(terms[key].cpu().double())
        elbo = torch.cat(parts["elbo"])
        mean, sem = mean_and_sem(elbo)
        return MetricResult(
            "elbo",
            mean,
            "nats",
            {
                "recon_nats": torch.cat(parts["recon"]).mean().item(),
                "kl_nats": torch.cat(parts["kl"]).mean().item(),
                "bits_per_dim": bits_per_dim(-mean, info.num_dims),
                "stderr_images": sem,
                "samples_per_image": 1,
                "images": elbo.numel(),
            },
        )


@dataclass
class ReconstructionError(Metric):
    """Reconstruction from the code. A conditional model's encoder and decoder are given each
    test image's label: its figure is named ``recon_mse_given_label`` (it does not compare
    with an unconditional model's ``recon_mse``), and needs labelled evaluation images."""

    description = (
        "reconstruction from the code (posterior mean for a VAE): mean squared error per pixel "
        "in [0, 1] units, and -log p(x | z=mean) in nats when the model has a likelihood; a "
        "conditional model's given each image's label (recon_mse_given_label)"
    )

    def format(self, entry: dict[str, Any]) -> str:
        text = f"{entry['value']:.5f} per pixel"
        if "nll_given_code_nats" in entry:
            text += f" (-log p(x|code) {entry['nll_given_code_nats']:.2f} nats)"
        return text

    def not_applicable(self, ctx: EvalContext) -> str | None:
        if not isinstance(ctx.model, SupportsReconstruct):
            return f"the {ctx.model.family} family does not reconstruct its input"
        if ctx.model.conditional and evaluation_labels(ctx) is None:
            return "a conditional model reconstructs given each image's label, and there are none"
        return None

    def compute(self, ctx: EvalContext) -> MetricResult:
        model: Any = ctx.model  # reconstructs (checked by not_applicable), given labels or not
        labels = evaluation_labels(ctx) if ctx.model.conditional else None
        squared, nll, start = [], [], 0
        for x in ctx.batch_bar("recon_error"):
            given: dict[str, torch.Tensor] = {}
            if labels is not None:
                given["y"] = labels[start : start + x.shape[0]].to(x.device)
            start += x.shape[0]
            recon = model.reconstruct(x, **given)
            squared.append((recon - x).double().square().flatten(1).mean(1).cpu())
            if isinstance(model, SupportsReconstructionLikelihood):
                nll.append(-model.reconstruction_log_prob(x, **given).cpu().double())
        mse, sem = mean_and_sem(torch.cat(squared))
        details: dict[str, Any] = {"stderr_images": sem, "code": "posterior mean"}
        if labels is not None:
            details["code"] = "posterior mean given the image's label"
        if nll:
            details["nll_given_code_nats"] = torch.cat(nll).mean().item()
        name = "recon_mse" if labels is None else "recon_mse_given_label"
        return MetricResult(name, mse, "per pixel", details)


def evaluation_labels(ctx: EvalContext) -> torch.Tensor | None:
    """The labels (int64 (N,), on the CPU) of the evaluation images, or None without labels."""
    split = getattr(ctx.data, ctx.split, None) if ctx.data is not None else None
    labels = getattr(split, "labels", None)
    return None if labels is None else labels[: ctx.images.shape[0]].long()


METRICS.register("nll")(NegativeLogLikelihood())
METRICS.register("elbo")(Elbo())
METRICS.register("recon_error")(ReconstructionError())
