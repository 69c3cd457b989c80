"""Samplers, apart from any network (as in k-diffusion): each takes a :class:`Denoiser` (a
diffusion's predictor on its schedule) or a velocity field, network or exact oracle.

Diffusion, on K <= T evenly strided steps S of the schedule (Nichol & Dhariwal 2021, section
4: the respaced process has betas 1 - abar_{S_i} / abar_{S_{i-1}} and the same marginals):

- :func:`ddpm_sample`: ancestral sampling (Ho et al. 2020, algorithm 2), x_{i-1} ~ N(mu~(x_i,
  x0_hat), sigma_i^2 I) with sigma_i^2 = beta~_i (``variance="posterior"``) or beta_i;
- :func:`ddim_sample`: DDIM (Song et al. 2021, eq. 12), x_{i-1} = sqrt(abar_{i-1}) x0_hat +
  sqrt(1 - abar_{i-1} - sigma_i^2) eps_hat + sigma_i z with sigma_i = eta sqrt((1 - abar_{i-1})
  / (1 - abar_i)) sqrt(1 - abar_i / abar_{i-1}); eta = 0 is deterministic, eta = 1 ancestral;
- :func:`ddim_invert`: deterministic DDIM run forwards (Song et al. 2021, section 4.3, eq. 13
  discretised the other way), x_i = sqrt(abar_i) x0_hat(x_{i-1}) + sqrt(1 - abar_i)
  eps_hat(x_{i-1}), from the data (taken at the first step S_0) to noise at S_{K-1}; its
  inverse is :func:`ddim_sample` with eta = 0 from those same steps (:func:`ddim_decode`).

Flow matching (velocity v(x, t), t = 0 data, t = 1 noise): :func:`ode_sample` integrates
dx/dt = v from t = 1 to 0 with Euler or Heun steps (:mod:`.ode`), :func:`ode_invert` from 0
to 1.

Every random draw comes from the caller's generator through :mod:`genlab.noise` (so the same
seed gives the same images); results stay in model space: the family quantises them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from tqdm.auto import tqdm

from genlab import noise
from genlab.models.diffusion import pixels
from genlab.models.diffusion.objectives import Velocity
from genlab.models.diffusion.ode import Method, integrate
from genlab.models.diffusion.schedules import Denoiser

Variance = Literal["posterior", "beta"]


def _start(
    shape: tuple[int, ...], generator: torch.Generator | None, like: torch.Tensor
) -> torch.Tensor:
    return noise.normal(shape, generator, like.dtype).to(like.device)


def _index(i: int, like: torch.Tensor) -> torch.Tensor:
    """Index i of a respaced schedule for each of the batch's images (B,)."""
    return torch.full((like.shape[0],), i, dtype=torch.long, device=like.device)


def _bar(steps: int, desc: str, progress: bool, reverse: bool = True):  # noqa: ANN202
    order = range(steps - 1, -1, -1) if reverse else range(1, steps)
    return tqdm(order, desc=desc, disable=not progress, leave=False)


def ddpm_sample(
    denoiser: Denoiser,
    shape: tuple[int, ...],
    *,
    steps: int,
    variance: Variance,
    generator: torch.Generator | None,
    like: torch.Tensor,
    progress: bool = False,
) -> torch.Tensor:
    """Ancestral sampling on ``steps`` respaced steps; ``like`` gives dtype and device."""
    schedule = denoiser.schedule.respaced(steps)
    x = _start(shape, generator, like)  # x_T ~ N(0, I)
    for i in _bar(steps, "DDPM", progress):
        idx = _index(i, x)
        x0, _ = denoiser.x0_eps(x, schedule.original(idx))
        mean = schedule.at("posterior_coef_x0", idx, x) * x0
        mean = mean + schedule.at("posterior_coef_xt", idx, x) * x
        if i == 0:
            x = mean  # no noise at the last step (Ho et al., algorithm 2)
            break
        name = "posterior_log_variance" if variance == "posterior" else "log_betas"
        std = torch.exp(0.5 * schedule.at(name, idx, x))
        x = mean + std * _start(shape, generator, x)
    return x


