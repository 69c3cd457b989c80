"""Metrics of the Markov-chain families, registered in :data:`METRICS`.

- ``nll_ais``: -log p(x) = F(x) + log Z of an energy-based model, with log Z estimated by
  annealed importance sampling; the name carries the protocol (``nll_ais_b10000_r100``).
- ``chain``: sample quality as a function of chain length (``chain_fd_cnn_2k``), from noise,
  and how long chains started at test images keep their class: "Markov chains mix slowly",
  measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch

from genlab.evaluation.bits import bits_per_dim
from genlab.evaluation.context import EvalContext, count_label
from genlab.evaluation.metrics import METRICS, Metric, MetricResult, mean_and_sem
from genlab.evaluation.sample_quality import (
    frechet_distance,
    kernel_inception_distance,
    precision_recall,
)
from genlab.models.base import SupportsMarkovChain, SupportsPartitionEstimate
from genlab.models.markov.chain import run_chain

AIS_CAVEAT = (
    "AIS tends to under-estimate log Z (its estimate is unbiased for Z, so biased low for "
    "log Z), so this NLL can be optimistic"
)


@dataclass
class AisNegativeLogLikelihood(Metric):
    description = (
        "-log p(x) = F(x) + log Z in nats and bits/dim, log Z estimated by AIS with "
        "eval.ais_betas temperatures and eval.ais_runs runs (named nll_ais_b<N>_r<R>)"
    )

    def format(self, entry: dict[str, Any]) -> str:
        return (
            f"{entry['value']:.2f} nats ({entry['bits_per_dim']:.4f} bits/dim, s.e. "
            f"{entry['stderr_images']:.3g}, log Z {entry['log_z']:.2f} ± "
            f"{entry['stderr_log_z']:.3g}, sd of log-weights {entry['log_weight_std']:.3g})"
        )

    def not_applicable(self, ctx: EvalContext) -> str | None:
        if not isinstance(ctx.model, SupportsPartitionEstimate):
            return (
                f"the {ctx.model.family} family has no energy whose partition function to estimate"
            )
        return None

    def compute(self, ctx: EvalContext) -> MetricResult:
        model = cast(SupportsPartitionEstimate, ctx.model)  # checked by not_applicable
        cfg = ctx.cfg
        train = ctx.data.tensor("train").to(ctx.device) if ctx.data is not None else None
        estimate = model.estimate_log_partition(
            train,
            betas=cfg.ais_betas,
            runs=cfg.ais_runs,
            generator=ctx.generator(),
            progress=ctx.progress,
        )
        with torch.no_grad():
            energies = torch.cat(
                [model.free_energy(x).cpu().double() for x in ctx.batch_bar("nll_ais")]
            )
        nll = energies + estimate.log_z
        mean, sem = mean_and_sem(nll)
        return MetricResult(
            f"nll_ais_b{cfg.ais_betas}_r{cfg.ais_runs}",
            mean,
            "nats",
            {
                "kind": "ais_estimate",
                "bits_per_dim": bits_per_dim(mean, ctx.info.num_dims),
                "stderr_images": sem,
                "stderr_log_z": estimate.stderr,
                "log_z": estimate.log_z,
                "log_z_base": estimate.log_z_base,
                "log_weight_std": estimate.log_weight_std,
                "betas": cfg.ais_betas,
                "runs": cfg.ais_runs,
                "base_model": "base-rate RBM of the training images"
                if train is not None
                else "the model's visible biases",
                "images": nll.numel(),
                "caveat": AIS_CAVEAT,
            },
        )


@dataclass
class ChainQuality(Metric):
    description = (
        "Markov-chain samples by chain length (eval.chain_steps): FD/KID/precision/recall from "
        "noise, and the share of chains from test images that keep their class"
    )

    def format(self, entry: dict[str, Any]) -> str:
        parts = [f"{s}: FD {f:.1f}" for s, f in zip(entry["steps"], entry["fd"], strict=True)]
        keep = entry["class_kept"][-1]
        return (
            f"{entry['value']:.2f} at {entry['steps'][-1]} steps ({', '.join(parts)}; "
            f"class kept {keep:.2f} vs {entry['class_kept_if_mixed'][-1]:.2f} if mixed)"
        )

    def not_applicable(self, ctx: EvalContext) -> str | None:
        if not isinstance(ctx.model, SupportsMarkovChain):
            return f"the {ctx.model.family} family samples without a Markov chain"
        reason = ctx.model.chain_not_available()
        if reason is not None:
            return reason
        if not ctx.has_labels():
            return "the data have no labels to train the feature network on"
        if min(ctx.images.shape[0], ctx.cfg.chain_samples) < 2:
            return "needs at least two evaluation images"
        return None

    def compute(self, ctx: EvalContext) -> MetricResult:
        model, cfg = ctx.model, ctx.cfg
        n = min(cfg.chain_samples, ctx.images.shape[0])
        steps = sorted(set(cfg.chain_steps))
        net, info = ctx.feature_net()
        real_images = ctx.images[:n].to(ctx.device)
        real = net.features_of(real_images)
        generator = ctx.generator()
        start = cast(SupportsMarkovChain, model).chain_start(n, generator=generator)
        _, from_noise = run_chain(
            model, start, steps[-1], generator=generator, record=steps, progress=ctx.progress
        )
        _, from_data = run_chain(
            model, real_images, steps[-1], generator=generator, record=steps, progress=ctx.progress
        )
        start_class = net.head(real).argmax(1)
        start_share = torch.bincount(start_class, minlength=net.head.out_features).double() / n
        details: dict[str, Any] = {
            "steps": steps,
            "fd": [],
            "kid": [],
            "precision": [],
            "recall": [],
            "class_kept": [],
            "class_kept_if_mixed": [],
            "chains": n,
        }
        for step in steps:
            fake = net.features_of(from_noise[step].clamp(0, 1))
            details["fd"].append(frechet_distance(real, fake))
            kid, _ = kernel_inception_distance(
                real,
                fake,
                subsets=cfg.kid_subsets,
                subset_size=cfg.kid_subset_size,
                generator=ctx.choice_generator(),  # the same subsets on every device
            )
            details["kid"].append(kid)
            precision, recall = precision_recall(real, fake, k=cfg.pr_k)
            details["precision"].append(precision)
            details["recall"].append(recall)
            end_class = net.head(net.features_of(from_data[step].clamp(0, 1))).argmax(1)
            end_share = torch.bincount(end_class, minlength=start_share.numel()).double() / n
            details["class_kept"].append((end_class == start_class).double().mean().item())
            details["class_kept_if_mixed"].append((start_share * end_share).sum().item())
        details["feature_net"] = {"name": info["name"], "test_accuracy": info["test_accuracy"]}
        details["protocol"] = (
            f"{n} chains from noise scored against the first {n} evaluation images; {n} chains "
            "started at those images, classified by the feature network after each length"
        )
        return MetricResult(f"chain_fd_cnn_{count_label(n)}", details["fd"][-1], "", details)


METRICS.register("nll_ais")(AisNegativeLogLikelihood())
METRICS.register("chain")(ChainQuality())
