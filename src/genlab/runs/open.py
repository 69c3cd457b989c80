"""``open_run``: the one way into an existing run folder.

It reads and validates the run's config once, applies the overrides a command allows, and
gives the model (built and loaded once, on first use) and the data (loaded only when asked).
Every command that works on a trained run — eval, sample, reconstruct, interpolate, embed,
probe, finetune, resume, compare, zoo — goes through it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from genlab.config import RunConfig
from genlab.config_parse import apply_override
from genlab.data import load_data
from genlab.errors import ConfigError
from genlab.models import DataInfo, GenerativeModel, run_config_from_dict, run_config_to_dict
from genlab.runs.folder import RunDir
from genlab.runs.model_io import load_model

EVAL_OVERRIDES = ("eval.",)  # what `genlab eval --set` may change


def allowed(key: str, allow: Sequence[str]) -> bool:
    """``key`` is named in ``allow`` exactly, or falls under an entry ending in a dot."""
    return any(key == a or (a.endswith(".") and key.startswith(a)) for a in allow)


class OpenRun:
    """A run folder with its resolved config; ``model`` and ``data`` load on first use."""

    def __init__(self, run: RunDir, config: RunConfig, *, progress: bool = True) -> None:
        self.run, self.config, self.progress = run, config, progress

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def data_info(self) -> DataInfo:
        return self.run.data_info()

    @cached_property
    def model(self) -> GenerativeModel:
        """The exported model in eval mode (built and loaded once)."""
        return load_model(self.run, self.config)

    @cached_property
    def data(self) -> Any:
        """The run's dataset with its splits, as the model sees them (loaded once)."""
        return load_data(self.config.data, progress=self.progress)

    def info(self) -> dict[str, Any]:
        return self.run.info()


def open_run(
    run: OpenRun | RunDir | str | Path,
    overrides: Sequence[str] = (),
    *,
    allow: Sequence[str] = (),
    data_path: str | None = None,
    base: Sequence[str] = (),
    progress: bool = True,
) -> OpenRun:
    """Open ``run`` with its saved config, then ``base`` assignments (set by the command),
    then the user's ``overrides`` — each must be allowed by ``allow`` — and ``data_path``
    in place of ``data.path``. An OpenRun passed in is returned as it is when nothing
    changes, so a caller that already holds one loads nothing twice."""
    if isinstance(run, OpenRun):
        if not (overrides or base or data_path):
            return run
        run = run.run
    folder = run if isinstance(run, RunDir) else RunDir.open(run)
    bad = [o for o in overrides if not allowed(o.partition("=")[0].strip(), allow)]
    if bad:
        may = f"only {', '.join(allow)} may change" if allow else "no setting may change"
        raise ConfigError(
            f"cannot change {', '.join(repr(o) for o in bad)} for this run; {may} "
            "(start a new run for anything else)"
        )
    config = folder.read_config()
    if overrides or base:
        tree = run_config_to_dict(config)
        for assignment in [*base, *overrides]:
            apply_override(tree, assignment)
        config = run_config_from_dict(tree)
    if data_path is not None:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, path=data_path))
    return OpenRun(folder, config, progress=progress)


__all__ = ["EVAL_OVERRIDES", "OpenRun", "allowed", "open_run"]
