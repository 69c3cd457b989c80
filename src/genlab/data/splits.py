"""Loading a dataset into train/validation/test splits, as the model will see them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch

from genlab.config import DataConfig
from genlab.data.images import ImageSet
from genlab.data.sources import DATASETS
from genlab.data.stream import BatchStream, binarize, derived_seed
from genlab.errors import DataError

_SPLIT_TAGS = {"train": 11, "val": 12, "test": 13}


@dataclass(frozen=True)
class DataSplits:
    """Train/val/test uint8 images plus the binarisation that turns them into model inputs."""

    name: str
    train: ImageSet
    val: ImageSet
    test: ImageSet
    binarize: str
    levels: int  # 2 if binarised, 256 for grey levels
    shape: tuple[int, int, int]  # (C, H, W)
    fingerprint: str  # identifies the data content (sha256 of images and labels, shortened)
    threshold: float = 0.5
    binarize_seed: int = 0
    _fixed: dict[str, torch.Tensor] = field(default_factory=dict, repr=False, compare=False)

    def _values(self, split: str) -> tuple[torch.Tensor, float, bool]:
        """(uint8 values, scale, dynamic) for a split."""
        images = self._split(split).images
        if self.binarize == "none":
            return images, 1.0 / 255.0, False
        if split == "train" and self.binarize == "dynamic":
            return images, 1.0, True
        if split not in self._fixed:
            if self.binarize == "threshold":
                fixed = (images.to(torch.float32) > self.threshold * 255.0).to(torch.uint8)
            else:  # static sample, per split
                seed = derived_seed(self.binarize_seed, _SPLIT_TAGS[split])
                fixed = binarize(images, seed).to(torch.uint8)
            self._fixed[split] = fixed
        return self._fixed[split], 1.0, False

    def _split(self, split: str) -> ImageSet:
        if split not in _SPLIT_TAGS:
            raise ValueError(f"split must be train, val or test, got {split!r}")
        return getattr(self, split)

    def stream(
        self, split: str, batch_size: int, *, shuffle: bool, seed: int = 0, drop_last: bool = False
    ) -> BatchStream:
        values, scale, dynamic = self._values(split)
        return BatchStream(
            values,
            self._split(split).labels,
            batch_size,
            scale=scale,
            dynamic=dynamic,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )

    def tensor(self, split: str) -> torch.Tensor:
        """The whole split as float32 (N, C, H, W) model input; fixed for val and test
        (the training split under dynamic binarisation gets one static draw)."""
        values, scale, dynamic = self._values(split)
        if dynamic:
            return binarize(values, derived_seed(self.binarize_seed, _SPLIT_TAGS[split], 1))
        x = values.to(torch.float32)
        return x.mul_(scale) if scale != 1.0 else x


def _random_split(images: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """(rest, held-out fraction) with a seeded permutation."""
    n = len(images)
    held = int(round(n * fraction))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return images.subset(order[held:].sort().values), images.subset(order[:held].sort().values)


def _fingerprint(*sets: ImageSet) -> str:
    digest = hashlib.sha256()
    for part in sets:
        digest.update(part.images.numpy().tobytes())
        if part.labels is not None:
            digest.update(part.labels.numpy().tobytes())
    return digest.hexdigest()[:16]


def load_data(cfg: DataConfig, *, progress: bool = True) -> DataSplits:
    """Load ``cfg.name`` and split it; see :class:`genlab.config.DataConfig` for the options."""
    source = DATASETS.get(cfg.name)
    train_all, test = source.load(cfg, progress)
    if test is None:
        train_all, test = _random_split(
            train_all, cfg.test_fraction, derived_seed(cfg.split_seed, 1)
        )
    train, val = _random_split(train_all, cfg.val_fraction, derived_seed(cfg.split_seed, 2))
    if len(train) == 0 or len(test) == 0:
        raise DataError(f"dataset {cfg.name!r} has too few images ({len(train_all)}) to split")
    if train.images.shape[1:] != test.images.shape[1:]:
        raise DataError(
            f"dataset {cfg.name!r}: train images are {tuple(train.images.shape[1:])} "
            f"but test images are {tuple(test.images.shape[1:])}"
        )
    c, h, w = train.images.shape[1:]
    return DataSplits(
        name=cfg.name,
        train=train,
        val=val,
        test=test,
        binarize=cfg.binarize,
        levels=256 if cfg.binarize == "none" else 2,
        shape=(c, h, w),
        fingerprint=_fingerprint(train_all, test),
        threshold=cfg.threshold,
        binarize_seed=cfg.binarize_seed,
    )
