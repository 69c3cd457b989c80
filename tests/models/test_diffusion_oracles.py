"""Diffusion and flow matching against the mathematics, with exact denoisers and velocity
fields plugged into the library's samplers and likelihoods (any callable works there).

Stated tolerances, with what was measured (float64 unless said):
- q(x_t | x_0) in closed form vs the iterated forward process: 1e-12 (seen: ~1e-15).
- the posterior q(x_{t-1} | x_t, x_0) vs Bayes' rule on a grid of 400001 points: mean and
  variance within 1e-7 relative (seen: ~1e-10).
- the bound on -log p of N(0.3, 0.5^2) data with the exact denoiser, sigma_t^2 = beta_t,
  continuous decoder, 20000 points (s.e. 0.007): gap to the true NLL 0.116 nats at T = 10,
  0.028 at T = 30, 0.003 at T = 1000 (bounded by 0.02). With sigma_t^2 = beta~_t the gap stays
  near 0.58 nats at T = 1000 (that variance is too small at the first steps).
- deterministic DDIM inversion then decoding with the exact denoiser: error O(1/K), mean
  |error| 0.043 at K = 50, 0.011 at 200, 0.0024 at 1000 (bounded here by 0.06, 0.015, 0.004).
- flow matching's ODE with the exact velocity of N(m, C) data: Heun, 20 steps, 20000 samples:
  mean within 0.02, covariance within 0.03 (seen: 0.007, 0.013 — the Monte-Carlo spread).
- the ODE log-likelihood with the exact velocity: RK4, 16 steps, exact trace: within 1e-4 of
  log N(x; m, C) (seen: 9e-6); Rademacher probes: unbiased, mean error within 4 standard errors.
"""

import math

import numpy as np
import pytest
import torch

from genlab.models.diffusion import likelihood, objectives, samplers
from genlab.models.diffusion.schedules import (
    Denoiser,
    NoiseSchedule,
    q_posterior,
    q_sample,
    strided_steps,
    target_of,
    to_x0_eps,
)

