"""Downloading a file safely: temporary file, SHA-256 check, then an atomic rename."""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from genlab.errors import DataError

TIMEOUT_S = 60
CHUNK = 1 << 16


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(url: str, dest: Path, *, verify: Callable[[bytes], str | None], progress: bool) -> Path:
    """Download ``url`` to ``dest``. ``verify(content)`` returns None if the bytes are right,
    else what is wrong; only then is the file renamed into place. Nothing partial is left."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            content = _download(url, out, progress)
        problem = verify(content)
        if problem is not None:
            raise DataError(
                f"download of {url} is corrupt: {problem}; it was deleted. Try again, "
                f"or place the file in {dest.parent} yourself"
            )
        os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def _download(url: str, out, progress: bool) -> bytes:  # noqa: ANN001
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            declared = response.headers.get("Content-Length")
            total = int(declared) if declared and declared.isdigit() else None
            parts = []
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=Path(url).name,
                disable=not progress,
                leave=False,
            ) as bar:
                while chunk := response.read(CHUNK):
                    parts.append(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        raise DataError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except http.client.IncompleteRead as exc:
        raise DataError(
            f"download of {url} is truncated: the server closed the connection "
            f"after {len(exc.partial)} more bytes; it was deleted, try again"
        ) from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(
            f"cannot download {url}: {reason}; check the network, set data.mirror, "
            "or place the files in data.path yourself"
        ) from None
    content = b"".join(parts)
    if total is not None and len(content) != total:
        raise DataError(
            f"download of {url} is truncated: got {len(content)} of {total} bytes; "
            "it was deleted, try again"
        )
    return content
