"""Checksum-verified downloads that never leave a partial file behind."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import sys
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from genlab.data.images import MAX_ARRAY_BYTES, byte_size
from genlab.errors import DataError
from genlab.fileio import atomic_path

TIMEOUT_S = 60.0  # per socket operation (connect, each read)
_BLOCK = 1 << 16
_INFLATE_BLOCK = 1 << 20
MAX_DOWNLOAD_BYTES = MAX_ARRAY_BYTES  # received, and inflated when hashed gunzipped


def _sha256_gunzipped(path: Path, url: str) -> str:
    digest, inflated = hashlib.sha256(), 0
    try:
        with gzip.open(path, "rb") as stream:
            for block in iter(lambda: stream.read(_INFLATE_BLOCK), b""):
                digest.update(block)
                inflated += len(block)
                if inflated > MAX_DOWNLOAD_BYTES:  # a gzip bomb: stop inflating now
                    raise DataError(
                        f"{url}: the downloaded file inflates to more than "
                        f"{byte_size(MAX_DOWNLOAD_BYTES)}, so it is not the dataset file; "
                        f"check data.mirror"
                    )
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(
            f"{url}: the downloaded file is not valid gzip data ({error}); retry, or check "
            f"that data.mirror serves the original files"
        ) from None
    return digest.hexdigest()


def _stream(
    url: str, out: BinaryIO, name: str, progress: bool, timeout: float
) -> tuple[int, int | None, str]:
    """Copy ``url`` into ``out``; (bytes received, Content-Length or None, sha256 of bytes)."""
    digest, received = hashlib.sha256(), 0
    request = urllib.request.Request(url, headers={"User-Agent": "genlab"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        header = response.headers.get("Content-Length", "")
        total = int(header) if header.strip().isdigit() else None
        with tqdm(
            total=total,
            desc=name,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=sys.stderr,
            disable=not progress,
            leave=False,
        ) as bar:
            while block := response.read(_BLOCK):
                if received + len(block) > MAX_DOWNLOAD_BYTES:
                    raise DataError(
                        f"{url}: the server sends more than {byte_size(MAX_DOWNLOAD_BYTES)}, "
                        f"far more than any dataset file genlab downloads; check data.mirror"
                    )
                out.write(block)
                digest.update(block)
                received += len(block)
                bar.update(len(block))
    return received, total, digest.hexdigest()


def fetch(
    url: str,
    dest: Path,
    *,
    sha256: str,
    progress: bool,
    hash_uncompressed: bool = False,
    timeout: float = TIMEOUT_S,
) -> Path:
    """Download ``url`` to ``dest`` if its SHA-256 is ``sha256``; return ``dest``.

    With ``hash_uncompressed`` the checksum is of the gunzipped content (so recompressed
    copies of a file verify too). The bytes go to a temporary file in ``dest``'s folder that
    is renamed into place only once verified and is removed on any failure.
    """
    dest = Path(dest)
    created = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"{dest.parent}: cannot write a download there ({error})") from None
    try:
        _fetch_into(url, dest, sha256, progress, hash_uncompressed, timeout)
    except DataError:
        for folder in created:  # a failed download leaves nothing behind, folders included
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if still empty
        raise
    return dest


def _fetch_into(
    url: str, dest: Path, sha256: str, progress: bool, hash_uncompressed: bool, timeout: float
) -> None:
    manual = f"retry, or download it yourself and place it at {dest}"
    with atomic_path(dest) as temp:  # renamed into place only once verified
        try:
            with open(temp, "wb") as out:
                received, total, got = _stream(url, out, dest.name, progress, timeout)
        except urllib.error.HTTPError as error:
            raise DataError(
                f"{url}: download failed (HTTP {error.code} {error.reason}); check the URL or "
                f"data.mirror, or {manual}"
            ) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            reason = getattr(error, "reason", None) or error
            raise DataError(f"{url}: download failed ({reason}); {manual}") from None
        if total is not None and received != total:
            raise DataError(
                f"{url}: download incomplete (received {received} of {total} bytes before the "
                f"connection closed); {manual}"
            )
        what = "sha256"
        if hash_uncompressed:
            got, what = _sha256_gunzipped(temp, url), "sha256 of the uncompressed content"
        if got != sha256.lower():
            raise DataError(
                f"{url}: checksum mismatch ({what}: expected {sha256}, got {got}; "
                f"{received} bytes received); the download is corrupt or the mirror serves a "
                f"different file; {manual}"
            )
