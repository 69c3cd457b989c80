"""The dataset registry: name -> source that loads (train, test) uint8 image sets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from genlab.config import DataConfig
from genlab.data.idx import read_idx_pair
from genlab.data.images import ImageSet
from genlab.data.locate import locate_files
from genlab.registry import Registry

Loader = Callable[[DataConfig, bool], tuple[ImageSet, ImageSet | None]]


@dataclass(frozen=True)
class DataSource:
    name: str
    description: str
    load: Loader  # (config, progress) -> (train, test or None when there is no official split)


DATASETS: Registry[DataSource] = Registry("dataset")


def register(name: str, description: str) -> Callable[[Loader], Loader]:
    def decorator(load: Loader) -> Loader:
        DATASETS.register(name)(DataSource(name, description, load))
        return load

    return decorator


def to_image_set(images: np.ndarray, labels: np.ndarray | None) -> ImageSet:
    """uint8 (N, H, W) or (N, C, H, W) numpy arrays -> ImageSet."""
    tensor = torch.from_numpy(np.require(images, dtype=np.uint8, requirements=["C", "W"]))
    if tensor.dim() == 3:
        tensor = tensor.unsqueeze(1)
    label_tensor = torch.from_numpy(labels.astype(np.int64)) if labels is not None else None
    return ImageSet(tensor.contiguous(), label_tensor)


@register("digits", "scikit-learn's 8x8 handwritten digits, 1797 images (embedded, no download)")
def _digits(cfg: DataConfig, progress: bool) -> tuple[ImageSet, None]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # (N, 8, 8), 0..16 -> 0..255
    return to_image_set(images, bunch.target), None


def _idx_source(name: str) -> Loader:
    def load(cfg: DataConfig, progress: bool) -> tuple[ImageSet, ImageSet]:
        roles = ("train_images", "train_labels", "test_images", "test_labels")
        paths = locate_files(cfg, name, roles, progress=progress)
        train = read_idx_pair(paths["train_images"], paths["train_labels"])
        test = read_idx_pair(paths["test_images"], paths["test_labels"])
        return to_image_set(*train), to_image_set(*test)

    return load


register("mnist", "MNIST handwritten digits, 28x28, 60000 + 10000 (IDX files)")(
    _idx_source("mnist")
)
register("fashion-mnist", "Zalando's Fashion-MNIST, 28x28, 60000 + 10000 (IDX files)")(
    _idx_source("fashion-mnist")
)
register("kmnist", "Kuzushiji-MNIST cursive Japanese characters, 28x28, 60000 + 10000 (IDX)")(
    _idx_source("kmnist")
)

# The file-based sources register themselves on import.
from genlab.data import cifar, folder, npz  # noqa: E402, F401
