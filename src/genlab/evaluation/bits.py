"""Bits per dimension: the one place where nats become bits/dim."""

from __future__ import annotations

import math


def bits_per_dim(
    nll_nats: float, num_dims: int, *, continuous_density_levels: int | None = None
) -> float:
    """``nll_nats / (D ln 2)``.

    Discrete likelihoods (Bernoulli, discretised logistic, categorical-256) give the
    probability of the observed pixel values directly and need no correction. A continuous
    density fitted to 8-bit data rescaled to [0, 1] (``continuous_density_levels=256``) is
    turned into a discrete one by uniform dequantisation, which adds ``D ln(levels)`` nats
    (Theis et al. 2016): NLL_discrete <= NLL_continuous + D ln 256.
    """
    if num_dims < 1:
        raise ValueError(f"num_dims must be positive, got {num_dims}")
    correction = (
        num_dims * math.log(continuous_density_levels) if continuous_density_levels else 0.0
    )
    return (nll_nats + correction) / (num_dims * math.log(2.0))
