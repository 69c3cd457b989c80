"""``--class`` and ``--per-class``: names, indices and refusals; the labelled per-class grid."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.class_choice import class_index, class_request
from genlab.errors import ConfigError
from genlab.imagegrid import save_grid

FASHION = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker")


def test_a_class_is_named_or_numbered() -> None:
    assert class_index(FASHION, "sneaker") == 7
    assert class_index(FASHION, "Sneaker") == 7
    assert class_index(FASHION, " t-shirt/top ") == 0
    assert class_index(FASHION, "3") == 3
    assert class_index(FASHION, 5) == 5
    # a name that is a number wins over the index (digits are named by their digit)
    assert class_index(("9", "8", "7"), "8") == 1


@pytest.mark.parametrize("asked", ["snaker", "8", "-1", "", "9" * 5000, "\u00b2"])
def test_unknown_class_lists_the_classes(asked: str) -> None:
    with pytest.raises(ConfigError, match="no such class; the run's classes are 0 t-shirt/top"):
        class_index(FASHION, asked)


def test_requests_for_labels() -> None:
    model = SimpleNamespace(classes=("a", "b", "c"), family="vae")
    n, request = class_request(model, 5, None, None)
    assert n == 5 and request.labels is None and request.tag == ""
    n, request = class_request(model, 5, "b", None)
    assert n == 5 and request.labels.tolist() == [1] * 5 and request.tag == "-class1-b"
    n, request = class_request(model, 99, None, 2)
    assert n == 6 and request.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert request.rows == ("a", "b", "c") and request.tag == "-per-class2"


def test_refusals() -> None:
    plain = SimpleNamespace(classes=(), family="gan")
    with pytest.raises(ConfigError, match="--class needs a conditional run .* gan run is uncond"):
        class_request(plain, 4, "a", None)
    with pytest.raises(ConfigError, match="--per-class needs a conditional run"):
        class_request(plain, 4, None, 3)
    model = SimpleNamespace(classes=("a", "b"), family="vae")
    with pytest.raises(ConfigError, match="--class and --per-class do not go together"):
        class_request(model, 4, "a", 3)
    with pytest.raises(ConfigError, match="--per-class must be a positive integer, got 0"):
        class_request(model, 4, None, 0)


def test_per_class_grid_names_each_row(tmp_path: Path) -> None:
    images = torch.zeros(6, 1, 8, 8)
    images[3:] = 1.0  # the second row white, the first black
    plain = save_grid(images, tmp_path / "plain.png", 3)
    named = save_grid(images, tmp_path / "named.png", 3, rows=("first", "second"))
    a = np.asarray(Image.open(plain))
    b = np.asarray(Image.open(named))
    assert b.shape[0] == a.shape[0] and b.shape[1] > a.shape[1]
    margin = b.shape[1] - a.shape[1]
    assert (b[:, margin:] == a).all()  # the grid itself is unchanged, shifted right
    left = b[:, :margin]
    top, bottom = left[: a.shape[0] // 2], left[a.shape[0] // 2 :]
    assert (top < 128).any() and (bottom < 128).any()  # text written beside each row
