"""Atomic file writes: the one way genlab puts a file on disk.

A file is written to a temporary name in its own folder, flushed and ``fsync``-ed, moved over
the target with ``os.replace`` (atomic on POSIX), and the folder is ``fsync``-ed so the rename
itself survives a power cut. A reader therefore sees the old file or the new one, never half of
one. The temporary file is created with the process's umask (as ``open`` would create the
target), so colleagues who may read the folder may read the file.

Writers that insist on a file name (safetensors, PIL, numpy, matplotlib) use
:func:`atomic_path`, which hands them the temporary path and commits it when they return.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"


def temporary_name(path: Path) -> Path:
    """The temporary sibling of ``path`` used while it is written (same folder, same suffix
    at the end, so libraries that pick a format by extension still recognise it)."""
    return path.with_name(f".{path.stem}.{os.getpid()}{TMP_SUFFIX}{path.suffix}")


def fsync_folder(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` durable (a no-op where folders cannot be
    opened, e.g. on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically and
    durably; on any error it is removed and ``path`` is untouched."""
    target = Path(path)
    tmp = temporary_name(target)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is not None and Path(exc.filename) == tmp:  # name the file asked for
            raise OSError(exc.errno, exc.strerror, str(target)) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(target.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    target = Path(path)
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
    return target


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def append_line(path: str | Path, line: str) -> None:
    """Append one line to a log (``metrics.jsonl``) and make it durable. Appends of whole
    lines are never rewritten, so they need no temporary file."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line.rstrip("\n") + "\n")
        fh.flush()
        os.fsync(fh.fileno())


__all__ = [
    "TMP_SUFFIX",
    "append_line",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "fsync_folder",
    "temporary_name",
]
