"""Class names: every labelled source names its classes, splits and run folders keep them,
and labels outside the named classes are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from idx_testkit import write_idx_dataset
from PIL import Image

from genlab.config import DataConfig
from genlab.data import ImageSet, load_data
from genlab.data.sources_idx import CLASSES
from genlab.errors import DataError
from genlab.models.base import DataInfo
from genlab.runs.folder import RunDir, data_info_record


def test_digits_are_named_by_number_and_counted() -> None:
    data = load_data(DataConfig(name="digits"), progress=False)
    assert data.classes == tuple(str(i) for i in range(10))
    counts = data.class_counts
    assert sum(counts) == len(data.train) and len(counts) == 10
    assert counts == tuple(int((data.train.labels == c).sum()) for c in range(10))


def test_fashion_mnist_names_follow_the_label_order(tmp_path: Path) -> None:
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    write_idx_dataset(folder, 20, 5)
    data = load_data(
        DataConfig(name="fashion-mnist", path=str(folder), val_fraction=0.0), progress=False
    )
    assert data.classes == CLASSES["fashion-mnist"]
    assert data.classes[7] == "sneaker" and data.classes[9] == "ankle boot"
    assert data.test.classes == data.classes


def test_idx_label_beyond_the_classes_is_one_data_error(tmp_path: Path) -> None:
    from idx_testkit import idx_arrays, write_idx

    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    arrays = idx_arrays(6, 3)
    arrays["train-labels-idx1-ubyte"][2] = 10
    for stem, array in arrays.items():
        write_idx(folder / f"{stem}.gz", array)
    with pytest.raises(DataError, match="holds the label 10, but the data set has 10 classes"):
        load_data(DataConfig(name="fashion-mnist", path=str(folder)), progress=False)


def test_folder_classes_are_its_subfolders(tmp_path: Path) -> None:
    for name in ("cats", "birds"):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(np.full((4, 4), 40 * i, np.uint8)).save(tmp_path / name / f"{i}.png")
    data = load_data(DataConfig(name="folder", path=str(tmp_path)), progress=False)
    assert data.classes == ("birds", "cats")


def test_npz_labels_are_named_by_number_over_both_splits(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    x = np.zeros((6, 4, 4), np.uint8)
    np.savez(path, x_train=x, y_train=np.array([0, 1, 0, 1, 0, 1]), x_test=x[:2], y_test=[3, 0])
    data = load_data(DataConfig(name="npz", path=str(path)), progress=False)
    assert data.classes == ("0", "1", "2", "3")
    np.savez(path, images=x, labels=np.array([0, -1, 0, 1, 0, 1]))
    with pytest.raises(DataError, match="label -1"):
        load_data(DataConfig(name="npz", path=str(path)), progress=False)


def test_unlabelled_sets_have_no_classes(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, images=np.zeros((6, 4, 4), np.uint8))
    data = load_data(DataConfig(name="npz", path=str(path)), progress=False)
    assert data.classes == () and data.class_counts == ()


def test_image_set_keeps_names_through_subsets() -> None:
    images = torch.zeros(4, 1, 2, 2, dtype=torch.uint8)
    named = ImageSet(images, torch.tensor([0, 2, 1, 2]), ("a", "b", "c"))
    part = named.subset(torch.tensor([1, 3]))
    assert part.classes == ("a", "b", "c") and part.class_counts() == (0, 0, 2)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        ImageSet(images, torch.tensor([0, 3, 1, 2]), ("a", "b", "c"))


def test_run_json_keeps_classes_and_an_older_run_reads_unlabelled(tmp_path: Path) -> None:
    info = DataInfo((1, 8, 8), 2, ("a", "b"), (3, 5))
    record = data_info_record(info)
    assert record == {
        "shape": [1, 8, 8],
        "levels": 2,
        "classes": ["a", "b"],
        "class_counts": [3, 5],
    }
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.info_path.write_text(json.dumps({"data_info": record}))
    assert run.data_info() == info
    run.info_path.write_text(json.dumps({"data_info": {"shape": [1, 8, 8], "levels": 2}}))
    assert run.data_info() == DataInfo((1, 8, 8), 2)
    assert data_info_record(DataInfo((1, 8, 8), 2)) == {"shape": [1, 8, 8], "levels": 2}
