"""An exponential moving average of a network's weights (Polyak averaging), for any family.

Sampling from averaged weights gives better images than the last iterate for GANs (Karras et
al. 2018; Yazici et al. 2019) and diffusion models (Ho et al. 2020 use a decay of 0.9999).
The average lives in buffers of the model it belongs to, so checkpoints and the exported
model hold it, resume continues it exactly, and no optimiser ever trains it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class ExponentialMovingAverage(nn.Module):
    """A running average of a module's parameters and floating-point buffers, held as buffers.

    After update n (counting from 0) the average is ``a <- d_n a + (1 - d_n) w`` with
    ``d_n = min(decay, (1 + n) / (10 + n))``: the warm-up keeps the average from remembering
    the random initialisation (the schedule of TensorFlow's ExponentialMovingAverage).
    Integer buffers (batch norm's step counter) are copied. The tensors averaged are those the
    source has when the average is made; tensors added to it later (the average itself, when
    it is a submodule of its source) are not part of it.
    """

    updates: torch.Tensor  # a buffer (registered in __init__), typed for nn.Module.__getattr__

    def __init__(self, source: nn.Module, decay: float) -> None:
        super().__init__()
        if not 0 < decay < 1:
            raise ValueError(f"an average's decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.names: dict[str, str] = {}  # source name -> buffer name
        for name, tensor in _named_tensors(source).items():
            key = "avg_" + name.replace(".", "_")
            if key in self._buffers:
                raise ValueError(f"two tensors of the source map to one average name {key!r}")
            self.names[name] = key
            self.register_buffer(key, tensor.detach().clone())
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def current_decay(self) -> float:
        """The decay the next update uses."""
        n = int(self.updates)
        return min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self, source: nn.Module) -> None:
        d = self.current_decay()
        live = _named_tensors(source)
        for name, key in self.names.items():
            tensor, average = live[name], getattr(self, key)
            if tensor.is_floating_point():
                average.mul_(d).add_(tensor.detach(), alpha=1 - d)
            else:
                average.copy_(tensor)
        self.updates += 1

    def tensors(self) -> dict[str, torch.Tensor]:
        """The averaged tensors under the source module's names (for ``functional_call``)."""
        return {name: getattr(self, key) for name, key in self.names.items()}

    @torch.no_grad()
    def copy_to(self, source: nn.Module) -> None:
        """Overwrite the source's tensors with the averages (for a model that only evaluates)."""
        live = _named_tensors(source)
        for name, average in self.tensors().items():
            live[name].copy_(average)

    @contextmanager
    def swapped_into(self, source: nn.Module) -> Iterator[None]:
        """Within the block the source computes with the averaged weights; its own come back
        afterwards, bit for bit, however the block ends."""
        live = _named_tensors(source)
        kept = {name: live[name].detach().clone() for name in self.names}
        self.copy_to(source)
        try:
            yield
        finally:
            with torch.no_grad():
                for name, tensor in kept.items():
                    live[name].copy_(tensor)


def _named_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    return {**dict(module.named_parameters()), **dict(module.named_buffers())}
