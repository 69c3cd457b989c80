"""Property: a mutated data file loads as valid uint8 images or raises a one-line GenlabError.

Valid IDX, .npz, PNG and JPEG bytes (five 8x8 images) get bytes flipped, set, inserted,
deleted or cut by Hypothesis; any exception other than a GenlabError fails the test. The quick
budget runs by default (derandomized, so it is repeatable); the long one is marked slow.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pytest
from fuzzkit import BUDGETS, fuzz
from idx_testkit import IDX_STEMS, idx_arrays, idx_bytes
from PIL import Image

from genlab.config import DataConfig
from genlab.data.images import ImageSet
from genlab.data.sources import DATASETS
from genlab.errors import GenlabError

IMAGES = np.random.default_rng(0).integers(0, 256, (5, 8, 8), dtype=np.uint8)
LABELS = np.arange(5, dtype=np.uint8)


def loads_or_fails_cleanly(name: str, path: Path, **kwargs: object) -> None:
    """The property: valid uint8 (N, C, H, W) image sets, or a one-line GenlabError."""
    cfg = DataConfig(name=name, path=str(path), **kwargs)  # type: ignore[arg-type]
    try:
        train, test = DATASETS.get(name).load(cfg, False)
    except GenlabError as error:
        assert "\n" not in str(error), str(error)
        return
    for images in (train,) if test is None else (train, test):
        assert isinstance(images, ImageSet)  # its constructor checks dtype, rank, labels
        assert images.images.dtype.is_floating_point is False and images.images.dim() == 4
        assert len(images) > 0 and min(images.shape) > 0


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("stem", [IDX_STEMS[0], IDX_STEMS[1]])
def test_mutated_idx(tmp_path: Path, budget: int, gz: bool, stem: str) -> None:
    arrays = idx_arrays(5, 3, side=8)
    for other, array in arrays.items():
        (tmp_path / other).write_bytes(idx_bytes(array))
    original = idx_bytes(arrays[stem])
    if gz:
        original = gzip.compress(original, mtime=0)

    def check(data: bytes) -> None:
        (tmp_path / stem).write_bytes(data)
        loads_or_fails_cleanly("mnist", tmp_path, download=False)

    fuzz(budget, original, check)


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("compressed", [False, True], ids=["stored", "deflated"])
def test_mutated_npz(tmp_path: Path, budget: int, compressed: bool) -> None:
    buffer = io.BytesIO()
    save = np.savez_compressed if compressed else np.savez
    save(buffer, x_train=IMAGES, y_train=LABELS, x_test=IMAGES[:2], y_test=LABELS[:2])
    path = tmp_path / "data.npz"

    def check(data: bytes) -> None:
        path.write_bytes(data)
        loads_or_fails_cleanly("npz", path)

    fuzz(budget, buffer.getvalue(), check)


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_mutated_image_in_a_folder(tmp_path: Path, budget: int, fmt: str) -> None:
    suffix = ".png" if fmt == "PNG" else ".jpg"
    for i, image in enumerate(IMAGES[1:]):
        Image.fromarray(image).save(tmp_path / f"{i}{suffix}")
    buffer = io.BytesIO()
    Image.fromarray(IMAGES[0]).convert("RGB").save(buffer, format=fmt)
    target = tmp_path / f"x{suffix}"

    def check(data: bytes) -> None:
        target.write_bytes(data)
        loads_or_fails_cleanly("folder", tmp_path)

    fuzz(budget, buffer.getvalue(), check)
