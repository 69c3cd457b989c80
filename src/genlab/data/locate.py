"""Finding a dataset's files, and downloading them when they are nowhere to be found.

Search order: ``data.path`` (the CLI's --data-dir), ``$GENLAB_DATA``, the user cache
(``$XDG_CACHE_HOME/genlab`` or ``~/.cache/genlab``), then the system directories
(``/usr/share/datasets``, where Debian's dataset packages install). In each root both
``<root>/<name>/`` and ``<root>/`` are searched, for each file with and without ``.gz``.
Downloads go to ``<first writable of data.path, $GENLAB_DATA, cache>/<name>/``.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

from genlab.config import DataConfig
from genlab.data.catalogue import CATALOGUE, RemoteFile
from genlab.data.download import fetch, sha256_hex
from genlab.errors import DataError

SYSTEM_DIRS = [Path("/usr/share/datasets")]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "genlab"


def search_roots(cfg: DataConfig) -> list[Path]:
    roots = []
    if cfg.path:
        roots.append(Path(cfg.path).expanduser())
    if os.environ.get("GENLAB_DATA"):
        roots.append(Path(os.environ["GENLAB_DATA"]).expanduser())
    roots.append(cache_dir())
    roots.extend(SYSTEM_DIRS)
    return roots


def _candidates(root: Path, name: str, filename: str) -> list[Path]:
    stem = filename[:-3] if filename.endswith(".gz") else filename
    return [folder / f for folder in (root / name, root) for f in (filename, stem)]


def find_file(cfg: DataConfig, name: str, filename: str) -> Path | None:
    for root in search_roots(cfg):
        for candidate in _candidates(root, name, filename):
            if candidate.is_file():
                return candidate
    return None


def locate_files(
    cfg: DataConfig, name: str, roles: tuple[str, ...], *, progress: bool
) -> dict[str, Path]:
    """Paths of the catalogue files ``roles`` of dataset ``name``, downloading missing ones.

    All files come from the same folder when possible: a root that holds every file wins."""
    remote = CATALOGUE[name]
    files = {role: remote.files[role] for role in roles}
    for root in search_roots(cfg):
        found = {}
        for role, file in files.items():
            hit = next((c for c in _candidates(root, name, file.name) if c.is_file()), None)
            if hit is not None:
                found[role] = hit
        if len(found) == len(files):
            return found
    if not cfg.download:
        searched = ", ".join(str(r) for r in search_roots(cfg))
        raise DataError(
            f"dataset {name!r} not found (looked for {', '.join(f.name for f in files.values())} "
            f"in {searched} and their {name}/ folders) and data.download is false"
        )
    target = _download_dir(cfg) / name
    base = cfg.mirror or remote.base_url
    if not base.endswith("/"):
        base += "/"
    paths = {}
    for role, file in files.items():
        path = target / file.name
        if not path.is_file():
            fetch(
                base + file.name,
                path,
                verify=lambda data, f=file: _check(data, f),
                progress=progress,
            )
        paths[role] = path
    return paths


def _download_dir(cfg: DataConfig) -> Path:
    if cfg.path:
        return Path(cfg.path).expanduser()
    if os.environ.get("GENLAB_DATA"):
        return Path(os.environ["GENLAB_DATA"]).expanduser()
    return cache_dir()


def _check(data: bytes, file: RemoteFile) -> str | None:
    got = sha256_hex(data)
    if got == file.sha256:
        return None
    if file.content_sha256 is not None and data[:2] == b"\x1f\x8b":
        try:
            if sha256_hex(gzip.decompress(data)) == file.content_sha256:
                return None
        except (OSError, EOFError, zlib.error):
            return f"{file.name} is not valid gzip data ({len(data)} bytes)"
    return f"SHA-256 of {file.name} is {got}, expected {file.sha256}"
