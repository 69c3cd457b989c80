"""Data errors through the CLI: exit status 2, one stderr line naming the file, no run folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from idx_testkit import idx_bytes, isolate, write_bytes, write_idx_dataset
from PIL import Image

from genlab.cli import main

TINY = [
    "--set",
    "model.hidden=[8]",
    "--set",
    "model.latent_dim=2",
    "--set",
    "train.epochs=1",
    "--set",
    "train.progress=false",
]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def _fails_cleanly(
    argv: list[str], offending: Path, runs: Path, capsys: pytest.CaptureFixture[str]
) -> str:
    code = main(["train", *argv, *TINY, "--set", f"runs_dir={runs}"])
    captured = capsys.readouterr()
    assert code == 2, captured
    assert captured.err.endswith("\n") and captured.err.count("\n") == 1, captured.err
    line = captured.err.rstrip("\n")
    assert line.startswith("genlab: error: ")
    assert str(offending) in line
    assert "Traceback" not in line and captured.out == ""
    assert not runs.exists()
    return line


def test_corrupt_idx_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "data"
    arrays = write_idx_dataset(data_dir / "mnist", 6)
    bad = write_bytes(
        data_dir / "mnist" / "train-images-idx3-ubyte.gz",
        idx_bytes(arrays["train-images-idx3-ubyte"], magic=0x00000903),
        gz=True,
    )
    argv = ["--data-dir", str(data_dir), "--set", "data.name=mnist", "--set", "data.download=false"]
    line = _fails_cleanly(argv, bad, tmp_path / "runs", capsys)
    assert "0x00000903" in line


def test_idx_files_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "nothing-here"
    argv = ["--data-dir", str(data_dir), "--set", "data.name=mnist", "--set", "data.download=false"]
    line = _fails_cleanly(argv, data_dir / "mnist", tmp_path / "runs", capsys)
    assert "train-images-idx3-ubyte" in line and "data.download" in line


def test_folder_with_a_non_image_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / f"{i}.png")
    bad = folder / "readme.txt"
    bad.write_text("these are my pictures\nsecond line\n")
    argv = ["--set", "data.name=folder", "--set", f"data.path={folder}"]
    _fails_cleanly(argv, bad, tmp_path / "runs", capsys)


def test_folder_with_a_broken_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "a.png")
    bad = folder / "b.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0garbage\n" * 10)
    argv = ["--set", "data.name=folder", "--set", f"data.path={folder}"]
    _fails_cleanly(argv, bad, tmp_path / "runs", capsys)
