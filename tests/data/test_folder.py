"""The folder source: labels from subfolders, resizing, channels and every file error."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genlab.config import DataConfig
from genlab.data import load_data
from genlab.data.images import ImageSet
from genlab.data.sources import DATASETS
from genlab.errors import DataError


def _png(path: Path, size: tuple[int, int] = (6, 5), mode: str = "L", value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value, 255 - value, 7)
    Image.new(mode, size, color).save(path)
    return path


def _load(root: Path, **kwargs: object) -> ImageSet:
    cfg = DataConfig(name="folder", path=str(root), **kwargs)  # type: ignore[arg-type]
    train, test = DATASETS.get("folder").load(cfg, False)
    assert test is None
    return train


def _error(root: Path, **kwargs: object) -> str:
    with pytest.raises(DataError) as info:
        _load(root, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_class_subfolders_give_labels(tmp_path: Path) -> None:
    for i, cls in enumerate(["zebra", "ant", "moth"]):
        for j in range(2):
            _png(tmp_path / cls / f"{j}.png", value=40 * i + j)
    (tmp_path / ".hidden").mkdir()
    _png(tmp_path / ".hidden" / "x.png", size=(1, 1))  # ignored
    (tmp_path / "ant" / ".DS_Store").write_bytes(b"junk")  # ignored
    images = _load(tmp_path)
    assert images.images.shape == (6, 1, 5, 6) and images.images.dtype.is_floating_point is False
    assert images.labels is not None and images.labels.tolist() == [0, 0, 1, 1, 2, 2]  # sorted
    assert images.images[0, 0, 0, 0] == 40  # 'ant' first: value 40 * 1


def test_flat_folder_has_no_labels_and_rgb_keeps_three_channels(tmp_path: Path) -> None:
    _png(tmp_path / "a.png", mode="RGB", value=10)
    _png(tmp_path / "b.jpg", mode="L", value=10)
    images = _load(tmp_path)
    assert images.labels is None and images.images.shape == (2, 3, 5, 6)
    assert _load(tmp_path, grayscale=True).images.shape == (2, 1, 5, 6)


def test_image_size_resizes_to_square(tmp_path: Path) -> None:
    _png(tmp_path / "a.png", size=(12, 10), value=200)
    _png(tmp_path / "b.png", size=(4, 4), value=200)
    images = _load(tmp_path, image_size=8)
    assert images.images.shape == (2, 1, 8, 8) and bool((images.images == 200).all())


def test_mixed_sizes_need_image_size(tmp_path: Path) -> None:
    _png(tmp_path / "a.png", size=(6, 5))
    bad = _png(tmp_path / "b.png", size=(7, 5))
    message = _error(tmp_path)
    assert str(bad) in message and "7x5" in message and "6x5" in message
    assert "data.image_size" in message


def test_missing_and_empty_folder(tmp_path: Path) -> None:
    assert str(tmp_path / "absent") in _error(tmp_path / "absent")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    assert str(tmp_path / "empty") in _error(tmp_path / "empty")
    with pytest.raises(DataError, match="data.path"):
        load_data(DataConfig(name="folder"), progress=False)


def test_non_image_file(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("hello")
    assert str(tmp_path / "notes.txt") in _error(tmp_path)


def test_undecodable_png(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert str(tmp_path / "b.png") in _error(tmp_path)


def test_truncated_png(tmp_path: Path) -> None:
    good = _png(tmp_path / "a.png", size=(64, 64))
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), np.uint8)).save(good)
    (tmp_path / "b.png").write_bytes(good.read_bytes()[:100])
    assert str(tmp_path / "b.png") in _error(tmp_path)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _png(tmp_path / "a.png")
    locked = _png(tmp_path / "b.png")
    locked.chmod(0)
    if os.access(locked, os.R_OK):  # running as root: simulate the permission error
        real_open = Image.open

        def refuse(path: Path, *args: object, **kwargs: object) -> Image.Image:
            if Path(path) == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Image, "open", refuse)
    try:
        assert str(locked) in _error(tmp_path)
    finally:
        locked.chmod(0o644)


def test_top_level_image_beside_class_folders(tmp_path: Path) -> None:
    _png(tmp_path / "cls" / "a.png")
    loose = _png(tmp_path / "loose.png")
    assert str(loose) in _error(tmp_path)


def test_folder_splits(tmp_path: Path) -> None:
    for j in range(20):
        _png(tmp_path / f"{j:02d}.png", value=j)
    cfg = DataConfig(name="folder", path=str(tmp_path), test_fraction=0.25, val_fraction=0.2)
    data = load_data(cfg, progress=False)
    assert (len(data.train), len(data.val), len(data.test)) == (12, 3, 5)
