"""Model computations, one at a time, on one worker thread behind a bounded queue.

Requests hand their computation to :meth:`ComputeQueue.run`; at most ``size`` are accepted at
once (the one running included), and one more is refused at once with 503 (``busy: ...``), so
a burst of requests costs memory for ``size`` computations, never more. The worker thread sets
torch's thread count once; models are loaded and used on it only, so no two computations share
a model at the same time. It is a daemon thread: stopping the server does not wait for a long
computation to end.
"""

from __future__ import annotations

import asyncio
import queue as stdlib_queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from genlab.serve.problems import Problem

T = TypeVar("T")
MAX_QUEUE = 1000
Job = tuple["Future[Any]", Callable[[], Any]]


class ComputeQueue:
    def __init__(self, size: int, threads: int | None = None) -> None:
        if not 1 <= size <= MAX_QUEUE:
            raise ValueError(f"the queue holds 1 to {MAX_QUEUE} computations, got {size}")
        self.size = size
        self._threads = threads
        self._accepted = 0
        self._closed = False
        self._lock = threading.Lock()
        self._jobs: stdlib_queue.SimpleQueue[Job | None] = stdlib_queue.SimpleQueue()
        self._worker = threading.Thread(target=self._serve, name="genlab-serve-worker", daemon=True)
        self._worker.start()

    def _serve(self) -> None:
        if self._threads is not None:
            import torch

            torch.set_num_threads(self._threads)
        while (job := self._jobs.get()) is not None:
            future, work = job
            if not future.set_running_or_notify_cancel():
                continue  # its client went away before its turn
            try:
                result = work()
            except BaseException as exc:  # noqa: BLE001  handed to the request that waits
                future.set_exception(exc)
            else:
                future.set_result(result)

    @property
    def accepted(self) -> int:
        """Computations waiting or running now."""
        return self._accepted

    def _admit(self) -> None:
        with self._lock:
            if self._closed:
                raise Problem(503, "busy: the server is stopping")
            if self._accepted >= self.size:
                raise Problem(
                    503,
                    f"busy: {self._accepted} model computations are queued (the most the "
                    "server takes at once); retry in a moment",
                )
            self._accepted += 1

    def _release(self, _: object) -> None:
        with self._lock:
            self._accepted -= 1

    async def run(self, work: Callable[[], T]) -> T:
        """``work()`` on the worker thread, once its turn comes; 503 when the queue is full."""
        self._admit()
        future: Future[T] = Future()
        future.add_done_callback(self._release)  # done, failed or cancelled: its place frees
        self._jobs.put((future, work))
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Take no more work; what waits is cancelled, what runs ends on its own."""
        with self._lock:
            self._closed = True
        while True:
            try:
                job = self._jobs.get_nowait()
            except stdlib_queue.Empty:
                break
            if job is not None:
                job[0].cancel()
        self._jobs.put(None)
