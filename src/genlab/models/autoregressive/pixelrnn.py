"""PixelRNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks"): Row LSTM and
Diagonal BiLSTM layers.

A k1 x k1 mask-A convolution, then LSTM layers with residual connections, then a two-layer 1x1
output head. The LSTM updates are

    [o, f, i, g] = K_ss * h_prev + K_is * x,  c = sigma(f) . c_prev + sigma(i) . tanh(g),
    h = sigma(o) . tanh(c).

- Row LSTM (section 3.1): one row at a time; the input-to-state component is a 1 x (k//2+1)
  mask-B convolution of the layer input (the current row up to and including the current
  pixel), the state-to-state component a 1-D convolution of width k over the previous row's
  states. Its receptive field is a triangle above the pixel.
- Diagonal BiLSTM (section 3.2): a left-to-right LSTM whose state at (i, j) reads the states at
  (i - 1, j) and (i, j - 1), computed one anti-diagonal at a time on the skewed map, plus the
  same sweep from the right whose output is shifted down one row; it covers the whole context.

Each hidden feature belongs to one colour group and the four gates of a feature share it, so
elementwise LSTM updates keep the R < G < B order; everything read from earlier pixels is fully
known and needs no mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from genlab.config import ModelConfig, Ranges
from genlab.errors import ConfigError
from genlab.models.autoregressive.masked import (
    AUTOREGRESSIVE_RANGES,
    MaskedConv2d,
    OutputHead,
    PointwiseMasked,
    channel_groups,
    gate_groups,
)
from genlab.models.autoregressive.sampling import AR_TRAIN, ARCache, AutoregressiveModel
from genlab.models.base import DataInfo
from genlab.models.declarations import BINARISED, TinyConfig, ZooEntry
from genlab.models.registry import MODELS


@dataclass(frozen=True)
class PixelRNNConfig(ModelConfig):
    RANGES: ClassVar[Ranges] = {**AUTOREGRESSIVE_RANGES, "layers": (1, 1000)}
    channels: int = 32  # hidden features of every LSTM layer
    layers: int = 2
    lstm: Literal["row", "diagonal"] = "row"  # Row LSTM or Diagonal BiLSTM layers
    kernel: int = 3  # Row LSTM: width of the input-to-state and state-to-state convolutions
    first_kernel: int = 7
    head_hidden: int = 64

    def __post_init__(self) -> None:
        if self.channels < 1 or self.layers < 1 or self.head_hidden < 1:
            raise ConfigError("model.channels, model.layers and model.head_hidden must be >= 1")
        for name, k in (("kernel", self.kernel), ("first_kernel", self.first_kernel)):
            if k < 1 or k % 2 == 0:
                raise ConfigError(f"model.{name} must be an odd number >= 1, got {k}")


def lstm_cell(gates: torch.Tensor, c_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LSTM update from pre-activations [o, f, i, g] (B, 4f, ...) and the previous cell
    (B, f, ...); returns (h, c)."""
    o, f, i, g = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, f, H, W) -> hidden states (B, f, H, W), one row after another."""
        b, _, _, width = x.shape
        # unbind, not is_all[:, :, i]: the backward of one select per row would allocate and
        # add a full (B, 4f, H, W) gradient for every row; unbind's backward is one stack
        is_rows = self.input_to_state(x).unbind(2)  # H of (B, 4f, W)
        h = x.new_zeros(b, self.f, width)  # (B, f, W)
        c = x.new_zeros(b, self.f, width)
        rows = []
        for is_row in is_rows:
            h, c = lstm_cell(is_row + self.state_to_state(h), c)
            rows.append(h)
        return torch.stack(rows, dim=2)  # (B, f, H, W)

    # -- cached sampling: the state-to-state term once per row, the rest per pixel ----------
    def init_cache(self, cache: ARCache, key: str) -> None:
        b, w = cache.x.shape[0], cache.x.shape[3] - 2 * cache.pad
        cache.new_map(f"{key}in", self.f)  # the layer's input map, padded
        cache.weights[f"{key}is"] = self.input_to_state.flat_weight()
        for name in ("h", "c"):  # states of the row being generated
            cache.maps[f"{key}{name}"] = cache.x.new_zeros(b, self.f, w)  # (B, f, W)

    def begin_row(self, cache: ARCache, key: str, i: int) -> None:
        """The state-to-state term of row i from the finished row i - 1 (zeros at row 0)."""
        cache.maps[f"{key}ss"] = self.state_to_state(cache.maps[f"{key}h"])  # (B, 4f, W)
        cache.maps[f"{key}cprev"] = cache.maps[f"{key}c"].clone()  # (B, f, W)

    def step(self, cache: ARCache, key: str, i: int, j: int, x: torch.Tensor) -> torch.Tensor:
        """The layer's output at (i, j) from its input there, x (B, f) -> (B, f)."""
        p = cache.pad
        in_map = cache.maps[f"{key}in"]  # (B, f, H+2p, W+2p)
        in_map[:, :, i + p, j + p] = x
        gates = self.input_to_state.at(in_map, i, j, p, cache.weights[f"{key}is"])
        gates = gates + cache.maps[f"{key}ss"][:, :, j]  # (B, 4f)
        h, c = lstm_cell(gates, cache.maps[f"{key}cprev"][:, :, j])
        cache.maps[f"{key}h"][:, :, j] = h
        cache.maps[f"{key}c"][:, :, j] = c
        return h


class DiagonalLSTM(nn.Module):
    """One direction of a Diagonal BiLSTM (section 3.2): the state at (i, j) comes from the
    input there (1x1 input-to-state), the states at (i - 1, j) and (i, j - 1) (a width-2
    state-to-state convolution along the skewed column) and the cell at (i, j - 1)."""

    def __init__(self, f: int, data_channels: int, *, masked: bool) -> None:
        super().__init__()
        self.f = f
        if masked:
            self.input_to_state: PointwiseMasked | nn.Conv2d = PointwiseMasked(
                f,
                4 * f,
                data_channels,
                in_groups=channel_groups(f, data_channels),
                out_groups=gate_groups(f, data_channels, 4),
            )
        else:  # the right-to-left direction only ever sees finished rows
            self.input_to_state = nn.Conv2d(f, 4 * f, 1)
        self.state_to_state = nn.Conv1d(f, 4 * f, 2)  # taps: (i - 1, j), (i, j - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, f, H, W) -> states (B, f, H, W), swept over the skewed image: column t of the
        skewed map holds the anti-diagonal i + j = t, all of whose states are independent."""
        b, _, height, width = x.shape
        is_map = self.input_to_state(x)  # (B, 4f, H, W)
        skew_w = height + width - 1
        # skew: row i moves right by i (pad each row by H, flatten, re-cut rows H+W-1 long)
        flat = F.pad(is_map, (0, height)).flatten(2)[:, :, : height * skew_w]
        columns = flat.view(b, 4 * self.f, height, skew_w).unbind(3)  # H+W-1 of (B, 4f, H)
        rows = torch.arange(height, device=x.device)
        h = x.new_zeros(b, self.f, height)  # (B, f, H): one skewed column
        c = x.new_zeros(b, self.f, height)
        states = []
        for t, column in enumerate(columns):
            valid = ((t - rows >= 0) & (t - rows < width)).to(x.dtype)  # (H,)
            ss = self.state_to_state(F.pad(h, (1, 0)))  # (B, 4f, H): rows i-1 and i of t-1
            h, c = lstm_cell(column + ss, c)
            h, c = h * valid, c * valid  # no state outside the image
            states.append(h)
        hs = torch.stack(states, dim=3)  # (B, f, H, H+W-1)
        index = (rows[:, None] + torch.arange(width, device=x.device)[None, :]).expand_as(x)
        return hs.gather(3, index)  # unskew: (B, f, H, W)

    def gates_at(
        self, x: torch.Tensor, h_up: torch.Tensor, h_left: torch.Tensor, w: torch.Tensor
    ) -> torch.Tensor:
        """Pre-activations (B, 4f) at one pixel from its input x, the state above and the
        state to the side (before it in this direction's sweep), each (B, f)."""
        if isinstance(self.input_to_state, PointwiseMasked):
            is_ = self.input_to_state.vector(x)
        else:
            is_ = F.linear(x, self.input_to_state.weight[:, :, 0, 0], self.input_to_state.bias)
        bias = self.state_to_state.bias
        assert bias is not None  # nn.Conv1d built with its default bias=True
        return is_ + torch.cat([h_up, h_left], dim=1) @ w + bias

    def flat_state_weight(self) -> torch.Tensor:
        """The state-to-state kernel as a (2f, 4f) matrix acting on [h_up, h_left]."""
        k = self.state_to_state.weight  # (4f, f, 2)
        return torch.cat([k[:, :, 0], k[:, :, 1]], dim=1).t().contiguous()


class DiagonalBiLSTM(nn.Module):
    """Diagonal BiLSTM layer: a left-to-right diagonal LSTM plus a right-to-left one whose
    output is shifted down one row, so that it only sees finished rows (section 3.2)."""

    def __init__(self, f: int, data_channels: int) -> None:
        super().__init__()
        self.f = f
        self.ltr = DiagonalLSTM(f, data_channels, masked=True)
        self.rtl = DiagonalLSTM(f, data_channels, masked=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, f, H, W) -> (B, f, H, W)."""
        right_to_left = self.rtl(x.flip(3)).flip(3)  # (B, f, H, W)
        return self.ltr(x) + F.pad(right_to_left, (0, 0, 1, 0))[:, :, :-1]  # shifted down

    # -- cached sampling: left-to-right per pixel, right-to-left once per finished row ------
    def init_cache(self, cache: ARCache, key: str) -> None:
        b, _, hp, wp = cache.x.shape
        h, w = hp - 2 * cache.pad, wp - 2 * cache.pad
        for name in ("in", "lh", "lc", "rh", "rc"):  # input map and the two states, unpadded
            cache.maps[f"{key}{name}"] = cache.x.new_zeros(b, self.f, h + 1, w + 1)
        cache.weights[f"{key}l"] = self.ltr.flat_state_weight()
        cache.weights[f"{key}r"] = self.rtl.flat_state_weight()
        # maps are indexed [i + 1, j] (row -1 is zeros) and column w is the zero border

    def begin_row(self, cache: ARCache, key: str, i: int) -> None:
        """The right-to-left states of the finished row i - 1, swept from the right."""
        if i == 0:
            return
        m, w = cache.maps, cache.maps[f"{key}in"].shape[3] - 1
        for j in range(w - 1, -1, -1):
            gates = self.rtl.gates_at(
                m[f"{key}in"][:, :, i, j],
                m[f"{key}rh"][:, :, i - 1, j],
                m[f"{key}rh"][:, :, i, j + 1],
                cache.weights[f"{key}r"],
            )
            h, c = lstm_cell(gates, m[f"{key}rc"][:, :, i, j + 1])
            m[f"{key}rh"][:, :, i, j], m[f"{key}rc"][:, :, i, j] = h, c

    def step(self, cache: ARCache, key: str, i: int, j: int, x: torch.Tensor) -> torch.Tensor:
        m = cache.maps
        m[f"{key}in"][:, :, i + 1, j] = x
        # at j = 0, index j - 1 = -1 reads the zero border column
        gates = self.ltr.gates_at(
            x,
            m[f"{key}lh"][:, :, i, j],
            m[f"{key}lh"][:, :, i + 1, j - 1],
            cache.weights[f"{key}l"],
        )
        c_left = m[f"{key}lc"][:, :, i + 1, j - 1]
        h, c = lstm_cell(gates, c_left)
        m[f"{key}lh"][:, :, i + 1, j], m[f"{key}lc"][:, :, i + 1, j] = h, c
        return h + m[f"{key}rh"][:, :, i, j]  # right-to-left state of (i - 1, j)


@MODELS.register("pixelrnn")
class PixelRNN(AutoregressiveModel[PixelRNNConfig]):
    """PixelRNN: Row LSTM or Diagonal BiLSTM layers between masked convolutions."""

    config_class = PixelRNNConfig
    unconditional_because = "genlab's PixelRNN has no class input to its LSTM layers"
    description = "PixelRNN: Row LSTM or Diagonal BiLSTM layers, exact NLL"
    tiny_configs = {"pixelrnn": TinyConfig({"channels": 8, "layers": 1, "head_hidden": 8})}
    zoo_entries = (
        ZooEntry(
            "pixelrnn",
            BINARISED,
            0.20,
            3,
            {"channels": 16, "layers": 2, "kernel": 3, "first_kernel": 7, "head_hidden": 64},
            AR_TRAIN,
        ),
    )

    def __init__(self, config: PixelRNNConfig, data_info: DataInfo) -> None:
        super().__init__(config, data_info)
        c, f = data_info.shape[0], config.channels
        if min(f, config.head_hidden) < c:
            raise ConfigError(
                f"model.channels and model.head_hidden must be >= the {c} image channels"
            )
        self.pad = max(config.kernel, config.first_kernel) // 2
        self.conv_in = MaskedConv2d(c, f, (config.first_kernel,) * 2, "A", c)
        self.lstms = nn.ModuleList(
            RowLSTM(f, config.kernel, c) if config.lstm == "row" else DiagonalBiLSTM(f, c)
            for _ in range(config.layers)
        )
        self.head = OutputHead(f, config.head_hidden, c, data_info.levels)

    def logits(self, inp: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(inp)  # (B, f, H, W)
        for lstm in self.lstms:
            h = h + lstm(h)  # residual connection
        return self.head(h)  # (B, C, P, H, W)

    def init_cache(self, cache: ARCache) -> None:
        cache.weights["in"] = self.conv_in.flat_weight()
        lstms = cast("Sequence[RowLSTM | DiagonalBiLSTM]", self.lstms)  # an untyped nn.ModuleList
        for n, lstm in enumerate(lstms):
            lstm.init_cache(cache, f"l{n}.")

    def begin_row(self, cache: ARCache, i: int) -> None:
        lstms = cast("Sequence[RowLSTM | DiagonalBiLSTM]", self.lstms)  # an untyped nn.ModuleList
        for n, lstm in enumerate(lstms):
            lstm.begin_row(cache, f"l{n}.", i)

    def logits_at(self, cache: ARCache, i: int, j: int) -> torch.Tensor:
        h = self.conv_in.at(cache.x, i, j, cache.pad, cache.weights["in"])  # (B, f)
        lstms = cast("Sequence[RowLSTM | DiagonalBiLSTM]", self.lstms)  # an untyped nn.ModuleList
        for n, lstm in enumerate(lstms):
            h = h + lstm.step(cache, f"l{n}.", i, j, h)
        return self.head.vector(h)  # (B, C, P)
