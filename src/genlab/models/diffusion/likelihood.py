"""Likelihoods of diffusion and flow-matching models, in nats per image.

(a) :func:`variational_bound`: the bound of Ho et al. 2020, eq. 5, on -log p(x_0),

    L = KL(q(x_T | x_0) || N(0, I))                                  (L_T, closed form)
      + sum_{t=2..T} E_q KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))  (L_{t-1})
      + E_q [-log p(x_0 | x_1)]                                       (L_0),

with p(x_{t-1} | x_t) = N(mu~_t(x_t, x0_hat(x_t, t)), sigma_t^2 I) and a fixed variance
sigma_t^2 = beta~_t (``variance="posterior"``; at t = 1, beta~_2, as Nichol & Dhariwal 2021
clip it) or beta_t. Ho et al.'s decoder (eq. 13) is a Gaussian N(mu_1, sigma_1^2) discretised
to bins of width 2 / 255 around the 256 levels of [-1, 1], the outermost bins reaching to -inf
and +inf, so it sums to one over the levels and L bounds -log P(x) of the discrete 8-bit image
(``decoder="discrete"``); ``decoder="continuous"`` uses the Gaussian density itself, a bound
on -log p of continuous data (for oracles). Each L_{t-1} and L_0 is an expectation over x_t ~
q(x_t | x_0), estimated with one draw.

The T terms L_0..L_{T-1} are either all evaluated (T network passes per image; unbiased, no
standard error from one draw per term) or estimated by stratified Monte Carlo with ``terms`` =
k draws: L_0 (the decoder, large and unlike the rest) is always computed, the steps 1..T-1 are
cut into k consecutive strata of equal size n_s, and one step drawn uniformly in each stands
for its stratum, L ~= L_T + L_0 + sum_s n_s L_{t_s} (unbiased; k + 1 network passes per
image), its standard error from collapsed strata (neighbouring strata paired, conservative).
The terms fall steeply with t, so strata remove most of what uniform draws over all steps
would leave to chance. Either way the value is an estimate of an upper bound on -log P(x).

(b) :func:`ode_log_likelihood`: the probability-flow ODE of flow matching, integrated from
data (t = 0) to noise (t = 1) with the instantaneous change of variables (Chen et al. 2018,
theorem 1; FFJORD, Grathwohl et al. 2019): log p_0(x_0) = log N(x_1; 0, I) + int_0^1 div v(x_t,
t) dt. The divergence is Hutchinson's estimate E_e[e^T (dv/dx) e] with Rademacher or Gaussian
probes e (one set per solve, as FFJORD does), or the exact trace for small D; a fixed-step Heun
or RK4 solver integrates both. The value is an ESTIMATE, not a bound: it carries the solver's
discretisation error and, with probes, Hutchinson's variance (unbiased given the path).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from tqdm.auto import tqdm

from genlab import noise
from genlab.models.base import LogLikelihood
from genlab.models.diffusion.objectives import Velocity
from genlab.models.diffusion.ode import Method, integrate
from genlab.models.diffusion.pixels import LEVELS
from genlab.models.diffusion.schedules import Denoiser, q_posterior, q_sample

Decoder = Literal["discrete", "continuous"]
Variance = Literal["posterior", "beta"]
Probe = Literal["rademacher", "gaussian", "exact"]
LOG_2PI = math.log(2 * math.pi)
BIN = 1.0 / 255.0  # half the width of a level's bin in [-1, 1]


@dataclass(frozen=True)
class Estimate:
    """Per-image values (B,) in nats and their Monte-Carlo standard errors (B,) (or None)."""

    values: torch.Tensor
    stderr: torch.Tensor | None


def _sum(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).sum(1)


def prior_kl(denoiser: Denoiser, x0: torch.Tensor) -> torch.Tensor:
    """L_T = KL(N(sqrt(abar_T) x_0, (1 - abar_T) I) || N(0, I)) per image (B,)."""
    last = torch.full((x0.shape[0],), denoiser.schedule.num_steps - 1, device=x0.device)
    abar = denoiser.schedule.at("alpha_bar", last, x0)
    return 0.5 * _sum(abar * x0.square() + (1.0 - abar) - torch.log1p(-abar) - 1.0)


def log_bin_mass(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log P(x) (elementwise) of N(mean, std^2) discretised to the bins [x - 1/255, x + 1/255]
    of the levels x of [-1, 1], the lowest bin from -inf and the highest to +inf (Ho et al.
    2020, eq. 13). The mass of a bin is Phi(b) - Phi(a), computed on the side of the mean
    where it does not cancel; where it underflows, the density at x times the width."""
    inv = torch.exp(-log_std)
    upper = inv * (x - mean + BIN)  # standardised edges
    lower = inv * (x - mean - BIN)
    log_cdf_upper = torch.special.log_ndtr(upper)  # log Phi(b)
    log_sf_lower = torch.special.log_ndtr(-lower)  # log (1 - Phi(a))
    # log(Phi(b) - Phi(a)): factor out the larger of Phi(b) (a < 0) or 1 - Phi(a) (a >= 0)
    left = log_cdf_upper + _log1mexp(torch.special.log_ndtr(lower) - log_cdf_upper)
    right = log_sf_lower + _log1mexp(torch.special.log_ndtr(-upper) - log_sf_lower)
    middle = torch.where(lower < 0, left, right)
    centre = inv * (x - mean)
    density = -0.5 * (centre.square() + LOG_2PI) - log_std + math.log(2 * BIN)
    middle = torch.where(torch.isfinite(middle), middle, density)
    lowest, highest = x < -1.0 + BIN / 2, x > 1.0 - BIN / 2
    return torch.where(lowest, log_cdf_upper, torch.where(highest, log_sf_lower, middle))


