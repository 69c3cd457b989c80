"""PixelRNN with Row LSTM layers (van den Oord et al. 2016, "Pixel Recurrent Neural Networks").

A k1 x k1 mask-A convolution, then Row LSTM layers with residual connections, then a two-layer
1x1 output head. A Row LSTM processes the image one row at a time (section 3.1): the
input-to-state component is a 1 x (k//2+1) mask-B convolution of the layer input (the current
row up to and including the current pixel, with the colour mask at the centre), computed for
the whole image at once; the state-to-state component is a 1-D convolution of width k over the
previous row's hidden state. The gates follow the usual LSTM equations

    [o, f, i, g] = sigma(K_ss * h_{i-1} + K_is * x_i),  c_i = f . c_{i-1} + i . g,
    h_i = o . tanh(c_i)

with sigmoid for o, f, i and tanh for g. Each hidden feature belongs to one colour group and the
four gates of a feature share it, so the elementwise LSTM updates keep the R < G < B order; the
previous row is fully known, so the state-to-state convolution needs no mask. The receptive
field is a triangle above the pixel (the Diagonal BiLSTM, which covers the full context, is not
implemented).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genlab.errors import ConfigError
from genlab.models.ar_sampling import ARCache, AutoregressiveModel
from genlab.models.base import DataInfo
from genlab.models.masked import MaskedConv2d, OutputHead, channel_groups, gate_groups
from genlab.models.registry import MODELS


@dataclass(frozen=True)
class PixelRNNConfig:
    channels: int = 32  # hidden features of every Row LSTM layer
    layers: int = 2
    kernel: int = 3  # width of the input-to-state and state-to-state convolutions
    first_kernel: int = 7
    head_hidden: int = 64

    def __post_init__(self) -> None:
        if self.channels < 1 or self.layers < 1 or self.head_hidden < 1:
            raise ConfigError("model.channels, model.layers and model.head_hidden must be >= 1")
        for name, k in (("kernel", self.kernel), ("first_kernel", self.first_kernel)):
            if k < 1 or k % 2 == 0:
                raise ConfigError(f"model.{name} must be an odd number >= 1, got {k}")


class RowLSTM(nn.Module):
    """One Row LSTM layer with f hidden features over an f-channel input map."""

    def __init__(self, f: int, kernel: int, data_channels: int) -> None:
        super().__init__()
        self.f = f
        self.input_to_state = MaskedConv2d(
            f,
            4 * f,
            (1, kernel // 2 + 1),
            "B",
            data_channels,
            centre=(0, kernel // 2),
            in_groups=channel_groups(f, data_channels),
            out_groups=gate_groups(f, data_channels, 4),
        )
        self.state_to_state = nn.Conv1d(f, 4 * f, kernel, padding=kernel // 2)

    def cell(self, gates: torch.Tensor, c_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """LSTM update from pre-activations (B, 4f, ...) and the previous cell (B, f, ...)."""
        o, f, i, g = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, f, H, W) -> hidden states (B, f, H, W), one row after another."""
        b, _, height, width = x.shape
        is_all = self.input_to_state(x)  # (B, 4f, H, W)
        h = x.new_zeros(b, self.f, width)  # (B, f, W)
        c = x.new_zeros(b, self.f, width)
        rows = []
        for i in range(height):
            h, c = self.cell(is_all[:, :, i] + self.state_to_state(h), c)
            rows.append(h)
        return torch.stack(rows, dim=2)  # (B, f, H, W)


@MODELS.register("pixelrnn")
class PixelRNN(AutoregressiveModel):
    """PixelRNN (Row LSTM): row-by-row LSTM layers between masked convolutions."""

    family = "pixelrnn"
    config_class = PixelRNNConfig
    description = "PixelRNN with Row LSTM layers (masked input-to-state), exact NLL"

    def __init__(self, config: PixelRNNConfig, data_info: DataInfo) -> None:
        super().__init__(config, data_info)
        c, f = data_info.shape[0], config.channels
        if min(f, config.head_hidden) < c:
            raise ConfigError(
                f"model.channels and model.head_hidden must be >= the {c} image channels"
            )
        self.pad = max(config.kernel, config.first_kernel) // 2
        self.conv_in = MaskedConv2d(c, f, (config.first_kernel,) * 2, "A", c)
        self.lstms = nn.ModuleList(RowLSTM(f, config.kernel, c) for _ in range(config.layers))
        self.head = OutputHead(f, config.head_hidden, c, data_info.levels)

    def logits(self, inp: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(inp)  # (B, f, H, W)
        for lstm in self.lstms:
            h = h + lstm(h)  # residual connection
        return self.head(h)  # (B, C, P, H, W)

    def init_cache(self, cache: ARCache) -> None:
        f, w, b = self.config.channels, self.data_info.shape[2], cache.x.shape[0]
        cache.weights["in"] = self.conv_in.flat_weight()
        for n, lstm in enumerate(self.lstms):
            cache.new_map(f"in{n}", f)  # the layer's input map, padded
            cache.weights[f"is{n}"] = lstm.input_to_state.flat_weight()
            for name in ("h", "c"):  # states of the row being generated
                cache.maps[f"{name}{n}"] = cache.x.new_zeros(b, f, w)  # (B, f, W)

    def begin_row(self, cache: ARCache, i: int) -> None:
        """The state-to-state term of row i from the finished row i - 1 (zeros at row 0)."""
        for n, lstm in enumerate(self.lstms):
            cache.maps[f"ss{n}"] = lstm.state_to_state(cache.maps[f"h{n}"])  # (B, 4f, W)
            cache.maps[f"cprev{n}"] = cache.maps[f"c{n}"].clone()  # (B, f, W)

    def logits_at(self, cache: ARCache, i: int, j: int) -> torch.Tensor:
        p = cache.pad
        h = self.conv_in.at(cache.x, i, j, p, cache.weights["in"])  # (B, f)
        for n, lstm in enumerate(self.lstms):
            in_map = cache.maps[f"in{n}"]  # (B, f, H+2p, W+2p)
            in_map[:, :, i + p, j + p] = h
            gates = lstm.input_to_state.at(in_map, i, j, p, cache.weights[f"is{n}"])
            gates = gates + cache.maps[f"ss{n}"][:, :, j]  # (B, 4f)
            h_new, c_new = lstm.cell(gates, cache.maps[f"cprev{n}"][:, :, j])
            cache.maps[f"h{n}"][:, :, j] = h_new
            cache.maps[f"c{n}"][:, :, j] = c_new
            h = h + h_new
        return self.head.vector(h)  # (B, C, P)
