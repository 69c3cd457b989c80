"""Keeping a run folder consistent across crashes, resumes and concurrent processes.

- :func:`training_lock`: one process trains a run at a time (an advisory ``flock`` on
  ``<run>/.lock``, released by the kernel when the process dies, so a crash leaves no stale
  lock behind).
- :func:`trim_metrics`: after a resume from the checkpoint at step S, records the crashed
  process logged after S are dropped (they will be logged again), and so is a torn last line.
- :func:`remove_stale_outputs`: what was computed from the previous weights (evaluation,
  probes, pictures drawn by `genlab sample` ...) goes once training changes the weights.
- :meth:`RunDir.remove_orphans`: the temporaries of killed processes go whenever a command
  touches the run (those of a process still writing stay).
- :func:`refuse_while_training`: a command that reads the weights is refused while a process
  trains the run (they are about to change); results record the weights they came from in
  any case, so one computed just before a resume is seen as stale afterwards.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genlab.errors import RunError
from genlab.fileio import atomic_write_text
from genlab.runs.folder import RESULT_FILES, RESULT_PATTERNS, RunDir

LOCK_FILE = ".lock"
STALE_FILES = RESULT_FILES
STALE_PATTERNS = RESULT_PATTERNS
STALE_SAMPLES = (
    "sample-*.png",
    "means-*.png",
    "chain-*.png",
    "reconstruct-*.png",
    "interpolate-*.png",
)


def trainer_pid(run: RunDir) -> int | None:
    """The pid of the process that trains the run now (None when none does): the lock is
    held, and its file names the holder."""
    path = run.path / LOCK_FILE
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # never trained here, or not ours to read: nobody holds it
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = path.read_text(encoding="utf-8", errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None
    finally:
        os.close(handle)


def refuse_while_training(run: RunDir, action: str) -> None:
    """A one-line error when a process trains ``run`` now: its exported weights are about to
    be replaced, so ``action`` would describe weights that are on their way out."""
    pid = trainer_pid(run)
    if pid is not None:
        who = f"pid {pid}" if pid > 0 else "another process"
        raise RunError(
            f"{run.path} is being trained right now ({who}), so its weights are about to "
            f"change; {action} once training has ended (or stop it with Ctrl-C / "
            f"`kill -TERM {pid if pid > 0 else '<pid>'}`, which keeps a checkpoint)"
        )


@contextmanager
def training_lock(run: RunDir) -> Iterator[None]:
    """Hold the run's training lock, or fail at once with a one-line error."""
    path = run.path / LOCK_FILE
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text(encoding="utf-8", errors="replace").strip() or "unknown"
            raise RunError(
                f"{run.path} is being trained by another process (pid {holder}); wait for it "
                "to finish or stop it before resuming"
            ) from None
        os.ftruncate(handle, 0)
        os.write(handle, str(os.getpid()).encode())
        yield
    finally:
        os.close(handle)  # closing releases the lock


def trim_metrics(run: RunDir, step: int) -> int:
    """Keep the metrics.jsonl records up to ``step`` (and drop a torn last line); returns
    how many records were dropped."""
    path = run.metrics_path
    if not path.exists():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            dropped += 1  # a line torn by the crash
            continue
        if (
            isinstance(record, dict)
            and isinstance(record.get("step"), int)
            and record["step"] > step
        ):
            dropped += 1
            continue
        kept.append(line)
    if dropped:
        atomic_write_text(path, "".join(line + "\n" for line in kept))
    return dropped


def remove_stale_outputs(run: RunDir) -> list[Path]:
    """Delete what was computed from the weights that training is about to change."""
    stale = [run.path / name for name in STALE_FILES]
    stale += [p for pattern in STALE_PATTERNS for p in run.path.glob(pattern)]
    stale += [p for pattern in STALE_SAMPLES for p in run.samples.glob(pattern)]
    removed = []
    for path in stale:
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed
