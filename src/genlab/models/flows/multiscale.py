"""The multi-scale architecture of RealNVP and Glow: stages of bijections, squeezes that trade
space for channels, and factor-out, which sends half the channels straight to the latent
code after each scale but the last (Dinh et al. 2017, section 3.6).

- **RealNVP** (Dinh et al. 2017), per scale but the last: ``steps`` checkerboard couplings,
  a squeeze, ``steps`` channel-wise couplings, factor-out of half the channels; the last
  scale: ``steps + 1`` checkerboard couplings. Masks alternate between couplings. (The
  paper's batch normalisation inside the flow is left out.)
- **Glow** (Kingma & Dhariwal 2018), per scale: a squeeze, then ``steps`` flow steps of
  actnorm, an invertible 1x1 convolution and a channel-wise affine coupling; factor-out after
  every scale but the last. (The paper's learned prior for factored-out latents is replaced
  by the standard normal.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from genlab.models.flows.bijections import (
    ActNorm,
    AffineCoupling,
    Bijection,
    InvertibleConv1x1,
    channel_mask,
    checkerboard,
    squeeze,
    unsqueeze,
)


@dataclass(frozen=True)
class Stage:
    """What a stage does to the shape: squeeze first, factor out half the channels last."""

    squeeze: bool
    factor_out: bool


class MultiScaleFlow(nn.Module):
    """Stages of bijections from data space (C, H, W) to a list of latents, one per
    factor-out and the last stage's output; ``latent_shapes`` lists their shapes."""

    def __init__(
        self, shape: tuple[int, int, int], flow: str, scales: int, steps: int, hidden: int
    ):
        super().__init__()
        self.plan: list[Stage] = []
        self.stages = nn.ModuleList()
        self.latent_shapes: list[tuple[int, int, int]] = []
        c, h, w = shape
        for scale in range(scales):
            last = scale == scales - 1
            if flow == "realnvp":
                self._add(
                    Stage(False, False), _couplings(checkerboard, (c, h, w), steps + last, hidden)
                )
                if last:
                    break
                c, h, w = 4 * c, h // 2, w // 2
                self._add(Stage(True, True), _couplings(channel_mask, (c, h, w), steps, hidden))
            else:
                c, h, w = 4 * c, h // 2, w // 2
                self._add(Stage(True, not last), _glow_steps((c, h, w), steps, hidden))
            if not last:
                self.latent_shapes.append((c // 2, h, w))
                c -= c // 2
        self.latent_shapes.append((c, h, w))

    def _add(self, stage: Stage, layers: nn.ModuleList) -> None:
        self.plan.append(stage)
        self.stages.append(layers)

    def _layers(self) -> list[nn.ModuleList]:
        return [cast(nn.ModuleList, layers) for layers in self.stages]

    def forward(self, h: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Latents (one per factor-out, then the rest) and log|det| per image (B,)."""
        logdet = h.new_zeros(h.shape[0])
        latents = []
        for stage, layers in zip(self.plan, self._layers(), strict=True):
            if stage.squeeze:
                h = squeeze(h)
            for layer in layers:
                h, step_logdet = layer(h)
                logdet = logdet + step_logdet
            if stage.factor_out:
                out = h.shape[1] // 2
                latents.append(h[:, :out])
                h = h[:, out:]
        latents.append(h)
        return latents, logdet

    def inverse(self, latents: list[torch.Tensor]) -> torch.Tensor:
        h = latents[-1]
        factored = list(latents[:-1])
        for stage, layers in zip(reversed(self.plan), reversed(self._layers()), strict=True):
            if stage.factor_out:
                h = torch.cat([factored.pop(), h], dim=1)
            for layer in reversed(layers):
                h = cast(Bijection, layer).inverse(h)
            if stage.squeeze:
                h = unsqueeze(h)
        return h


def _couplings(mask_of, shape: tuple[int, int, int], count: int, hidden: int) -> nn.ModuleList:
    """``count`` affine couplings whose masks alternate."""
    return nn.ModuleList(
        AffineCoupling(mask_of(*shape, parity=k % 2), hidden) for k in range(count)
    )


def _glow_steps(shape: tuple[int, int, int], count: int, hidden: int) -> nn.ModuleList:
    """``count`` Glow steps: actnorm, invertible 1x1 convolution, channel-wise coupling."""
    c = shape[0]
    layers: list[nn.Module] = []
    for _ in range(count):
        layers += [
            ActNorm(c),
            InvertibleConv1x1(c),
            AffineCoupling(channel_mask(*shape, parity=0), hidden),
        ]
    return nn.ModuleList(layers)


def squeezes(flow: str, scales: int) -> int:
    """How many times the flow halves the image sides."""
    return scales - 1 if flow == "realnvp" else scales
