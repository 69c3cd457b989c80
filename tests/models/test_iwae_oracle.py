"""IWAE vs the exact marginal likelihood of a linear-Gaussian model (probabilistic PCA).

p(z) = N(0, I), p(x|z) = N(Wz + b, s^2 I)  =>  p(x) = N(b, W W^T + s^2 I) in closed form
(Tipping & Bishop 1999). With W's columns orthogonal the true posterior is diagonal, so the
VAE's Gaussian encoder can represent it exactly; we also test a deliberately wrong encoder.
"""

import math

import pytest
import torch

from genlab.models import DataInfo, build_model
from genlab.models.latent.vae import VAE

D, L, NOISE = 6, 2, 0.5


class LinearGaussianVAE(VAE):
    """The library's VAE (encoder, IWAE machinery) with a Gaussian linear decoder."""

    def setup(self, W, b):
        self.W, self.b = W, b

    def _log_px_given_z(self, x, z):  # (B, D) data as (B, 1, 1, D); z (B, n, L)
        mean = z @ self.W.T + self.b  # (B, n, D)
        resid = x.flatten(1).unsqueeze(1) - mean
        return -0.5 * (resid.square() / NOISE**2 + math.log(2 * math.pi * NOISE**2)).sum(-1)


def make_model(exact_posterior: bool):
    g = torch.Generator().manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(D, L, generator=g, dtype=torch.float64))
    scales = torch.tensor([2.0, 1.0], dtype=torch.float64)
    W, b = U * scales, torch.randn(D, generator=g, dtype=torch.float64) * 0.3
    model = LinearGaussianVAE.__new__(LinearGaussianVAE)
    VAE.__init__(
        model,
        build_model(
            {"name": "vae", "hidden": [], "latent_dim": L}, DataInfo((1, 1, D), 256)
        ).config,
        DataInfo((1, 1, D), 256),
    )
    model = model.double()
    model.setup(W, b)
    # exact posterior: mean = M^-1 W^T (x - b), var = s^2 M^-1 with M = W^T W + s^2 I (diagonal)
    m_diag = scales**2 + NOISE**2
    linear = model.encoder.net[0]
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.zero_()
        linear.weight[:L] = (W / m_diag).T
        linear.bias[:L] = -(W / m_diag).T @ b
        linear.bias[L:] = torch.log(NOISE**2 / m_diag)
        if not exact_posterior:  # shifted and too broad
            linear.bias[:L] += 0.4
            linear.bias[L:] += 1.0
    return model, W, b


def exact_log_px(x, W, b):
    cov = W @ W.T + NOISE**2 * torch.eye(D, dtype=torch.float64)
    return torch.distributions.MultivariateNormal(b, cov).log_prob(x.flatten(1))


def data(W, b, n=8):
    g = torch.Generator().manual_seed(1)
    z = torch.randn(n, L, generator=g, dtype=torch.float64)
    return (z @ W.T + b + NOISE * torch.randn(n, D, generator=g, dtype=torch.float64)).view(
        n, 1, 1, D
    )


def test_iwae_is_exact_with_the_true_posterior():
    model, W, b = make_model(exact_posterior=True)
    x = data(W, b)
    est = model.log_likelihood(x, k=5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(est.values, exact_log_px(x, W, b), atol=1e-9, rtol=0)
    assert est.kind == "iwae_bound" and torch.all(est.stderr < 1e-6)


def test_iwae_converges_from_below_with_a_wrong_posterior():
    model, W, b = make_model(exact_posterior=False)
    x = data(W, b)
    exact = exact_log_px(x, W, b)
    g = torch.Generator().manual_seed(0)
    elbo = torch.stack([model.log_likelihood(x, k=1, generator=g).values for _ in range(400)]).mean(
        0
    )
    gaps = []
    for k in (1, 10, 100, 5000):
        runs = torch.stack([model.log_likelihood(x, k=k, generator=g).values for _ in range(40)])
        gaps.append((exact - runs.mean(0)).mean().item())
        sem = runs.std(0) / math.sqrt(runs.shape[0])
        assert torch.all(runs.mean(0) <= exact + 4 * sem + 1e-6), k  # a bound, up to MC noise
    assert torch.all(elbo <= exact)
    assert gaps[0] > 0.1, "the wrong posterior must leave a visible ELBO gap"
    assert gaps == sorted(gaps, reverse=True), gaps  # tighter with more samples
    assert gaps[-1] < 0.01, gaps
    # the IWAE estimate is never below the ELBO (on average)
    k100 = torch.stack(
        [model.log_likelihood(x, k=100, generator=g).values for _ in range(20)]
    ).mean(0)
    assert torch.all(k100 >= elbo)


@pytest.mark.parametrize("chunk", [1, 7, 10_000])
def test_chunking_does_not_change_the_estimate_distribution(chunk, monkeypatch):
    import genlab.models.latent.vae as vae_module

    monkeypatch.setattr(vae_module, "IWAE_CHUNK_ROWS", chunk)
    model, W, b = make_model(exact_posterior=True)
    x = data(W, b)
    est = model.log_likelihood(x, k=50, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(est.values, exact_log_px(x, W, b), atol=1e-9, rtol=0)
