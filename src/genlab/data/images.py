"""The in-memory form of a dataset split: uint8 images (N, C, H, W) with optional labels, and
the names of the classes those labels index."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from genlab.errors import DataError

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
    """A set of images as stored: uint8 ``(N, C, H, W)``, contiguous, and int64 labels or None;
    ``classes`` names the classes the labels index (label i is ``classes[i]``): given with
    labels, and "0", "1", ... up to the largest label where the source has no names."""

    images: torch.Tensor  # uint8 (N, C, H, W), contiguous
    labels: torch.Tensor | None = None  # int64 (N,), each in [0, len(classes))
    classes: tuple[str, ...] = ()

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
        if labels is None and self.classes:
            raise ValueError("ImageSet.classes names the classes of labels, and there are none")
        if labels is not None and not self.classes:  # unnamed: by number, up to the largest
            count = int(labels.max()) + 1 if len(labels) else 1
            object.__setattr__(self, "classes", numbered_classes(max(count, 1)))
        if (
            labels is not None
            and len(labels)
            and not (0 <= int(labels.min()) and int(labels.max()) < len(self.classes))
        ):
            raise ValueError(
                f"ImageSet.labels must lie in [0, {len(self.classes)}), the classes named; got "
                f"{int(labels.min())}..{int(labels.max())}"
            )

    @classmethod
    def from_numpy(
        cls,
        images: np.ndarray,
        labels: np.ndarray | None = None,
        classes: tuple[str, ...] | None = None,
    ) -> ImageSet:
        """Copy uint8 ``(N, C, H, W)`` images and integer labels (non-negative) into a new set;
        ``classes`` None names them by number, "0" up to the largest label."""
        tensor = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)).clone()
        label_tensor = None
        if labels is not None:
            label_tensor = torch.from_numpy(np.asarray(labels, dtype=np.int64)).clone()
        return cls(tensor, label_tensor, classes or ())

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
        return ImageSet(self.images.index_select(0, index).contiguous(), labels, self.classes)

    def class_counts(self) -> tuple[int, ...]:
        """How many images of each class the set holds (empty without labels)."""
        if self.labels is None:
            return ()
        return tuple(int(c) for c in torch.bincount(self.labels, minlength=len(self.classes)))


def check_labels(labels: np.ndarray, classes: tuple[str, ...], where: object) -> None:
    """A DataError unless every label indexes one of ``classes``."""
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= len(classes)):
        bad = int(labels.min()) if int(labels.min()) < 0 else int(labels.max())
        raise DataError(
            f"{where}: holds the label {bad}, but the data set has {len(classes)} classes "
            f"(labels 0..{len(classes) - 1}); the file is damaged or from another data set"
        )


def numbered_classes(count: int) -> tuple[str, ...]:
    """Class names "0", "1", ... for a source whose labels have no names."""
    return tuple(str(i) for i in range(count))
