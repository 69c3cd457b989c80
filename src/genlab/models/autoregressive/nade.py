"""NADE: the neural autoregressive distribution estimator, for binarised images.

Larochelle & Murray 2011, "The Neural Autoregressive Distribution Estimator". The D = C H W
pixels are taken in raster order (channels, rows, columns, as ``x.flatten(1)`` lists them)
and every conditional is a logistic regression on a hidden layer whose weights are shared
between the conditionals, with W (H x D), c (H), V (D x H), b (D):

    a_1 = c,    a_{i+1} = a_i + W[:, i] x_i,    h_i = sigmoid(a_i),
    p(x_i = 1 | x_<i) = sigmoid(b_i + V_i . h_i).

Because a_i is a running sum, all D conditionals of an image cost O(D H) together, not
O(D^2 H) as D separate networks would. :meth:`NADE.conditional_logits` computes them for a
batch with cumulative sums over pixels, and gradients by the reverse cumulative sums of the
paper's O(D H) gradient (:class:`SharedActivations`), taking the pixels in blocks so that no
(D, B, H) tensor is ever held; :meth:`NADE.conditional_logits_naive` follows the definition
one pixel at a time (the reference the tests compare against). Sampling is sequential, D
steps that each update the running activation a in O(H). Grey-level data are not supported
(the model is Bernoulli per pixel).

With ``model.conditional: true`` NADE models p(x | y) for a class y by a class-dependent hidden
bias: a_1 = c + U h with h the one-hot class (U (H x classes)), so every conditional
p(x_i | x_<i, y) sees the class through h_i, the first pixel's included. The bias does not
depend on the pixels, so p(x | y) is exactly normalised for each y.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from genlab import noise
from genlab.config import ModelConfig, Ranges
from genlab.errors import ConfigError
from genlab.models.autoregressive.labels import checked_labels, class_bias
from genlab.models.base import DataInfo, GenerativeModel, LogLikelihood
from genlab.models.common.checks import require_binary
from genlab.models.common.conditioning import labels_for, marginal_log_likelihood
from genlab.models.declarations import BINARISED, TinyConfig, Traits, ZooEntry
from genlab.models.registry import MODELS

# what the zoo trains NADE and MADE with (Adam at 1e-3, batches of 100; Germain et al. 2015
# train MADE with minibatches of 100 too)
NADE_TRAIN = {"batch_size": 100, "lr": 1e-3}
# activations (pixels x images x hidden units) per block of NADE's likelihood: 4 MB in float32
BLOCK_ELEMENTS = 1 << 20


def binary_pixels(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Images (B, C, H, W) with values 0/1 (as floats in [0, 1]) -> (B, D) 0./1. of ``dtype``,
    in raster order."""
    return torch.round(x.flatten(1)).clamp_(0, 1).to(dtype)  # (B, D)


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """sum_i log p(x_i | x_<i) in nats from logits (B, D) and 0/1 pixels x (B, D), (B,)."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)


def nll_terms(log_p: torch.Tensor, num_dims: int) -> dict[str, torch.Tensor]:
    """The loss terms of an exact-likelihood family from per-image log p(x) (B,): the mean
    NLL in nats to minimise, and its value in nats and bits per dimension for the logs."""
    nll = -log_p.mean()
    return {
        "loss": nll,
        "nll": nll.detach(),
        "bits_per_dim": nll.detach() / (num_dims * math.log(2.0)),
    }


def _activations(
    xt: torch.Tensor, wt: torch.Tensor, a: torch.Tensor, s: int, e: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The activations a_s .. a_{e-1} of pixels s..e-1, (e - s, B, H), from a = a_s (B, H),
    and a_e: a_i = a_s + sum_{s <= j < i} W[:, j] x_j, one cumulative sum over pixels.
    ``xt`` is x transposed (D, B), ``wt`` W transposed (D, H)."""
    acts = torch.empty((e - s, *a.shape), dtype=a.dtype, device=a.device)  # (S, B, H)
    acts[0] = a
    torch.mul(xt[s : e - 1, :, None], wt[s : e - 1, None, :], out=acts[1:])  # W[:, j] x_j
    acts.cumsum_(0)
    return acts, acts[-1] + xt[e - 1, :, None] * wt[e - 1]  # (S, B, H), (B, H)


