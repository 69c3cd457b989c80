"""Loaded runs kept between requests, least recently used first out, within a byte budget
(the parameters and buffers of their models, the test images and codes they hold).

Used from the worker thread only. A run whose weights or config changed on disk (a resume
exported new weights) is loaded again; a run larger than the whole budget is loaded for its
request and not kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from genlab.serve.runs_index import weights_signature

if TYPE_CHECKING:  # torch is imported by the worker when it loads a model, not here
    from genlab.serve.loaded import LoadedRun


class ModelCache:
    def __init__(self, budget: int, load: Callable[[str, Path], LoadedRun]) -> None:
        if budget < 0:
            raise ValueError(f"the cache budget must be >= 0 bytes, got {budget}")
        self.budget = budget
        self._load = load
        self._runs: OrderedDict[str, LoadedRun] = OrderedDict()
        self.loads = 0  # models loaded so far (a test reads it)

    def get(self, name: str, path: Path) -> LoadedRun:
        """The run loaded, from the cache when its files are unchanged."""
        held = self._runs.get(name)
        if held is not None and held.path == path and held.signature == weights_signature(path):
            self._runs.move_to_end(name)
            return held
        self._runs.pop(name, None)
        loaded = self._load(name, path)
        self.loads += 1
        self._runs[name] = loaded
        self.trim()
        return loaded

    def trim(self) -> None:
        """Drop the least recently used runs until the rest fit the budget (what they hold
        grows as the explorer computes codes, so the worker calls this after each job)."""
        sizes = {name: run.nbytes() for name, run in self._runs.items()}
        total = sum(sizes.values())
        for name in list(self._runs):
            if total <= self.budget:
                break
            total -= sizes[name]
            del self._runs[name]

    def forget(self, name: str) -> None:
        self._runs.pop(name, None)

    @property
    def names(self) -> list[str]:
        """Runs held, least recently used first."""
        return list(self._runs)

    @property
    def held_bytes(self) -> int:
        return sum(run.nbytes() for run in self._runs.values())