SCHEDULES = ["linear", "cosine"]
MU, SD = 0.3, 0.5  # 1-D Gaussian data N(MU, SD^2)
F64 = torch.empty(0, dtype=torch.float64)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Elementwise work on small tensors: one thread is faster than two fighting for cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def gaussian_eps(schedule: NoiseSchedule, mu: float = MU, sd: float = SD):
    """E[eps | x_t] for data N(mu, sd^2) per coordinate: s_t (x_t - a_t mu) / (a_t^2 sd^2 +
    s_t^2), with x_t = a_t x_0 + s_t eps: the optimal eps-denoiser in closed form."""

    def predict(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = schedule.at("sqrt_alpha_bar", t, xt)
        s = schedule.at("sqrt_one_minus_alpha_bar", t, xt)
        return s * (xt - a * mu) / (a * a * sd * sd + s * s)

    return predict


def gaussian_data(n: int, dims: int = 1, seed: int = 0) -> torch.Tensor:
    return MU + SD * torch.randn(n, dims, generator=g(seed), dtype=torch.float64)


@pytest.mark.parametrize("kind", SCHEDULES)
def test_the_closed_form_marginal_is_the_iterated_forward_process(kind):
    """x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps_t, iterated: mean and variance given
    x_0 follow m_t = sqrt(1 - beta_t) m_{t-1}, v_t = (1 - beta_t) v_{t-1} + beta_t."""
    schedule = NoiseSchedule.make(kind, 1000)
    x0 = torch.tensor([[-0.8], [0.1], [1.0]], dtype=torch.float64)
    mean, var = x0.clone(), torch.zeros_like(x0)
    for i, beta in enumerate(schedule.tables["betas"]):
        mean, var = math.sqrt(1 - beta) * mean, (1 - beta) * var + beta
        t = torch.full((3,), i)
        closed_mean = q_sample(schedule, x0, t, torch.zeros_like(x0))
        closed_sd = q_sample(schedule, x0, t, torch.ones_like(x0)) - closed_mean
        torch.testing.assert_close(closed_mean, mean, rtol=0, atol=1e-12)
        torch.testing.assert_close(closed_sd.square(), var, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", SCHEDULES)
@pytest.mark.parametrize("step", [1, 10, 500, 999])
def test_the_posterior_is_bayes_rule_on_a_grid(kind, step):
    """q(x_{t-1} | x_t, x_0) is proportional to q(x_{t-1} | x_0) q(x_t | x_{t-1}): normalised
    on a fine grid, its mean and variance are those of the closed form (Ho et al. eqs. 6-7)."""
    schedule = NoiseSchedule.make(kind, 1000)
    abar_prev = schedule.tables["alpha_bar"][step - 1]
    beta = schedule.tables["betas"][step]
    x0 = torch.tensor([[0.7]], dtype=torch.float64)
    t = torch.tensor([step])
    xt = q_sample(schedule, x0, t, torch.tensor([[0.4]], dtype=torch.float64))
    mean, var = q_posterior(schedule, x0, xt, t)
    centre, spread = mean.item(), math.sqrt(var.item())
    grid = torch.linspace(centre - 12 * spread, centre + 12 * spread, 400001, dtype=torch.float64)
    log_prior = -((grid - math.sqrt(abar_prev) * 0.7) ** 2) / (2 * (1 - abar_prev))
    log_lik = -((xt.item() - math.sqrt(1 - beta) * grid) ** 2) / (2 * beta)
    w = torch.softmax(log_prior + log_lik, 0)
    grid_mean = (w * grid).sum().item()
    grid_var = (w * (grid - grid_mean) ** 2).sum().item()
    assert grid_mean == pytest.approx(centre, rel=1e-7, abs=1e-12)
    assert grid_var == pytest.approx(var.item(), rel=1e-7)


def test_the_first_posterior_step_returns_x0():
    schedule = NoiseSchedule.make("linear", 100)
    x0, xt = torch.tensor([[0.25]]), torch.tensor([[0.3]])
    mean, var = q_posterior(schedule, x0, xt, torch.tensor([0]))
    assert mean.item() == pytest.approx(0.25) and var.item() == 0.0


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_the_three_parametrisations_convert_exactly(prediction):
    schedule = NoiseSchedule.make("cosine", 50)
    x0 = torch.randn(6, 3, generator=g(1), dtype=torch.float64)
    eps = torch.randn(6, 3, generator=g(2), dtype=torch.float64)
    t = torch.arange(0, 50, 9)
    xt = q_sample(schedule, x0, t, eps)
    x0_back, eps_back = to_x0_eps(
        schedule, prediction, target_of(schedule, prediction, x0, eps, t), xt, t
    )
    torch.testing.assert_close(x0_back, x0, rtol=0, atol=1e-9)
    torch.testing.assert_close(eps_back, eps, rtol=0, atol=1e-9)


def test_respacing_keeps_the_marginals_of_the_original_steps():
    schedule = NoiseSchedule.make("linear", 1000)
    for k in (1, 2, 7, 50, 999, 1000):
        steps = strided_steps(1000, k)
        assert len(np.unique(steps)) == k and steps[-1] == 999 and (k == 1 or steps[0] == 0)
        sub = schedule.respaced(k)
        np.testing.assert_allclose(sub.alpha_bar, schedule.alpha_bar[steps], rtol=1e-12)
        # the respaced betas give back the same abar by their product
        np.testing.assert_allclose(np.cumprod(1 - sub.tables["betas"]), sub.alpha_bar, rtol=1e-9)


def _bound_gap(T: int, variance: str, n: int = 20000) -> tuple[float, float]:
    schedule = NoiseSchedule.make("linear", T)
    x0 = gaussian_data(n)
    true_nll = (0.5 * ((x0 - MU) / SD) ** 2 + math.log(SD) + 0.5 * math.log(2 * math.pi))[:, 0]
    bound = likelihood.variational_bound(
        Denoiser(gaussian_eps(schedule), "eps", schedule),
        x0,
        terms=None,
        variance=variance,
        decoder="continuous",
        generator=g(T),
    )
    gap = bound.values - true_nll
    return gap.mean().item(), gap.std().item() / math.sqrt(n)


def test_with_the_exact_denoiser_the_bound_tightens_to_the_true_nll_as_T_grows():
    """Ho et al. eq. 5 with the optimal denoiser of Gaussian data and sigma_t^2 = beta_t: the
    gap to -log p(x_0) is 0.116 nats at T = 10, 0.028 at T = 30 and vanishes at T = 1000
    (0.003, bounded by 0.02, ~3 standard errors); it is a bound at every T (gap > -3 s.e.)."""
    gaps = {T: _bound_gap(T, "beta") for T in (10, 30, 1000)}
    (g10, _), (g30, se30), (g1000, se1000) = gaps[10], gaps[30], gaps[1000]
    assert 0.08 < g10 < 0.14
    assert g30 < g10 / 3 and g30 > -3 * se30
    assert abs(g1000) < 0.02 and g1000 > -3 * se1000
    # beta~_t, the posterior's variance, is too small at the first steps: a lasting gap
    assert _bound_gap(1000, "posterior", 4000)[0] > 0.3


def test_the_monte_carlo_bound_agrees_with_the_sum_of_all_terms():
    """k uniformly drawn steps weighted by T estimate the sum of the T terms without bias: the
    per-image estimates averaged over 500 images agree with the full sum within 4 s.e."""
    schedule = NoiseSchedule.make("cosine", 200)
    den = Denoiser(gaussian_eps(schedule), "eps", schedule)
    x0 = gaussian_data(500, dims=3, seed=3)
    kw = {"variance": "posterior", "decoder": "continuous"}
    full = likelihood.variational_bound(den, x0, terms=None, generator=g(4), **kw)
    mc = likelihood.variational_bound(den, x0, terms=100, generator=g(5), **kw)
    assert full.stderr is None and mc.stderr is not None
    se = math.sqrt(mc.stderr.square().sum().item()) / 500
    assert abs(mc.values.mean().item() - full.values.mean().item()) < 4 * se + 0.01


def test_the_discretised_gaussian_decoder_sums_to_one_over_the_levels():
    """Ho et al. eq. 13: bins of width 2/255 around the 256 levels, the outer ones open."""
    levels = torch.linspace(-1, 1, 256, dtype=torch.float64)[:, None]
    for mean, sd in [(0.0, 0.01), (0.3, 0.2), (-1.3, 0.05), (0.999, 1e-4), (0.5, 3.0)]:
        log_p = likelihood.log_bin_mass(
            levels, torch.full_like(levels, mean), torch.full_like(levels, math.log(sd))
        )
        assert torch.logsumexp(log_p, 0).item() == pytest.approx(0.0, abs=1e-9)
        assert torch.isfinite(log_p).all()


@pytest.mark.parametrize("kind", SCHEDULES)
def test_deterministic_ddim_inverts_and_decodes_back_with_the_exact_denoiser(kind):
    """Error O(1/K): mean |x - decode(encode(x))| falls by about 4x from K = 50 to 200 (seen,
    linear: 0.044, 0.011; cosine: 0.024, 0.006), and the codes are standard normal-ish."""
    schedule = NoiseSchedule.make(kind, 1000)
    den = Denoiser(gaussian_eps(schedule), "eps", schedule)
    x0 = gaussian_data(500, dims=4, seed=6)
    errors = {}
    for k in (50, 200):
        z = samplers.ddim_invert(den, x0, steps=k)
        errors[k] = (samplers.ddim_decode(den, z, steps=k) - x0).abs().mean().item()
    assert errors[200] < 0.015 and errors[50] < 0.06 and errors[200] < errors[50] / 3
    assert abs(z.mean().item()) < 0.05 and abs(z.std().item() - 1) < 0.05


def test_ddim_with_eta_one_is_ancestral_sampling_with_the_posterior_variance():
    """Song et al. 2021, section 4.1: eta = 1 gives the DDPM posterior's sigma_t."""
    schedule = NoiseSchedule.make("linear", 1000)
    den = Denoiser(gaussian_eps(schedule), "eps", schedule)
    kw = {"steps": 25, "generator": g(7), "like": F64}
    ddim = samplers.ddim_sample(den, (64, 2), eta=1.0, **kw)
    kw["generator"] = g(7)
    ddpm = samplers.ddpm_sample(den, (64, 2), variance="posterior", **kw)
    torch.testing.assert_close(ddim, ddpm, rtol=0, atol=1e-10)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_samplers_with_the_exact_denoiser_draw_the_data_distribution(sampler):
    """N(0.3, 0.5^2) from 20000 draws on all 1000 steps (ancestral, sigma^2 = beta) or 200
    DDIM steps: mean within 0.015 and sd within 0.015 (s.e. 0.0035 and 0.0025)."""
    schedule = NoiseSchedule.make("linear", 1000)
    den = Denoiser(gaussian_eps(schedule), "eps", schedule)
    if sampler == "ddpm":
        x = samplers.ddpm_sample(
            den, (20000, 1), steps=1000, variance="beta", generator=g(8), like=F64
        )
    else:
        x = samplers.ddim_sample(den, (20000, 1), steps=200, eta=0.0, generator=g(8), like=F64)
    assert x.mean().item() == pytest.approx(MU, abs=0.015)
    assert x.std().item() == pytest.approx(SD, abs=0.015)


def test_samplers_give_the_same_draws_from_the_same_seed():
    schedule = NoiseSchedule.make("cosine", 100)
    den = Denoiser(gaussian_eps(schedule), "eps", schedule)
    runs = {
        "ddpm": lambda s: samplers.ddpm_sample(
            den, (8, 3), steps=10, variance="beta", generator=g(s), like=F64
        ),
        "ddim": lambda s: samplers.ddim_sample(
            den, (8, 3), steps=10, eta=0.5, generator=g(s), like=F64
        ),
        "heun": lambda s: samplers.ode_sample(
            gaussian_velocity, (8, 2), steps=5, method="heun", generator=g(s), like=F64
        ),
    }
    for name, run in runs.items():
        assert torch.equal(run(1), run(1)), name
        assert not torch.equal(run(1), run(2)), name


# -- flow matching: the straight path from N(M, C) data (t = 0) to N(0, I) noise (t = 1) -----
M = torch.tensor([0.5, -1.0], dtype=torch.float64)
C = torch.tensor([[0.6, 0.3], [0.3, 0.4]], dtype=torch.float64)


def gaussian_velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """E[eps - x_0 | x_t = x] for x_t = (1 - t) x_0 + t eps, x_0 ~ N(M, C): with S_t = (1 -
    t)^2 C + t^2 I and d = x - (1 - t) M, E[eps | x] = t S_t^-1 d and E[x_0 | x] = M + (1 - t)
    C S_t^-1 d (the exact marginal velocity field, Lipman et al. 2023, eq. 8)."""
    tt = t[:, None]
    cov = (1 - t)[:, None, None] ** 2 * C + t[:, None, None] ** 2 * torch.eye(2, dtype=x.dtype)
    solved = torch.linalg.solve(cov, (x - (1 - tt) * M).unsqueeze(-1)).squeeze(-1)
    return tt * solved - (M + (1 - tt) * solved @ C)


@pytest.mark.parametrize(("method", "steps"), [("heun", 20), ("euler", 100)])
def test_the_ode_with_the_exact_velocity_lands_on_the_target_gaussian(method, steps):
    x = samplers.ode_sample(
        gaussian_velocity, (20000, 2), steps=steps, method=method, generator=g(9), like=F64
    )
    torch.testing.assert_close(x.mean(0), M, rtol=0, atol=0.02)
    torch.testing.assert_close(torch.cov(x.T), C, rtol=0, atol=0.03)


def test_the_ode_log_likelihood_with_the_exact_velocity_is_the_true_log_density():
    x0 = M + torch.randn(2000, 2, generator=g(10), dtype=torch.float64) @ torch.linalg.cholesky(C).T
    true = torch.distributions.MultivariateNormal(M, C).log_prob(x0)
    kw = {"steps": 16, "method": "rk4", "probes": 4}
    exact = likelihood.ode_log_likelihood(
        gaussian_velocity, x0, probe="exact", generator=None, **kw
    )
    assert (exact.values - true).abs().max().item() < 1e-4 and exact.stderr is None
    for probe in ("rademacher", "gaussian"):
        est = likelihood.ode_log_likelihood(
            gaussian_velocity, x0, probe=probe, generator=g(11), **kw
        )
        assert est.stderr is not None and est.stderr.mean() > 0
        se = math.sqrt(est.stderr.square().mean().item() / 2000)
        assert abs((est.values - true).mean().item()) < 4 * se, probe


def test_the_ode_inverts_and_integrates_back():
    x0 = torch.randn(500, 2, generator=g(12), dtype=torch.float64) + M
    z = samplers.ode_invert(gaussian_velocity, x0, steps=50, method="heun")
    back = samplers.ode_sample(
        gaussian_velocity, (500, 2), steps=50, method="heun", generator=None, like=F64, start=z
    )
    assert (back - x0).abs().max().item() < 1e-4


# -- a small network trained briefly on a 2-D mixture of Gaussians ---------------------------
CENTRES = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [1.0, -1.0], [-1.0, 1.0]])


