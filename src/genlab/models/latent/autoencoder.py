"""Deterministic autoencoders in three generations: ``linear`` (one linear map each way,
sigmoid output), deep fully connected (``mlp``) and ReLU CNN with up-convolutions (``conv``).

The encoder maps x to a code z, the decoder maps z back to an image; training minimises the
reconstruction error: binary cross-entropy for binarised data, squared error for grey levels
(``loss: auto``). With ``denoising`` > 0 the input is corrupted during training (each pixel
zeroed with that probability, Vincent et al. 2008) while the target stays clean. A plain
autoencoder has no prior over codes, so it cannot sample and defines no likelihood.

A denoising autoencoder with a Bernoulli decoder (``loss: bce``) defines a Markov chain:
corrupt x, then draw x' ~ p(x | corrupted x) from the decoder. Its stationary distribution
estimates the data distribution (Bengio et al. 2013, "Generalized Denoising Auto-Encoders as
Generative Models"). ``walkback`` > 0 trains on that many further corruptions of the chain's
own samples, each reconstructing the original x (the walk-back procedure of the same paper),
which removes spurious modes far from the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F

from genlab import noise
from genlab.config import ModelConfig, Ranges
from genlab.errors import ConfigError
from genlab.models.base import DataInfo, GenerativeModel
from genlab.models.common.layers import DECODERS, ENCODERS
from genlab.models.declarations import BINARISED, TinyConfig, Traits, ZooEntry
from genlab.models.registry import MODELS


@dataclass(frozen=True)
class AEConfig(ModelConfig):
    RANGES: ClassVar[Ranges] = {
        "hidden": (1, 100_000),
        "channels": (1, 4096),
        "code_dim": (1, 100_000),
        "denoising": (0.0, 0.99),
        "walkback": (0, 100),
    }
    encoder: Literal["linear", "mlp", "conv"] = "mlp"
    decoder: Literal["linear", "mlp", "conv"] | None = None  # None: same as encoder
    hidden: tuple[int, ...] = (400,)  # mlp: hidden widths, encoder order (decoder mirrors)
    channels: tuple[int, ...] = (32, 64)  # conv: channels per stride-2 layer
    code_dim: int = 20
    loss: Literal["auto", "bce", "mse"] = "auto"  # auto: bce for binary data, mse for grey levels
    output: Literal["sigmoid", "identity"] = "sigmoid"  # identity: a purely linear decoder map
    denoising: float = 0.0  # probability of zeroing each input pixel during training
    walkback: int = 0  # extra corrupt-and-sample steps per example (denoising chains)

    def __post_init__(self) -> None:
        if self.code_dim < 1:
            raise ConfigError(f"model.code_dim must be >= 1, got {self.code_dim}")
        if not 0.0 <= self.denoising < 1.0:
            raise ConfigError(f"model.denoising must be in [0, 1), got {self.denoising}")
        if self.walkback < 0:
            raise ConfigError(f"model.walkback must be >= 0, got {self.walkback}")
        if self.walkback and self.denoising == 0:
            raise ConfigError("model.walkback needs model.denoising > 0 (it walks a corruption)")
        if self.output == "identity" and self.loss == "bce":
            raise ConfigError("model.loss bce needs model.output sigmoid (it takes logits)")
        if (
            not self.channels
            or any(c < 1 for c in self.channels)
            or any(h < 1 for h in self.hidden)
        ):
            raise ConfigError("model.hidden and model.channels entries must be >= 1")


@MODELS.register("ae")
class Autoencoder(GenerativeModel[AEConfig]):
    """Autoencoder x -> z -> x', trained on reconstruction error. It samples only through the
    denoising chain, so its sampling cost is a chain's."""

    config_class = AEConfig
    traits = Traits(density="none", sampling="chain", encoder=True)
    unconditional_because = (
        "it reconstructs its input, which already shows the class, and has no prior over codes "
        "to draw a class from (a vae with model.conditional=true is the conditional autoencoder)"
    )
    description = "autoencoder in three generations (linear, mlp, conv), optionally denoising"
    tiny_configs = {
        "ae": TinyConfig({"hidden": [16], "code_dim": 3}),
        "dae_walkback": TinyConfig(
            {"hidden": [16], "code_dim": 3, "denoising": 0.3, "walkback": 2}
        ),
    }
    zoo_entries = (
        ZooEntry(
            "ae",
            BINARISED,
            0.05,
            5,
            {"encoder": "conv", "channels": [32, 64], "code_dim": 20},
            finetune=True,
            cheap=True,
        ),
        # the implicit Markov-chain leaf: a denoising autoencoder whose corrupt-and-sample
        # chain (Bengio et al. 2013) the chain metric scores, as configs/ae_mlp_fashion.yaml
        # with model.denoising=0.3 model.walkback=1 (README)
        ZooEntry(
            "dae",
            BINARISED,
            0.03,
            5,
            {"encoder": "mlp", "hidden": [400], "code_dim": 20, "denoising": 0.3, "walkback": 1},
            cheap=True,
        ),
    )

    def __init__(self, config: AEConfig, data_info: DataInfo) -> None:
        super().__init__(config, data_info)
        self.loss_kind = config.loss
        if config.loss == "auto":
            binary = data_info.levels == 2 and config.output == "sigmoid"
            self.loss_kind = "bce" if binary else "mse"
        if config.walkback and self.loss_kind != "bce":
            raise ConfigError(
                "model.walkback samples from the decoder's Bernoulli p(x|corrupted x): it needs "
                "model.loss=bce (binarised data)"
            )
        shape = data_info.shape
        self.encoder = ENCODERS.get(config.encoder)(
            shape, config.hidden, config.channels, config.code_dim
        )
        self.decoder = DECODERS.get(config.decoder or config.encoder)(
            config.code_dim, shape, config.hidden, config.channels, 1
        )

    @property
    def code_dim(self) -> int:
        return self.config.code_dim

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code z (B, code_dim) of images x (B, C, H, W)."""
        return self.encoder(x)

    def _decoder_output(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)[:, 0]  # (B, C, H, W): logits, or values for output=identity

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self._decoder_output(z)
        return torch.sigmoid(out) if self.config.output == "sigmoid" else out

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def reconstruction_error(
        self, x: torch.Tensor, x_in: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-image error summed over pixels, (B,): BCE in nats or squared error."""
        out = self._decoder_output(self.encode(x if x_in is None else x_in))
        if self.loss_kind == "bce":
            err = F.binary_cross_entropy_with_logits(out, x, reduction="none")
        else:
            pred = torch.sigmoid(out) if self.config.output == "sigmoid" else out
            err = (pred - x).square()
        return err.flatten(1).sum(1)

    def loss(
        self,
        x: torch.Tensor,
        phase: str,
        *,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        if not (self.training and self.config.denoising > 0):
            error = self.reconstruction_error(x).mean()
            return {"loss": error, f"recon_{self.loss_kind}": error}
        x_in = self.corrupt(x, generator)
        errors = [self.reconstruction_error(x, x_in).mean()]
        for _ in range(self.config.walkback):
            with torch.no_grad():
                x_in = self.corrupt(self._sample_given(x_in, generator), generator)
            errors.append(self.reconstruction_error(x, x_in).mean())
        error = torch.stack(errors).mean()
        terms = {"loss": error, f"recon_{self.loss_kind}": errors[0]}
        if len(errors) > 1:
            terms["walkback_recon"] = torch.stack(errors[1:]).mean()
        return terms

    # -- the denoising Markov chain ----------------------------------------------------------
    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Masking noise: each pixel zeroed with probability ``model.denoising``."""
        keep = noise.uniform(x.shape, generator) >= self.config.denoising
        return x * keep

    def _sample_given(self, x_in: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        p = torch.sigmoid(self._decoder_output(self.encode(x_in)))
        return noise.bernoulli(p, generator)

    def chain_not_available(self) -> str | None:
        if self.config.denoising == 0:
            return (
                "this autoencoder was trained without corruption (model.denoising=0), so it "
                "defines no corrupt-and-reconstruct chain; train one with model.denoising > 0"
            )
        if self.loss_kind != "bce":
            return (
                "the chain draws from the decoder's Bernoulli p(x|corrupted x); this "
                "autoencoder was trained with squared error: use model.loss=bce on binarised data"
            )
        return None

    def chain_start(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images of Bernoulli(0.5) noise."""
        shape = (n, *self.data_info.shape)
        return (noise.uniform(shape, generator) < 0.5).float()

    def chain_step(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Corrupt x as in training, then draw x' ~ p(x | corrupted x)."""
        return self._sample_given(self.corrupt(x, generator), generator)
