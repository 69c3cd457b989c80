"""What the routes share: the runs folder and its index, the compute queue, the model cache,
the rendered comparisons and the capabilities read from each run's config."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from genlab.errors import GenlabError
from genlab.serve.cache import ModelCache
from genlab.serve.compare_view import CompareReports
from genlab.serve.problems import Problem
from genlab.serve.queue import ComputeQueue
from genlab.serve.runs_index import RunsIndex, files_signature, weights_signature
from genlab.serve.safety import run_folder

T = TypeVar("T")


class State:
    """What the routes share: the runs folder, its index, the queue, the model cache."""

    def __init__(
        self,
        runs_dir: Path,
        *,
        cache_bytes: int,
        queue: int,
        threads: int | None,
        device: str,
    ) -> None:
        self.root = Path(runs_dir)
        self.index = RunsIndex(self.root)
        self.queue = ComputeQueue(queue, threads)
        self.cache = ModelCache(cache_bytes, self._load)
        self.reports = CompareReports()
        self.device_name = device
        self._device: Any = None
        self._capabilities: dict[str, tuple[tuple[Any, ...], Any, str | None]] = {}

    def _load(self, name: str, path: Path) -> Any:
        from genlab.devices import resolve_device
        from genlab.serve.loaded import LoadedRun

        if self._device is None:
            self._device = resolve_device(self.device_name, "--device")
        return LoadedRun(name, path, self._device)

    def folder(self, name: str) -> Path:
        return run_folder(self.root, name)

    async def compute(self, name: str, work: Callable[[Any], T]) -> tuple[T, float]:
        """``work(loaded run)`` on the worker thread; (its result, seconds it took there)."""
        path = self.folder(name)

        def job() -> tuple[T, float]:
            start = time.perf_counter()
            try:
                loaded = self.cache.get(name, path)
            except GenlabError as exc:  # the run's folder, config or weights: a 409 for it
                from genlab.runs import RunDir
                from genlab.runs.guard import trainer_pid

                if trainer_pid(RunDir(path)) is None:  # training is no error of the run's
                    self.index.note_load_error(name, weights_signature(path), str(exc))
                raise Problem(409, str(exc)) from None
            try:
                return work(loaded), time.perf_counter() - start
            finally:
                self.cache.trim()

        return await self.queue.run(job)

    def capabilities(self, name: str, path: Path) -> tuple[Any, str | None]:
        """(capabilities, None) or (None, why not), from the config on the meta device."""
        signature = files_signature(path)
        held = self._capabilities.get(name)
        if held is not None and held[0] == signature:
            return held[1], held[2]
        from genlab.runs import RunDir
        from genlab.serve.capabilities import capabilities, meta_model

        found: Any = None
        problem: str | None = None
        try:
            run = RunDir(path)
            config = run.read_config()
            found = capabilities(meta_model(config, run.data_info()), config)
        except GenlabError as exc:
            problem = str(exc)
        except Exception as exc:  # noqa: BLE001  a config that builds no model
            problem = f"the run's model cannot be built ({type(exc).__name__}: {exc})"
        if len(self._capabilities) > 512:
            self._capabilities.clear()
        self._capabilities[name] = (signature, found, problem)
        return found, problem

    def close(self) -> None:
        self.queue.close()
        self.reports.close()