def _blocks(d: int, batch: int, hidden: int) -> list[tuple[int, int]]:
    """Pixel ranges [s, e) of about BLOCK_ELEMENTS activations each."""
    size = max(1, BLOCK_ELEMENTS // max(1, batch * hidden))
    return [(s, min(d, s + size)) for s in range(0, d, size)]


class SharedActivations(torch.autograd.Function):
    """NADE's conditional logits b_i + V_i . sigmoid(a_i) of 0/1 pixels x (B, D), (B, D).

    The hidden bias c is (H,), or (B, H) for a bias per image (a conditional model's
    c + U h). All (D, B, H) activations of a batch at once would take 157 MB for Fashion-MNIST
    (B = 100, H = 500), and autograd would keep several such tensors (most of a step's time
    went on allocating them); instead the pixels are taken in blocks of
    about ``BLOCK_ELEMENTS`` activations, each block one cumulative sum from the activation
    where the previous block ended, and only the block-start activations (one (B, H) per
    block) are kept for the backward pass, which recomputes the block. The gradient is the
    O(D H) one of Larochelle & Murray 2011, batched: with g_i = dL/dlogit_i and
    delta_i = g_i V_i * h_i * (1 - h_i) = dL/da_i,

        dL/dV_i = g_i h_i,  dL/db_i = g_i,  dL/dc = sum_i delta_i,
        dL/dW[:, j] = x_j sum_{i > j} delta_i   (a reverse cumulative sum over pixels),

    summed over the batch. The pixels are data: no gradient flows to x.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        hidden_bias: torch.Tensor,
        out_weight: torch.Tensor,
        out_bias: torch.Tensor,
    ) -> torch.Tensor:
        xt, wt = x.t().contiguous(), weight.t().contiguous()  # (D, B), (D, H)
        a = hidden_bias.expand(x.shape[0], -1)  # (B, H): a_1 = c
        blocks = _blocks(x.shape[1], x.shape[0], weight.shape[0])
        starts, logits = [], []
        for s, e in blocks:
            starts.append(a)
            acts, a = _activations(xt, wt, a, s, e)  # (S, B, H)
            logits.append((acts.sigmoid_() * out_weight[s:e, None, :]).sum(2))  # (S, B)
        ctx.save_for_backward(x, weight, out_weight, torch.stack(starts))
        ctx.blocks = blocks
        ctx.per_image = hidden_bias.dim() == 2  # c (B, H): its gradient is per image too
        return torch.cat(logits).t() + out_bias  # (B, D)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight, out_weight, starts = ctx.saved_tensors
        xt, wt, gt = x.t().contiguous(), weight.t().contiguous(), grad.t().contiguous()
        d_wt, d_out_weight = torch.empty_like(wt), torch.empty_like(out_weight)  # (D, H)
        later = torch.zeros_like(starts[0])  # (B, H): sum of delta_i over the later blocks
        for n, (s, e) in reversed(list(enumerate(ctx.blocks))):
            h = _activations(xt, wt, starts[n], s, e)[0].sigmoid_()  # (S, B, H)
            g = gt[s:e]  # (S, B)
            d_out_weight[s:e] = torch.bmm(g[:, None, :], h).squeeze(1)  # (S, H)
            delta = (g[:, :, None] * out_weight[s:e, None, :]).mul_(h).mul_(1 - h)  # (S, B, H)
            block_sum = delta.sum(0)  # (B, H)
            # sum_{i > j} delta_i for each j of the block: later + block_sum - sum_{i <= j}
            after = delta.cumsum_(0).neg_().add_(block_sum + later)  # (S, B, H)
            d_wt[s:e] = torch.bmm(xt[s:e, None, :], after).squeeze(1)  # (S, H)
            later = later + block_sum
        d_hidden_bias = later if ctx.per_image else later.sum(0)
        return None, d_wt.t(), d_hidden_bias, d_out_weight, grad.sum(0)


@dataclass(frozen=True)
class NADEConfig(ModelConfig):
    RANGES: ClassVar[Ranges] = {"hidden": (1, 100_000), "init_std": (1e-6, 10.0)}
    hidden: int = 500  # H, the width of the shared hidden layer
    # W and V ~ N(0, init_std^2), the biases c and b 0; 0.05 against 0.01: validation NLL 255.0
    # against 258.2 nats after one Fashion-MNIST epoch (Adam 1e-3)
    init_std: float = 0.05

    def __post_init__(self) -> None:
        if self.hidden < 1:
            raise ConfigError(f"model.hidden must be an integer >= 1, got {self.hidden}")
        if not self.init_std > 0:
            raise ConfigError(f"model.init_std must be positive, got {self.init_std}")


@MODELS.register("nade")
class NADE(GenerativeModel[NADEConfig]):
    """NADE with sigmoid hidden units: exact NLL in O(DH), sequential sampling in O(DH)."""

    config_class = NADEConfig
    traits = Traits(density="exact", sampling="sequential", autoregressive=True, conditional=True)
    description = "NADE: autoregressive logistic conditionals with shared weights, exact NLL"
    tiny_configs = {
        "nade": TinyConfig({"hidden": 16}),
        "nade_cond": TinyConfig({"hidden": 16, "conditional": True}),
    }
    # Adam at 3e-3: 245.4 nats of validation NLL after one Fashion-MNIST epoch against 255.0
    # at 1e-3, and an epoch takes minutes on a CPU, so the zoo gives it few
    zoo_entries = (
        ZooEntry("nade", BINARISED, 0.05, 2, {"hidden": 500}, {**NADE_TRAIN, "lr": 3e-3}),
    )

    def __init__(self, config: NADEConfig, data_info: DataInfo) -> None:
        super().__init__(config, data_info)
        require_binary("nade", data_info)
        d, h, std = data_info.num_dims, config.hidden, config.init_std
        self.weight = nn.Parameter(torch.randn(h, d) * std)  # W (H, D): input i -> hidden
        self.hidden_bias = nn.Parameter(torch.zeros(h))  # c (H)
        self.out_weight = nn.Parameter(torch.randn(d, h) * std)  # V (D, H): hidden -> logit i
        self.out_bias = nn.Parameter(torch.zeros(d))  # b (D)
        # U (classes x H) as a lookup: a conditional model's class bias on a_1, only then
        self.class_hidden = class_bias(self.num_classes, h, std) if self.conditional else None

    # -- the conditionals -----------------------------------------------------------------
    def first_activation(self, y: torch.Tensor | None) -> torch.Tensor:
        """a_1: c (H,), or c + U h (B, H) for the labels y (B,) of a conditional model."""
        if y is None:
            return self.hidden_bias
        assert self.class_hidden is not None  # a conditional model
        return self.hidden_bias + self.class_hidden(y)

    def conditional_logits(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of p(x_i = 1 | x_<i) (given the labels y (B,) of a conditional model) for
        0/1 pixels x (B, D), (B, D), in O(B D H) by cumulative sums over pixels
        (:class:`SharedActivations`)."""
        logits = SharedActivations.apply(
            x, self.weight, self.first_activation(y), self.out_weight, self.out_bias
        )
        return cast("torch.Tensor", logits)

    def conditional_logits_naive(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The same logits (B, D) by the definition, one pixel at a time (a reference)."""
        a = self.first_activation(y).expand(x.shape[0], -1)  # (B, H): a_1 = c (+ U h)
        logits = []
        for i in range(x.shape[1]):
            logits.append(torch.sigmoid(a) @ self.out_weight[i] + self.out_bias[i])  # (B,)
            a = a + x[:, i : i + 1] * self.weight[:, i]  # (B, H): a_{i+1}
        return torch.stack(logits, dim=1)  # (B, D)

    def log_prob(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Exact log p(x) (log p(x | y) given labels y (B,)) in nats of images x (B, C, H, W)
        with 0/1 pixels, (B,)."""
        v = binary_pixels(x, self.weight.dtype)  # (B, D)
        return bernoulli_log_prob(self.conditional_logits(v, y), v)

    def log_prob_naive(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`log_prob` through the per-pixel loop, (B,)."""
        v = binary_pixels(x, self.weight.dtype)  # (B, D)
        return bernoulli_log_prob(self.conditional_logits_naive(v, y), v)

    # -- objective and likelihood ---------------------------------------------------------
    def loss(
        self,
        x: torch.Tensor,
        phase: str,
        *,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Mean negative log-likelihood per image in nats (the exact objective), of p(x | y)
        given the batch's labels y for a conditional model (which needs them)."""
        labels = checked_labels(self, x.shape[0], y, "loss")
        return nll_terms(self.log_prob(x, labels), self.data_info.num_dims)

    @torch.no_grad()
    def log_likelihood(
        self,
        x: torch.Tensor,
        *,
        k: int,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
    ) -> LogLikelihood:
        """Exact log p(x) per image in nats, or log p(x | y) given labels y (B,); a conditional
        model without labels gives log p(x) = log sum_y p(x | y) p(y) (``k`` and
        ``generator`` are not used)."""
        if self.conditional and y is None:
            return marginal_log_likelihood(self, x, k=k, generator=generator)
        labels = checked_labels(self, x.shape[0], y, "likelihood")
        return LogLikelihood(self.log_prob(x, labels), "exact")

    # -- sampling -------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        progress: bool = False,
        y: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """n images (n, C, H, W) of 0./1. pixels, drawn pixel by pixel in raster order; for a
        conditional model from p(x | y) for the labels y (int64 (n,)), or for labels drawn
        from p(y) (before the uniforms) when None.

        One uniform per pixel is drawn up front from ``generator``; step i computes
        p(x_i = 1 | x_<i) from the running activation a_i and then adds W[:, i] x_i to it,
        O(H) per pixel and image."""
        d, ref = self.data_info.num_dims, self.weight
        labels = (
            labels_for(self, n, y, generator).to(ref.device)
            if self.conditional
            else checked_labels(self, n, y, "sampler")
        )
        u = noise.uniform((n, d), generator, torch.float64).to(ref.device)  # (n, D)
        x = torch.zeros(n, d, dtype=ref.dtype, device=ref.device)  # (n, D)
        a = self.first_activation(labels).expand(n, -1).clone()  # (n, H): a_1 = c (+ U h)
        columns = self.weight.t().contiguous()  # (D, H): row i is W[:, i]
        for i in tqdm(range(d), desc="sampling (nade)", disable=not progress, leave=False):
            logit = torch.mv(torch.sigmoid(a), self.out_weight[i]) + self.out_bias[i]  # (n,)
            x_i = (u[:, i] < torch.sigmoid(logit)).to(ref.dtype)  # (n,)
            x[:, i] = x_i
            a.addr_(x_i, columns[i])  # (n, H): a_{i+1} = a_i + W[:, i] x_i
        return x.view(n, *self.data_info.shape)
