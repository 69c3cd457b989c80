"""The forward (noising) process of a discrete-time diffusion model, in closed form.

Ho et al. 2020 (DDPM), with q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I):

- eq. 4, the marginal: q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I), with
  alpha_t = 1 - beta_t and abar_t = prod_{s <= t} alpha_s (:func:`q_sample`);
- eqs. 6-7, the posterior: q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I) with
  mu~_t = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0 + sqrt(alpha_t) (1 - abar_{t-1}) /
  (1 - abar_t) x_t and beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t (:func:`q_posterior`).

Schedules: ``linear`` (Ho et al. 2020: beta from 1e-4 to 0.02 over T = 1000 steps; for other T
both ends scale by 1000 / T, as Nichol & Dhariwal 2021 do, so abar_T stays near exp(-10)) and
``cosine`` (Nichol & Dhariwal 2021, eq. 17: abar_t = f(t) / f(0), f(t) = cos((t / T + s) /
(1 + s) pi / 2)^2 with s = 0.008); both clip betas at 0.999, so abar_T > 0.

Arrays are 0-indexed: index i holds the paper's step t = i + 1 (abar at index 0 is abar_1).
Everything is computed in float64 once; :meth:`NoiseSchedule.at` hands out the coefficients of
given steps in the dtype and on the device of the tensor they multiply (cached per device), so
a schedule is no state of the model and works on any device.

Parametrisations of a network's output (Salimans & Ho 2022, section 4 and appendix D), with
a_t = sqrt(abar_t) and s_t = sqrt(1 - abar_t), x_t = a_t x_0 + s_t eps:
eps; x_0; and v = a_t eps - s_t x_0, from which x_0 = a_t x_t - s_t v and eps = s_t x_t + a_t v.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

ScheduleKind = Literal["linear", "cosine"]
Prediction = Literal["eps", "x0", "v"]
COSINE_OFFSET = 0.008  # s of Nichol & Dhariwal 2021, eq. 17
MAX_BETA = 0.999  # Nichol & Dhariwal clip the cosine betas here; the linear too


def linear_betas(timesteps: int) -> np.ndarray:
    """Ho et al. 2020's betas, linear from 1e-4 to 0.02 at T = 1000, scaled by 1000 / T and
    clipped at 0.999 (which T <= 20 reaches)."""
    scale = 1000.0 / timesteps
    betas = np.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=np.float64)
    return np.clip(betas, 0.0, MAX_BETA)


def cosine_betas(timesteps: int, s: float = COSINE_OFFSET) -> np.ndarray:
    """Nichol & Dhariwal 2021, eq. 17: beta_t = 1 - abar_t / abar_{t-1}, clipped at 0.999."""
    steps = np.arange(timesteps + 1, dtype=np.float64) / timesteps
    f = np.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    return np.clip(1.0 - abar[1:] / abar[:-1], 0.0, MAX_BETA)


@dataclass(frozen=True)
class NoiseSchedule:
    """The coefficients of a diffusion's steps, from abar (float64, one value per step).

    ``timesteps[i]`` is the step of the original T-step schedule that index i stands for:
    ``arange(T)`` for a schedule itself, a strided subsequence for a respaced one (Nichol &
    Dhariwal 2021, section 4: the betas of a subsequence S are 1 - abar_{S_i} / abar_{S_{i-1}},
    so its marginals q(x_t | x_0) are those of the original steps)."""

    alpha_bar: np.ndarray  # (K,) float64, decreasing in (0, 1)
    timesteps: np.ndarray  # (K,) int64: the original step each index stands for
    tables: dict[str, np.ndarray] = field(init=False, repr=False, compare=False)
    _cache: dict[tuple[str, str, torch.dtype], torch.Tensor] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        abar = np.asarray(self.alpha_bar, dtype=np.float64)
        prev = np.concatenate([[1.0], abar[:-1]])
        betas = 1.0 - abar / prev
        alphas = 1.0 - betas
        variance = betas * (1.0 - prev) / (1.0 - abar)  # beta~_t (eq. 7); 0 at the first step
        # log beta~ with its first value (0) replaced by the second's (Nichol & Dhariwal 2021)
        clipped = np.concatenate([variance[1:2], variance[1:]]) if len(abar) > 1 else betas
        tables = {
            "betas": betas,
            "log_betas": np.log(betas),
            "alpha_bar": abar,
            "alpha_bar_prev": prev,
            "sqrt_alpha_bar": np.sqrt(abar),
            "sqrt_one_minus_alpha_bar": np.sqrt(1.0 - abar),
            "posterior_variance": variance,
            "posterior_log_variance": np.log(clipped),
            "posterior_coef_x0": betas * np.sqrt(prev) / (1.0 - abar),
            "posterior_coef_xt": (1.0 - prev) * np.sqrt(alphas) / (1.0 - abar),
            "timesteps": np.asarray(self.timesteps, dtype=np.float64),  # exact below 2^53
        }
        object.__setattr__(self, "tables", tables)

    @classmethod
    def make(cls, kind: ScheduleKind, timesteps: int) -> NoiseSchedule:
        """The ``linear`` or ``cosine`` schedule of ``timesteps`` steps."""
        betas = {"linear": linear_betas, "cosine": cosine_betas}[kind](timesteps)
        return cls.from_betas(betas)

    @classmethod
    def from_betas(cls, betas: np.ndarray) -> NoiseSchedule:
        abar = np.cumprod(1.0 - np.asarray(betas, dtype=np.float64))
        return cls(abar, np.arange(len(abar), dtype=np.int64))

    @property
    def num_steps(self) -> int:
        return len(self.alpha_bar)

    def respaced(self, steps: int) -> NoiseSchedule:
        """The schedule on ``steps`` (<= T) evenly strided steps that include the first and
        the last (one step: the last alone), for sampling in fewer steps."""
        timesteps = strided_steps(self.num_steps, steps)
        return NoiseSchedule(self.alpha_bar[timesteps], self.timesteps[timesteps])

    def table(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """The whole table ``name`` (K,) in ``like``'s dtype, on its device (cached)."""
        key = (name, str(like.device), like.dtype)
        if key not in self._cache:
            values = torch.from_numpy(self.tables[name])
            self._cache[key] = values.to(like.dtype).to(like.device)
        return self._cache[key]

    def at(self, name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Table ``name`` at indices t (B,), shaped (B, 1, ..., 1) to broadcast with ``like``."""
        values = self.table(name, like)[t]
        return values.reshape(-1, *([1] * (like.dim() - 1)))

    def original(self, t: torch.Tensor) -> torch.Tensor:
        """The original steps (B,) that indices t (B,) stand for, on t's device."""
        return self.table("timesteps", t)[t]


def strided_steps(total: int, steps: int) -> np.ndarray:
    """``steps`` indices of 0..total-1, evenly strided, first and last included (one: last)."""
    if not 1 <= steps <= total:
        raise ValueError(f"cannot take {steps} steps out of {total}")
    if steps == 1:
        return np.array([total - 1], dtype=np.int64)
    # floor(x + 1/2) is strictly increasing on points at least 1 apart (round() is not)
    return np.floor(np.linspace(0, total - 1, steps) + 0.5).astype(np.int64)


def q_sample(
    schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, a draw of q(x_t | x_0) (Ho et al. eq. 4)."""
    a = schedule.at("sqrt_alpha_bar", t, x0)
    s = schedule.at("sqrt_one_minus_alpha_bar", t, x0)
    return a * x0 + s * eps


def q_posterior(
    schedule: NoiseSchedule, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (B, ...) and variance (B, 1, ..., 1) of q(x_{t-1} | x_t, x_0) (Ho et al. eqs. 6-7);
    at the first step (t = 0) the mean is x_0 and the variance 0."""
    mean = (
        schedule.at("posterior_coef_x0", t, x0) * x0 + schedule.at("posterior_coef_xt", t, x0) * xt
    )
    return mean, schedule.at("posterior_variance", t, x0)


def v_target(
    schedule: NoiseSchedule, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0 (Salimans & Ho 2022, section 4)."""
    a = schedule.at("sqrt_alpha_bar", t, x0)
    s = schedule.at("sqrt_one_minus_alpha_bar", t, x0)
    return a * eps - s * x0


def to_x0_eps(
    schedule: NoiseSchedule,
    prediction: Prediction,
    output: torch.Tensor,
    xt: torch.Tensor,
    t: torch.Tensor,
    *,
    clip: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_0, eps) implied by a network ``output`` of kind ``prediction`` at x_t, step t. With
    ``clip`` x_0 is clamped to the data range [-1, 1] and eps recomputed from it (Ho et al.'s
    sampler clips its x_0 estimate)."""
    a = schedule.at("sqrt_alpha_bar", t, xt)
    s = schedule.at("sqrt_one_minus_alpha_bar", t, xt)
    if prediction == "eps":
        x0, eps = (xt - s * output) / a, output
    elif prediction == "x0":
        x0, eps = output, (xt - a * output) / s
    elif prediction == "v":
        x0, eps = a * xt - s * output, s * xt + a * output
    else:
        raise ValueError(f"unknown prediction {prediction!r}")
    if clip:
        x0 = x0.clamp(-1.0, 1.0)
        eps = (xt - a * x0) / s
    return x0, eps


def target_of(
    schedule: NoiseSchedule,
    prediction: Prediction,
    x0: torch.Tensor,
    eps: torch.Tensor,
    t: torch.Tensor,
) -> torch.Tensor:
    """What a network of kind ``prediction`` is trained to output at (x_0, eps, t)."""
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return x0
    return v_target(schedule, x0, eps, t)


# a network (or an exact oracle) as samplers and the bound call it: x_t (B, ...) and original
# steps t (B,) -> its output, of the kind its Denoiser says
Predict = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Denoiser:
    """A predictor of ``prediction`` kind on the steps of ``schedule``, and whether its x_0
    estimate is clipped to [-1, 1] (for images; not for an oracle on unbounded data)."""

    predict: Predict
    prediction: Prediction
    schedule: NoiseSchedule
    clip: bool = False

    def x0_eps(self, xt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_0, eps) estimates (B, ...) at x_t, original steps t (B,)."""
        output = self.predict(xt, t)
        return to_x0_eps(self.schedule, self.prediction, output, xt, t, clip=self.clip)
