"""Deterministic, resumable mini-batches taken by tensor indexing (no DataLoader).

The order of epoch ``e`` comes from a generator seeded from (seed, e) and the Bernoulli noise
of batch ``b`` from (seed, e, b), so ``epoch(e, start_batch=b)`` yields exactly the tail of
``epoch(e)``: a resumed run sees bitwise the same batches.

Devices: the stored uint8 images are held on ``device`` when given (one copy, made once) and
each batch is indexed and converted there. The order and the Bernoulli noise are always drawn
on the CPU, so every device sees the same batches.

Many processes: with ``world`` ranks, each global batch of ``batch_size`` images (the same
batch one process would take) is cut into ``world`` consecutive shards and rank ``rank`` takes
its own; the shards of a batch together are the batch. :meth:`shard_scale` says how to weight
a shard's mean loss so that the ranks' averaged gradient is the global batch's. A last, short
batch with fewer images than ranks is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch

from genlab.data.binarize import uniform_below_255
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
        device: torch.device | str | None = None,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if mode not in ("grey", "binary", "bernoulli"):
            raise ValueError(f"unknown mode {mode!r}")
        if not 0 <= rank < world:
            raise ValueError(f"rank must be in [0, {world}), got {rank}")
        self.device = torch.device(device) if device is not None else images.device
        self.images = _hold(images, self.device)
        self.labels, self.mode = labels, mode
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.drop_last, self.rank, self.world = drop_last, rank, world
        count = self.count = int(images.shape[0])
        self._batches = count // batch_size if drop_last else -(-count // batch_size)
        if world > 1 and 0 < count % batch_size < world and not drop_last:
            self._batches -= 1  # some rank would get no image of the short last batch
        self._noise = torch.Generator()  # reseeded for every batch

    def global_size(self, batch: int) -> int:
        """Images in global batch ``batch`` (all ranks together)."""
        start = batch * self.batch_size
        return min(self.batch_size, self.count - start)

    def _shard(self, batch: int) -> tuple[int, int]:
        """This rank's [lo, hi) positions within global batch ``batch``."""
        n = self.global_size(batch)
        return n * self.rank // self.world, n * (self.rank + 1) // self.world

    def shard_scale(self, batch: int) -> float:
        """Weight of this rank's mean loss so that the mean over ranks is the batch mean:
        ``world * shard_size / batch_size`` (1.0 with one process or equal shards)."""
        lo, hi = self._shard(batch)
        return self.world * (hi - lo) / self.global_size(batch)

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
            lo, hi = self._shard(batch)
            start = batch * size
            if order is None:
                x = images[start + lo : start + hi]
                y = None if labels is None else labels[start + lo : start + hi].clone()
            else:
                index = order[start + lo : start + hi]
                x = images.index_select(0, index.to(images.device))
                y = None if labels is None else labels.index_select(0, index)
            yield self._as_float(x, epoch, batch, lo), y

    def _as_float(self, x: torch.Tensor, epoch: int, batch: int, lo: int) -> torch.Tensor:
        if self.mode == "bernoulli":  # the global batch's noise, of which this shard takes its part
            self._noise.manual_seed(derive_seed(NOISE, self.seed, epoch, batch))
            pixels = x[0].numel()  # (redraws of rejected bytes depend on the whole count)
            noise = uniform_below_255(self.global_size(batch) * pixels, self._noise)
            noise = noise[lo * pixels : (lo + x.shape[0]) * pixels].view(x.shape).to(self.device)
            return torch.lt(noise, x.to(self.device), out=torch.empty(x.shape, device=self.device))
        out = x.to(self.device).float()
        return out if self.mode == "binary" else out.div_(255.0)

    def __iter__(self) -> Iterator[Batch]:
        """Epoch 0 from the start (for quick loops that do not track epochs)."""
        return self.epoch(0)


def _hold(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The uint8 images on ``device`` when they take at most half of its free memory; else
    left where they are (each batch is then indexed there and moved)."""
    if images.device == device:
        return images
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if images.numel() * images.element_size() > free // 2:
            return images
    return images.to(device)
