"""Find a dataset's files on disk, or download them, in a documented search order.

Roots, in order: ``data.path`` (the CLI's ``--data-dir``), ``$GENLAB_DATA``, the user cache
(``$XDG_CACHE_HOME/genlab`` or ``~/.cache/genlab``) and the system dirs (``/usr/share/datasets``,
where Debian's ``dataset-fashion-mnist`` installs ``fashion-mnist/``). In each root the files
are looked for in ``<root>/<name>/`` and then ``<root>/``; the first folder holding all of them
wins. Otherwise, if ``data.download``, missing files are downloaded into ``<first writable
root>/<name>/``, the first of ``data.path``, ``$GENLAB_DATA`` and the user cache.
"""

from __future__ import annotations

import os
from pathlib import Path

from genlab.config import DataConfig
from genlab.data import catalog
from genlab.data.download import fetch
from genlab.errors import DataError

# Read at call time, so tests can monkeypatch it.
SYSTEM_DATA_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"),)


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/genlab`` if that is an absolute path, else ``~/.cache/genlab``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "genlab"


def writable_roots(cfg: DataConfig) -> list[Path]:
    """Roots a download may go to, preferred first: data.path, $GENLAB_DATA, the user cache."""
    roots = [Path(cfg.path).expanduser()] if cfg.path else []
    if env := os.environ.get("GENLAB_DATA"):
        roots.append(Path(env).expanduser())
    return [*roots, user_cache_dir()]


def search_roots(cfg: DataConfig) -> list[Path]:
    """Every root searched, in order: the writable roots, then the system data dirs."""
    return [*writable_roots(cfg), *SYSTEM_DATA_DIRS]


def search_dirs(cfg: DataConfig, name: str) -> list[Path]:
    """The folders searched for ``name``'s files, in order (``<root>/<name>``, then ``<root>``)."""
    return [folder for root in search_roots(cfg) for folder in (root / name, root)]


def _find_in(folder: Path, files: tuple[catalog.RemoteFile, ...]) -> list[Path] | None:
    found = []
    for spec in files:
        match = next((folder / n for n in spec.local_names if (folder / n).exists()), None)
        if match is None:
            return None
        found.append(match)
    return found


def locate(cfg: DataConfig, name: str, *, progress: bool) -> list[Path]:
    """The local paths of ``name``'s files (in catalog order), downloading them if allowed."""
    files = catalog.CATALOG[name].files
    dirs = search_dirs(cfg, name)
    for folder in dirs:
        found = _find_in(folder, files)
        if found is not None:
            return found
    wanted = ", ".join(" or ".join(spec.local_names) for spec in files)
    if not cfg.download:
        searched = ", ".join(str(d) for d in dirs)
        raise DataError(
            f"{name}: files not found (need {wanted}); searched {searched}; put them in one of "
            f"these folders (e.g. with --data-dir) or set data.download=true"
        )
    return download(cfg, name, progress=progress)


def download(cfg: DataConfig, name: str, *, progress: bool) -> list[Path]:
    """Download ``name``'s missing files into ``<first writable root>/<name>/``."""
    entry = catalog.CATALOG[name]
    target = writable_roots(cfg)[0] / name
    base = cfg.mirror or entry.base_url
    base = base if base.endswith("/") else base + "/"
    paths = []
    for spec in entry.files:
        existing = next((target / n for n in spec.local_names if (target / n).exists()), None)
        if existing is None:
            existing = fetch(
                base + spec.name,
                target / spec.name,
                sha256=spec.sha256,
                progress=progress,
                hash_uncompressed=spec.uncompressed,
            )
        paths.append(existing)
    return paths
