"""Oracle tests of the sample-quality metrics on feature vectors."""

import numpy as np
import pytest
import scipy.linalg
import torch

from genlab.evaluation.sample_quality import (
    density_coverage,
    frechet_distance,
    kernel_inception_distance,
    knn_radii,
    precision_recall,
)


def features(n: int, dim: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(dim, dim, generator=g, dtype=torch.float64) / dim**0.5
    return (torch.randn(n, dim, generator=g, dtype=torch.float64) @ mixing) * scale + shift


def two_samples(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent samples of one correlated Gaussian."""
    both = features(2 * n, dim, seed)
    return both[:n], both[n:]


def scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root.real))


def test_frechet_distance_of_a_set_with_itself_is_zero():
    x = features(500, 16, 0)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("dim", [2, 8, 32])
def test_frechet_distance_is_symmetric_and_matches_scipy(dim):
    a, b = features(400, dim, 1), features(300, dim, 2, shift=0.3, scale=1.7)
    ab, ba = frechet_distance(a, b), frechet_distance(b, a)
    assert ab == pytest.approx(ba, abs=1e-6)
    assert ab == pytest.approx(scipy_frechet(a.numpy(), b.numpy()), abs=1e-6)
    assert ab > 0.1


def test_frechet_distance_of_shifted_copy_is_the_squared_shift():
    a = features(200, 4, 3)
    assert frechet_distance(a, a + 2.0) == pytest.approx(4 * 4.0, abs=1e-8)


def test_kid_is_unbiased_for_two_samples_of_one_distribution():
    estimates = []
    for seed in range(60):
        a, b = two_samples(100, 8, seed)
        mean, _ = kernel_inception_distance(a, b, subsets=1, subset_size=100)
        estimates.append(mean)
    estimates = np.array(estimates)
    sem = estimates.std(ddof=1) / np.sqrt(len(estimates))
    assert abs(estimates.mean()) < 3 * sem
    # a biased (V-statistic) estimate would sit well above zero; the unbiased one goes negative
    assert (estimates < 0).any()


def test_kid_separates_different_distributions_and_reports_spread():
    a, b = features(600, 8, 5), features(600, 8, 6, shift=1.0)
    mean, std = kernel_inception_distance(
        a, b, subsets=20, subset_size=200, generator=torch.Generator().manual_seed(0)
    )
    assert mean > 10 * std > 0


def test_kid_of_whole_sets_has_one_value_and_no_spread():
    """Subsets as large as both sets are the sets themselves: reporting a spread over them
    would claim a precision ("± 0.0000") that no resampling measured."""
    a, b = features(50, 8, 5), features(50, 8, 6, shift=1.0)
    mean, std = kernel_inception_distance(a, b, subsets=20, subset_size=1000)
    assert std is None
    again, _ = kernel_inception_distance(a, b, subsets=1, subset_size=50)
    assert mean == pytest.approx(again)
    _, spread = kernel_inception_distance(
        a,
        features(80, 8, 6),
        subsets=20,
        subset_size=50,
        generator=torch.Generator().manual_seed(0),
    )
    assert spread is not None and spread > 0  # the larger set's subsets differ


def test_precision_and_recall_of_a_set_against_itself_are_one():
    x = features(300, 6, 7)
    assert precision_recall(x, x, k=3) == (1.0, 1.0)
    assert density_coverage(x, x, k=5)[1] == 1.0


def test_precision_and_recall_of_disjoint_far_apart_sets_are_zero():
    a, b = features(200, 6, 8), features(200, 6, 9, shift=100.0)
    assert precision_recall(a, b, k=3) == (0.0, 0.0)
    assert density_coverage(a, b, k=5) == (0.0, 0.0)


def test_precision_without_recall_for_a_collapsed_generator():
    real = features(400, 4, 10)
    collapsed = real[:1].repeat(50, 1) + 1e-6 * features(50, 4, 11)  # one real mode, repeated
    precision, recall = precision_recall(real, collapsed, k=3)
    assert precision == 1.0 and recall < 0.05


def test_density_of_a_second_sample_is_about_one():
    real, fake = two_samples(2000, 4, 12)
    density, coverage = density_coverage(real, fake, k=5)
    assert 0.8 < density < 1.2 and coverage > 0.9


def test_knn_radii_match_a_brute_force_computation():
    x = features(50, 3, 13)
    distances = torch.cdist(x, x)
    expected = distances.sort(dim=1).values[:, 3]
    assert torch.allclose(knn_radii(x, 3), expected)
    with pytest.raises(ValueError, match="k must be"):
        knn_radii(x, 50)
