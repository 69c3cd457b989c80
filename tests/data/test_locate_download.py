"""Where dataset files are found (search order), and verified downloads from a local server."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from data_helpers import LocalServer
from idx_testkit import IDX_STEMS, check_message, idx_arrays, idx_bytes, isolate, write_idx_dataset

from genlab.config import DataConfig
from genlab.data import catalog, load_data, locate
from genlab.errors import DataError


@pytest.fixture(autouse=True)
def roots(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Path]:
    iso = isolate(monkeypatch, tmp_path)
    return {
        "data_path": tmp_path / "data-path",
        "genlab_data": tmp_path / "genlab-data",
        "cache": iso["cache_home"] / "genlab",
        "system": iso["system"],
    }


def _count(cfg: DataConfig) -> int:
    """How many training images the loaded dataset has (val_fraction is 0)."""
    data = load_data(cfg, progress=False)
    assert len(data.val) == 0 and data.shape == (1, 4, 4)
    return len(data.train)


# --- search order ---------------------------------------------------------------------------


def test_search_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, roots: dict[str, Path]
) -> None:
    monkeypatch.setenv("GENLAB_DATA", str(roots["genlab_data"]))
    sizes = {"data_path": 5, "genlab_data": 6, "cache": 7, "system": 8}
    folders = {
        "data_path": roots["data_path"] / "mnist",
        "genlab_data": roots["genlab_data"] / "mnist",
        "cache": roots["cache"] / "mnist",
        "system": roots["system"],  # files directly in the root are found too
    }
    for key, n in sizes.items():
        write_idx_dataset(folders[key], n, seed=n)
    cfg = DataConfig(name="mnist", path=str(roots["data_path"]), download=False, val_fraction=0.0)
    for key, n in sizes.items():
        assert _count(cfg) == n, key
        shutil.rmtree(folders[key])
    with pytest.raises(DataError):
        load_data(cfg, progress=False)


def test_name_folder_wins_over_root_in_the_same_root(roots: dict[str, Path]) -> None:
    write_idx_dataset(roots["data_path"], 5, seed=1)
    write_idx_dataset(roots["data_path"] / "mnist", 9, seed=2)
    cfg = DataConfig(name="mnist", path=str(roots["data_path"]), download=False, val_fraction=0)
    assert _count(cfg) == 9


def test_incomplete_folder_is_skipped(roots: dict[str, Path], monkeypatch) -> None:
    monkeypatch.setenv("GENLAB_DATA", str(roots["genlab_data"]))
    write_idx_dataset(roots["data_path"] / "mnist", 5)
    (roots["data_path"] / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    write_idx_dataset(roots["genlab_data"] / "mnist", 6, gz=False)  # raw names accepted too
    cfg = DataConfig(name="mnist", path=str(roots["data_path"]), download=False, val_fraction=0)
    assert _count(cfg) == 6


def test_relative_xdg_cache_home_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert locate.user_cache_dir() == tmp_path / "home" / ".cache" / "genlab"


def test_nothing_anywhere_lists_the_searched_places(
    monkeypatch: pytest.MonkeyPatch, roots: dict[str, Path]
) -> None:
    monkeypatch.setenv("GENLAB_DATA", str(roots["genlab_data"]))
    cfg = DataConfig(name="mnist", path=str(roots["data_path"]), download=False)
    with pytest.raises(DataError) as info:
        load_data(cfg, progress=False)
    message = check_message(info.value, "train-images-idx3-ubyte.gz", "data.download")
    for key in ("data_path", "genlab_data", "cache", "system"):
        assert str(roots[key]) in message and str(roots[key] / "mnist") in message, key
    order = [message.index(str(roots[key] / "mnist")) for key in roots]
    assert order == sorted(order)  # listed in search order


# --- downloads ------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer(cut=3)
    yield local
    local.close()


def _gz_dataset(n_train: int = 10, n_test: int = 4, **gzip_args) -> dict[str, tuple[bytes, bytes]]:
    """File name -> (raw IDX bytes, gzipped bytes) of a tiny dataset."""
    arrays = idx_arrays(n_train, n_test, seed=n_train)
    return {
        f"{stem}.gz": (idx_bytes(a), gzip.compress(idx_bytes(a), mtime=0, **gzip_args))
        for stem, a in arrays.items()
    }


def _fake_catalog(
    monkeypatch: pytest.MonkeyPatch, dataset: dict[str, tuple[bytes, bytes]], *, content: bool
) -> None:
    """Replace the catalog entry of 'mnist' (where locate looks it up: catalog.CATALOG)."""
    files = tuple(
        catalog.RemoteFile(
            name,
            hashlib.sha256(raw if content else packed).hexdigest(),
            content,
            (name, name.removesuffix(".gz")),
        )
        for name, (raw, packed) in dataset.items()
    )
    entry = catalog.DatasetFiles("http://127.0.0.1:9/unreachable/", files)
    monkeypatch.setattr(catalog, "CATALOG", {**catalog.CATALOG, "mnist": entry})
    assert [f.name for f in files] == [f"{stem}.gz" for stem in IDX_STEMS]


def _download_cfg(roots: dict[str, Path], mirror: str) -> DataConfig:
    return DataConfig(name="mnist", path=str(roots["data_path"]), mirror=mirror, val_fraction=0)


def _leftovers(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_download_through_mirror(
    monkeypatch: pytest.MonkeyPatch, server: LocalServer, roots: dict[str, Path]
) -> None:
    dataset = _gz_dataset()
    _fake_catalog(monkeypatch, dataset, content=False)
    server.files.update({f"/{name}": packed for name, (_, packed) in dataset.items()})
    cfg = _download_cfg(roots, server.url)
    assert _count(cfg) == 10
    target = roots["data_path"] / "mnist"
    assert _leftovers(target) == sorted(dataset)
    for name, (_, packed) in dataset.items():
        assert (target / name).read_bytes() == packed
    server.close()  # found on disk from now on: no network needed
    assert _count(cfg) == 10


def test_download_mirror_without_trailing_slash_and_subfolder(
    monkeypatch: pytest.MonkeyPatch, server: LocalServer, roots: dict[str, Path]
) -> None:
    dataset = _gz_dataset()
    _fake_catalog(monkeypatch, dataset, content=False)
    server.files.update({f"/m/{name}": packed for name, (_, packed) in dataset.items()})
    assert _count(_download_cfg(roots, server.url + "m")) == 10


def test_download_goes_to_genlab_data_then_cache(
    monkeypatch: pytest.MonkeyPatch, server: LocalServer, roots: dict[str, Path]
) -> None:
    dataset = _gz_dataset()
    _fake_catalog(monkeypatch, dataset, content=False)
    server.files.update({f"/{name}": packed for name, (_, packed) in dataset.items()})
    cfg = DataConfig(name="mnist", mirror=server.url, val_fraction=0)
    assert _count(cfg) == 10
    assert _leftovers(roots["cache"] / "mnist") == sorted(dataset)
    monkeypatch.setenv("GENLAB_DATA", str(roots["genlab_data"]))
    shutil.rmtree(roots["cache"])
    assert _count(cfg) == 10
    assert _leftovers(roots["genlab_data"] / "mnist") == sorted(dataset)


def test_recompressed_file_verified_by_content(
    monkeypatch: pytest.MonkeyPatch, server: LocalServer, roots: dict[str, Path]
) -> None:
    """Debian recompresses the .gz files: content hashes still match, byte hashes do not."""
    dataset = _gz_dataset()
    _fake_catalog(monkeypatch, dataset, content=True)
    recompressed = {
        name: gzip.compress(raw, compresslevel=1, mtime=12345) for name, (raw, _) in dataset.items()
    }
    assert all(recompressed[n] != dataset[n][1] for n in dataset)
    server.files.update({f"/{name}": data for name, data in recompressed.items()})
    assert _count(_download_cfg(roots, server.url)) == 10
    target = roots["data_path"] / "mnist"
    assert _leftovers(target) == sorted(dataset)
    assert (target / "train-images-idx3-ubyte.gz").read_bytes() == recompressed[
        "train-images-idx3-ubyte.gz"
    ]


def test_content_hash_rejects_other_content(
    monkeypatch: pytest.MonkeyPatch, server: LocalServer, roots: dict[str, Path]
) -> None:
    dataset = _gz_dataset()
    _fake_catalog(monkeypatch, dataset, content=True)
    other = _gz_dataset(n_train=11)
    server.files.update({f"/{name}": packed for name, (_, packed) in other.items()})
    with pytest.raises(DataError) as info:
        load_data(_download_cfg(roots, server.url), progress=False)
    message = check_message(info.value, "train-images-idx3-ubyte.gz")
    assert "sha256" in message.lower()
    assert _leftovers(roots["data_path"] / "mnist") == []


def _failed_download(
    monkeypatch: pytest.MonkeyPatch, server: LocalServer, roots: dict[str, Path], **files: bytes
) -> str:
    """Serve the dataset with the first file replaced/broken; return the DataError message."""
    dataset = _gz_dataset()
    _fake_catalog(monkeypatch, dataset, content=False)
    server.files.update({f"/{name}": packed for name, (_, packed) in dataset.items()})
    server.files.update({f"/{name}": data for name, data in files.items()})
    with pytest.raises(DataError) as info:
        load_data(_download_cfg(roots, server.url), progress=False)
    message = check_message(info.value, "train-images-idx3-ubyte.gz", server.url)
    target = roots["data_path"] / "mnist"
    assert _leftovers(target) == []  # neither a partial file nor a temporary one
    assert _leftovers(roots["data_path"]) in ([], ["mnist"])
    return message


def test_truncated_download_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, server: LocalServer, roots: dict[str, Path]
) -> None:
    server.truncate.add("/train-images-idx3-ubyte.gz")
    message = _failed_download(monkeypatch, server, roots)
    # The code words it "download incomplete (received X of Y bytes ...)".
    assert "incomplete" in message or "truncated" in message
    size = len(_gz_dataset()["train-images-idx3-ubyte.gz"][1])
    assert f"received {size // 3} of {size} bytes" in message


def test_corrupted_download_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, server: LocalServer, roots: dict[str, Path]
) -> None:
    good = _gz_dataset()["train-images-idx3-ubyte.gz"][1]
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x55  # same length, different bytes
    message = _failed_download(monkeypatch, server, roots, **{"train-images-idx3-ubyte.gz": bad})
    assert "checksum mismatch" in message and "sha256" in message.lower()
    assert hashlib.sha256(good).hexdigest() in message
    assert hashlib.sha256(bytes(bad)).hexdigest() in message


def test_http_404_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, server: LocalServer, roots: dict[str, Path]
) -> None:
    dataset = _gz_dataset()
    _fake_catalog(monkeypatch, dataset, content=False)
    with pytest.raises(DataError) as info:
        load_data(_download_cfg(roots, server.url), progress=False)
    message = check_message(info.value, "train-images-idx3-ubyte.gz")
    assert "HTTP 404" in message
    assert _leftovers(roots["data_path"] / "mnist") == []


def test_failure_after_some_files_keeps_the_verified_ones(
    monkeypatch: pytest.MonkeyPatch, server: LocalServer, roots: dict[str, Path]
) -> None:
    dataset = _gz_dataset()
    _fake_catalog(monkeypatch, dataset, content=False)
    server.files.update({f"/{name}": packed for name, (_, packed) in dataset.items()})
    server.truncate.add("/t10k-images-idx3-ubyte.gz")
    cfg = _download_cfg(roots, server.url)
    with pytest.raises(DataError) as info:
        load_data(cfg, progress=False)
    check_message(info.value, "t10k-images-idx3-ubyte.gz")
    target = roots["data_path"] / "mnist"
    assert _leftovers(target) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    server.truncate.discard("/t10k-images-idx3-ubyte.gz")
    del server.files["/train-images-idx3-ubyte.gz"]  # already there: not fetched again
    assert _count(cfg) == 10
    assert _leftovers(target) == sorted(dataset)


def test_unreachable_mirror(monkeypatch: pytest.MonkeyPatch, roots: dict[str, Path]) -> None:
    _fake_catalog(monkeypatch, _gz_dataset(), content=False)
    closed = LocalServer()
    url = closed.url
    closed.close()
    with pytest.raises(DataError) as info:
        load_data(_download_cfg(roots, url), progress=False)
    check_message(info.value, "train-images-idx3-ubyte.gz")
    assert _leftovers(roots["data_path"] / "mnist") == []


def test_data_path_expands_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_idx_dataset(tmp_path / "home" / "datasets" / "mnist", 7)
    cfg = DataConfig(name="mnist", path="~/datasets", download=False, val_fraction=0)
    assert _count(cfg) == 7
