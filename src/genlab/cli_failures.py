"""How a ``genlab`` command ends when it does not succeed: one line on stderr and an exit
status, never a traceback for what a user can type or hand genlab; and SIGTERM turned into an
interruption like Ctrl-C's."""

from __future__ import annotations

import errno
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from genlab.errors import GenlabError, TrainingDiverged

# the machine failing, not the input: exit status 1 (2 is for what the user can fix)
MACHINE_ERRORS = frozenset({errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.ENOMEM})


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises :class:`Terminated` (in the main thread), so it ends
    genlab cleanly, as Ctrl-C does; the previous handler comes back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_status(command: Callable[[], int]) -> int:
    """Run a command; what ends it badly becomes one line on stderr and an exit status: 2
    for what the user can fix, 1 for a failing machine or a diverged run, 130/143 for
    Ctrl-C/SIGTERM."""
    try:
        return command()
    except TrainingDiverged as exc:
        print(f"genlab: {exc}", file=sys.stderr)
        return 1
    except GenlabError as exc:
        print(f"genlab: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the user gave that cannot be used, or a full disk
        where = f" {exc.filename}" if exc.filename else ""
        machine = exc.errno in MACHINE_ERRORS
        verb = "cannot write" if machine else "cannot use"
        print(f"genlab: error: {verb}{where}: {exc.strerror or exc}", file=sys.stderr)
        return 1 if machine else 2
    except MemoryError:
        print(f"genlab: error: {OUT_OF_MEMORY}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # torch's allocators fail with RuntimeError subclasses
        if not _allocation_failed(exc):
            raise
        print(f"genlab: error: {OUT_OF_MEMORY} ({_first_line(exc)})", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        name = str(getattr(exc, "signal_name", "sigint"))
        run = getattr(exc, "run_path", None)
        if run is not None:
            print(
                f"genlab: stopped at once by a second {name.upper()}; {run} keeps its last "
                f"checkpoint: continue with `genlab train --resume {run}`",
                file=sys.stderr,
            )
        else:
            print(
                f"genlab: interrupted ({name.upper()}); a run can be continued with "
                "`genlab train --resume RUN`",
                file=sys.stderr,
            )
        return 143 if name == "sigterm" else 130


OUT_OF_MEMORY = (
    "ran out of memory; ask for less (fewer samples -n, a smaller eval.num_samples or "
    "train.batch_size, a smaller model)"
)


def _allocation_failed(exc: RuntimeError) -> bool:
    text = str(exc)
    return type(exc).__name__ == "OutOfMemoryError" or any(
        marker in text for marker in ("can't allocate memory", "out of memory")
    )


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160]


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception like Ctrl-C's so that it ends genlab cleanly."""

    signal_name = "sigterm"


def _terminate(signum: int, frame: object) -> None:
    raise Terminated("sigterm")