def mixture(n: int, generator: torch.Generator) -> torch.Tensor:
    """Four Gaussians of sd 0.3 at (+-1, +-1), equally likely."""
    which = torch.randint(0, 4, (n,), generator=generator)
    return CENTRES[which] + 0.3 * torch.randn(n, 2, generator=generator)


class TimeMLP(torch.nn.Module):
    """(x, time in [0, 1]) -> 2 outputs; three hidden SiLU layers of 128 units. A raw time
    input trains faster here than sinusoidal features for so small a network."""

    def __init__(self) -> None:
        super().__init__()
        h = 128
        self.net = torch.nn.Sequential(
            torch.nn.Linear(3, h),
            torch.nn.SiLU(),
            torch.nn.Linear(h, h),
            torch.nn.SiLU(),
            torch.nn.Linear(h, h),
            torch.nn.SiLU(),
            torch.nn.Linear(h, 2),
        )

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, time[:, None].to(x.dtype)], 1))


def energy_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """2 E|X - Y| - E|X - X'| - E|Y - Y'| (Szekely & Rizzo 2013), V-statistic."""
    return 2 * torch.cdist(a, b).mean() - torch.cdist(a, a).mean() - torch.cdist(b, b).mean()


def permutation_p_value(a: torch.Tensor, b: torch.Tensor, permutations: int = 200) -> float:
    """The share of random relabellings of a and b whose energy distance reaches the observed."""
    observed, both, gen = energy_distance(a, b), torch.cat([a, b]), g(99)
    count = 0
    for _ in range(permutations):
        p = torch.randperm(len(both), generator=gen)
        count += int(energy_distance(both[p[: len(a)]], both[p[len(a) :]]) >= observed)
    return (count + 1) / (permutations + 1)


