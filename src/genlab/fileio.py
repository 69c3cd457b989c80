"""Atomic file writes: the one way genlab puts a file on disk.

A file is written to a temporary name in its own folder, flushed and ``fsync``-ed, moved over
the target with ``os.replace`` (atomic on POSIX), and the folder is ``fsync``-ed so the rename
itself survives a power cut. A reader therefore sees the old file or the new one, never half of
one. The file gets the permissions ``open`` would give a new file under the process's umask
(0644 under umask 022), whatever mode the writer used for the temporary (the safetensors
library creates its files 0600), so colleagues who may read the folder may read the file.

Temporaries are named ``.<stem>.<pid>.tmp<suffix>``: a command that touches a run removes those
whose process is gone (:func:`remove_orphans`), and never those of a process still writing.
Tests make a process die at a chosen write through :data:`fault_hook`.

Writers that insist on a file name (safetensors, PIL, numpy, matplotlib) use
:func:`atomic_path`, which hands them the temporary path and commits it when they return.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"
_OURS = re.compile(r"^\..+\.(\d+)\.tmp(\.[^.]*)?$")  # .<stem>.<pid>.tmp<suffix>

# Called with the temporary path once its content is written, before it replaces the
# target: the fault-injection point of the tests (a test process kills itself here to leave
# exactly what a crash at that write leaves). None in normal use.
fault_hook: Callable[[Path], None] | None = None


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


def current_umask() -> int:
    """The process's umask (read from /proc where it can be, which changes nothing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open`` gives a new file: 0666 less the umask."""
    return 0o666 & ~current_umask()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically and
    durably; on any error it is removed and ``path`` is untouched."""
    target = Path(path)
    tmp = temporary_name(target)
    try:
        yield tmp
        if fault_hook is not None:
            fault_hook(tmp)
        os.chmod(tmp, file_mode())
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


def is_temporary(path: Path) -> bool:
    """A file that an atomic write leaves while it is under way: ours, or the safetensors
    library's own ``.tmpXXXXXX`` (which it renames onto ours)."""
    return path.name.startswith(".") and TMP_SUFFIX in path.name


def writer_alive(path: Path) -> bool | None:
    """Whether the process whose pid an atomic write's temporary name carries still runs
    (None when the name carries no pid: whose it is cannot be told)."""
    match = _OURS.match(path.name)
    if match is None:
        return None
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process, or not a pid
    return True


def remove_orphans(folders: list[Path], *, unnamed_too: bool = False) -> list[Path]:
    """Delete the temporaries that killed processes left in ``folders``: those named with a
    pid that no longer runs, and, with ``unnamed_too`` (the caller knows that no process
    writes files without a pid in their names there: it holds the run's training lock),
    those without one. Returns what was removed."""
    removed = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if not (path.is_file() and is_temporary(path)):
                continue
            alive = writer_alive(path)
            if alive is False or (alive is None and unnamed_too):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


__all__ = [
    "TMP_SUFFIX",
    "append_line",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "fault_hook",
    "file_mode",
    "fsync_folder",
    "is_temporary",
    "remove_orphans",
    "temporary_name",
]
