"""Train/val/test splits of a loaded dataset, and how the model sees each split.

``load_data`` loads the source, holds out a test split when the source has none
(``data.test_fraction``) and a validation split from train (``data.val_fraction``), both with
``data.split_seed``, and precomputes the fixed (non-resampled) pixels of every split.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from genlab.config import DataConfig
from genlab.data.binarize import bernoulli_uint8, threshold_uint8
from genlab.data.images import ImageSet
from genlab.data.seeding import (
    SPLIT_TAGS,
    STATIC_BINARIZE,
    TEST_SPLIT,
    VAL_SPLIT,
    derive_seed,
    torch_generator,
)
from genlab.data.sources import DATASETS
from genlab.data.stream import BatchStream
from genlab.errors import DataError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DataSplits:
    """A dataset split three ways, as stored (uint8) and as the model sees it (float32)."""

    name: str
    train: ImageSet
    val: ImageSet
    test: ImageSet  # uint8 images, as loaded
    binarize: str  # data.binarize
    levels: int  # 2 when binarised (dynamic/static/threshold), 256 for 'none'
    shape: tuple[int, int, int]  # (C, H, W)
    fingerprint: str  # short sha256 of the source's image and label bytes
    # uint8 pixels of each split as the model sees them: 0/1 when binarised (for dynamic train,
    # one static draw used by tensor('train')), grey levels for 'none'.
    fixed: dict[str, torch.Tensor] = field(repr=False, compare=False, default_factory=dict)

    @property
    def classes(self) -> tuple[str, ...]:
        """The names of the classes the labels index (empty for a set without labels)."""
        return self.train.classes

    @property
    def class_counts(self) -> tuple[int, ...]:
        """Training images of each class: the class frequencies a conditional model learns."""
        return self.train.class_counts()

    def split(self, split: str) -> ImageSet:
        """The stored uint8 split named ``split`` ('train', 'val' or 'test')."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
        return getattr(self, split)

    def stream(
        self,
        split: str,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        drop_last: bool = False,
        device: torch.device | str | None = None,
        rank: int = 0,
        world: int = 1,
    ) -> BatchStream:
        """Batches of ``split``; train with 'dynamic' resamples its binarisation every batch.
        ``device``: where the split's uint8 pixels are held and batched; ``rank`` of ``world``:
        this process's shard of every batch (see :class:`BatchStream`)."""
        labels = self.split(split).labels
        if split == "train" and self.binarize == "dynamic":
            images, mode = self.train.images, "bernoulli"
        else:
            images, mode = self.fixed[split], "grey" if self.levels == 256 else "binary"
        return BatchStream(
            images,
            labels,
            mode=mode,  # type: ignore[arg-type]
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
            device=device,
            rank=rank,
            world=world,
        )

    def tensor(self, split: str) -> torch.Tensor:
        """The whole split as the model sees it: float32 (N, C, H, W)."""
        self.split(split)
        images = self.fixed[split].float()
        return images.div_(255.0) if self.levels == 256 else images


def fingerprint(*sets: ImageSet | None) -> str:
    """The first 16 hex digits of the sha256 of the sets' shapes, image and label bytes."""
    digest = hashlib.sha256()
    for images in sets:
        if images is None:
            digest.update(b"none")
            continue
        digest.update(repr(tuple(images.images.shape)).encode())
        digest.update(images.images.numpy().tobytes())
        if images.labels is not None:
            digest.update(images.labels.numpy().astype("<i8").tobytes())
    return digest.hexdigest()[:16]


def hold_out(images: ImageSet, fraction: float, seed: int, what: str) -> tuple[ImageSet, ImageSet]:
    """(rest, held out): a random ``fraction`` of ``images`` (at least one when fraction > 0)."""
    count = len(images)
    held = round(count * fraction)
    held = max(held, 1) if fraction > 0 else 0
    if count - held < 1:
        raise DataError(
            f"cannot hold out {what} ({fraction:g} of {count} images) and keep any for training; "
            f"use more images or a smaller data.{what}_fraction"
        )
    order = np.random.default_rng(seed).permutation(count)
    rest, out = np.sort(order[held:]), np.sort(order[:held])
    return images.subset(torch.from_numpy(rest)), images.subset(torch.from_numpy(out))


def fixed_pixels(images: ImageSet, cfg: DataConfig, split: str) -> torch.Tensor:
    """The split's uint8 pixels as seen by the model (0/1 when binarised), computed once."""
    if cfg.binarize == "none":
        return images.images
    if cfg.binarize == "threshold":
        return threshold_uint8(images.images, cfg.threshold)
    generator = torch_generator(STATIC_BINARIZE, cfg.binarize_seed, SPLIT_TAGS[split])
    return bernoulli_uint8(images.images, generator)


def load_data(cfg: DataConfig, *, progress: bool = True) -> DataSplits:
    """Load ``cfg.name``, split it into train/val/test and prepare what the model sees."""
    train, test = DATASETS.get(cfg.name).load(cfg, progress)
    if test is not None and test.shape != train.shape:
        raise DataError(f"{cfg.name}: test images are {test.shape} but train images {train.shape}")
    content = fingerprint(train, test)
    if test is None:
        test_seed = derive_seed(TEST_SPLIT, cfg.split_seed)
        train, test = hold_out(train, cfg.test_fraction, test_seed, "test")
    train, val = hold_out(train, cfg.val_fraction, derive_seed(VAL_SPLIT, cfg.split_seed), "val")
    sets = {"train": train, "val": val, "test": test}
    return DataSplits(
        name=cfg.name,
        train=train,
        val=val,
        test=test,
        binarize=cfg.binarize,
        levels=256 if cfg.binarize == "none" else 2,
        shape=train.shape,
        fingerprint=content,
        fixed={split: fixed_pixels(images, cfg, split) for split, images in sets.items()},
    )
