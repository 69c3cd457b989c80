"""Experiment tracking as callbacks: TensorBoard and MLflow, each behind its optional extra.

- :class:`TensorBoardLogger` writes event files (scalars of every train and epoch record, the
  sample grids as images, the resolved config as text) to a folder that ``tensorboard
  --logdir`` shows.
- :class:`MLflowLogger` records one MLflow run per genlab run: the resolved config as params,
  every train and epoch record as metrics (by step), the status, and at the end the run
  folder's files as artefacts.

The libraries are imported only when such a logger is asked for: :func:`require_extra`
turns a missing one into a one-line error that names the pip command.
"""

from __future__ import annotations

import importlib
import math
import os
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from genlab.errors import ConfigError
from genlab.training.callbacks import LOG_EVERY, SampleGrids
from genlab.training.trainer import Callback, Trainer, TrainResult

EXTRAS = {  # logger -> (module that must import, pip extra)
    "tensorboard": ("tensorboard", "tensorboard"),
    "mlflow": ("mlflow", "mlflow"),
}


def require_extra(logger: str) -> ModuleType:
    """Import the library behind ``logger`` or raise a ConfigError naming the pip command."""
    module, extra = EXTRAS[logger]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"train.loggers: {logger!r} needs the {module} package, which is not installed; "
            f'install it with: pip install "genlab[{extra}]"'
        ) from None


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The finite numeric values of a log record, without its bookkeeping keys."""
    return {
        key: float(value)
        for key, value in record.items()
        if key not in ("kind", "epoch", "step")
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    }


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"train.lr": "0.001", ...}`` from a nested config tree."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


class TensorBoardLogger(Callback):
    """Event files in ``log_dir``: ``train/*`` every LOG_EVERY steps, epoch records by step,
    sample grids (from a :class:`SampleGrids` callback placed before this one) as images."""

    def __init__(self, log_dir: Path, config_text: str) -> None:
        require_extra("tensorboard")
        tensorboard = importlib.import_module("torch.utils.tensorboard")
        self.writer = tensorboard.SummaryWriter(log_dir=str(log_dir))
        self.config_text = config_text
        self.grids: SampleGrids | None = None

    def setup(self, trainer: Trainer) -> None:
        self.grids = next((c for c in trainer.callbacks if isinstance(c, SampleGrids)), None)

    def on_fit_start(self, trainer: Trainer) -> None:
        self.writer.add_text("config", "```\n" + self.config_text + "\n```", trainer.step)

    def on_step_end(self, trainer: Trainer, terms: dict[str, torch.Tensor], images: int) -> None:
        if trainer.step % LOG_EVERY == 0:
            for key, value in terms.items():
                self.writer.add_scalar(f"train_step/{key}", value.item(), trainer.step)
            self.writer.add_scalar("train_step/lr", trainer.lr(), trainer.step)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        for key, value in scalars(record).items():
            self.writer.add_scalar(key, value, trainer.step)
        if self.grids is not None and self.grids.latest is not None:
            epoch, grid = self.grids.latest
            if epoch == trainer.epoch:
                self.writer.add_image(
                    "samples", np.ascontiguousarray(grid), trainer.step, dataformats="HWC"
                )
        self.writer.flush()

    def on_fit_end(self, trainer: Trainer, result: TrainResult) -> None:
        self.writer.close()

    def on_diverged(self, trainer: Trainer) -> None:
        self.writer.close()


def default_tracking_uri(folder: Path) -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else a local SQLite store ``folder/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(folder).resolve()}/mlflow.db"


# training state is large and not an artefact; TensorBoard events copied beside the run
# would show every run twice under `tensorboard --logdir runs`
NOT_ARTIFACTS = frozenset({"checkpoints", "tensorboard"})


class MLflowLogger(Callback):
    """One MLflow run per genlab run (named after the run folder), in ``experiment``.

    A resumed genlab run continues the same MLflow run (its id is checkpointed state).
    """

    state_key = "mlflow"

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        run_name: str,
        params: dict[str, Any],
        artifacts: Path,
        artifact_root: Path,
    ) -> None:
        mlflow = require_extra("mlflow")
        self.client = mlflow.MlflowClient(tracking_uri=tracking_uri)
        self.entities = importlib.import_module("mlflow.entities")
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = (
            found.experiment_id
            if found is not None
            else self.client.create_experiment(
                experiment, artifact_location=Path(artifact_root).resolve().as_uri()
            )
        )
        self.run_name, self.params, self.artifacts = run_name, flatten(params), Path(artifacts)
        self.run_id: str | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.run_id is None:
            run = self.client.create_run(self.experiment_id, run_name=self.run_name)
            self.run_id = run.info.run_id
            params = [self.entities.Param(k, v[:6000]) for k, v in self.params.items()]
            for start in range(0, len(params), 100):
                self.client.log_batch(self.run_id, params=params[start : start + 100])
        else:
            self.client.update_run(self.run_id, status="RUNNING")

    def _log(self, values: dict[str, float], step: int) -> None:
        assert self.run_id is not None
        stamp = int(1000 * time.time())  # milliseconds, one timestamp per batch of values
        metric = self.entities.Metric
        metrics = [metric(key, value, stamp, step) for key, value in values.items()]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def on_step_end(self, trainer: Trainer, terms: dict[str, torch.Tensor], images: int) -> None:
        if trainer.step % LOG_EVERY == 0:
            values = {f"train_step/{k}": v.item() for k, v in terms.items()}
            self._log(values, trainer.step)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self._log(scalars(record), trainer.step)

    def on_fit_end(self, trainer: Trainer, result: TrainResult) -> None:
        """Place after the callbacks that write the run folder, so its final files go up."""
        self.finish("FINISHED" if result.finished else "KILLED")

    def on_diverged(self, trainer: Trainer) -> None:
        self.finish("FAILED")

    def finish(self, status: str) -> None:
        if self.run_id is None:
            return
        for path in sorted(self.artifacts.iterdir()):
            if path.name.startswith("."):
                continue
            if path.is_dir():
                if path.name not in NOT_ARTIFACTS:
                    self.client.log_artifacts(self.run_id, str(path), artifact_path=path.name)
            else:
                self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, status=status)

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id = state.get("run_id")
