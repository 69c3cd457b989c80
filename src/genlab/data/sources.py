"""The dataset registry: each source loads its images as uint8 (N, C, H, W) train/test sets.

Sources register themselves on import (``genlab.data`` imports them all); ``genlab list``
shows each one's ``description``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from genlab.config import DataConfig
from genlab.data.images import ImageSet
from genlab.errors import DataError
from genlab.registry import Registry

Loaded = tuple[ImageSet, ImageSet | None]
Loader = Callable[[DataConfig, bool], Loaded]


@dataclass(frozen=True)
class DataSource:
    """A named way to load a dataset; ``load`` returns (train, test or None)."""

    name: str
    description: str  # one line, shown by ``genlab list``
    loader: Loader

    def load(self, cfg: DataConfig, progress: bool) -> Loaded:
        """(train, test) uint8 image sets; test is None without an official test split."""
        return self.loader(cfg, progress)


DATASETS: Registry[DataSource] = Registry("dataset")


def register_source(name: str, description: str) -> Callable[[Loader], Loader]:
    """Decorator registering a loader function as the data source ``name``."""

    def decorator(loader: Loader) -> Loader:
        DATASETS.register(name)(DataSource(name, description, loader))
        return loader

    return decorator


def required_path(cfg: DataConfig, what: str) -> str:
    """``cfg.path``, or a DataError saying the source needs it to name ``what``."""
    if not cfg.path:
        raise DataError(f"data.path must name {what} for the {cfg.name!r} dataset")
    return cfg.path


@register_source("digits", "scikit-learn's 1797 8x8 handwritten digits (built in, no download)")
def load_digits(cfg: DataConfig, progress: bool) -> Loaded:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return ImageSet.from_numpy(images, bunch.target), None
