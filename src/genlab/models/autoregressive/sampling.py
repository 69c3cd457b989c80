"""Sampling autoregressive pixel models, naively and with per-layer caches, and their base.

An autoregressive pixel model factorises p(x) = prod_i p(x_i | x_<i) over pixels in raster
order and, within a pixel, over colour channels R < G < B (van den Oord et al. 2016, "Pixel
Recurrent Neural Networks"). Sampling is sequential:

- ``naive``: one full forward pass over the whole image per pixel and channel, H W C passes;
- ``cached``: the incremental scheme of Ramachandran et al. 2017, "Fast Generation for
  Convolutional Autoregressive Models": every layer keeps a cache of the activations it has
  already computed (the input of each spatial convolution, zero padded, and recurrent
  states); a step computes each layer at the new pixel only, from that layer's receptive-field
  slice of the cache below, and row-wise quantities (the vertical stack of the gated
  PixelCNN, the state-to-state convolution of the Row LSTM) once per row.

Both samplers draw one uniform per pixel-channel up front, in raster-then-channel order, from
the caller's generator and turn it into a level by inverse-CDF sampling, so they return the
same images from the same generator.

A class-conditional model (``model.conditional``) samples p(x | y): its labels y are given or
drawn from p(y) before the uniforms, and both samplers pass them to the network (the cached
one through :attr:`ARCache.y`, where each layer turns them into its per-image class bias once).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from tqdm.auto import tqdm

from genlab import noise
from genlab.models.autoregressive.labels import checked_labels
from genlab.models.autoregressive.masked import (
    frozen_masks,
    inverse_cdf,
    log_prob,
    to_input,
    to_levels,
)
from genlab.models.base import ConfigT, DataInfo, GenerativeModel, LogLikelihood
from genlab.models.common.conditioning import labels_for, marginal_log_likelihood
from genlab.models.declarations import Traits

Sampler = Literal["cached", "naive"]
# the zoo trains the pixel models at Adam 2e-3: faster per epoch than 1e-3 for all three
# (validation NLL by epoch in BENCHMARKS.md: PixelRNN 246.2, 243.7, 241.6 against 249.5,
# 245.6, 243.7)
AR_TRAIN = {"batch_size": 64, "lr": 2e-3}


@dataclass
class ARCache:
    """What the cached sampler keeps between steps.

    ``x`` is the network input sampled so far, zero padded by ``pad`` on every side,
    (B, C, H + 2 pad, W + 2 pad); ``y`` the class labels (B,) of a conditional model's images
    (None: unconditional); ``maps`` holds per-layer padded activation caches and row states,
    ``weights`` the flattened masked weights computed once per run."""

    x: torch.Tensor
    pad: int
    y: torch.Tensor | None = None
    maps: dict[str, torch.Tensor] = field(default_factory=dict)
    weights: dict[str, torch.Tensor] = field(default_factory=dict)

    def new_map(self, name: str, channels: int) -> torch.Tensor:
        b, _, hp, wp = self.x.shape
        self.maps[name] = self.x.new_zeros(b, channels, hp, wp)  # (B, ch, H+2p, W+2p)
        return self.maps[name]


class AutoregressiveModel(GenerativeModel[ConfigT]):
    """Base of the pixel models: exact likelihood, loss and sampling from three hooks.

    Subclasses implement :meth:`logits` (a full, causally masked forward pass) and, for the
    cached sampler, :meth:`init_cache`, :meth:`begin_row` and :meth:`logits_at`. A
    class-conditional subclass also implements :meth:`class_logits`, reads :attr:`ARCache.y` in
    its cache hooks, and offers the ``y`` keyword of :meth:`conditional_loss`,
    :meth:`conditional_log_likelihood` and :meth:`conditional_sample` as its ``loss``,
    ``log_likelihood`` and ``sample``.
    """

    traits = Traits(density="exact", sampling="sequential", autoregressive=True)
    pad: int = 4  # padding of every cache; at least the largest kernel reach of the network

    def __init__(self, config: ConfigT, data_info: DataInfo) -> None:
        super().__init__(config, data_info)
        self.levels = data_info.levels

    # -- hooks ----------------------------------------------------------------------------
    def logits(self, inp: torch.Tensor) -> torch.Tensor:
        """Network input (B, C, H, W) in [-1, 1] -> logits (B, C, P, H, W); the logits at
        pixel-channel (c, i, j) depend only on inputs before it in raster-then-colour order."""
        raise NotImplementedError

    def class_logits(self, inp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """:meth:`logits` of a conditional model given the class labels y (B,) of its images,
        (B, C, P, H, W)."""
        raise NotImplementedError(f"the {self.family} family takes no class labels")

    def network_logits(self, inp: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """:meth:`logits` (y None) or :meth:`class_logits` (labels y (B,))."""
        return self.logits(inp) if y is None else self.class_logits(inp, y)

    def init_cache(self, cache: ARCache) -> None:
        """Allocate per-layer caches and precompute weights for a cached sampling run (and the
        per-image class biases of ``cache.y``, for a conditional model)."""
        raise NotImplementedError

    def begin_row(self, cache: ARCache, i: int) -> None:
        """Row-wise work once rows < i are complete (default: none)."""

    def logits_at(self, cache: ARCache, i: int, j: int) -> torch.Tensor:
        """Logits (B, C, P) at pixel (i, j) from the caches; updates the caches at (i, j)."""
        raise NotImplementedError

    # -- objective and likelihood ---------------------------------------------------------
    def log_prob_levels(self, k: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Exact log p(x) (or log p(x | y) given labels y (B,)) in nats for integer levels k
        (B, C, H, W), (B,)."""
        dtype = next(self.parameters()).dtype
        return log_prob(self.network_logits(to_input(k, self.levels, dtype), y), k)

    def loss(
        self,
        x: torch.Tensor,
        phase: str,
        *,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Mean negative log-likelihood per image in nats (the exact objective)."""
        return self.conditional_loss(x, phase, generator=generator)

    def conditional_loss(
        self,
        x: torch.Tensor,
        phase: str,
        *,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Mean negative log-likelihood per image in nats, -log p(x | y) given the batch's
        labels y (B,) for a conditional model (which needs them)."""
        labels = checked_labels(self, x.shape[0], y, "loss")
        nll = -self.log_prob_levels(to_levels(x, self.levels), labels).mean()
        bpd = nll.detach() / (self.data_info.num_dims * math.log(2.0))
        return {"loss": nll, "nll": nll.detach(), "bits_per_dim": bpd}

    @torch.no_grad()
    def log_likelihood(
        self, x: torch.Tensor, *, k: int, generator: torch.Generator | None = None
    ) -> LogLikelihood:
        """Exact log p(x) per image in nats (``k`` and ``generator`` are not used)."""
        return self.conditional_log_likelihood(x, k=k, generator=generator)

    @torch.no_grad()
    def conditional_log_likelihood(
        self,
        x: torch.Tensor,
        *,
        k: int,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
    ) -> LogLikelihood:
        """Exact log p(x | y) per image in nats given labels y (B,); for a conditional model
        without labels, log p(x) = log sum_y p(x | y) p(y) (``k`` and ``generator`` unused)."""
        if self.conditional and y is None:
            return marginal_log_likelihood(self, x, k=k, generator=generator)
        labels = checked_labels(self, x.shape[0], y, "likelihood")
        return LogLikelihood(self.log_prob_levels(to_levels(x, self.levels), labels), "exact")

    def sample(
        self, n: int, *, generator: torch.Generator | None = None, progress: bool = False
    ) -> torch.Tensor:
        """n images (n, C, H, W) as floats k / (levels - 1), drawn with the cached sampler."""
        return sample_autoregressive(self, n, generator=generator, progress=progress)

    def conditional_sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        progress: bool = False,
        y: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """n images (n, C, H, W) drawn with the cached sampler, from p(x | y) for the labels y
        (int64 (n,)) of a conditional model, or for labels drawn from p(y) when None."""
        return sample_autoregressive(self, n, generator=generator, progress=progress, y=y)


@torch.no_grad()
def sample_autoregressive(
    model: AutoregressiveModel,
    n: int,
    *,
    generator: torch.Generator | None = None,
    sampler: Sampler = "cached",
    progress: bool = False,
    y: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw n images from ``model`` pixel by pixel, channel by channel.

    ``sampler="naive"`` runs the whole network for every pixel-channel; ``"cached"`` computes
    only the new pixel's slice of every layer. Both consume the generator identically (a
    conditional model's labels first, when ``y`` is None, then one uniform per pixel-channel,
    raster-then-channel order), so they return the same images up to floating-point ties at a
    CDF boundary. Returns floats k / (levels - 1), (n, C, H, W).
    """
    if sampler not in ("cached", "naive"):
        raise ValueError(f"sampler must be 'cached' or 'naive', got {sampler!r}")
    if model.conditional:
        labels: torch.Tensor | None = labels_for(model, n, y, generator)
    else:
        labels = checked_labels(model, n, y, "sampler")
    c, h, w = model.data_info.shape
    levels = model.levels
    ref = next(model.parameters())
    u = noise.uniform((n, h, w, c), generator, torch.float64)  # (n, H, W, C)
    k = torch.zeros(n, c, h, w, dtype=torch.long, device=ref.device)  # (n, C, H, W)
    u = u.to(ref.device)
    labels = None if labels is None else labels.to(ref.device)
    was_training = model.training
    model.eval()
    bar = tqdm(total=h * w, desc=f"sampling ({sampler})", disable=not progress, leave=False)
    try:
        # inference mode: the many tiny steps skip autograd's bookkeeping
        with torch.inference_mode(), frozen_masks(model):
            (_naive if sampler == "naive" else _cached)(model, k, u, labels, bar)
    finally:
        bar.close()
        model.train(was_training)
    return k.to(ref.dtype) / (levels - 1)  # a normal tensor: k was created outside


def _naive(
    model: AutoregressiveModel,
    k: torch.Tensor,
    u: torch.Tensor,
    y: torch.Tensor | None,
    bar: tqdm,
) -> None:
    """Fill the levels k (n, C, H, W) in place from the uniforms u (n, H, W, C) (and the
    labels y (n,) of a conditional model), one full forward pass per pixel-channel."""
    _, c, h, w = k.shape
    dtype = next(model.parameters()).dtype
    for i in range(h):
        for j in range(w):
            for ch in range(c):
                inp = to_input(k, model.levels, dtype)
                logits = model.network_logits(inp, y)  # (n, C, P, H, W)
                k[:, ch, i, j] = inverse_cdf(logits[:, ch, :, i, j], u[:, i, j, ch])
            bar.update(1)


def _cached(
    model: AutoregressiveModel,
    k: torch.Tensor,
    u: torch.Tensor,
    y: torch.Tensor | None,
    bar: tqdm,
) -> None:
    """Fill the levels k (n, C, H, W) in place from the uniforms u (n, H, W, C) (and the
    labels y (n,) of a conditional model), computing every layer at the new pixel only, from
    the per-layer caches."""
    n, c, h, w = k.shape
    ref, p = next(model.parameters()), model.pad
    x = torch.zeros(n, c, h + 2 * p, w + 2 * p, dtype=ref.dtype, device=ref.device)
    cache = ARCache(x=x, pad=p, y=y)  # x: (n, C, H+2p, W+2p)
    model.init_cache(cache)
    for i in range(h):
        model.begin_row(cache, i)
        for j in range(w):
            for ch in range(c):
                logits = model.logits_at(cache, i, j)[:, ch]  # (n, P)
                level = inverse_cdf(logits, u[:, i, j, ch])  # (n,)
                k[:, ch, i, j] = level
                cache.x[:, ch, i + p, j + p] = to_input(level, model.levels, ref.dtype)
            bar.update(1)