@pytest.mark.parametrize("objective", ["ddpm", "flow_matching"])
def test_a_briefly_trained_mlp_samples_the_mixture(objective):
    """1500 Adam steps (batch 256, cosine-decayed lr 2e-3) of the library's objective; 500
    samples (ancestral, all T = 100 steps, sigma^2 = beta; or Heun, 20 steps) against 500 data
    points: the energy-distance permutation test (200 relabellings) does not reject at the 1%
    level (seen: p = 0.82 ddpm, 0.62 flow matching), while it rejects a Gaussian of the data's
    mean and covariance (seen: p = 1/201, the smallest it gives): the test can tell. About 3 s
    each on one core."""
    torch.manual_seed(0)
    net, T, gen, steps = TimeMLP(), 100, g(1), 1500
    schedule = NoiseSchedule.make("linear", T)
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)

    def predict(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return net(xt, t.float() / T)

    for _ in range(steps):
        x = mixture(256, gen)
        if objective == "ddpm":
            loss = objectives.ddpm_loss(predict, schedule, "eps", x, gen)["loss"]
        else:
            loss = objectives.flow_matching_loss(net, x, gen)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        decay.step()
    like, data = torch.empty(0), mixture(500, g(5))
    with torch.no_grad():
        if objective == "ddpm":
            den = Denoiser(predict, "eps", schedule)
            x = samplers.ddpm_sample(
                den, (500, 2), steps=T, variance="beta", generator=g(6), like=like
            )
        else:
            x = samplers.ode_sample(
                net, (500, 2), steps=20, method="heun", generator=g(6), like=like
            )
    assert permutation_p_value(x, data) > 0.01
    fitted = (
        data.mean(0)
        + torch.randn(500, 2, generator=g(8)) @ torch.linalg.cholesky(torch.cov(data.T)).T
    )
    assert permutation_p_value(fitted, data) < 0.01


@pytest.mark.parametrize(("total", "terms"), [(1000, 100), (1000, 7), (20, 50), (3, 1)])
def test_the_strata_cover_every_step_but_the_decoders_once(total, terms):
    strata = likelihood._strata(total, terms)
    covered = [start + i for start, size in strata for i in range(size)]
    assert covered == list(range(1, total)) and len(strata) == min(terms, total - 1)
    assert max(s for _, s in strata) - min(s for _, s in strata) <= 1


def test_collapsed_strata_pair_neighbours_and_are_exact_for_equal_strata():
    weighted = torch.tensor([[1.0], [3.0], [2.0], [2.0], [5.0]])
    # pairs (0, 1), (2, 3) and, the count being odd, (3, 4): 4 + 0 + 9
    assert likelihood._collapsed_strata_stderr(weighted).item() == pytest.approx(13**0.5)
    assert likelihood._collapsed_strata_stderr(weighted[:1]) is None
