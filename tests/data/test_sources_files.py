"""The file-based sources through ``load_data``: a folder of images, an .npz file, CIFAR-10."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from idx_testkit import check_message, isolate
from PIL import Image

from genlab.config import DataConfig
from genlab.data import load_data
from genlab.errors import DataError


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict:
    return isolate(monkeypatch, tmp_path)


def _all_images(data) -> torch.Tensor:
    return torch.cat([data.train.images, data.val.images, data.test.images])


def _rows(images: torch.Tensor | np.ndarray) -> list[bytes]:
    array = images.numpy() if isinstance(images, torch.Tensor) else images
    return sorted(row.tobytes() for row in array.reshape(array.shape[0], -1))


def _data_error(cfg: DataConfig, *names: str | Path) -> str:
    with pytest.raises(DataError) as info:
        load_data(cfg, progress=False)
    return check_message(info.value, *names)


# --- folder -------------------------------------------------------------------------------


def _png(path: Path, array: np.ndarray) -> Path:
    """Save uint8 (H, W) as a grey or (H, W, 3) as an RGB PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _image_folder(root: Path, classes: tuple[str, ...] = ("cat", "dog", "emu")) -> np.ndarray:
    """12 8x8 grey PNGs, four per class subfolder; returns them in sorted-path order."""
    rng = np.random.default_rng(1)
    arrays = rng.integers(0, 256, (12, 8, 8), dtype=np.uint8)
    for i, array in enumerate(arrays):
        _png(root / classes[i // 4] / f"img{i % 4:02d}.png", array)
    return arrays


def _folder_cfg(root: Path, **kwargs) -> DataConfig:
    return DataConfig(name="folder", path=str(root), binarize="none", val_fraction=0.25, **kwargs)


def test_folder_with_class_subfolders(tmp_path: Path) -> None:
    arrays = _image_folder(tmp_path / "imgs")
    data = load_data(_folder_cfg(tmp_path / "imgs"), progress=False)
    assert data.shape == (1, 8, 8) and data.levels == 256
    assert (len(data.train), len(data.val), len(data.test)) == (8, 3, 1)
    everything = _all_images(data)
    assert everything.dtype == torch.uint8 and everything.shape == (12, 1, 8, 8)
    assert _rows(everything) == _rows(arrays)
    # each image keeps the label of its subfolder (cat=0, dog=1, emu=2, sorted by name)
    expected = {arrays[i].tobytes(): i // 4 for i in range(12)}
    for split in (data.train, data.val, data.test):
        assert split.labels is not None
        for image, label in zip(split.images, split.labels, strict=True):
            assert expected[image[0].numpy().tobytes()] == int(label)


def test_flat_folder_has_no_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    for i in range(12):
        _png(tmp_path / "flat" / f"{i:02d}.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
    data = load_data(_folder_cfg(tmp_path / "flat"), progress=False)
    assert data.train.labels is None and data.test.labels is None
    assert len(_all_images(data)) == 12


def test_folder_missing(tmp_path: Path) -> None:
    _data_error(_folder_cfg(tmp_path / "no-such-folder"), "no-such-folder")


def test_folder_empty(tmp_path: Path) -> None:
    (tmp_path / "vacant-dir" / "sub").mkdir(parents=True)
    (tmp_path / "vacant-dir" / ".hidden.png").write_bytes(b"ignored")
    _data_error(_folder_cfg(tmp_path / "vacant-dir"), "vacant-dir")


def test_folder_with_a_text_file(tmp_path: Path) -> None:
    _image_folder(tmp_path / "imgs")
    (tmp_path / "imgs" / "dog" / "notes.txt").write_text("not an image")
    message = _data_error(_folder_cfg(tmp_path / "imgs"), tmp_path / "imgs" / "dog" / "notes.txt")
    assert str(tmp_path / "imgs" / "dog" / "notes.txt") in message


def test_folder_with_a_png_that_is_not_an_image(tmp_path: Path) -> None:
    _image_folder(tmp_path / "imgs")
    bad = tmp_path / "imgs" / "emu" / "broken.png"
    bad.write_bytes(os.urandom(200))
    message = _data_error(_folder_cfg(tmp_path / "imgs"), bad)
    assert str(bad) in message


def test_folder_with_a_truncated_png(tmp_path: Path) -> None:
    arrays = _image_folder(tmp_path / "imgs")
    bad = _png(tmp_path / "imgs" / "cat" / "zz.png", arrays[0])
    bad.write_bytes(bad.read_bytes()[:-30])
    _data_error(_folder_cfg(tmp_path / "imgs"), bad)


def test_folder_mixed_sizes_need_image_size(tmp_path: Path) -> None:
    _image_folder(tmp_path / "imgs")
    odd = _png(tmp_path / "imgs" / "dog" / "wide.png", np.zeros((8, 10), np.uint8))
    message = _data_error(_folder_cfg(tmp_path / "imgs"), odd)
    assert "data.image_size" in message and "10x8" in message


def test_folder_mixed_sizes_with_image_size_are_resized(tmp_path: Path) -> None:
    _image_folder(tmp_path / "imgs")
    _png(tmp_path / "imgs" / "dog" / "wide.png", np.full((8, 10), 200, np.uint8))
    _png(tmp_path / "imgs" / "emu" / "big.png", np.full((20, 20), 50, np.uint8))
    data = load_data(_folder_cfg(tmp_path / "imgs", image_size=6), progress=False)
    everything = _all_images(data)
    assert data.shape == (1, 6, 6) and everything.shape == (14, 1, 6, 6)
    flat_values = {int(image.min()) for image in everything if image.min() == image.max()}
    assert {200, 50} <= flat_values  # uniform images stay uniform when resized


def test_folder_rgb_and_grayscale(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    for i in range(12):
        _png(
            tmp_path / "rgb" / f"{i:02d}.png",
            rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
        )
    assert load_data(_folder_cfg(tmp_path / "rgb"), progress=False).shape == (3, 8, 8)
    grey = load_data(_folder_cfg(tmp_path / "rgb", grayscale=True), progress=False)
    assert grey.shape == (1, 8, 8)


# --- npz ------------------------------------------------------------------------------------


def _npz_cfg(path: Path, **kwargs) -> DataConfig:
    return DataConfig(name="npz", path=str(path), binarize="none", **kwargs)


def _save(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def test_npz_uint8_train_and_test(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    x_train = rng.integers(0, 256, (20, 5, 6), dtype=np.uint8)
    x_test = rng.integers(0, 256, (7, 5, 6), dtype=np.uint8)
    path = _save(
        tmp_path / "d.npz",
        x_train=x_train,
        y_train=np.arange(20) % 3,
        x_test=x_test,
        y_test=np.arange(7) % 3,
    )
    data = load_data(_npz_cfg(path, val_fraction=0.1), progress=False)
    assert data.shape == (1, 5, 6)
    assert (len(data.train), len(data.val), len(data.test)) == (18, 2, 7)
    assert torch.equal(data.test.images[:, 0], torch.from_numpy(x_test))  # official split kept
    assert torch.equal(data.test.labels, torch.arange(7) % 3)
    assert _rows(torch.cat([data.train.images, data.val.images])) == _rows(x_train)


def test_npz_float_in_unit_interval(tmp_path: Path) -> None:
    values = np.linspace(0.0, 1.0, 10 * 4 * 4, dtype=np.float32).reshape(10, 4, 4)
    path = _save(tmp_path / "f.npz", x_train=values)
    data = load_data(_npz_cfg(path, val_fraction=0.0, test_fraction=0.2), progress=False)
    everything = _all_images(data)
    assert everything.dtype == torch.uint8 and everything.shape == (10, 1, 4, 4)
    assert _rows(everything) == _rows(np.rint(values * 255).astype(np.uint8)[:, None])
    assert int(everything.min()) == 0 and int(everything.max()) == 255


def test_npz_images_labels_layout_gets_a_test_split(tmp_path: Path) -> None:
    images = np.random.default_rng(5).integers(0, 256, (40, 3, 4, 4), dtype=np.uint8)
    path = _save(tmp_path / "il.npz", images=images, labels=np.arange(40) % 2)
    data = load_data(_npz_cfg(path, val_fraction=0.25, test_fraction=0.1), progress=False)
    assert data.shape == (3, 4, 4)
    assert (len(data.train), len(data.val), len(data.test)) == (27, 9, 4)
    assert _rows(_all_images(data)) == _rows(images)
    assert data.test.labels is not None and data.test.labels.shape == (4,)


def test_npz_channels_last(tmp_path: Path) -> None:
    images = np.random.default_rng(6).integers(0, 256, (10, 4, 5, 3), dtype=np.uint8)
    path = _save(tmp_path / "hwc.npz", images=images)
    data = load_data(_npz_cfg(path, val_fraction=0.0), progress=False)
    assert data.shape == (3, 4, 5)
    assert _rows(_all_images(data)) == _rows(images.transpose(0, 3, 1, 2))


def test_npz_nan(tmp_path: Path) -> None:
    values = np.full((6, 4, 4), 0.5)
    values[2, 1, 1] = np.nan
    path = _save(tmp_path / "nan.npz", x_train=values)
    assert "NaN" in _data_error(_npz_cfg(path), path, "x_train")


@pytest.mark.parametrize("shape", [(6,), (6, 4), (6, 4, 4, 5), (6, 2, 4, 4), (6, 1, 4, 4, 1)])
def test_npz_wrong_shape(tmp_path: Path, shape: tuple[int, ...]) -> None:
    path = _save(tmp_path / "shape.npz", x_train=np.zeros(shape, np.uint8))
    assert str(shape) in _data_error(_npz_cfg(path), path, "x_train")


@pytest.mark.parametrize(
    "array",
    [
        np.full((6, 4, 4), 1.5),
        np.full((6, 4, 4), -0.25, np.float32),
        np.full((6, 4, 4), 256, np.int16),
        np.full((6, 4, 4), -1, np.int64),
    ],
    ids=["float>1", "float<0", "int>255", "int<0"],
)
def test_npz_values_out_of_range(tmp_path: Path, array: np.ndarray) -> None:
    path = _save(tmp_path / "range.npz", images=array)
    _data_error(_npz_cfg(path), path, "images")


def test_npz_label_count_mismatch(tmp_path: Path) -> None:
    path = _save(tmp_path / "lab.npz", x_train=np.zeros((6, 4, 4), np.uint8), y_train=np.zeros(5))
    message = _data_error(_npz_cfg(path), path, "y_train")
    assert "6" in message


def test_npz_missing_keys_lists_those_found(tmp_path: Path) -> None:
    path = _save(tmp_path / "keys.npz", pictures=np.zeros((6, 4, 4)), targets=np.zeros(6))
    message = _data_error(_npz_cfg(path), path)
    assert "pictures" in message and "targets" in message and "x_train" in message


@pytest.mark.parametrize("content", [b"", b"this is not a zip file at all", b"PK\x03\x04junk"])
def test_npz_not_a_zip(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    _data_error(_npz_cfg(path), path)


def test_npz_missing_file(tmp_path: Path) -> None:
    _data_error(_npz_cfg(tmp_path / "absent.npz"), "absent.npz")


def test_npz_path_naming_a_npy_file(tmp_path: Path) -> None:
    path = tmp_path / "images.npy"
    np.save(path, np.zeros((6, 4, 4), np.uint8))
    _data_error(_npz_cfg(path), path)


# --- CIFAR-10 ------------------------------------------------------------------------------

BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


def _cifar_batches(per_batch: int = 4) -> dict[str, dict]:
    rng = np.random.default_rng(7)
    return {
        name: {
            b"batch_label": f"{name} of 6".encode(),
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, per_batch)],
        }
        for name in BATCHES
    }


def _cifar_folder(root: Path, batches: dict[str, dict]) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return folder


def _cifar_tar(path: Path, batches: dict[str, dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, batch in batches.items():
            data = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _check_cifar(data, batches: dict[str, dict]) -> None:
    assert data.shape == (3, 32, 32)
    assert (len(data.train), len(data.val), len(data.test)) == (18, 2, 4)
    for split in (data.train, data.val, data.test):
        assert split.images.shape[1:] == (3, 32, 32) and split.images.dtype == torch.uint8
    test = batches["test_batch"]
    expected = torch.from_numpy(test[b"data"].reshape(4, 3, 32, 32))
    assert torch.equal(data.test.images, expected)
    assert data.test.labels.tolist() == test[b"labels"]
    train = np.concatenate([batches[n][b"data"] for n in BATCHES[:5]]).reshape(20, 3, 32, 32)
    assert _rows(torch.cat([data.train.images, data.val.images])) == _rows(train)


def _cifar_cfg(root: Path | None = None) -> DataConfig:
    path = None if root is None else str(root)
    return DataConfig(name="cifar10", path=path, download=False, binarize="none")


def test_cifar10_from_extracted_folder(tmp_path: Path) -> None:
    batches = _cifar_batches()
    _cifar_folder(tmp_path / "root", batches)
    _check_cifar(load_data(_cifar_cfg(tmp_path / "root"), progress=False), batches)


def test_cifar10_from_archive_found_in_genlab_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = _cifar_batches()
    _cifar_tar(tmp_path / "env" / "cifar10" / "cifar-10-python.tar.gz", batches)
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "env"))
    _check_cifar(load_data(_cifar_cfg(), progress=False), batches)


def test_cifar10_archive_in_the_system_dir(tmp_path: Path, _isolated: dict) -> None:
    batches = _cifar_batches()
    _cifar_tar(_isolated["system"] / "cifar-10-python.tar.gz", batches)
    _check_cifar(load_data(_cifar_cfg(tmp_path / "empty"), progress=False), batches)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo hacked > {self.marker}",))


def test_cifar10_malicious_pickle_is_refused(tmp_path: Path) -> None:
    batches = _cifar_batches()
    folder = _cifar_folder(tmp_path / "root", batches)
    marker = tmp_path / "hacked"
    evil = dict(batches["data_batch_1"])
    evil[b"labels"] = _Exploit(marker)
    (folder / "data_batch_1").write_bytes(pickle.dumps(evil, protocol=2))
    message = _data_error(_cifar_cfg(tmp_path / "root"), folder / "data_batch_1")
    assert "refusing" in message and "system" in message
    assert not marker.exists()


def test_cifar10_malicious_pickle_in_archive_is_refused(tmp_path: Path) -> None:
    batches = _cifar_batches()
    marker = tmp_path / "hacked"
    batches["test_batch"] = _Exploit(marker)  # type: ignore[assignment]
    archive = _cifar_tar(tmp_path / "root" / "cifar-10-python.tar.gz", batches)
    message = _data_error(_cifar_cfg(tmp_path / "root"), archive, "test_batch")
    assert "refusing" in message
    assert not marker.exists()


def test_cifar10_corrupt_archive(tmp_path: Path) -> None:
    archive = _cifar_tar(tmp_path / "root" / "cifar-10-python.tar.gz", _cifar_batches())
    archive.write_bytes(archive.read_bytes()[:-100])
    _data_error(_cifar_cfg(tmp_path / "root"), archive)


def test_cifar10_missing_batch(tmp_path: Path) -> None:
    folder = _cifar_folder(tmp_path / "root", _cifar_batches())
    (folder / "data_batch_3").unlink()
    _data_error(_cifar_cfg(tmp_path / "root"), folder / "data_batch_3")


def test_cifar10_wrong_row_length(tmp_path: Path) -> None:
    batches = _cifar_batches()
    batches["data_batch_2"][b"data"] = np.zeros((4, 1024), np.uint8)
    folder = _cifar_folder(tmp_path / "root", batches)
    _data_error(_cifar_cfg(tmp_path / "root"), folder / "data_batch_2")
