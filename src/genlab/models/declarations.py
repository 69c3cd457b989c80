"""What a family declares about itself, as data the rest of genlab reads.

- :class:`Traits`: what kind of generative model it is and how its sampling costs; claims,
  sample curves and the report select runs by these, never by family name.
- :class:`TinyConfig`: configurations that train in a moment on 8x8 digits, which the
  contract, resume, precision and sample-curve tests build for every family.
- :class:`ZooEntry`: how ``genlab zoo`` trains the family, under which protocol and with
  what share of the budget.

A family sets them as class attributes (``traits``, ``tiny_configs``, ``zoo_entries``); adding
a family touches no list anywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Density = Literal["exact", "bound", "estimate", "implicit", "none"]
# how one image is drawn, from cheapest to dearest on a given network:
#   one_pass    one network evaluation (VAE decoder, GAN generator, flow inverse)
#   sequential  one evaluation per pixel (autoregressive models; cached or not)
#   chain       a Markov chain run until it mixes, its length unknown in advance (RBM Gibbs
#               sampling, the denoising-autoencoder chain)
#   iterative   a fixed number of refinement steps chosen at sampling time (diffusion)
Sampling = Literal["one_pass", "sequential", "chain", "iterative"]
SAMPLING_COSTS: tuple[Sampling, ...] = ("one_pass", "sequential", "chain", "iterative")


@dataclass(frozen=True)
class Traits:
    """What kind of generative model a family is: what code cannot see by looking at which
    capabilities it implements (those are checked by the protocols in
    :mod:`genlab.models.base`, and a contract test checks the two agree)."""

    density: Density  # exact, a bound (VAE), an estimate (RBM + AIS), implicit (GAN) or none
    sampling: Sampling  # how an image is drawn (see ``Sampling`` above)
    autoregressive: bool = False  # p(x) = prod_i p(x_i | x_<i): a fully visible belief net
    encoder: bool = False  # maps images to codes (features for probes and fine-tuning)
    variational: bool = False  # q(z|x) fitted by variational inference: codes are posteriors
    adversarial: bool = False  # trained against a discriminator (an implicit density)
    # a continuous density of dequantised images (a flow): its log_likelihood is of that
    # density, and evaluation turns it into a bound on the 8-bit image's (LogLikelihood.of)
    dequantised: bool = False
    # can learn p(x | y) for a class label y (model.conditional): its loss, samplers and
    # likelihood then take the keyword ``y`` (see genlab.models.common.conditioning)
    conditional: bool = False

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLING_COSTS:
            raise ValueError(f"sampling must be one of {SAMPLING_COSTS}, got {self.sampling!r}")
        if self.autoregressive and (self.density != "exact" or self.sampling != "sequential"):
            raise ValueError(
                "an autoregressive family has an exact density and samples pixel by pixel"
            )


# the data protocols: stochastically binarised images (each pixel ~ Bernoulli(grey level),
# drawn once: likelihoods of one binary test set), thresholded ones (pixel > 0.5: no added
# pixel noise) and 8-bit grey levels (sample quality; likelihoods of the 8-bit images)
BINARISED, THRESHOLDED, GREY = "binarised", "thresholded", "grey levels"
BINARIZE = {BINARISED: "static", THRESHOLDED: "threshold", GREY: "none"}  # data.binarize


@dataclass(frozen=True)
class TinyConfig:
    """A configuration of a family small enough to train for a few steps on 8x8 digits in
    well under a second: the model section (without ``name``), the data protocol, and any
    training setting it needs."""

    model: Mapping[str, Any] = field(default_factory=dict)
    levels: int = 2  # 2: binarised digits; 256: grey levels
    train: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.levels not in (2, 256):
            raise ValueError(f"a tiny config models 2 or 256 levels, got {self.levels}")


@dataclass(frozen=True)
class ZooEntry:
    """One run of ``genlab zoo``: the family's model section under one protocol, with what its
    share of the budget rests on."""

    name: str  # the entry's label in zoo.json and progress lines
    protocol: str  # BINARISED, THRESHOLDED or GREY
    weight: float  # its part of the time left once every entry has its minimum epochs
    min_epochs: int  # epochs the budget is planned to give it first, where it allows
    model: Mapping[str, Any]
    train: Mapping[str, Any] = field(default_factory=dict)
    eval: Mapping[str, Any] = field(default_factory=dict)
    finetune: bool = False  # also run the short fine-tuning comparison (encoder families)
    cheap: bool = False  # trained once per seed with --seeds N
    fixed_epochs: bool = False  # train.epochs, not the time limit, ends its training
    family: str = ""  # set from the family that declares it (see :func:`declared_by`)

    def __post_init__(self) -> None:
        if self.protocol not in BINARIZE:
            raise ValueError(f"protocol must be one of {list(BINARIZE)}, got {self.protocol!r}")


__all__ = [
    "BINARISED",
    "BINARIZE",
    "GREY",
    "SAMPLING_COSTS",
    "THRESHOLDED",
    "Density",
    "Sampling",
    "TinyConfig",
    "Traits",
    "ZooEntry",
]