def ddim_sample(
    denoiser: Denoiser,
    shape: tuple[int, ...],
    *,
    steps: int,
    eta: float,
    generator: torch.Generator | None,
    like: torch.Tensor,
    progress: bool = False,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """DDIM on ``steps`` respaced steps, from x_T ~ N(0, I) (or from ``start``)."""
    schedule = denoiser.schedule.respaced(steps)
    x = _start(shape, generator, like) if start is None else start
    for i in _bar(steps, "DDIM", progress):
        idx = _index(i, x)
        x0, eps = denoiser.x0_eps(x, schedule.original(idx))
        abar = schedule.at("alpha_bar", idx, x)
        prev = schedule.at("alpha_bar_prev", idx, x)
        sigma = eta * torch.sqrt((1.0 - prev) / (1.0 - abar) * (1.0 - abar / prev))
        direction = torch.sqrt((1.0 - prev - sigma.square()).clamp(min=0.0))
        x = torch.sqrt(prev) * x0 + direction * eps
        if eta > 0 and i > 0:
            x = x + sigma * _start(shape, generator, x)
    return x


def ddim_invert(
    denoiser: Denoiser, z0: torch.Tensor, *, steps: int, progress: bool = False
) -> torch.Tensor:
    """Deterministic DDIM inversion: data (B, ...) in model space -> noise x_{S_{K-1}}."""
    schedule = denoiser.schedule.respaced(steps)
    x = z0
    for i in _bar(steps, "DDIM inversion", progress, reverse=False):
        x0, eps = denoiser.x0_eps(x, schedule.original(_index(i - 1, x)))
        idx = _index(i, x)
        x = schedule.at("sqrt_alpha_bar", idx, x) * x0
        x = x + schedule.at("sqrt_one_minus_alpha_bar", idx, x) * eps
    return x


def ddim_decode(
    denoiser: Denoiser, xT: torch.Tensor, *, steps: int, progress: bool = False
) -> torch.Tensor:
    """The inverse of :func:`ddim_invert`: deterministic DDIM from ``xT`` on the same steps."""
    shape = tuple(xT.shape)
    return ddim_sample(
        denoiser, shape, steps=steps, eta=0.0, generator=None, like=xT, progress=progress, start=xT
    )


def _velocity_field(velocity: Velocity, n: int):  # noqa: ANN202
    def field(t: float, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        x = state[0]
        return (velocity(x, torch.full((n,), t, dtype=x.dtype, device=x.device)),)

    return field


def ode_sample(
    velocity: Velocity,
    shape: tuple[int, ...],
    *,
    steps: int,
    method: Method,
    generator: torch.Generator | None,
    like: torch.Tensor,
    progress: bool = False,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """Flow matching: x_1 ~ N(0, I) (or ``start``), then dx/dt = v(x, t) integrated from
    t = 1 to 0."""
    x = _start(shape, generator, like) if start is None else start
    field = _velocity_field(velocity, shape[0])
    return integrate(field, (x,), 1.0, 0.0, steps, method, progress=progress, desc=method)[0]


def ode_invert(
    velocity: Velocity, z0: torch.Tensor, *, steps: int, method: Method, progress: bool = False
) -> torch.Tensor:
    """Flow matching: data -> noise, dx/dt = v(x, t) integrated from t = 0 to 1."""
    field = _velocity_field(velocity, z0.shape[0])
    return integrate(field, (z0,), 0.0, 1.0, steps, method, progress=progress, desc=method)[0]


def draw_images(
    name: str,
    prediction: Velocity,
    denoiser: Callable[[Velocity], Denoiser],
    shape: tuple[int, ...],
    *,
    steps: int,
    eta: float,
    variance: Literal["posterior", "beta"],
    generator: torch.Generator | None,
    like: torch.Tensor,
    progress: bool,
) -> torch.Tensor:
    """Images (shape) as k / 255 from the network's ``prediction`` by the sampler ``name``:
    ``euler`` or ``heun`` on the flow-matching ODE (quantised by bins), or ``ddpm`` / ``ddim``
    with the :class:`Denoiser` that ``denoiser`` makes of it (quantised on the grid)."""
    if name in ("euler", "heun"):
        method: Method = "euler" if name == "euler" else "heun"
        z = ode_sample(
            prediction,
            shape,
            steps=steps,
            method=method,
            generator=generator,
            like=like,
            progress=progress,
        )
        return pixels.quantise_bins(z)
    if name == "ddpm":
        z = ddpm_sample(
            denoiser(prediction),
            shape,
            steps=steps,
            variance=variance,
            generator=generator,
            like=like,
            progress=progress,
        )
    else:
        z = ddim_sample(
            denoiser(prediction),
            shape,
            steps=steps,
            eta=eta,
            generator=generator,
            like=like,
            progress=progress,
        )
    return pixels.quantise_grid(z)


def network_evaluations(sampler: str, steps: int) -> int:
    """Network evaluations per image of a sampler run of ``steps`` steps."""
    return steps * {"heun": 2, "rk4": 4}.get(sampler, 1)


__all__ = [
    "ddim_decode",
    "ddim_invert",
    "ddim_sample",
    "ddpm_sample",
    "network_evaluations",
    "ode_invert",
    "ode_sample",
]
