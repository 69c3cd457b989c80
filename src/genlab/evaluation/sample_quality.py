"""Distances between two sets of feature vectors: the sample-quality metrics.

All functions take feature matrices ``real`` (N, F) and ``fake`` (M, F) and compute in float64
on their device.

- Fréchet distance (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule"): the
  2-Wasserstein distance between Gaussians fitted to the two sets,
  ``|mu_r - mu_f|^2 + tr(S_r + S_f - 2 (S_r S_f)^(1/2))``.
- Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs"): the unbiased
  estimate of MMD^2 with the polynomial kernel ``k(x, y) = (x.y / F + 1)^3``, averaged over
  random subsets, with its standard deviation over those subsets.
- Precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for
  Assessing Generative Models"): each set's manifold is the union of balls around its points
  with radius the distance to the k-th nearest neighbour within the set; precision is the
  fraction of fake points inside the real manifold, recall the fraction of real points inside
  the fake manifold.
- Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
  Generative Models"): density counts, per fake point, the real balls containing it (divided by
  k); coverage is the fraction of real balls that contain at least one fake point.
"""

from __future__ import annotations

import torch

from genlab import noise

DISTANCE_CHUNK = 2048  # rows per block of pairwise distances (keeps memory at O(chunk * N))


def _as_double(features: torch.Tensor) -> torch.Tensor:
    if features.dim() != 2:
        raise ValueError(f"features must be (N, F), got shape {tuple(features.shape)}")
    return features.detach().to(torch.float64)


def _sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix by eigendecomposition."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (each needs >= 2 rows).

    ``tr((S_r S_f)^(1/2))`` is computed as the sum of the square roots of the eigenvalues of
    the symmetric matrix ``S_r^(1/2) S_f S_r^(1/2)``, which has the same spectrum.
    """
    a, b = _as_double(real), _as_double(fake)
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("the Fréchet distance needs at least two feature vectors per set")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)
    root_a = _sqrtm_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    middle = (middle + middle.T) / 2  # symmetric up to rounding
    trace_root = torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()
    value = (mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * trace_root
    return float(value.clamp(min=0))


def _polynomial_mmd2_unbiased(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    dim = a.shape[1]
    k_aa = (a @ a.T / dim + 1) ** 3  # (m, m)
    k_bb = (b @ b.T / dim + 1) ** 3
    k_ab = (a @ b.T / dim + 1) ** 3
    m, n = a.shape[0], b.shape[0]
    sum_aa = (k_aa.sum() - k_aa.diagonal().sum()) / (m * (m - 1))
    sum_bb = (k_bb.sum() - k_bb.diagonal().sum()) / (n * (n - 1))
    return sum_aa + sum_bb - 2 * k_ab.mean()


def kernel_inception_distance(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    generator: torch.Generator | None = None,
) -> tuple[float, float | None]:
    """(mean, standard deviation) over ``subsets`` random subsets of the unbiased MMD^2 with a
    cubic polynomial kernel. Each subset draws ``min(subset_size, N, M)`` points from each set
    without replacement, chosen with ``generator`` on its device (pass a CPU generator for
    the same subsets whatever the features' device). When that takes the whole of both sets,
    every subset would be the same: one value, and no standard deviation (None)."""
    a, b = _as_double(real), _as_double(fake)
    size = min(subset_size, a.shape[0], b.shape[0])
    if size < 2:
        raise ValueError("KID needs at least two feature vectors per set")
    if size == a.shape[0] == b.shape[0]:
        return _polynomial_mmd2_unbiased(a, b).item(), None
    values = []
    for _ in range(subsets):
        ia = noise.permutation(a.shape[0], generator)[:size].to(a.device)
        ib = noise.permutation(b.shape[0], generator)[:size].to(b.device)
        values.append(_polynomial_mmd2_unbiased(a[ia], b[ib]))
    stacked = torch.stack(values)
    std = stacked.std().item() if subsets > 1 else 0.0
    return stacked.mean().item(), std


def knn_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """(N,) distance from each point to its k-th nearest neighbour in the same set (not itself)."""
    x = _as_double(features)
    if not 1 <= k < x.shape[0]:
        raise ValueError(f"k must be in [1, {x.shape[0] - 1}] for {x.shape[0]} points, got {k}")
    radii = []
    for start in range(0, x.shape[0], DISTANCE_CHUNK):
        block = torch.cdist(x[start : start + DISTANCE_CHUNK], x)  # (chunk, N)
        # the k+1 smallest include the point itself at distance 0
        radii.append(block.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(radii)


def _ball_counts(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """(P, C) boolean: is point p inside the ball around centre c? Computed in row chunks."""
    inside = []
    for start in range(0, points.shape[0], DISTANCE_CHUNK):
        block = torch.cdist(points[start : start + DISTANCE_CHUNK], centres)  # (chunk, C)
        inside.append(block <= radii.unsqueeze(0))
    return torch.cat(inside)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, *, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall with k-NN manifolds (Kynkäänniemi et al. 2019)."""
    a, b = _as_double(real), _as_double(fake)
    real_in_fake = _ball_counts(a, b, knn_radii(b, k)).any(dim=1)
    fake_in_real = _ball_counts(b, a, knn_radii(a, k)).any(dim=1)
    return fake_in_real.double().mean().item(), real_in_fake.double().mean().item()


def density_coverage(real: torch.Tensor, fake: torch.Tensor, *, k: int = 5) -> tuple[float, float]:
    """Density and coverage around the real points' k-NN balls (Naeem et al. 2020)."""
    a, b = _as_double(real), _as_double(fake)
    inside = _ball_counts(b, a, knn_radii(a, k))  # (M fake, N real)
    density = inside.sum().item() / (k * b.shape[0])
    coverage = inside.any(dim=0).double().mean().item()
    return density, coverage
