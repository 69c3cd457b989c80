"""Training objectives, on data z in model space (B, C, H, W) (see :mod:`.pixels`).

- :func:`ddpm_loss`: the "simple" loss of Ho et al. 2020 (eq. 14), E_{t, x_0, eps} ||target -
  net(x_t, t)||^2 with t uniform on the T steps and x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t)
  eps; the target is eps (Ho et al.), x_0, or v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0
  (Salimans & Ho 2022). A mean over pixels and images, unweighted across t: not the bound.
- :func:`flow_matching_loss`: conditional flow matching on the straight path between data and
  noise (Lipman et al. 2023, with sigma_min = 0; rectified flow, Liu et al. 2023), in the
  diffusion convention t = 0 data, t = 1 noise (as Esser et al. 2024 write it): x_t = (1 - t)
  x_0 + t eps, t ~ U[0, 1], and the network regresses the conditional velocity dx_t / dt =
  eps - x_0; E ||eps - x_0 - v(x_t, t)||^2 over pixels and images.

Random draws come from the caller's generator in a fixed order (t, then eps), so a loss is a
function of the generator's state.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from genlab import noise
from genlab.models.diffusion.schedules import NoiseSchedule, Prediction, q_sample, target_of

# a velocity network (or an exact field): x_t (B, ...) and times t in [0, 1] (B,) -> (B, ...)
Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def ddpm_loss(
    predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    schedule: NoiseSchedule,
    prediction: Prediction,
    z0: torch.Tensor,
    generator: torch.Generator | None,
) -> dict[str, torch.Tensor]:
    """Ho et al.'s simple loss on ``prediction``; ``predict(x_t, t)`` takes steps t (B,)."""
    t = noise.integers(schedule.num_steps, (z0.shape[0],), generator).to(z0.device)  # (B,)
    eps = noise.normal(z0.shape, generator, z0.dtype).to(z0.device)  # (B, C, H, W)
    xt = q_sample(schedule, z0, t, eps)
    target = target_of(schedule, prediction, z0, eps, t)
    mse = (predict(xt, t) - target).square().mean()
    return {"loss": mse, f"mse_{prediction}": mse.detach()}


def flow_matching_loss(
    velocity: Velocity, z0: torch.Tensor, generator: torch.Generator | None
) -> dict[str, torch.Tensor]:
    """Conditional flow matching on x_t = (1 - t) x_0 + t eps with target eps - x_0."""
    t = noise.uniform((z0.shape[0],), generator, z0.dtype).to(z0.device)  # (B,)
    eps = noise.normal(z0.shape, generator, z0.dtype).to(z0.device)  # (B, C, H, W)
    tt = t.reshape(-1, *([1] * (z0.dim() - 1)))
    xt = (1.0 - tt) * z0 + tt * eps
    mse = (velocity(xt, t) - (eps - z0)).square().mean()
    return {"loss": mse, "mse_velocity": mse.detach()}
