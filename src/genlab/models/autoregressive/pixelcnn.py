"""PixelCNN and Gated PixelCNN: exact-likelihood convolutional autoregressive models.

``pixelcnn`` follows van den Oord et al. 2016, "Pixel Recurrent Neural Networks" (section 3.5
and figure 5): a k1 x k1 mask-A convolution, then residual blocks (1x1, k x k mask B, 1x1),
then a two-layer 1x1 output head. Stacking masked k x k kernels leaves a *blind spot*: pixels
above and to the right of the current one that no path reaches.

``gated_pixelcnn`` follows van den Oord et al. 2016, "Conditional Image Generation with
PixelCNN Decoders": a vertical stack (k//2+1) x k that sees only the rows above and a
horizontal stack 1 x (k//2+1) that sees the current row up to the current pixel, linked by a
1x1 convolution from vertical to horizontal, with gated activations tanh(a) * sigmoid(b) and
residual connections in the horizontal stack. Together the stacks cover every pixel above and
to the left: no blind spot. Here the vertical stack's first layer reads the image shifted down
by one row, so every vertical feature at row i depends on rows < i only.

With ``model.conditional: true`` the gated PixelCNN models p(x | y) for a class y as in that
paper's eq. 4, y = tanh(W_f * x + V_f^T h) * sigmoid(W_g * x + V_g^T h) with h the one-hot
class: every gated layer adds a class bias V^T h to the pre-activations of both stacks (the
vertical bias reaches the horizontal stack through the link too). The bias is the same at every
pixel of an image, so the cached sampler computes it once per layer and image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, cast

import torch
import torch.nn.functional as F
from torch import nn

from genlab.config import ModelConfig, Ranges
from genlab.errors import ConfigError
from genlab.models.autoregressive.labels import class_bias
from genlab.models.autoregressive.masked import (
    AUTOREGRESSIVE_RANGES,
    MaskedConv2d,
    OutputHead,
    PointwiseMasked,
    channel_groups,
    gate_groups,
)
from genlab.models.autoregressive.sampling import AR_TRAIN, ARCache, AutoregressiveModel
from genlab.models.base import DataInfo, LogLikelihood
from genlab.models.declarations import BINARISED, GREY, TinyConfig, Traits, ZooEntry
from genlab.models.registry import MODELS


def _check_common(channels: int, depth: int, kernel: int, first_kernel: int, head: int) -> None:
    if channels < 1 or depth < 1 or head < 1:
        raise ConfigError(
            "model.channels, the number of layers/blocks and model.head_hidden must be >= 1"
        )
    for name, k in (("kernel", kernel), ("first_kernel", first_kernel)):
        if k < 1 or k % 2 == 0:
            raise ConfigError(f"model.{name} must be an odd number >= 1, got {k}")


def _check_channels(channels: int, head: int, data_info: DataInfo) -> None:
    c = data_info.shape[0]
    if min(channels, head) < c:
        raise ConfigError(
            f"model.channels and model.head_hidden must be >= the {c} image channels "
            "(each colour needs its own features)"
        )


@dataclass(frozen=True)
class PixelCNNConfig(ModelConfig):
    RANGES: ClassVar[Ranges] = {**AUTOREGRESSIVE_RANGES, "blocks": (1, 1000)}
    channels: int = 32  # h: residual blocks carry 2h features, their k x k conv h
    blocks: int = 4
    kernel: int = 3
    first_kernel: int = 7
    head_hidden: int = 64

    def __post_init__(self) -> None:
        _check_common(self.channels, self.blocks, self.kernel, self.first_kernel, self.head_hidden)


@MODELS.register("pixelcnn")
class PixelCNN(AutoregressiveModel[PixelCNNConfig]):
    """PixelCNN with masked convolutions and residual blocks (has the upper-right blind spot)."""

    config_class = PixelCNNConfig
    unconditional_because = (
        "the plain PixelCNN has no gates to carry a class bias; use gated_pixelcnn, whose gated "
        "layers take one (van den Oord et al. 2016, eq. 4)"
    )
    description = "PixelCNN: masked convolutions (mask A, then B), residual blocks, exact NLL"
    tiny_configs = {
        "pixelcnn": TinyConfig({"channels": 8, "blocks": 1, "head_hidden": 8}),
        "pixelcnn_grey": TinyConfig({"channels": 8, "blocks": 1, "head_hidden": 8}, 256),
    }
    zoo_entries = (
        ZooEntry(
            "pixelcnn",
            BINARISED,
            0.15,
            3,
            {"channels": 16, "blocks": 4, "kernel": 3, "first_kernel": 7, "head_hidden": 64},
            AR_TRAIN,
        ),
        # the same network with a 256-way softmax per pixel: the likelihood claims on 8-bit
        # images (against the VAE's discretised logistic and the flow)
        ZooEntry(
            "pixelcnn-grey",
            GREY,
            0.10,
            2,
            {"channels": 16, "blocks": 4, "kernel": 3, "first_kernel": 7, "head_hidden": 64},
            AR_TRAIN,
        ),
    )

    def __init__(self, config: PixelCNNConfig, data_info: DataInfo) -> None:
        super().__init__(config, data_info)
        _check_channels(config.channels, config.head_hidden, data_info)
        c, h = data_info.shape[0], config.channels
        k, k1 = config.kernel, config.first_kernel
        self.pad = max(k, k1) // 2
        self.conv_in = MaskedConv2d(c, 2 * h, (k1, k1), "A", c)
        self.reduce = nn.ModuleList(PointwiseMasked(2 * h, h, c) for _ in range(config.blocks))
        self.spatial = nn.ModuleList(
            MaskedConv2d(h, h, (k, k), "B", c) for _ in range(config.blocks)
        )
        self.expand = nn.ModuleList(PointwiseMasked(h, 2 * h, c) for _ in range(config.blocks))
        self.head = OutputHead(2 * h, config.head_hidden, c, data_info.levels)

    def logits(self, inp: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(inp)  # (B, 2h, H, W)
        for reduce, spatial, expand in zip(self.reduce, self.spatial, self.expand, strict=True):
            t = F.relu(reduce(F.relu(h)))  # (B, h, H, W)
            h = h + expand(F.relu(spatial(t)))  # (B, 2h, H, W)
        return self.head(h)  # (B, C, P, H, W)

    def init_cache(self, cache: ARCache) -> None:
        cache.weights["in"] = self.conv_in.flat_weight()
        spatials = cast("Sequence[MaskedConv2d]", self.spatial)  # nn.ModuleList is untyped
        for b, spatial in enumerate(spatials):
            cache.new_map(f"t{b}", self.config.channels)
            cache.weights[f"s{b}"] = spatial.flat_weight()

    def logits_at(self, cache: ARCache, i: int, j: int) -> torch.Tensor:
        p = cache.pad
        h = self.conv_in.at(cache.x, i, j, p, cache.weights["in"])  # (B, 2h)
        reduces = cast("Sequence[PointwiseMasked]", self.reduce)  # nn.ModuleList is untyped
        spatials = cast("Sequence[MaskedConv2d]", self.spatial)
        expands = cast("Sequence[PointwiseMasked]", self.expand)
        for b, (reduce, spatial, expand) in enumerate(zip(reduces, spatials, expands, strict=True)):
            t_map = cache.maps[f"t{b}"]  # (B, h, H+2p, W+2p)
            t_map[:, :, i + p, j + p] = F.relu(reduce.vector(F.relu(h)))
            y = spatial.at(t_map, i, j, p, cache.weights[f"s{b}"])  # (B, h)
            h = h + expand.vector(F.relu(y))
        return self.head.vector(h)  # (B, C, P)


@dataclass(frozen=True)
class GatedPixelCNNConfig(ModelConfig):
    RANGES: ClassVar[Ranges] = {**AUTOREGRESSIVE_RANGES, "layers": (1, 1000)}
    channels: int = 32  # features of each stack
    layers: int = 5
    kernel: int = 3
    first_kernel: int = 7
    head_hidden: int = 64

    def __post_init__(self) -> None:
        _check_common(self.channels, self.layers, self.kernel, self.first_kernel, self.head_hidden)


def _gate(a: torch.Tensor) -> torch.Tensor:
    """tanh(first half) * sigmoid(second half) along dim 1."""
    x, y = a.chunk(2, dim=1)
    return torch.tanh(x) * torch.sigmoid(y)


@MODELS.register("gated_pixelcnn")
class GatedPixelCNN(AutoregressiveModel[GatedPixelCNNConfig]):
    """Gated PixelCNN: vertical + horizontal stacks, gated activations, no blind spot."""

    config_class = GatedPixelCNNConfig
    traits = Traits(density="exact", sampling="sequential", autoregressive=True, conditional=True)
    description = "Gated PixelCNN: vertical/horizontal stacks, gated units, no blind spot"
    tiny_configs = {
        "gated_pixelcnn": TinyConfig({"channels": 8, "layers": 2, "head_hidden": 8}),
        "gated_pixelcnn_cond": TinyConfig(
            {"channels": 8, "layers": 2, "head_hidden": 8, "conditional": True}
        ),
    }
    zoo_entries = (
        ZooEntry(
            "gated_pixelcnn",
            BINARISED,
            0.20,
            3,
            {"channels": 24, "layers": 5, "kernel": 3, "first_kernel": 7, "head_hidden": 64},
            AR_TRAIN,
        ),
    )

    def __init__(self, config: GatedPixelCNNConfig, data_info: DataInfo) -> None:
        super().__init__(config, data_info)
        _check_channels(config.channels, config.head_hidden, data_info)
        c, f = data_info.shape[0], config.channels
        kernels = [config.first_kernel] + [config.kernel] * (config.layers - 1)
        self.kernels = kernels
        self.pad = max(kernels) // 2 + 1
        g1, g2 = channel_groups(f, c), gate_groups(f, c, 2)
        self.vconv = nn.ModuleList(
            nn.Conv2d(c if n == 0 else f, 2 * f, (k // 2 + 1, k)) for n, k in enumerate(kernels)
        )
        self.hconv = nn.ModuleList(
            MaskedConv2d(
                c if n == 0 else f,
                2 * f,
                (1, k // 2 + 1),
                "A" if n == 0 else "B",
                c,
                centre=(0, k // 2),
                in_groups=None if n == 0 else g1,
                out_groups=g2,
            )
            for n, k in enumerate(kernels)
        )
        self.link = nn.ModuleList(nn.Conv2d(2 * f, 2 * f, 1) for _ in kernels)
        self.hout = nn.ModuleList(
            PointwiseMasked(f, f, c, in_groups=g1, out_groups=g1) for _ in kernels
        )
        self.head = OutputHead(f, config.head_hidden, c, data_info.levels, in_groups=g1)
        # eq. 4's V_f^T h and V_g^T h of each layer, vertical and horizontal: (tanh, sigmoid)
        # halves of the 2f pre-activations, as the gates split them; only when conditional
        self.vlabel: nn.ModuleList | None = None
        self.hlabel: nn.ModuleList | None = None
        if self.conditional:
            self.vlabel = nn.ModuleList(class_bias(self.num_classes, 2 * f) for _ in kernels)
            self.hlabel = nn.ModuleList(class_bias(self.num_classes, 2 * f) for _ in kernels)

    # -- the class labels -------------------------------------------------------------------
    def loss(
        self,
        x: torch.Tensor,
        phase: str,
        *,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Mean -log p(x) per image in nats; -log p(x | y) given the labels y of a conditional
        model (which needs them)."""
        return self.conditional_loss(x, phase, generator=generator, y=y)

    def log_likelihood(
        self,
        x: torch.Tensor,
        *,
        k: int,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
    ) -> LogLikelihood:
        """Exact log p(x), or log p(x | y) given labels y (B,); a conditional model without
        labels gives log p(x) = log sum_y p(x | y) p(y) (``k``, ``generator`` unused)."""
        return self.conditional_log_likelihood(x, k=k, generator=generator, y=y)

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        progress: bool = False,
        y: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """n images (n, C, H, W) from the cached sampler; a conditional model draws from
        p(x | y) for the labels y (int64 (n,)), or for labels drawn from p(y) when None."""
        return self.conditional_sample(n, generator=generator, progress=progress, y=y)

    def class_biases(self, y: torch.Tensor | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, the class biases (vertical, horizontal), each (B, 2f), of labels y (B,);
        none for an unconditional model (y None)."""
        if y is None:
            return []
        assert self.vlabel is not None and self.hlabel is not None  # a conditional model
        return [(v(y), h(y)) for v, h in zip(self.vlabel, self.hlabel, strict=True)]

    # -- the network ------------------------------------------------------------------------
    def logits(self, inp: torch.Tensor) -> torch.Tensor:
        if self.conditional:
            raise ValueError("a conditional gated_pixelcnn computes its logits given labels y")
        return self._logits(inp, [])

    def class_logits(self, inp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._logits(inp, self.class_biases(y))

    def _logits(
        self, inp: torch.Tensor, biases: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> torch.Tensor:
        """Logits (B, C, P, H, W) of the network input (B, C, H, W), with each layer's class
        biases (vertical, horizontal) (B, 2f) added to its pre-activations (none: unconditional)."""
        # the vertical stack reads the image shifted down one row: row i sees rows < i
        v, h = inp, inp  # (B, C, H, W)
        for n, k in enumerate(self.kernels):
            kh = k // 2 + 1
            if n == 0:
                v_in = F.pad(v, (k // 2, k // 2, kh, 0))[:, :, :-1]  # shifted down
            else:
                v_in = F.pad(v, (k // 2, k // 2, kh - 1, 0))
            v_pre = self.vconv[n](v_in)  # (B, 2f, H, W), depends on rows < i
            if biases:
                v_pre = v_pre + biases[n][0][:, :, None, None]  # + V^T h (vertical)
            h_pre = self.hconv[n](h) + self.link[n](v_pre)  # (B, 2f, H, W)
            if biases:
                h_pre = h_pre + biases[n][1][:, :, None, None]  # + V^T h (horizontal)
            v = _gate(v_pre)  # (B, f, H, W)
            out = self.hout[n](_gate(h_pre))  # (B, f, H, W)
            h = out if n == 0 else h + out
        return self.head(h)  # (B, C, P, H, W)

    def init_cache(self, cache: ARCache) -> None:
        f, w = self.config.channels, self.data_info.shape[2]
        hconvs = cast("Sequence[MaskedConv2d]", self.hconv)  # nn.ModuleList is untyped
        for n, hconv in enumerate(hconvs):
            cache.weights[f"h{n}"] = hconv.flat_weight()
            if n > 0:
                cache.new_map(f"v{n}", f)  # gated vertical outputs (input of layer n)
                cache.new_map(f"h{n}", f)  # horizontal outputs (input of layer n)
            cache.maps[f"vpre{n}"] = cache.x.new_zeros(cache.x.shape[0], 2 * f, w)  # (B, 2f, W)
            cache.maps[f"link{n}"] = cache.x.new_zeros(cache.x.shape[0], 2 * f, w)  # (B, 2f, W)
        # a conditional model's class biases: per image and layer, the same at every pixel
        for n, (v_bias, h_bias) in enumerate(self.class_biases(cache.y)):
            cache.maps[f"vy{n}"], cache.maps[f"hy{n}"] = v_bias, h_bias  # (B, 2f) each

    def begin_row(self, cache: ARCache, i: int) -> None:
        """The vertical stack of row i (it depends on rows < i only), for every column."""
        p, w = cache.pad, self.data_info.shape[2]
        for n, k in enumerate(self.kernels):
            kh, r = k // 2 + 1, k // 2
            cols = slice(p - r, p + w + r)
            if n == 0:
                rows = cache.x[:, :, i + p - kh : i + p, cols]  # (B, C, kh, W+2r): rows i-kh..i-1
            else:
                rows = cache.maps[f"v{n}"][:, :, i + p - kh + 1 : i + p + 1, cols]
            v_pre = self.vconv[n](rows)[:, :, 0]  # (B, 2f, W)
            if cache.y is not None:
                v_pre = v_pre + cache.maps[f"vy{n}"][:, :, None]  # + V^T h (vertical)
            cache.maps[f"vpre{n}"] = v_pre
            cache.maps[f"link{n}"] = self.link[n](v_pre.unsqueeze(2))[:, :, 0]  # (B, 2f, W)
            if n + 1 < len(self.kernels):
                cache.maps[f"v{n + 1}"][:, :, i + p, p : p + w] = _gate(v_pre)

    def logits_at(self, cache: ARCache, i: int, j: int) -> torch.Tensor:
        p = cache.pad
        h_map = cache.x
        h = cache.x.new_empty(0)
        hconvs = cast("Sequence[MaskedConv2d]", self.hconv)  # nn.ModuleLists are untyped
        houts = cast("Sequence[PointwiseMasked]", self.hout)
        for n, hconv in enumerate(hconvs):
            h_pre = (
                hconv.at(h_map, i, j, p, cache.weights[f"h{n}"]) + cache.maps[f"link{n}"][:, :, j]
            )
            if cache.y is not None:
                h_pre = h_pre + cache.maps[f"hy{n}"]  # + V^T h (horizontal)
            out = houts[n].vector(_gate(h_pre))  # (B, f)
            h = out if n == 0 else h + out
            if n + 1 < len(self.hconv):
                h_map = cache.maps[f"h{n + 1}"]
                h_map[:, :, i + p, j + p] = h
        return self.head.vector(h)  # (B, C, P)
