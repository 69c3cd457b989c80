"""The in-memory form of a dataset split: uint8 images (N, C, H, W) with optional labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# The most bytes genlab decodes from one array of a data file (an IDX file, an .npz member):
# a header that declares more is refused before anything is allocated or inflated.
MAX_ARRAY_BYTES = 2 << 30


def byte_size(count: int) -> str:
    """``count`` bytes for a message: ``2 GiB``, ``64 MiB``, ``700 bytes``."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if count >= 1 << shift:
            value = count / (1 << shift)
            return f"{value:.3g} {unit}" if value < 1000 else f"{value:,.0f} {unit}"
    return f"{count} bytes"


@dataclass(frozen=True)
class ImageSet:
    """A set of images as stored: uint8 ``(N, C, H, W)``, contiguous, and int64 labels or None."""

    images: torch.Tensor  # uint8 (N, C, H, W), contiguous
    labels: torch.Tensor | None = None  # int64 (N,)

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"ImageSet.images must be uint8 (N, C, H, W), got {images.dtype} "
                f"{tuple(images.shape)}"
            )
        if not images.is_contiguous():
            raise ValueError("ImageSet.images must be contiguous")
        if labels is not None and (
            labels.dtype != torch.int64 or labels.shape != (images.shape[0],)
        ):
            raise ValueError(
                f"ImageSet.labels must be int64 ({images.shape[0]},), got {labels.dtype} "
                f"{tuple(labels.shape)}"
            )

    @classmethod
    def from_numpy(cls, images: np.ndarray, labels: np.ndarray | None = None) -> ImageSet:
        """Copy uint8 ``(N, C, H, W)`` images and integer labels into a new set."""
        tensor = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)).clone()
        label_tensor = None
        if labels is not None:
            label_tensor = torch.from_numpy(np.asarray(labels, dtype=np.int64)).clone()
        return cls(tensor, label_tensor)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """One image's shape ``(C, H, W)``."""
        _, c, h, w = self.images.shape
        return (int(c), int(h), int(w))

    def subset(self, index: torch.Tensor) -> ImageSet:
        """The images (and labels) at ``index`` (int64 indices), in that order."""
        index = index.to(torch.int64)
        labels = None if self.labels is None else self.labels.index_select(0, index)
        return ImageSet(self.images.index_select(0, index).contiguous(), labels)
