"""Math oracles for the distributions: analytic KL vs Monte Carlo, likelihoods sum to one."""

import math

import pytest
import torch

from genlab.models.common.distributions import (
    LIKELIHOODS,
    DiagonalGaussian,
    standard_normal_log_prob,
)


def test_analytic_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    q = DiagonalGaussian(torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g) * 0.5)
    z = q.rsample(g, num=200_000)  # (3, N, 5)
    log_ratio = q.log_prob(z) - standard_normal_log_prob(z)  # (3, N)
    mc, se = log_ratio.mean(1), log_ratio.std(1) / math.sqrt(z.shape[1])
    analytic = q.kl_to_standard_normal()
    assert torch.all((mc - analytic).abs() < 4 * se + 1e-3), (mc, analytic, se)


def test_gaussian_log_prob_matches_torch():
    g = torch.Generator().manual_seed(1)
    q = DiagonalGaussian(torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g))
    z = torch.randn(4, 3, generator=g)
    ref = torch.distributions.Normal(q.mean, q.std).log_prob(z).sum(-1)
    torch.testing.assert_close(q.log_prob(z), ref)


def test_rsample_is_reparameterised():
    mean = torch.zeros(2, 3, requires_grad=True)
    logvar = torch.zeros(2, 3, requires_grad=True)
    DiagonalGaussian(mean, logvar).rsample(torch.Generator().manual_seed(0)).sum().backward()
    assert mean.grad is not None and torch.all(mean.grad == 1)
    assert logvar.grad is not None and logvar.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["logistic", "categorical"])
def test_8bit_likelihoods_sum_to_one(name):
    likelihood = LIKELIHOODS.get(name)()
    g = torch.Generator().manual_seed(2)
    params = torch.randn(1, likelihood.num_params, 1, 1, 3, generator=g) * 2  # three sub-pixels
    if name == "logistic":
        params[:, 0] = torch.tensor([-0.9, 0.1, 1.2])  # means, incl. outside [-1, 1]
        params[:, 1] = torch.tensor([-4.0, -1.0, 0.5])  # sharp, medium, broad
    values = torch.arange(256, dtype=torch.float32) / 255.0
    # every one of the 256 levels in every sub-pixel at once: batch over levels
    x = values.view(256, 1, 1, 1).expand(256, 1, 1, 3)
    per_pixel = torch.stack(
        [
            likelihood.log_prob(
                params[:, :, :, :, i : i + 1].expand(256, -1, -1, -1, -1), x[:, :, :, i : i + 1]
            )
            for i in range(3)
        ]
    )  # (3, 256)
    total = per_pixel.double().exp().sum(1)
    torch.testing.assert_close(total, torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0)


def test_bernoulli_matches_torch():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(4, 1, 1, 5, 5, generator=g)
    x = (torch.rand(4, 1, 5, 5, generator=g) < 0.5).float()
    ref = torch.distributions.Bernoulli(logits=logits[:, 0]).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(LIKELIHOODS.get("bernoulli")().log_prob(logits, x), ref)


@pytest.mark.parametrize("name", ["bernoulli", "logistic", "categorical"])
def test_samples_lie_on_the_data_grid(name):
    likelihood = LIKELIHOODS.get(name)()
    params = torch.randn(2, likelihood.num_params, 1, 4, 4)
    s = likelihood.sample(params, torch.Generator().manual_seed(0))
    assert s.shape == (2, 1, 4, 4)
    levels = likelihood.levels - 1
    torch.testing.assert_close(s * levels, torch.round(s * levels))
    m = likelihood.mean(params)
    assert m.shape == (2, 1, 4, 4) and m.min() >= 0 and m.max() <= 1
