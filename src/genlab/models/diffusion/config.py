"""The diffusion family's settings (``model.*`` of a ``diffusion`` run) and which samplers fit
which objective.

A class-conditional run (``model.conditional: true``) reads two more, for classifier-free
guidance (Ho & Salimans 2022; :mod:`.guidance`):

- ``label_dropout``, in [0, 1): the chance that a training label is replaced by the null label,
  so that one network learns the unconditional model too (their p_uncond; 0.1 to 0.2 in their
  experiments, 0.1 here). 0 trains the conditional model alone, which then cannot be guided.
- ``guidance``, in [0, 20]: the weight w with which ``sample`` and ``sample_with`` draw, the
  prediction being u + w (c - u) (c given the class, u without): 0 the unconditional model, 1
  the conditional one, above 1 further towards the class. Ho & Salimans write it (1 + w') c -
  w' u, so their w' is w - 1 here; their best FID (ImageNet 64x64) came at w' of 0.1 to 0.3,
  their most class-like images at larger w' with less diversity. The default is 1: what
  ``sample`` draws is then the conditional model p(x | y) itself, the distribution whose
  likelihood ``log_likelihood`` reports and whose samples the sample metrics judge; a guided
  sampler draws from no model of its own (the guided prediction is not the score of any
  trained density), so it is asked for explicitly (``model.guidance``, or
  ``sample_guided`` / ``genlab sample --guidance`` at sampling time). Any w but 1 needs the
  unconditional model, so ``label_dropout`` > 0.

An unconditional run ignores both (they may be set; nothing reads them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from genlab.config import ModelConfig, Ranges
from genlab.errors import ConfigError
from genlab.models.diffusion.guidance import MAX_GUIDANCE, check_guidance

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
        "label_dropout": (0.0, 1.0),
        "guidance": (0.0, MAX_GUIDANCE),
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
    # classifier-free guidance of a conditional run (see the module's docstring)
    label_dropout: float = 0.1  # training: chance a label becomes the null label (p_uncond)
    guidance: float = 1.0  # sampling's w in u + w (c - u): 0 unconditional, 1 conditional

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
        if not 0.0 <= self.label_dropout < 1.0:
            raise ConfigError(
                f"model.label_dropout must be in [0, 1) (the chance a training label is "
                f"dropped; 0.1 is Ho & Salimans'), got {self.label_dropout}"
            )
        check_guidance(self.guidance, "model.guidance")
        if self.conditional and self.label_dropout == 0.0 and self.guidance != 1.0:
            raise ConfigError(
                f"model.guidance={self.guidance:g} needs the unconditional model, which "
                "model.label_dropout=0 does not train; set model.label_dropout > 0 (e.g. 0.1) "
                "or model.guidance=1"
            )
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
