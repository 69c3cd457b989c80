"""Downloads from a local server on 127.0.0.1: verified, and never leaving partial files."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest
from data_helpers import LocalServer, fake_idx_dataset

from genlab.config import DataConfig
from genlab.data import catalog, load_data
from genlab.data.download import fetch
from genlab.errors import DataError

PAYLOAD = b"genlab test payload " * 1000
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_fetch_success(tmp_path: Path, server: LocalServer) -> None:
    server.files["/f.bin"] = PAYLOAD
    dest = fetch(server.url + "f.bin", tmp_path / "dl" / "f.bin", sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.bin"]


def test_fetch_verifies_uncompressed_content(tmp_path: Path, server: LocalServer) -> None:
    server.files["/f.gz"] = gzip.compress(PAYLOAD, compresslevel=1)
    dest = fetch(
        server.url + "f.gz", tmp_path / "f.gz", sha256=SHA, progress=False, hash_uncompressed=True
    )
    assert gzip.decompress(dest.read_bytes()) == PAYLOAD


def _fails(url: str, dest: Path, sha: str = SHA, **kwargs: bool) -> str:
    with pytest.raises(DataError) as info:
        fetch(url, dest, sha256=sha, progress=False, **kwargs)
    assert list(dest.parent.iterdir()) == []  # neither the file nor a temporary one
    message = str(info.value)
    assert url in message and "\n" not in message
    return message


def test_truncated_download_leaves_nothing(tmp_path: Path, server: LocalServer) -> None:
    server.files["/f.bin"] = PAYLOAD
    server.truncate.add("/f.bin")
    message = _fails(server.url + "f.bin", tmp_path / "f.bin")
    assert f"received {len(PAYLOAD) // 2} of {len(PAYLOAD)} bytes" in message
    assert str(tmp_path / "f.bin") in message  # where to place it by hand


def test_corrupted_download_leaves_nothing(tmp_path: Path, server: LocalServer) -> None:
    server.files["/f.bin"] = PAYLOAD[:-1] + b"!"
    message = _fails(server.url + "f.bin", tmp_path / "f.bin")
    assert SHA in message and hashlib.sha256(server.files["/f.bin"]).hexdigest() in message


def test_not_gzip_when_content_hash_expected(tmp_path: Path, server: LocalServer) -> None:
    server.files["/f.gz"] = PAYLOAD
    assert "gzip" in _fails(server.url + "f.gz", tmp_path / "f.gz", hash_uncompressed=True)


def test_http_error_and_unreachable_server(tmp_path: Path, server: LocalServer) -> None:
    assert "HTTP 404" in _fails(server.url + "missing", tmp_path / "m")
    url = server.url
    server.close()
    assert "download failed" in _fails(url + "f.bin", tmp_path / "f.bin")


def _fake_catalog(monkeypatch: pytest.MonkeyPatch, contents: dict[str, bytes]) -> None:
    files = tuple(
        catalog.RemoteFile(f"{stem}.gz", hashlib.sha256(data).hexdigest(), True, (f"{stem}.gz",))
        for stem, data in contents.items()
    )
    monkeypatch.setitem(catalog.CATALOG, "mnist", catalog.DatasetFiles("http://unused/", files))


def _serve(server: LocalServer, folder: Path, prefix: str = "/") -> None:
    for path in folder.iterdir():
        server.files[prefix + path.name] = path.read_bytes()


def test_load_data_downloads_through_mirror(
    tmp_path: Path, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    contents = fake_idx_dataset(tmp_path / "origin", n_train=20, n_test=6)
    _fake_catalog(monkeypatch, contents)
    _serve(server, tmp_path / "origin")
    cfg = DataConfig(name="mnist", path=str(tmp_path / "data"), mirror=server.url)
    data = load_data(cfg, progress=False)
    assert len(data.train) + len(data.val) == 20 and len(data.test) == 6
    landed = sorted(p.name for p in (tmp_path / "data" / "mnist").iterdir())
    assert landed == sorted(f"{stem}.gz" for stem in contents)
    server.close()  # a second load finds the files without the network
    assert load_data(cfg, progress=False).fingerprint == data.fingerprint


@pytest.mark.parametrize("failure", ["truncated", "corrupted"])
def test_load_data_failed_download_leaves_nothing(
    tmp_path: Path, server: LocalServer, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    contents = fake_idx_dataset(tmp_path / "origin")
    _fake_catalog(monkeypatch, contents)
    _serve(server, tmp_path / "origin")
    victim = "/t10k-images-idx3-ubyte.gz"
    if failure == "truncated":
        server.truncate.add(victim)
    else:
        server.files[victim] = gzip.compress(contents["t10k-images-idx3-ubyte"][:-1] + b"\1")
    cfg = DataConfig(name="mnist", path=str(tmp_path / "data"), mirror=server.url)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz"):
        load_data(cfg, progress=False)
    landed = sorted(p.name for p in (tmp_path / "data" / "mnist").iterdir())
    assert "t10k-images-idx3-ubyte.gz" not in landed
    assert all(not name.startswith(".") for name in landed)  # no temporary file either


def test_a_failed_first_download_leaves_no_empty_folders(
    tmp_path: Path, server: LocalServer
) -> None:
    url = server.url + "f.bin"
    server.close()
    with pytest.raises(DataError, match="download failed"):
        fetch(
            url,
            tmp_path / "cache" / "genlab" / "fashion-mnist" / "f.bin",
            sha256=SHA,
            progress=False,
        )
    assert list(tmp_path.iterdir()) == []  # the folders it made for the file are gone too
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "other.bin").write_bytes(b"x")
    with pytest.raises(DataError, match="download failed"):
        fetch(url, kept / "f.bin", sha256=SHA, progress=False)
    assert sorted(p.name for p in kept.iterdir()) == ["other.bin"]  # what it found stays
