"""Hostile data files: bombs, lying headers, pickles, truncation. Each is a one-line DataError.

Nothing here allocates or inflates much: bombs are built from one repeated deflate block, and
the enormous shapes exist only in hand-written headers.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from data_helpers import LocalServer
from idx_testkit import check_message, idx_bytes, isolate, write_bytes, write_idx_dataset
from PIL import Image

from genlab.cli import main
from genlab.config import DataConfig
from genlab.data import download, images, sources_folder
from genlab.data.idx import read_idx
from genlab.data.sources import DATASETS
from genlab.errors import DataError

MIB = 1 << 20
IMAGES = np.arange(5 * 8 * 8, dtype=np.uint8).reshape(5, 8, 8)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def _error(call: object, *names: str | Path) -> str:
    with pytest.raises(DataError) as info:
        call()  # type: ignore[operator]
    return check_message(info.value, *names)


def _load(name: str, path: Path, **kwargs: object) -> object:
    return DATASETS.get(name).load(DataConfig(name=name, path=str(path), **kwargs), False)  # type: ignore[arg-type]


# --- IDX -----------------------------------------------------------------------------------


def idx_header(*dims: int) -> bytes:
    return bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def gzip_bomb(prefix: bytes, mib_of_zeros: int) -> bytes:
    """gzip of ``prefix`` then ``mib_of_zeros`` MiB of zeros, without compressing them all.

    After a full flush deflate restarts from an empty history, so every 1 MiB block of zeros
    compresses to the same ~1 KB: 10 GiB of output costs 10 MB of input. The trailer's CRC
    covers only what the compressor saw; a bounded reader refuses long before reaching it.
    """
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    start = comp.compress(prefix) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(bytes(MIB)) + comp.flush(zlib.Z_FULL_FLUSH)
    assert comp.compress(bytes(MIB)) + comp.flush(zlib.Z_FULL_FLUSH) == block
    return start + block * mib_of_zeros + comp.flush()


class CountingGzip(gzip.GzipFile):
    """A GzipFile that counts the bytes it inflates (reads may be counted twice: an upper bound)."""

    inflated = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        CountingGzip.inflated += len(data)
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = super().readinto(buffer)
        CountingGzip.inflated += count
        return count


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> type[CountingGzip]:
    CountingGzip.inflated = 0
    monkeypatch.setattr(gzip, "GzipFile", CountingGzip)
    return CountingGzip


def test_gzip_bomb_builder_really_inflates() -> None:
    bomb = gzip_bomb(idx_header(5, 8, 8), 64)
    assert len(bomb) < 100_000
    assert len(zlib.decompressobj(31).decompress(bomb, 64 * MIB)) == 64 * MIB


def test_gzip_bomb_after_a_small_header_stops_past_the_declared_size(
    tmp_path: Path, counting: type[CountingGzip]
) -> None:
    bomb = gzip_bomb(idx_header(5, 8, 8) + IMAGES.tobytes(), 10 * 1024)  # 10 MB -> 10 GiB
    path = write_bytes(tmp_path / "bomb.gz", bomb, gz=False)
    message = _error(lambda: read_idx(path, ndim=3), path)
    assert "more than 1048576 bytes of trailing garbage" in message
    assert counting.inflated <= 2 * (IMAGES.size + 16 + MIB + 1)


def test_gzip_bomb_declaring_a_huge_shape_is_refused_from_the_header(
    tmp_path: Path, counting: type[CountingGzip]
) -> None:
    path = write_bytes(
        tmp_path / "huge.gz", gzip_bomb(idx_header(60000, 65535, 65535), 16), gz=False
    )
    message = _error(lambda: read_idx(path, ndim=3), path, "60000x65535x65535")
    assert "2 GiB" in message
    assert counting.inflated <= 2 * 16


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_declared_shape_disagrees_with_the_bytes(tmp_path: Path, gz: bool) -> None:
    short = write_bytes(tmp_path / "short", idx_header(6, 8, 8) + IMAGES.tobytes(), gz=gz)
    assert "truncated" in _error(lambda: read_idx(short, ndim=3), short)
    long = write_bytes(tmp_path / "long", idx_header(4, 8, 8) + IMAGES.tobytes(), gz=gz)
    assert "64 bytes of trailing garbage" in _error(lambda: read_idx(long, ndim=3), long)


def test_huge_shape_in_a_small_raw_file_is_truncated(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "raw", idx_header(1 << 20, 1 << 12, 1 << 12), gz=False)
    assert "truncated" in _error(lambda: read_idx(path, ndim=3), path)


def test_header_over_the_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "MAX_ARRAY_BYTES", 100)
    path = write_bytes(tmp_path / "big.gz", idx_bytes(IMAGES), gz=True)
    assert "more than the 100 bytes" in _error(lambda: read_idx(path, ndim=3), path)


@pytest.mark.parametrize("cut", [1, 3, 10, 40, -9, -1])
def test_truncated_gzip_idx(tmp_path: Path, cut: int) -> None:
    packed = gzip.compress(idx_bytes(IMAGES))
    path = write_bytes(tmp_path / "cut.gz", packed[:cut], gz=False)
    _error(lambda: read_idx(path, ndim=3), path)


@pytest.mark.parametrize("garbage", [b"\x1f\x8b", b"\x1f\x8b" + bytes(range(256)) * 4])
def test_garbage_gzip(tmp_path: Path, garbage: bytes) -> None:
    path = write_bytes(tmp_path / "junk.gz", garbage, gz=False)
    assert "gzip" in _error(lambda: read_idx(path), path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "regular file" in _error(lambda: read_idx(fifo), fifo)
    assert "regular file" in _error(lambda: _load("npz", fifo), fifo)
    folder = tmp_path / "pictures"
    folder.mkdir()
    os.mkfifo(folder / "a.png")
    assert "regular file" in _error(lambda: _load("folder", folder), folder / "a.png")


# --- npz -----------------------------------------------------------------------------------


def npy_bytes(shape: tuple[int, ...], descr: str = "|u1", data: bytes = b"") -> bytes:
    """A .npy header declaring ``shape`` of ``descr``, followed by ``data`` (nothing allocated)."""
    out = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue() + data


def npz_file(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_npz_header_declaring_an_enormous_shape(tmp_path: Path, method: int) -> None:
    member = npy_bytes((10**12, 28, 28), data=bytes(64))
    path = npz_file(tmp_path / "huge.npz", {"x_train.npy": member}, method)
    message = _error(lambda: _load("npz", path), path, "x_train", "(1000000000000, 28, 28)")
    assert "2 GiB" in message


def test_npz_header_disagreeing_with_the_member_size(tmp_path: Path) -> None:
    path = npz_file(tmp_path / "short.npz", {"images.npy": npy_bytes((5, 8, 8), data=bytes(10))})
    assert "10 data bytes" in _error(lambda: _load("npz", path), path, "images", "320 bytes")


def test_npz_zip_bomb_member(tmp_path: Path) -> None:
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("images.npy", "w", force_zip64=True) as member:
            member.write(npy_bytes((5, 8, 8)))
            for _ in range(64):
                member.write(bytes(MIB))
    assert path.stat().st_size < 200_000
    _error(lambda: _load("npz", path), path, "images", "320 bytes")


@pytest.mark.parametrize("obj", [np.array([{"a": 1}] * 3, dtype=object), np.array([[None] * 4])])
def test_npz_object_array_is_never_unpickled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, obj: np.ndarray
) -> None:
    path = tmp_path / "obj.npz"
    np.savez(path, images=obj)

    def refuse(*args: object, **kwargs: object) -> object:
        raise AssertionError("unpickled a user's file")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    assert "Python objects" in _error(lambda: _load("npz", path), path, "images")


@pytest.mark.parametrize(
    ("array", "needle"),
    [
        (np.zeros((5, 8, 8), np.complex64), "expected uint8 or float"),
        (np.zeros((5, 8, 8), bool), "expected uint8 or float"),
        (np.zeros((5, 8, 8), "U3"), "expected uint8 or float"),
        (np.zeros((5, 8, 8, 8, 2), np.uint8), "expected (N, H, W), (N, H, W, C) or (N, C, H, W)"),
        (np.zeros((5, 2, 8, 8), np.uint8), "expected (N, H, W), (N, H, W, C) or (N, C, H, W)"),
    ],
)
def test_npz_wrong_dtype_or_layout(tmp_path: Path, array: np.ndarray, needle: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, images=array)
    assert needle in _error(lambda: _load("npz", path), path, "images")


@pytest.mark.parametrize(
    "members",
    [
        {"images.npy": b"not an npy member"},
        {"images.npy": npy_bytes((-5, 8, 8))},
        {"images.npy": npy_bytes((5, 8, 8), descr="<i999")},
        {"images.npy": b"\x93NUMPY\x03\x00" + bytes(20)},
        {"images": npy_bytes((5, 8, 8), data=bytes(IMAGES.size))[:20]},
    ],
)
def test_npz_malformed_members(tmp_path: Path, members: dict[str, bytes]) -> None:
    path = npz_file(tmp_path / "bad.npz", members)
    _error(lambda: _load("npz", path), path)


def test_npz_corrupt_data_fails_its_crc(tmp_path: Path) -> None:
    path = tmp_path / "crc.npz"
    np.savez(path, images=IMAGES)
    raw = bytearray(path.read_bytes())
    raw[raw.index(IMAGES.tobytes()) + 7] ^= 0xFF
    path.write_bytes(bytes(raw))
    _error(lambda: _load("npz", path), path)


# --- images in a folder --------------------------------------------------------------------


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` grey pixels and holds none."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def picture_folder(tmp_path: Path, count: int = 3) -> Path:
    folder = tmp_path / "pictures"
    folder.mkdir(exist_ok=True)
    for i in range(count):
        Image.fromarray(IMAGES[i]).save(folder / f"{i}.png")
    return folder


@pytest.mark.parametrize(
    ("size", "needle"),
    [((100_000, 100_000), "decompression bomb"), ((9000, 9000), "67108864 pixels")],
)
def test_png_declaring_too_many_pixels(tmp_path: Path, size: tuple[int, int], needle: str) -> None:
    folder = picture_folder(tmp_path)
    bomb = folder / "z.png"
    bomb.write_bytes(png_header(*size))
    assert needle in _error(lambda: _load("folder", folder), bomb)


def test_pixel_limits_can_be_lowered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = picture_folder(tmp_path)
    monkeypatch.setattr(sources_folder, "MAX_IMAGE_PIXELS", 63)
    assert "63 pixels" in _error(lambda: _load("folder", folder), folder / "0.png")
    monkeypatch.setattr(sources_folder, "MAX_IMAGE_PIXELS", 1 << 26)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40)  # 64 pixels: PIL's warning, as an error
    assert "decompression bomb" in _error(lambda: _load("folder", folder), folder / "0.png")


def test_folder_too_big_to_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = picture_folder(tmp_path)
    monkeypatch.setattr(sources_folder, "MAX_DATASET_BYTES", 100)
    assert "data.image_size" in _error(lambda: _load("folder", folder), folder, "192 bytes")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x89PNG\r\n\x1a\n",
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
        png_header(8, 8)[:30],
        png_header(8, 8),  # no pixel data
        b"\xff\xd8\xff\xe0" + bytes(100),  # a JPEG signature and nothing
    ],
)
def test_garbage_and_truncated_images(tmp_path: Path, content: bytes) -> None:
    folder = picture_folder(tmp_path)
    bad = folder / "bad.png"
    bad.write_bytes(content)
    _error(lambda: _load("folder", folder), bad)


def test_truncated_png_data(tmp_path: Path) -> None:
    folder = picture_folder(tmp_path)
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, format="PNG")
    for cut in (60, len(buffer.getvalue()) // 2, len(buffer.getvalue()) - 30):
        bad = folder / "bad.png"
        bad.write_bytes(buffer.getvalue()[:cut])
        _error(lambda: _load("folder", folder, image_size=8), bad)


# --- download ------------------------------------------------------------------------------


def test_download_gzip_bomb_is_not_inflated(
    tmp_path: Path, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 4 * MIB)
    server.files["/b.gz"] = gzip_bomb(b"", 64)
    url = server.url + "b.gz"
    dest = tmp_path / "dl" / "b.gz"
    fetch = download.fetch
    assert "4 MiB" in _error(
        lambda: fetch(url, dest, sha256="0" * 64, progress=False, hash_uncompressed=True), url
    )
    assert not dest.parent.exists()  # the folder it made for the file is gone too
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 1000)
    assert "more than 1000 bytes" in _error(
        lambda: fetch(url, dest, sha256="0" * 64, progress=False), url
    )
    assert not dest.parent.exists()


# --- through the command line --------------------------------------------------------------

TINY = ["--set", "model.hidden=[8]", "--set", "model.latent_dim=2", "--set", "train.epochs=1"]


def _cli_fails(
    argv: list[str], offending: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> str:
    runs = tmp_path / "runs"
    code = main(
        ["train", *argv, *TINY, "--set", "train.progress=false", "--set", f"runs_dir={runs}"]
    )
    captured = capsys.readouterr()
    assert code == 2, captured
    assert captured.err.count("\n") == 1 and captured.err.startswith("genlab: error: "), captured
    assert str(offending) in captured.err and captured.out == ""
    assert not runs.exists()
    return captured.err


def test_cli_idx_gzip_bomb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "data"
    write_idx_dataset(data_dir / "mnist", 5)
    bomb = data_dir / "mnist" / "train-images-idx3-ubyte.gz"
    bomb.write_bytes(gzip_bomb(idx_header(5, 4, 4) + bytes(80), 1024))
    argv = ["--data-dir", str(data_dir), "--set", "data.name=mnist", "--set", "data.download=false"]
    assert "trailing garbage" in _cli_fails(argv, bomb, tmp_path, capsys)


@pytest.mark.parametrize("kind", ["huge", "object"])
def test_cli_hostile_npz(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    path = tmp_path / "hostile.npz"
    if kind == "huge":
        npz_file(path, {"x_train.npy": npy_bytes((1 << 40, 28, 28))})
    else:
        np.savez(path, x_train=np.array([object()] * 5, dtype=object))
    _cli_fails(["--set", "data.name=npz", "--set", f"data.path={path}"], path, tmp_path, capsys)


def test_cli_png_bomb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = picture_folder(tmp_path, 5)
    bomb = folder / "z.png"
    bomb.write_bytes(png_header(1 << 20, 1 << 20))
    argv = ["--set", "data.name=folder", "--set", f"data.path={folder}"]
    assert "decompression bomb" in _cli_fails(argv, bomb, tmp_path, capsys)
