"""Oracle tests of the RBM: exact answers by enumeration, against which the free energy, AIS
and Gibbs sampling are checked."""

import itertools
import math

import pytest
import torch
from scipy.stats import chisquare

from genlab.models import DataInfo, build_model
from genlab.models.markov.boltzmann import (
    ais_betas,
    ais_log_partition,
    base_rate_biases,
    exact_log_partition,
    free_energy,
    gibbs_step,
)


def random_rbm(visible, hidden, scale, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(hidden, visible, generator=g) * scale
    b = torch.randn(visible, generator=g) * 0.5
    c = torch.randn(hidden, generator=g) * 0.5
    return w, b, c


def all_states(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)))


def test_free_energy_and_log_z_equal_sums_over_the_joint_states():
    w, b, c = (t.double() for t in random_rbm(6, 5, 1.0))
    v, h = all_states(6).double(), all_states(5).double()
    # -E(v, h) = b.v + c.h + h.W.v for every pair: (64, 32)
    neg_energy = (v @ b).unsqueeze(1) + (h @ c).unsqueeze(0) + v @ w.T @ h.T
    marginal = torch.logsumexp(neg_energy, 1)  # log sum_h exp(-E(v, h))
    assert torch.allclose(-free_energy(v, w, b, c), marginal, atol=1e-12)
    assert exact_log_partition(w, b, c) == pytest.approx(
        torch.logsumexp(neg_energy.flatten(), 0).item(), abs=1e-10
    )


def test_free_energy_gradient_is_the_rbm_sufficient_statistic():
    w, b, c = (t.clone().requires_grad_() for t in random_rbm(7, 4, 0.7))
    v = (torch.rand(5, 7, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    free_energy(v, w, b, c).sum().backward()
    p_h = torch.sigmoid(v @ w.detach().T + c.detach())
    assert torch.allclose(w.grad, -(p_h.T @ v), atol=1e-6)
    assert torch.allclose(b.grad, -v.sum(0)) and torch.allclose(c.grad, -p_h.sum(0), atol=1e-6)


@pytest.mark.parametrize(("visible", "hidden", "scale"), [(20, 10, 1.0), (64, 16, 0.5)])
def test_ais_agrees_with_exact_log_z_within_its_error(visible, hidden, scale):
    w, b, c = random_rbm(visible, hidden, scale)
    exact = exact_log_partition(w, b, c)
    g = torch.Generator().manual_seed(2)
    data = (torch.rand(500, visible, generator=g) < torch.sigmoid(b)).float()
    est = ais_log_partition(w, b, c, base_rate_biases(data), betas=2000, runs=200, generator=g)
    assert math.isfinite(est.stderr) and est.stderr < 0.1
    assert abs(est.log_z - exact) < 3 * est.stderr + 0.02, (est.log_z, exact, est.stderr)


def test_ais_with_few_temperatures_underestimates_a_hard_partition_function():
    """Too short an annealing schedule gives a log Z biased low (E[log Z_hat] <= log Z)."""
    w, b, c = random_rbm(30, 12, 2.0)
    exact = exact_log_partition(w, b, c)
    g = torch.Generator().manual_seed(3)
    est = ais_log_partition(w, b, c, torch.zeros(30), betas=10, runs=50, generator=g)
    assert est.log_z < exact - 0.5


def test_the_base_model_alone_is_exact():
    """With W = 0 the target equals the base model, so every weight is exactly 1."""
    w, b, c = torch.zeros(6, 9), torch.randn(9), torch.zeros(6)
    est = ais_log_partition(w, b, c, b, betas=50, runs=10, generator=torch.Generator())
    assert est.log_z == pytest.approx(exact_log_partition(w, b, c), abs=1e-9)
    assert est.log_weight_std == pytest.approx(0.0, abs=1e-9)


def test_ais_schedule_is_increasing_from_zero_to_one():
    betas = ais_betas(1450)
    assert betas.numel() == 1451 and betas[0] == 0 and betas[-1] == 1
    assert bool((betas.diff() > 0).all())
    assert (betas < 0.5).sum() == 50 and ((betas >= 0.9) & (betas < 1)).sum() == 1000


def test_gibbs_sampling_matches_the_exact_distribution():
    w, b, c = random_rbm(4, 3, 1.5, seed=4)
    states = all_states(4)
    log_p = -free_energy(states, w, b, c).double()
    exact = torch.softmax(log_p, 0)
    g = torch.Generator().manual_seed(5)
    v = (torch.rand(20000, 4, generator=g) < 0.5).float()
    for _ in range(100):
        v, _ = gibbs_step(v, w, b, c, g)
    index = (v * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(1).long()
    observed = torch.bincount(index, minlength=16).double()
    assert chisquare(observed.numpy(), (exact * 20000).numpy()).pvalue > 1e-3
    # the test has power: the same samples reject the uniform distribution
    assert chisquare(observed.numpy(), torch.full((16,), 1250.0).numpy()).pvalue < 1e-6


def test_rbm_model_nll_by_free_energy_and_exact_log_z_normalises():
    """p(x) = exp(-F(x)) / Z sums to one over all binary 2x3 images."""
    model = build_model({"name": "rbm", "hidden": 5, "init_std": 1.0}, DataInfo((1, 2, 3), 2))
    images = all_states(6).view(-1, 1, 2, 3)
    with torch.no_grad():
        log_z = exact_log_partition(*model.params())
        total = torch.logsumexp(-model.free_energy(images).double() - log_z, 0)
    assert total.item() == pytest.approx(0.0, abs=1e-5)


def test_rbm_refuses_grey_levels():
    from genlab.errors import ConfigError

    with pytest.raises(ConfigError, match="data.binarize"):
        build_model({"name": "rbm"}, DataInfo((1, 8, 8), 256))
