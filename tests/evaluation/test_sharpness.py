"""Oracles for the sharpness metric: exact energies of known images, blur lowers sharpness
monotonically, and real against real is 1 within its standard error."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genlab.config import DataConfig
from genlab.data import load_data
from genlab.evaluation.sharpness import laplacian_energy, relative_sharpness


def _gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = (k / k.sum()).to(images.dtype)
    c = images.shape[1]
    out = F.conv2d(images, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, radius), groups=c)
    return F.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(radius, 0), groups=c)


@pytest.fixture(scope="module")
def real() -> torch.Tensor:
    data = load_data(DataConfig(name="digits", binarize="none"), progress=False)
    return data.tensor("train")  # (N, 1, 8, 8) grey levels in [0, 1]


def test_exact_energies():
    flat = torch.full((2, 1, 5, 5), 0.7)
    assert laplacian_energy(flat).tolist() == [0.0, 0.0]
    i, j = torch.meshgrid(torch.arange(6), torch.arange(6), indexing="ij")
    board = ((i + j) % 2).double().view(1, 1, 6, 6)  # every interior Laplacian is +-4
    assert laplacian_energy(board).item() == 16.0
    ramp = torch.arange(7, dtype=torch.float64).view(1, 1, 1, 7).expand(1, 1, 7, 7) / 6
    assert laplacian_energy(ramp).item() == pytest.approx(0.0, abs=1e-24)  # linear: no curvature
    two = torch.cat([board, board.expand(1, 3, 6, 6)[:, :1] * 0.5])
    assert laplacian_energy(two).tolist() == [16.0, 4.0]


def test_blur_lowers_sharpness_monotonically(real):
    scores = [relative_sharpness(real, real)[0]]
    for sigma in (0.4, 0.7, 1.0, 1.5):
        scores.append(relative_sharpness(_gaussian_blur(real, sigma), real)[0])
    assert scores[0] == 1.0
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False)), scores
    assert scores[-1] < 0.3


def test_real_against_real_is_one_within_its_error(real):
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(real.shape[0], generator=generator)
    half = real.shape[0] // 2
    ratio, stderr = relative_sharpness(real[order[:half]], real[order[half:]])
    assert abs(ratio - 1.0) < 3 * stderr
    assert 0 < stderr < 0.1


def test_pixel_noise_is_sharper_than_real(real):
    generator = torch.Generator().manual_seed(1)
    noise = torch.rand(real.shape, generator=generator, dtype=real.dtype)
    assert relative_sharpness(noise, real)[0] > 1.5
