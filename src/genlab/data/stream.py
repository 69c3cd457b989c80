"""Batches from in-memory images by tensor indexing: no DataLoader, no per-sample Python.

Every random draw is derived from (seed, epoch) for the shuffle and (seed, epoch, batch) for
dynamic binarisation, so ``epoch(e, start_batch=b)`` yields exactly the tail of ``epoch(e)``:
this is what lets training resume bitwise-exactly from the middle of an epoch.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from genlab.data.images import ImageSet

_SHUFFLE, _BINARIZE = 1, 2


def uniform_below_255(rng: np.random.Generator, n: int) -> np.ndarray:
    """n integers uniform on {0, ..., 254}: random bytes, each 255 redrawn (exact rejection).

    With u uniform on {0, ..., 254} and a pixel value p in {0, ..., 255}, P(u < p) = p / 255
    exactly: one Bernoulli(p / 255) draw per byte, about 3x cheaper than a float draw."""
    u = np.frombuffer(rng.bytes(n), dtype=np.uint8).copy()
    redraw = np.flatnonzero(u == 255)
    while redraw.size:
        u[redraw] = np.frombuffer(rng.bytes(redraw.size), dtype=np.uint8)
        redraw = redraw[u[redraw] == 255]
    return u


def binarize(pixels: torch.Tensor, seed: int) -> torch.Tensor:
    """x ~ Bernoulli(pixels / 255) elementwise for uint8 pixels, as float32 0/1."""
    rng = np.random.Generator(np.random.PCG64(seed))
    noise = torch.from_numpy(uniform_below_255(rng, pixels.numel())).view(pixels.shape)
    return (noise < pixels).to(torch.float32)


def derived_seed(*parts: int) -> int:
    """A 63-bit seed mixing integers with numpy's SeedSequence (well spread, deterministic)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, dtype=np.uint64)[0] >> 1)


class BatchStream:
    """Batches (x float32 (B, C, H, W), labels or None) of one split.

    ``values`` are the uint8 pixels the batches come from and ``scale`` maps them to [0, 1]
    (1 for 0/1 binarised values, 1/255 for grey levels). With ``dynamic=True`` the values are
    intensities and each batch is binarised afresh: x ~ Bernoulli(values / 255).
    """

    def __init__(
        self,
        values: torch.Tensor,
        labels: torch.Tensor | None,
        batch_size: int,
        *,
        scale: float,
        dynamic: bool = False,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.values, self.labels = values, labels
        self.batch_size, self.scale, self.dynamic = batch_size, scale, dynamic
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last

    @classmethod
    def of(cls, images: ImageSet, batch_size: int, **kwargs) -> BatchStream:  # noqa: ANN003
        return cls(images.images, images.labels, batch_size, **kwargs)

    def __len__(self) -> int:
        n = self.values.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch(
        self, epoch: int, start_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        n = self.values.shape[0]
        if self.shuffle:
            generator = torch.Generator().manual_seed(derived_seed(self.seed, epoch, _SHUFFLE))
            order = torch.randperm(n, generator=generator)
        else:
            order = None
        for b in range(start_batch, len(self)):
            lo, hi = b * self.batch_size, min(n, (b + 1) * self.batch_size)
            index = order[lo:hi] if order is not None else slice(lo, hi)
            pixels = self.values[index]  # uint8 (B, C, H, W)
            if self.dynamic:
                x = binarize(pixels, derived_seed(self.seed, epoch, b, _BINARIZE))
            else:
                x = pixels.to(torch.float32)
                if self.scale != 1.0:
                    x.mul_(self.scale)
            yield x, (self.labels[index] if self.labels is not None else None)
