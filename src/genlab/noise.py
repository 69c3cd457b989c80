"""The one convention for random draws: noise is drawn on its generator's device.

A model's noise generator lives on the device the model computes on, and every draw passes
``device=generator.device``. On the CPU this is exactly ``torch.rand(shape, generator=g)``,
so CPU results are bitwise what they always were; on a GPU a CUDA generator draws on the GPU
(Philox), so a run is reproducible on the same kind of device with the same seed. Results on
a CPU and on a GPU differ: they use different random number generators.
"""

from __future__ import annotations

import torch


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on ``device`` seeded with ``seed``."""
    return torch.Generator(device=device).manual_seed(seed)


def _device(g: torch.Generator | None) -> torch.device | None:
    return None if g is None else g.device


def uniform(
    shape: tuple[int, ...] | torch.Size,
    generator: torch.Generator | None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """U[0, 1) draws on the generator's device."""
    return torch.rand(shape, generator=generator, dtype=dtype, device=_device(generator))


def normal(
    shape: tuple[int, ...] | torch.Size,
    generator: torch.Generator | None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal draws on the generator's device."""
    return torch.randn(shape, generator=generator, dtype=dtype, device=_device(generator))


def integers(
    high: int, shape: tuple[int, ...] | torch.Size, generator: torch.Generator | None
) -> torch.Tensor:
    """Integers uniform on 0..high-1 (int64) on the generator's device."""
    return torch.randint(high, tuple(shape), generator=generator, device=_device(generator))


def permutation(n: int, generator: torch.Generator | None) -> torch.Tensor:
    """A random permutation of 0..n-1 on the generator's device."""
    return torch.randperm(n, generator=generator, device=_device(generator))


def bernoulli(p: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """0/1 draws with probabilities ``p`` (same dtype), via ``u < p``."""
    return (uniform(p.shape, generator, p.dtype) < p).to(p.dtype)
