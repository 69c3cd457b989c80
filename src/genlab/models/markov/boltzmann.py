"""The mathematics of a Bernoulli–Bernoulli restricted Boltzmann machine, as plain functions.

An RBM with visible units v in {0,1}^V, hidden units h in {0,1}^H, weights W (H, V), visible
biases b (V) and hidden biases c (H) has the energy ``E(v, h) = -b.v - c.h - h.W.v`` and
``p(v, h) = exp(-E) / Z``. Summing out h gives the free energy
``F(v) = -b.v - sum_j softplus(c_j + W_j.v)`` with ``p(v) = exp(-F(v)) / Z``. Z sums over
2^V (or, equivalently, 2^H) states, so it is intractable for real images; it is computed
exactly here only for small H (:func:`exact_log_partition`) and otherwise estimated by
annealed importance sampling (:func:`ais_log_partition`, Neal 2001; for RBMs Salakhutdinov &
Murray 2008, "On the Quantitative Analysis of Deep Belief Networks").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from genlab import noise

EXACT_MAX_HIDDEN = 24  # 2^24 hidden states is the most exact enumeration will take
ENUMERATION_CHUNK = 4096  # hidden states per block of the enumeration


def free_energy(v: torch.Tensor, w: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """F(v) for a batch of visible vectors v (B, V): (B,) nats, ``-log p(v) - log Z``."""
    return -(v @ b) - F.softplus(F.linear(v, w, c)).sum(1)


def bernoulli(p: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """A 0/1 sample of independent Bernoulli(p) variables, in p's dtype."""
    return noise.bernoulli(p, generator)


def gibbs_step(
    v: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One block-Gibbs sweep v -> h ~ p(h|v) -> v' ~ p(v|h). Returns (v', p(v'=1|h))."""
    h = bernoulli(torch.sigmoid(F.linear(v, w, c)), generator)
    p_v = torch.sigmoid(h @ w + b)
    return bernoulli(p_v, generator), p_v


def exact_log_partition(w: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> float:
    """log Z by enumerating every hidden state (H <= 24), in float64:
    ``Z = sum_h exp(c.h) prod_i (1 + exp(b_i + (h W)_i))``."""
    hidden = w.shape[0]
    if hidden > EXACT_MAX_HIDDEN:
        raise ValueError(f"exact enumeration takes at most {EXACT_MAX_HIDDEN} hidden units")
    w, b, c = w.double(), b.double(), c.double()
    bits = 2 ** torch.arange(hidden, device=w.device)
    terms = []
    for start in range(0, 2**hidden, ENUMERATION_CHUNK):
        index = torch.arange(start, min(start + ENUMERATION_CHUNK, 2**hidden), device=w.device)
        h = ((index.unsqueeze(1) & bits) > 0).double()  # (chunk, H)
        terms.append(h @ c + F.softplus(h @ w + b).sum(1))
    return torch.logsumexp(torch.cat(terms), 0).item()


def base_rate_biases(images: torch.Tensor, smoothing: float = 1.0) -> torch.Tensor:
    """Visible biases of the base-rate model: the logit of each pixel's mean over binary
    images (N, V), with ``smoothing`` pseudo-counts either side so that no bias is infinite."""
    return base_rate_from_counts(images.double().sum(0), images.shape[0], smoothing)


def base_rate_from_counts(ones: torch.Tensor, count: float, smoothing: float = 1.0) -> torch.Tensor:
    """:func:`base_rate_biases` from each pixel's number of ones (V,) among ``count`` images."""
    p = (ones.double() + smoothing) / (count + 2 * smoothing)
    return torch.log(p) - torch.log1p(-p)


def ais_betas(count: int) -> torch.Tensor:
    """``count`` + 1 inverse temperatures from 0 to 1, spaced as in Salakhutdinov & Murray
    (2008): 500 steps on [0, 0.5], 4 000 on [0.5, 0.9] and 10 000 on [0.9, 1] of 14 500,
    scaled to ``count`` (the distributions change fastest near beta = 1)."""
    if count < 3:
        raise ValueError("AIS needs at least 3 intermediate temperatures")
    first = max(1, round(count * 500 / 14500))
    second = max(1, round(count * 4000 / 14500))
    third = count - first - second
    return torch.cat(
        [
            torch.linspace(0.0, 0.5, first + 1, dtype=torch.float64)[:-1],
            torch.linspace(0.5, 0.9, second + 1, dtype=torch.float64)[:-1],
            torch.linspace(0.9, 1.0, third + 1, dtype=torch.float64),
        ]
    )


@dataclass(frozen=True)
class AisEstimate:
    """log Z estimated from ``runs`` importance weights; ``stderr`` is the delta-method
    standard error of log Z (std of the weights / (mean · sqrt(runs))), ``log_weights``
    the runs' log-weights (their spread shows how well the chains annealed)."""

    log_z: float
    stderr: float
    log_weights: torch.Tensor  # (runs,) float64
    log_z_base: float
    betas: int

    @property
    def log_weight_std(self) -> float:
        return self.log_weights.std().item() if self.log_weights.numel() > 1 else 0.0


def ais_log_partition(
    w: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    base_bias: torch.Tensor,
    *,
    betas: int,
    runs: int,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> AisEstimate:
    """Annealed importance sampling of log Z from a base-rate RBM (W = 0, visible biases
    ``base_bias``, same H) to the target along

        log p*_k(v) = (1 - beta_k) base_bias.v + beta_k b.v + sum_j softplus(beta_k (W_j.v + c_j))

    whose log Z at beta = 0 is ``sum_i softplus(base_bias_i) + H log 2``. Each of ``runs``
    independent chains starts from the base model, adds ``log p*_k(v) - log p*_{k-1}(v)`` and
    then takes one Gibbs sweep that leaves p_k invariant. Weights are accumulated in float64.
    By Jensen's inequality the estimate is biased low: E[log Z_hat] <= log Z.
    """
    schedule = ais_betas(betas)
    dtype = w.dtype
    base = base_bias.to(dtype)
    hidden = w.shape[0]
    log_z_base = F.softplus(base.double()).sum().item() + hidden * math.log(2.0)
    v = bernoulli(torch.sigmoid(base).expand(runs, -1), generator)
    log_w = torch.zeros(runs, dtype=torch.float64, device=w.device)
    visible_delta = b.double() - base.double()  # d/d(beta) of the visible term
    steps = tqdm(
        range(1, schedule.numel()), desc="ais", unit="beta", disable=not progress, leave=False
    )
    for k in steps:
        beta_prev, beta = schedule[k - 1].item(), schedule[k].item()
        a = F.linear(v, w, c)  # (runs, H) pre-activations of the target's hidden units
        a64 = a.double()
        log_w += (beta - beta_prev) * (v.double() @ visible_delta)
        log_w += (F.softplus(beta * a64) - F.softplus(beta_prev * a64)).sum(1)
        if k < schedule.numel() - 1:  # the last weight needs no further transition
            h = bernoulli(torch.sigmoid(beta * a), generator)
            v = bernoulli(torch.sigmoid((1 - beta) * base + beta * (h @ w + b)), generator)
    log_mean_w = torch.logsumexp(log_w, 0).item() - math.log(runs)
    scaled = torch.exp(log_w - log_w.max())
    stderr = (scaled.std() / (scaled.mean() * math.sqrt(runs))).item() if runs > 1 else math.inf
    return AisEstimate(log_z_base + log_mean_w, stderr, log_w, log_z_base, betas)
