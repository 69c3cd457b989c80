"""Restricted Boltzmann machine (Bernoulli–Bernoulli) for binarised images.

Trained by contrastive divergence (CD-k, Hinton 2002) or persistent CD (PCD, Tieleman 2008)
through the shared Trainer: the loss whose gradient is the CD update is the free-energy gap
``mean F(v_data) - mean F(v_model)``, where v_model comes from k Gibbs sweeps started at the
data (CD) or at persistent chains (PCD, a buffer, so checkpoints hold it and resume is
bitwise exact). The value the Trainer logs and validates as ``loss`` is the pseudo-negative
log-likelihood (Besag 1975; one random pixel per image, times V), a consistent proxy that is
comparable between epochs and between training and validation; the CD gradient is attached to
it, so the optimiser sees the CD update. The likelihood itself needs log Z, estimated by AIS at
evaluation (:func:`genlab.models.markov.boltzmann.ais_log_partition`).
Samples come from Gibbs chains.
Grey-level data are not supported (a Gaussian–Bernoulli RBM is not part of genlab).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from genlab import noise
from genlab.config import ModelConfig, Ranges
from genlab.errors import ConfigError
from genlab.models.base import DataInfo, GenerativeModel
from genlab.models.common.checks import require_binary
from genlab.models.declarations import BINARISED, TinyConfig, Traits, ZooEntry
from genlab.models.markov.boltzmann import (
    AisEstimate,
    ais_log_partition,
    base_rate_biases,
    base_rate_from_counts,
    bernoulli,
    free_energy,
    gibbs_step,
)
from genlab.models.markov.chain import run_chain
from genlab.models.registry import MODELS

ZOO_EPOCHS = 10  # the zoo's fixed epoch count for the RBM


@dataclass(frozen=True)
class RBMConfig(ModelConfig):
    RANGES: ClassVar[Ranges] = {
        "hidden": (1, 100_000),
        "cd_k": (1, 100_000),
        "chains": (1, 1_000_000),
        "sample_steps": (1, 10**7),
        "init_std": (1e-6, 10.0),
    }
    hidden: int = 500
    cd_k: int = 1  # Gibbs sweeps per negative phase
    persistent: bool = False  # PCD: negative chains persist across updates
    chains: int = 100  # persistent chains (PCD only)
    sample_steps: int = 1000  # Gibbs sweeps from noise per `sample` (genlab sample --steps)
    init_std: float = 0.01  # weights ~ N(0, init_std^2); visible biases from the first batch

    def __post_init__(self) -> None:
        for key in ("hidden", "cd_k", "chains", "sample_steps"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if not self.init_std > 0:
            raise ConfigError(f"model.init_std must be positive, got {self.init_std}")


@MODELS.register("rbm")
class RBM(GenerativeModel[RBMConfig]):
    """Bernoulli–Bernoulli RBM: CD-k / PCD training, Gibbs sampling, AIS likelihood."""

    config_class = RBMConfig
    started: torch.Tensor
    chains: torch.Tensor
    traits = Traits(density="estimate", sampling="chain")
    unconditional_because = (
        "a class-conditional RBM needs label units in its energy and a Gibbs sampler that "
        "clamps them, which genlab does not implement"
    )
    description = "restricted Boltzmann machine: CD-k or PCD, Gibbs sampling, AIS likelihood"
    tiny_configs = {
        "rbm_pcd": TinyConfig({"hidden": 12, "persistent": True, "chains": 7}),
        "rbm_cd3": TinyConfig({"hidden": 12, "cd_k": 3}),
    }
    # as configs/rbm_fashion.yaml: PCD needs its learning rate to decay, so a fixed epoch count
    # (about 40 s on 2 cores for Fashion-MNIST) rather than the time limit ends its training
    zoo_entries = (
        ZooEntry(
            "rbm",
            BINARISED,
            0.0,
            ZOO_EPOCHS,
            {"hidden": 500, "cd_k": 1, "persistent": True, "chains": 100},
            {
                "epochs": ZOO_EPOCHS,
                "batch_size": 100,
                "lr": 1e-3,
                "schedule": "cosine",
                "weight_decay": 1e-4,
            },
            cheap=True,
            fixed_epochs=True,
        ),
    )

    def __init__(self, config: RBMConfig, data_info: DataInfo) -> None:
        super().__init__(config, data_info)
        require_binary("rbm", data_info)
        visible = data_info.num_dims
        self.weight = nn.Parameter(torch.randn(config.hidden, visible) * config.init_std)
        self.visible_bias = nn.Parameter(torch.zeros(visible))
        self.hidden_bias = nn.Parameter(torch.zeros(config.hidden))
        # 1 once the visible biases were set from the first batch's pixel means
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))
        self.register_buffer(
            "chains", torch.zeros(config.chains if config.persistent else 0, visible)
        )

    # -- energies ---------------------------------------------------------------------------
    def params(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.weight, self.visible_bias, self.hidden_bias

    def free_energy(self, x: torch.Tensor) -> torch.Tensor:
        """F(x) (B,) in nats for images x (B, C, H, W) with 0/1 pixels."""
        return free_energy(x.flatten(1), *self.params())

    def pseudo_nll(self, v: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """(B,) stochastic pseudo-NLL: V · -log p(v_i | v_-i) for one random pixel i per row."""
        index = noise.integers(v.shape[1], (v.shape[0], 1), generator)
        flipped = v.scatter(1, index, 1 - v.gather(1, index))
        gap = free_energy(flipped, *self.params()) - free_energy(v, *self.params())
        return v.shape[1] * F.softplus(-gap)

    # -- training ---------------------------------------------------------------------------
    @torch.no_grad()
    def _start(self, v: torch.Tensor, generator: torch.Generator | None) -> None:
        """First training batch: visible biases from its pixel means (Hinton 2010, "A
        Practical Guide to Training RBMs") and persistent chains from Bernoulli(0.5) noise."""
        ones, count = v.double().sum(0), float(v.shape[0])
        if dist.is_available() and dist.is_initialized():
            # many processes: each holds a shard of the batch; the biases are the whole batch's,
            # the same on every rank (DDP keeps parameters equal only through equal updates)
            totals = torch.cat([ones, ones.new_tensor([count])])
            dist.all_reduce(totals)
            ones, count = totals[:-1], float(totals[-1])
        self.visible_bias.copy_(base_rate_from_counts(ones, count).float())
        if self.chains.numel():
            self.chains.copy_(bernoulli(torch.full_like(self.chains, 0.5), generator))
        self.started.fill_(True)

    def loss(
        self, x: torch.Tensor, phase: str, *, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        v = x.flatten(1)
        if self.training and not bool(self.started):
            self._start(v, generator)
        pseudo = self.pseudo_nll(v, generator).mean()
        recon = self.reconstruction_bce(v).mean()
        if not self.training:
            return {"loss": pseudo, "pseudo_nll": pseudo, "recon_bce": recon}
        with torch.no_grad():
            negative = self.chains if self.config.persistent else v
            for _ in range(self.config.cd_k):
                negative, _ = gibbs_step(negative, *self.params(), generator)
            if self.config.persistent:
                self.chains.copy_(negative)
        gap = free_energy(v, *self.params()).mean() - free_energy(negative, *self.params()).mean()
        # the value of the pseudo-NLL, the gradient of the CD update
        loss = pseudo.detach() + gap - gap.detach()
        return {"loss": loss, "pseudo_nll": pseudo, "recon_bce": recon, "free_energy_gap": gap}

    def reconstruction_bce(self, v: torch.Tensor) -> torch.Tensor:
        """(B,) cross-entropy of the mean-field reconstruction v -> p(h|v) -> p(v|h), nats."""
        w, b, c = self.params()
        logits = torch.sigmoid(F.linear(v, w, c)) @ w + b
        return F.binary_cross_entropy_with_logits(logits, v, reduction="none").sum(1)

    # -- sampling ---------------------------------------------------------------------------
    def chain_not_available(self) -> str | None:
        return None

    def chain_start(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images of Bernoulli(0.5) noise: where chains "from noise" begin."""
        shape = (n, *self.data_info.shape)
        return bernoulli(
            torch.full(shape, 0.5, dtype=self.weight.dtype, device=self.weight.device), generator
        )

    def chain_step(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One Gibbs sweep on images x (B, C, H, W); returns the new 0/1 visible state."""
        v, _ = gibbs_step(x.flatten(1), *self.params(), generator)
        return v.view_as(x)

    @torch.no_grad()
    def sample(
        self, n: int, *, generator: torch.Generator | None = None, progress: bool = False
    ) -> torch.Tensor:
        """The state of n Gibbs chains after ``model.sample_steps`` sweeps from noise."""
        start = self.chain_start(n, generator=generator)
        return run_chain(
            self, start, self.config.sample_steps, generator=generator, progress=progress
        )[0]

    # -- likelihood -------------------------------------------------------------------------
    @torch.no_grad()
    def estimate_log_partition(
        self,
        base_images: torch.Tensor | None,
        *,
        betas: int,
        runs: int,
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> AisEstimate:
        """AIS estimate of log Z from the base-rate model of ``base_images`` (the training
        images; None: the model's own visible biases)."""
        w, b, c = self.params()
        base = b.detach() if base_images is None else base_rate_biases(base_images.flatten(1))
        return ais_log_partition(
            w, b, c, base, betas=betas, runs=runs, generator=generator, progress=progress
        )
