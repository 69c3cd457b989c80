"""Deterministic, resumable mini-batches taken by tensor indexing (no DataLoader).

The order of epoch ``e`` comes from a generator seeded from (seed, e) and the Bernoulli noise
of batch ``b`` from (seed, e, b), so ``epoch(e, start_batch=b)`` yields exactly the tail of
``epoch(e)``: a resumed run sees bitwise the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch

from genlab.data.binarize import bernoulli_float
from genlab.data.seeding import NOISE, SHUFFLE, derive_seed, torch_generator

# How stored uint8 values become what the model sees (float32):
#   grey: u / 255;  binary: the values are already 0/1;  bernoulli: ~ Bernoulli(u / 255) per batch
Mode = Literal["grey", "binary", "bernoulli"]
Batch = tuple[torch.Tensor, torch.Tensor | None]


class BatchStream:
    """Batches of one split: ``len()`` per epoch, ``epoch(e, start_batch)`` iterates them."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None,
        *,
        mode: Mode,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if mode not in ("grey", "binary", "bernoulli"):
            raise ValueError(f"unknown mode {mode!r}")
        self.images, self.labels, self.mode = images, labels, mode
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.drop_last = drop_last
        count = self.count = int(images.shape[0])
        self._batches = count // batch_size if drop_last else -(-count // batch_size)
        self._noise = torch.Generator()  # reseeded for every batch

    def __len__(self) -> int:
        return self._batches

    def order(self, epoch: int) -> torch.Tensor | None:
        """The epoch's permutation of image indices (None: the stored order)."""
        if not self.shuffle:
            return None
        return torch.randperm(self.count, generator=torch_generator(SHUFFLE, self.seed, epoch))

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[Batch]:
        """Yield (x float32 (B, C, H, W), labels (B,) or None) from batch ``start_batch`` on."""
        if not 0 <= start_batch <= self._batches:
            raise ValueError(f"start_batch must be in [0, {self._batches}], got {start_batch}")
        order = self.order(epoch)
        size, images, labels = self.batch_size, self.images, self.labels
        for batch in range(start_batch, self._batches):
            start = batch * size
            if order is None:
                stop = min(start + size, self.count)
                x, y = images[start:stop], None if labels is None else labels[start:stop].clone()
            else:
                index = order[start : start + size]
                x = images.index_select(0, index)
                y = None if labels is None else labels.index_select(0, index)
            yield self._as_float(x, epoch, batch), y

    def _as_float(self, x: torch.Tensor, epoch: int, batch: int) -> torch.Tensor:
        if self.mode == "bernoulli":
            self._noise.manual_seed(derive_seed(NOISE, self.seed, epoch, batch))
            return bernoulli_float(x, self._noise)
        out = x.float()
        return out if self.mode == "binary" else out.div_(255.0)

    def __iter__(self) -> Iterator[Batch]:
        """Epoch 0 from the start (for quick loops that do not track epochs)."""
        return self.epoch(0)
