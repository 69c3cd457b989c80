"""``open_run``: the one way into an existing run folder.

It reads and validates the run's config once, applies the overrides a command allows, and
gives the model (built and loaded once, on first use) and the data (loaded only when asked).
Every command that works on a trained run — eval, sample, reconstruct, interpolate, embed,
probe, finetune, resume, compare, zoo — goes through it.

The device comes from ``eval.device`` (``--device``), resolved when the run is opened, so a
device this machine lacks is a one-line error before anything is loaded or written. The model
is moved there; the data stay on the CPU (evaluation moves them batch by batch).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from genlab.config import RunConfig
from genlab.config_parse import apply_override
from genlab.data import load_data
from genlab.devices import resolve_device
from genlab.errors import ConfigError
from genlab.models import DataInfo, GenerativeModel, run_config_from_dict, run_config_to_dict
from genlab.runs.folder import RunDir
from genlab.runs.guard import refuse_while_training
from genlab.runs.model_io import Weights, load_exported

EVAL_OVERRIDES = ("eval.",)  # what `genlab eval --set` may change
DEVICE_OVERRIDE = "eval.device"  # the device a command computes on: any command may set it


def device_overrides(device: str | None) -> list[str]:
    """The override that puts a run opened for a command on ``device`` (none for None)."""
    return [] if device is None else [f"{DEVICE_OVERRIDE}={device}"]


def allowed(key: str, allow: Sequence[str]) -> bool:
    """``key`` is named in ``allow`` exactly, or falls under an entry ending in a dot."""
    return any(key == a or (a.endswith(".") and key.startswith(a)) for a in allow)


class OpenRun:
    """A run folder with its resolved config and device; ``model`` and ``data`` load on first
    use."""

    def __init__(
        self,
        run: RunDir,
        config: RunConfig,
        *,
        progress: bool = True,
        device: torch.device | None = None,
    ) -> None:
        self.run, self.config, self.progress = run, config, progress
        self.device = device if device is not None else resolve_device(config.eval.device)

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def data_info(self) -> DataInfo:
        return self.run.data_info()

    @cached_property
    def model(self) -> GenerativeModel:
        """The exported model in eval mode (built and loaded once), on :attr:`device`.
        Refused while a process trains the run: its weights are about to change."""
        refuse_while_training(self.run, "use its model")
        model, self._weights = load_exported(self.run, self.config)
        return model.to(self.device)

    @property
    def weights(self) -> Weights:
        """Which weights :attr:`model` holds (the step and digest of the file read)."""
        self.model  # noqa: B018  (loads them)
        return self._weights

    def provenance(self) -> dict[str, str]:
        """The text a picture made from the model carries in its PNG metadata."""
        return {"genlab:run": self.path.name, "genlab:weights": json.dumps(self.weights.record())}

    @cached_property
    def data(self) -> Any:
        """The run's dataset with its splits, as the model sees them (loaded once), on the
        CPU."""
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
    then the user's ``overrides`` — each must be allowed by ``allow``; ``eval.device`` always
    is — and ``data_path`` in place of ``data.path``. An OpenRun passed in is returned as it
    is when nothing changes, so a caller that already holds one loads nothing twice. The
    device is resolved here: one this machine lacks is a ConfigError before anything loads."""
    if isinstance(run, OpenRun):
        if not (overrides or base or data_path):
            return run
        run = run.run
    folder = run if isinstance(run, RunDir) else RunDir.open(run)
    folder.remove_orphans()  # what killed processes left behind goes with the next command
    bad = [
        o for o in overrides if not allowed(o.partition("=")[0].strip(), (*allow, DEVICE_OVERRIDE))
    ]
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
    device = resolve_device(config.eval.device, "--device")
    return OpenRun(folder, config, progress=progress, device=device)


__all__ = [
    "DEVICE_OVERRIDE",
    "EVAL_OVERRIDES",
    "OpenRun",
    "allowed",
    "device_overrides",
    "open_run",
]
