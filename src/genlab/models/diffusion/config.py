"""The diffusion family's settings (``model.*`` of a ``diffusion`` run) and which samplers fit
which objective."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from genlab.config import ModelConfig, Ranges
from genlab.errors import ConfigError

SAMPLERS = {"ddpm": ("ddpm", "ddim"), "flow_matching": ("euler", "heun")}
DEFAULT_SAMPLER = {"ddpm": "ddim", "flow_matching": "heun"}
Sampler = Literal["auto", "ddpm", "ddim", "euler", "heun"]


@dataclass(frozen=True)
class DiffusionConfig(ModelConfig):
    RANGES: ClassVar[Ranges] = {
        "timesteps": (2, 100_000),
        "channels": (1, 4096),
        "channel_mults": (1, 64),
        "blocks": (1, 64),
        "sample_steps": (1, 100_000),
        "eta": (0.0, 1.0),
        "probes": (1, 10_000),
        "ode_steps": (1, 100_000),
    }
    objective: Literal["ddpm", "flow_matching"] = "ddpm"
    prediction: Literal["eps", "x0", "v"] = "eps"  # ddpm's output; flow matching: the velocity
    schedule: Literal["linear", "cosine"] = "linear"  # ddpm's betas (Ho et al.; Nichol-Dhariwal)
    timesteps: int = 1000  # ddpm's T
    variance: Literal["posterior", "beta"] = "posterior"  # ddpm's reverse variance: beta~ or beta
    channels: int = 32  # U-Net width at full resolution
    channel_mults: tuple[int, ...] = (1, 2, 2)  # width multiple per resolution level
    blocks: int = 2  # residual blocks per level (the upward path has one more)
    attention: bool = True  # self-attention at the lowest resolution
    sampler: Sampler = "auto"  # auto: ddim for ddpm, heun for flow matching
    sample_steps: int = 50  # steps of sample() (network evaluations: twice that for heun)
    eta: float = 0.0  # DDIM's eta: 0 deterministic, 1 ancestral
    probes: int = 1  # Hutchinson probes per ODE likelihood solve
    probe: Literal["rademacher", "gaussian", "exact"] = "rademacher"  # exact: D passes, tiny D
    ode_solver: Literal["heun", "rk4"] = "rk4"  # the likelihood's ODE solver
    ode_steps: int = 32  # its steps (network evaluations: 2 or 4 per step, times probes' VJPs)

    def __post_init__(self) -> None:
        for key in ("channels", "blocks", "sample_steps", "probes", "ode_steps"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if self.timesteps < 2:
            raise ConfigError(f"model.timesteps must be >= 2, got {self.timesteps}")
        if not self.channel_mults or min(self.channel_mults) < 1:
            raise ConfigError(
                f"model.channel_mults must be a non-empty list of integers >= 1, got "
                f"{list(self.channel_mults)}"
            )
        if not 0.0 <= self.eta <= 1.0:
            raise ConfigError(f"model.eta must be in [0, 1], got {self.eta}")
        check_sampler(self.objective, self.sampler)
        if self.objective == "ddpm" and self.sample_steps > self.timesteps:
            raise ConfigError(
                f"model.sample_steps={self.sample_steps} exceeds model.timesteps="
                f"{self.timesteps}; a diffusion samples on at most its T steps"
            )

    @property
    def resolved_sampler(self) -> str:
        return DEFAULT_SAMPLER[self.objective] if self.sampler == "auto" else self.sampler


def check_sampler(objective: str, sampler: str) -> None:
    valid = SAMPLERS[objective]
    if sampler != "auto" and sampler not in valid:
        raise ConfigError(
            f"the {sampler} sampler does not fit objective {objective}; valid samplers for "
            f"{objective}: {', '.join(valid)} (or auto)"
        )
