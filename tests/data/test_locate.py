"""Where dataset files are looked for, in which order, and what a miss reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_helpers import fake_idx_dataset

from genlab.config import DataConfig
from genlab.data import load_data
from genlab.data.locate import locate, search_dirs, user_cache_dir
from genlab.errors import DataError


def _roots(tmp_path: Path, isolated_search_path: dict[str, Path]) -> dict[str, Path]:
    return {
        "data_dir": tmp_path / "data-dir",
        "genlab_data": isolated_search_path["genlab_data"],
        "cache": isolated_search_path["cache_home"] / "genlab",
        "system": isolated_search_path["system"],
    }


def test_cache_dir_honours_xdg(isolated_search_path: dict[str, Path]) -> None:
    assert user_cache_dir() == isolated_search_path["cache_home"] / "genlab"


def test_search_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_search_path: dict[str, Path]
) -> None:
    roots = _roots(tmp_path, isolated_search_path)
    monkeypatch.setenv("GENLAB_DATA", str(roots["genlab_data"]))
    cfg = DataConfig(name="fashion-mnist", path=str(roots["data_dir"]), download=False)
    for root in roots.values():
        fake_idx_dataset(root / "fashion-mnist")
    # each root wins over the ones after it; remove the winner to expose the next one
    for name, root in roots.items():
        found = locate(cfg, "fashion-mnist", progress=False)
        assert all(path.parent == root / "fashion-mnist" for path in found), name
        for path in found:
            path.unlink()
    with pytest.raises(DataError):
        locate(cfg, "fashion-mnist", progress=False)


def test_root_itself_and_uncompressed_files(tmp_path: Path) -> None:
    fake_idx_dataset(tmp_path / "flat", gz=False)
    cfg = DataConfig(name="kmnist", path=str(tmp_path / "flat"), download=False)
    found = locate(cfg, "kmnist", progress=False)
    assert [p.name for p in found][0] == "train-images-idx3-ubyte"
    assert len(load_data(cfg, progress=False).test) == 5


def test_not_found_lists_every_place_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_search_path: dict[str, Path]
) -> None:
    monkeypatch.setenv("GENLAB_DATA", str(isolated_search_path["genlab_data"]))
    cfg = DataConfig(name="mnist", path=str(tmp_path / "nowhere"), download=False)
    dirs = search_dirs(cfg, "mnist")
    assert len(dirs) == 8
    with pytest.raises(DataError) as info:
        load_data(cfg, progress=False)
    message = str(info.value)
    assert all(str(d) in message for d in dirs) and "data.download" in message


def test_incomplete_folder_is_skipped(tmp_path: Path) -> None:
    fake_idx_dataset(tmp_path / "d" / "mnist")
    (tmp_path / "d" / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    cfg = DataConfig(name="mnist", path=str(tmp_path / "d"), download=False)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        locate(cfg, "mnist", progress=False)


def test_loaded_idx_content(tmp_path: Path) -> None:
    fake_idx_dataset(tmp_path / "mnist", n_train=10, n_test=4, seed=3)
    cfg = DataConfig(name="mnist", path=str(tmp_path), val_fraction=0.0, binarize="none")
    data = load_data(cfg, progress=False)
    expected = np.random.default_rng(3).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(data.train.images[:, 0].numpy(), expected)
    assert data.train.labels is not None and data.shape == (1, 28, 28)
