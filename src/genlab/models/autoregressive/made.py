"""MADE: the masked autoencoder for distribution estimation, for binarised images.

Germain, Gregor, Murray & Larochelle 2015, "MADE: Masked Autoencoder for Distribution
Estimation". An MLP maps the D pixels to D Bernoulli logits; binary masks on its weights make
output d depend only on inputs earlier in an ordering, so the outputs are the conditionals
p(x_d | x_<d) of one autoregressive factorisation and log p(x) is exact in one pass.

The masks come from degrees: input d has degree m^0(d), its position 1..D in the
ordering; hidden unit k of layer l gets m^l(k) uniform on {min_k' m^{l-1}(k'), ..., D - 1}.
Hidden weights are kept where m^l(k) >= m^{l-1}(k'), output weights where m^0(d) > m^L(k),
and the optional direct input-to-output weights where m^0(d) > m^0(d'). Hidden units are
ReLUs.

With ``orderings`` K > 1, K sets of ordering and degrees are drawn once from ``mask_seed``
(the first set in the natural raster order) and held as buffers; each training batch uses one
set drawn from the loss's generator (the paper's order- and connectivity-agnostic training),
and the likelihood is that of the ensemble, log p(x) = logsumexp_k log p_k(x) - log K, the
equal mixture of the K models that the paper evaluates.
Sampling draws a set k per image and then its D pixels in that set's ordering, which samples
exactly from the mixture.

With ``model.conditional: true`` MADE models p(x | y) for a class y by class-dependent biases,
unmasked since they do not depend on the pixels: U_1 h on the first hidden pre-activation and
U_o h on the output logits, h the one-hot class. Every conditional p(x_d | x_<d, y) keeps its
mask; the output bias lets the first pixel of an ordering, which no hidden unit reaches,
depend on the class too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, cast

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from genlab import noise
from genlab.config import SEED_RANGE, ModelConfig, Ranges
from genlab.errors import ConfigError
from genlab.models.autoregressive.labels import checked_labels, class_bias
from genlab.models.autoregressive.nade import (
    NADE_TRAIN,
    bernoulli_log_prob,
    binary_pixels,
    nll_terms,
)
from genlab.models.base import DataInfo, GenerativeModel, LogLikelihood
from genlab.models.common.checks import require_binary
from genlab.models.common.conditioning import labels_for, marginal_log_likelihood
from genlab.models.declarations import BINARISED, THRESHOLDED, TinyConfig, Traits, ZooEntry
from genlab.models.registry import MODELS

MADE_ZOO_EPOCHS = 15


@dataclass(frozen=True)
class MADEConfig(ModelConfig):
    RANGES: ClassVar[Ranges] = {
        "hidden": (1, 100_000),
        "orderings": (1, 10_000),
        "mask_seed": SEED_RANGE,
    }
    hidden: tuple[int, ...] = (500,)  # widths of the masked hidden layers
    orderings: int = 1  # K sets of ordering + masks (1: the raster order only)
    mask_seed: int = 0  # seeds the orderings and hidden degrees
    direct: bool = False  # add masked direct input -> output weights

    def __post_init__(self) -> None:
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ConfigError(
                f"model.hidden must list one or more layer widths >= 1, e.g. [500]; "
                f"got {list(self.hidden)}"
            )
        if self.orderings < 1:
            raise ConfigError(
                f"model.orderings must be an integer >= 1 (1: raster order only), "
                f"got {self.orderings}"
            )
        if self.mask_seed < 0:
            raise ConfigError(f"model.mask_seed must be >= 0, got {self.mask_seed}")


def connectivity(
    d: int, hidden: Sequence[int], orderings: int, seed: int, direct: bool
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """K = ``orderings`` sets of ordering and masks, drawn from ``seed`` on the CPU.

    Returns the orderings (K, D), row k listing the pixels in the order set k predicts them
    (row 0 is 0..D-1), and the 0/1 masks (K, out, in) of every layer: the hidden layers, the
    output layer and, if ``direct``, the direct layer."""
    g = noise.generator(seed)
    cpu = torch.device("cpu")
    orders: list[torch.Tensor] = []
    masks: list[list[torch.Tensor]] = [[] for _ in range(len(hidden) + 1 + int(direct))]
    for k in range(orderings):
        order = torch.arange(d, device=cpu) if k == 0 else noise.permutation(d, g)  # (D,)
        rank = torch.empty(d, dtype=torch.long, device=cpu)  # (D,): m^0, 1..D
        rank[order] = torch.arange(1, d + 1, device=cpu)
        degrees = rank
        for layer, width in enumerate(hidden):
            low = min(int(degrees.min()), d - 1)
            unit = low + noise.integers(d - low, (width,), g)  # (width,): m^l, low..D-1
            masks[layer].append(unit[:, None] >= degrees[None, :])  # (width, in)
            degrees = unit
        masks[len(hidden)].append(rank[:, None] > degrees[None, :])  # (D, last width)
        if direct:
            masks[-1].append(rank[:, None] > rank[None, :])  # (D, D)
        orders.append(order)
    return torch.stack(orders), [torch.stack(m) for m in masks]


class MaskedLinear(nn.Module):
    """A linear layer with K alternative 0/1 masks on its weight, (B, in) -> (B, out)."""

    mask: torch.Tensor  # a buffer (registered in __init__), typed for nn.Module.__getattr__

    def __init__(self, masks: torch.Tensor, bias: bool = True) -> None:
        super().__init__()
        _, out_features, in_features = masks.shape
        layer = nn.Linear(in_features, out_features, bias=bias)  # its default initialisation
        self.weight = layer.weight  # (out, in)
        self.bias = layer.bias  # (out,) or None
        self.register_buffer("mask", masks.to(self.weight.device))  # (K, out, in) bool

    def masked_weight(self, k: int) -> torch.Tensor:
        """The weight under mask k, (out, in)."""
        return self.weight * self.mask[k]

    def forward(self, x: torch.Tensor, k: int) -> torch.Tensor:
        return F.linear(x, self.masked_weight(k), self.bias)  # (B, out)


@MODELS.register("made")
class MADE(GenerativeModel[MADEConfig]):
    """MADE: a masked MLP (ReLU), K orderings averaged as an ensemble, exact NLL."""

    config_class = MADEConfig
    orders: torch.Tensor  # a buffer (registered in __init__), typed for nn.Module.__getattr__
    traits = Traits(density="exact", sampling="sequential", autoregressive=True, conditional=True)
    description = "MADE: masked autoencoder, K orderings as an ensemble, exact NLL"
    tiny_configs = {
        "made": TinyConfig({"hidden": [16]}),
        "made_orderings": TinyConfig({"hidden": [16, 16], "orderings": 3, "direct": True}),
        "made_cond": TinyConfig({"hidden": [16, 16], "orderings": 2, "conditional": True}),
    }
    # one ordering (an ensemble of K costs K passes at test time), for a fixed 15 epochs: its
    # validation NLL on Fashion-MNIST is lowest near epoch 14 and rises after (242.7 -> 243.5
    # by epoch 30), at about 3.5 s an epoch on 2 threads (the zoo's pilot)
    zoo_entries = (
        ZooEntry(
            "made",
            BINARISED,
            0.0,
            MADE_ZOO_EPOCHS,
            {"hidden": [500], "orderings": 1},
            {**NADE_TRAIN, "epochs": MADE_ZOO_EPOCHS},
            fixed_epochs=True,
        ),
        ZooEntry(
            "made-threshold",
            THRESHOLDED,
            0.0,
            MADE_ZOO_EPOCHS,
            {"hidden": [500], "orderings": 1},
            {**NADE_TRAIN, "epochs": MADE_ZOO_EPOCHS},
            fixed_epochs=True,
        ),
    )

    def __init__(self, config: MADEConfig, data_info: DataInfo) -> None:
        super().__init__(config, data_info)
        require_binary("made", data_info)
        d, hidden, k = data_info.num_dims, config.hidden, config.orderings
        if torch.empty(0).is_meta:  # sizing only (see genlab.models.build_model): shapes
            widths = [d, *hidden, d]
            pairs = zip(widths[:-1], widths[1:], strict=True)
            masks = [torch.empty(k, o, i, dtype=torch.bool) for i, o in pairs]
            masks += [torch.empty(k, d, d, dtype=torch.bool)] if config.direct else []
            orders = torch.empty(k, d, dtype=torch.long)
        else:
            orders, masks = connectivity(d, hidden, k, config.mask_seed, config.direct)
        self.hidden_layers = nn.ModuleList(MaskedLinear(m) for m in masks[: len(hidden)])
        self.out = MaskedLinear(masks[len(hidden)])  # (D, last width): the logits, bias b
        self.direct = MaskedLinear(masks[-1], bias=False) if config.direct else None
        self.register_buffer("orders", orders.to(self.out.weight.device))  # (K, D)
        # U_1 and U_o as lookups: a conditional model's class biases, only then
        self.class_hidden = class_bias(self.num_classes, hidden[0]) if self.conditional else None
        self.class_out = class_bias(self.num_classes, d) if self.conditional else None

    @property
    def orderings(self) -> int:
        return self.config.orderings

    # -- the conditionals -----------------------------------------------------------------
    def class_biases(self, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The class biases (U_1 h (B, H1), U_o h (B, D)) of labels y (B,); None for an
        unconditional model (y None)."""
        if y is None:
            return None
        assert self.class_hidden is not None and self.class_out is not None  # conditional
        return self.class_hidden(y), self.class_out(y)

    def conditional_logits(
        self, x: torch.Tensor, k: int, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits of p_k(x_d = 1 | the pixels before d in ordering k) (and the labels y (B,)
        of a conditional model) for 0/1 pixels x (B, D), (B, D), pixels in their natural
        positions."""
        biases = self.class_biases(y)
        h = x
        for n, layer in enumerate(cast("Sequence[MaskedLinear]", self.hidden_layers)):
            pre = layer(h, k)  # (B, width)
            h = F.relu(pre if n or biases is None else pre + biases[0])  # (B, width)
        logits = self.out(h, k)  # (B, D)
        if self.direct is not None:
            logits = logits + self.direct(x, k)  # (B, D)
        return logits if biases is None else logits + biases[1]

    def log_prob_of(self, x: torch.Tensor, k: int, y: torch.Tensor | None = None) -> torch.Tensor:
        """log p_k(x) (log p_k(x | y) given labels y (B,)) in nats under ordering set k,
        images x (B, C, H, W), (B,)."""
        v = binary_pixels(x, self.out.weight.dtype)  # (B, D)
        return bernoulli_log_prob(self.conditional_logits(v, k, y), v)

    def log_prob(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Exact log p(x) (log p(x | y) given labels y (B,)) in nats of the ensemble,
        logsumexp_k log p_k(x) - log K, (B,)."""
        if self.orderings == 1:
            return self.log_prob_of(x, 0, y)
        each = torch.stack([self.log_prob_of(x, k, y) for k in range(self.orderings)])  # (K, B)
        return torch.logsumexp(each, dim=0) - math.log(self.orderings)

    # -- objective and likelihood ---------------------------------------------------------
    def loss(
        self,
        x: torch.Tensor,
        phase: str,
        *,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Training: the mean NLL in nats under one ordering set drawn from ``generator``.
        Evaluation (validation): the NLL of the ensemble, the likelihood reported at test. A
        conditional model's NLL is of p(x | y), given the batch's labels y (it needs them)."""
        labels = checked_labels(self, x.shape[0], y, "loss")
        if not self.training:
            return nll_terms(self.log_prob(x, labels), self.data_info.num_dims)
        k = int(noise.integers(self.orderings, (), generator)) if self.orderings > 1 else 0
        return nll_terms(self.log_prob_of(x, k, labels), self.data_info.num_dims)

    @torch.no_grad()
    def log_likelihood(
        self,
        x: torch.Tensor,
        *,
        k: int,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
    ) -> LogLikelihood:
        """Exact log p(x) of the ensemble per image in nats, or log p(x | y) given labels y
        (B,); a conditional model without labels gives log p(x) = log sum_y p(x | y) p(y)
        (``k``, ``generator`` unused)."""
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
        """n images (n, C, H, W) of 0./1. pixels from the ensemble: a set k per image, drawn
        uniformly, then its D pixels one at a time in ordering k. A conditional model draws
        from p(x | y) for the labels y (int64 (n,)), or for labels drawn from p(y) (before
        anything else) when None.

        Draws the sets (when K > 1), then one uniform per image and step, from
        ``generator``. Each step is one pass of the network for the next pixel only; the
        first layer's pre-activations are kept and updated by the new pixel's column, O(H1)
        instead of O(D H1)."""
        d, ref = self.data_info.num_dims, self.out.weight
        labels = (
            labels_for(self, n, y, generator).to(ref.device)
            if self.conditional
            else checked_labels(self, n, y, "sampler")
        )
        which = (
            noise.integers(self.orderings, (n,), generator).to(ref.device)
            if self.orderings > 1
            else torch.zeros(n, dtype=torch.long, device=ref.device)
        )  # (n,)
        u = noise.uniform((n, d), generator, torch.float64).to(ref.device)  # (n, D): by step
        x = torch.zeros(n, d, dtype=ref.dtype, device=ref.device)  # (n, D)
        groups = [(k, (which == k).nonzero().flatten()) for k in range(self.orderings)]
        groups = [(k, rows) for k, rows in groups if rows.numel() > 0]
        bar = tqdm(total=d * len(groups), desc="sampling (made)", disable=not progress, leave=False)
        try:
            for k, rows in groups:
                biases = self.class_biases(None if labels is None else labels[rows])
                x[rows] = self._sample_set(k, u[rows], bar, biases)
        finally:
            bar.close()
        return x.view(n, *self.data_info.shape)

    def _sample_set(
        self,
        k: int,
        u: torch.Tensor,
        bar: tqdm,
        biases: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Images (m, D) drawn with ordering set k from the uniforms u (m, D), u[:, t] for
        the t-th pixel of the ordering, with a conditional model's class biases (U_1 h
        (m, H1), U_o h (m, D)) of the images' labels."""
        layers = cast("Sequence[MaskedLinear]", self.hidden_layers)  # untyped ModuleList
        ref = self.out.weight
        x = torch.zeros(u.shape[0], u.shape[1], dtype=ref.dtype, device=ref.device)  # (m, D)
        first = layers[0].masked_weight(k).t().contiguous()  # (D, H1): row i, input i's weights
        rest = [(layer.masked_weight(k), layer.bias) for layer in layers[1:]]
        out_w, out_b = self.out.masked_weight(k), self.out.bias  # (D, HL), (D,)
        direct = None if self.direct is None else self.direct.masked_weight(k)  # (D, D)
        pre = layers[0].bias.expand(u.shape[0], -1).clone()  # (m, H1): first pre-activation
        if biases is not None:
            pre += biases[0]  # (m, H1): + U_1 h
        for t, i in enumerate(self.orders[k].tolist()):
            h = F.relu(pre)  # (m, H1)
            for weight, bias in rest:
                h = F.relu(F.linear(h, weight, bias))  # (m, width)
            logit = torch.mv(h, out_w[i]) + out_b[i]  # (m,)
            if direct is not None:
                logit = logit + torch.mv(x, direct[i])  # (m,)
            if biases is not None:
                logit = logit + biases[1][:, i]  # (m,): + (U_o h)_i
            x_i = (u[:, t] < torch.sigmoid(logit)).to(ref.dtype)  # (m,)
            x[:, i] = x_i
            pre.addr_(x_i, first[i])  # (m, H1): input i now seen by the units it reaches
            bar.update(1)
        return x