def _log1mexp(a: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(a)) for a <= 0 (Maechler 2012); -inf at a = 0."""
    a = a.clamp(max=0.0)
    return torch.where(a > -math.log(2.0), torch.log(-torch.expm1(a)), torch.log1p(-torch.exp(a)))


def bound_term(
    denoiser: Denoiser,
    x0: torch.Tensor,
    t: torch.Tensor,
    *,
    variance: Variance,
    decoder: Decoder,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """L_{t} per image (B,) for steps t (B,) (0-indexed: t = 0 is the decoder term L_0, t > 0
    the KL term of the paper's step t + 1), with one draw of x_{t} ~ q(x_t | x_0)."""
    schedule = denoiser.schedule
    eps = noise.normal(x0.shape, generator, x0.dtype).to(x0.device)
    xt = q_sample(schedule, x0, t, eps)
    x0_hat, _ = denoiser.x0_eps(xt, t)
    mean_p, var_q = q_posterior(schedule, x0_hat, xt, t)  # q's variance, p's mean
    name = "posterior_log_variance" if variance == "posterior" else "log_betas"
    logvar_p = schedule.at(name, t, x0)
    # KL of two Gaussians; the means differ by coef_x0 (x_0 - x0_hat), computed as such
    diff = schedule.at("posterior_coef_x0", t, x0) * (x0 - x0_hat)
    logvar_q = torch.log(var_q.clamp(min=torch.finfo(x0.dtype).tiny))
    kl = 0.5 * (logvar_p - logvar_q + torch.exp(logvar_q - logvar_p) - 1.0)
    kl = _sum(kl + 0.5 * diff.square() * torch.exp(-logvar_p))
    if decoder == "discrete":
        nll = -_sum(log_bin_mass(x0, mean_p, 0.5 * logvar_p))
    else:
        nll = 0.5 * _sum((x0 - mean_p).square() * torch.exp(-logvar_p) + logvar_p + LOG_2PI)
    return torch.where(t == 0, nll, kl)


def variational_bound(
    denoiser: Denoiser,
    x0: torch.Tensor,
    *,
    terms: int | None,
    variance: Variance,
    decoder: Decoder,
    generator: torch.Generator | None,
    progress: bool = False,
) -> Estimate:
    """The bound of Ho et al. eq. 5 on -log p(x_0) per image (B,) of x_0 in [-1, 1]: all T
    terms (``terms=None``) or ``terms`` uniformly drawn steps with their standard error."""
    schedule, n = denoiser.schedule, x0.shape[0]
    total = schedule.num_steps
    prior = prior_kl(denoiser, x0)
    if terms is None:
        acc = torch.zeros_like(prior)
        for i in tqdm(range(total), desc="bound", disable=not progress, leave=False):
            t = torch.full((n,), i, dtype=torch.long, device=x0.device)
            acc = acc + bound_term(
                denoiser, x0, t, variance=variance, decoder=decoder, generator=generator
            )
        return Estimate(prior + acc, None)
    if terms < 1:
        raise ValueError(f"the bound needs at least one term, got {terms}")
    # L_0, the decoder, is large and unlike any other term: always computed exactly
    first = torch.zeros(n, dtype=torch.long, device=x0.device)
    decoder_term = bound_term(
        denoiser, x0, first, variance=variance, decoder=decoder, generator=generator
    )
    strata = _strata(total, terms)
    weighted = []
    for start, size in tqdm(strata, desc="bound", disable=not progress, leave=False):
        t = start + noise.integers(size, (n,), generator).to(x0.device)
        term = bound_term(denoiser, x0, t, variance=variance, decoder=decoder, generator=generator)
        weighted.append(term * size)  # an unbiased estimate of its stratum's sum
    stacked = torch.stack(weighted)  # (k, B)
    return Estimate(prior + decoder_term + stacked.sum(0), _collapsed_strata_stderr(stacked))


def _strata(total: int, terms: int) -> list[tuple[int, int]]:
    """``terms`` consecutive strata (start, size) of the steps 1..T-1, as equal as can be."""
    steps = total - 1
    count = min(terms, steps)
    edges = [1 + (steps * i) // count for i in range(count + 1)]
    return [(a, b - a) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _collapsed_strata_stderr(weighted: torch.Tensor) -> torch.Tensor | None:
    """The standard error (B,) of a sum of one-draw strata estimates (k, B), by collapsing
    neighbouring strata into pairs (Cochran 1977, section 5A.12): each pair's variance is taken
    as (y_a - y_b)^2, which overestimates it when the strata means differ (a conservative
    error); with an odd count the last stratum pairs with the one before it. None for one."""
    k = weighted.shape[0]
    if k < 2:
        return None
    pairs = [(i, i + 1) for i in range(0, k - 1, 2)]
    if k % 2:
        pairs.append((k - 2, k - 1))
    variance = sum((weighted[a] - weighted[b]).square() for a, b in pairs)
    assert isinstance(variance, torch.Tensor)
    return variance.sqrt()


def divergence_field(
    velocity: Velocity, probes: torch.Tensor | None
) -> Callable[[float, tuple[torch.Tensor, ...]], tuple[torch.Tensor, ...]]:
    """The augmented field (dx/dt, d/dt int div v) = (v, div v) for the ODE solver; the
    divergence per probe (B, P) by Hutchinson's estimator with ``probes`` (P, B, ...), or the
    exact trace (B, 1) when ``probes`` is None (one backward pass per dimension)."""

    def field(t: float, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        x = state[0].detach()
        times = torch.full((x.shape[0],), t, dtype=x.dtype, device=x.device)
        with torch.enable_grad():
            x.requires_grad_(True)
            v = velocity(x, times)  # (B, ...)
            if probes is None:
                flat_v, dims = v.flatten(1), x[0].numel()
                div = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
                for d in range(dims):
                    (grad,) = torch.autograd.grad(flat_v[:, d].sum(), x, retain_graph=True)
                    div = div + grad.flatten(1)[:, d]
                divs = div[:, None]
            else:
                columns = []
                for p in range(probes.shape[0]):
                    keep = p < probes.shape[0] - 1
                    (vjp,) = torch.autograd.grad(v, x, probes[p], retain_graph=keep)
                    columns.append(_sum(vjp * probes[p]))  # e^T (dv/dx) e
                divs = torch.stack(columns, dim=1)  # (B, P)
        return v.detach(), divs.detach()

    return field


def ode_log_likelihood(
    velocity: Velocity,
    z0: torch.Tensor,
    *,
    steps: int,
    method: Method,
    probes: int,
    probe: Probe,
    generator: torch.Generator | None,
    progress: bool = False,
) -> Estimate:
    """log p_0(z_0) (B,) of the flow's density at z_0 in model space, averaged over the
    ``probes`` Hutchinson estimates (their standard error when more than one)."""
    e: torch.Tensor | None = None
    if probe != "exact":
        shape = (probes, *z0.shape)
        if probe == "gaussian":
            e = noise.normal(shape, generator, z0.dtype).to(z0.device)
        else:  # Rademacher: +-1 with equal probability
            signs = noise.uniform(shape, generator, z0.dtype) < 0.5
            e = (2.0 * signs.to(z0.dtype) - 1.0).to(z0.device)
    width = 1 if e is None else probes
    start = (z0, torch.zeros(z0.shape[0], width, dtype=z0.dtype, device=z0.device))
    field = divergence_field(velocity, e)
    x1, integral = integrate(field, start, 0.0, 1.0, steps, method, progress=progress)
    prior = -0.5 * _sum(x1.square() + LOG_2PI)  # log N(x_1; 0, I)
    per_probe = prior[:, None] + integral  # (B, P)
    stderr = per_probe.std(1) / math.sqrt(width) if width > 1 else None
    return Estimate(per_probe.mean(1), stderr)


def bound_result(
    estimate: Estimate, *, timesteps: int, terms: int | None, variance: str
) -> LogLikelihood:
    """The DDPM bound on -log P(x) as a log-likelihood result: minus the bound, with the
    protocol its metric is named by and the method in words."""
    samples = timesteps if terms is None else terms
    method = (
        f"variational bound of Ho et al. 2020 eq. 5 (prior KL, {timesteps} KL terms with "
        f"variance {variance}, discretised Gaussian decoder): "
        + (
            "every term summed"
            if terms is None
            else f"L_0 exact, and one step t drawn uniformly in each of {terms} equal "
            f"strata of 1..{timesteps - 1} per image (stratified Monte Carlo, {terms + 1} "
            "passes); MC s.e. by collapsed strata (conservative)"
        )
        + "; an upper bound on -log P(x)"
    )
    protocol = "diffusion_bound_all" if terms is None else f"diffusion_bound_t{terms}"
    return LogLikelihood(
        -estimate.values,
        "elbo",
        estimate.stderr,
        samples=samples,
        protocol=protocol,
        method=method,
    )


def ode_result(
    draws: torch.Tensor,
    stderr: torch.Tensor | None,
    *,
    solver: str,
    steps: int,
    probes: int,
    probe: str,
) -> LogLikelihood:
    """The ODE estimates of log p on [0, 1]^D, one row per draw of the dequantisation noise
    (draws, B), as a log-likelihood result: their mean, with the standard error over the
    draws (one draw: ``stderr``, over the Hutchinson probes), protocol and method."""
    count = draws.shape[0]
    if count > 1:
        stderr = draws.std(0) / math.sqrt(count)
    method = (
        f"probability-flow ODE, {solver} with {steps} steps, divergence by "
        f"Hutchinson's estimator ({probes} {probe} probe(s)), {count} draw(s) of "
        "the dequantisation noise averaged: an estimate (discretisation and probe noise) "
        "of the dequantisation bound of the continuous density's -log p"
    )
    return LogLikelihood(
        draws.mean(0),
        "estimate",
        stderr,
        of="dequantised",
        levels=LEVELS,
        samples=count,
        protocol=f"ode_{solver}_s{steps}_p{probes}_k{count}",
        method=method,
    )
