"""The callbacks that fill a run folder while a Trainer trains, in the order they must run.

``metrics.jsonl``, sample grids, checkpoints, the exported ``model.safetensors`` and the
status fields of ``run.json`` are written by callbacks; so are the optional TensorBoard events
and MLflow records (``train.loggers``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from safetensors.torch import load_file

from genlab.config import RunConfig
from genlab.models import run_config_to_dict
from genlab.runs.folder import RunDir
from genlab.runs.model_io import export_model
from genlab.runs.sample_curve import SampleCurve
from genlab.training.callbacks import (
    Checkpointer,
    EarlyStopping,
    JsonlLogger,
    ProgressBar,
    SampleGrids,
    SignalStop,
    StepBudget,
    TimeBudget,
)
from genlab.training.checkpoint import latest_checkpoint, load_state
from genlab.training.loggers import (
    MLflowLogger,
    TensorBoardLogger,
    default_tracking_uri,
    require_extra,
)
from genlab.training.trainer import Callback, Trainer, TrainResult

BEST_MODEL = "best-model.safetensors"
MLFLOW_EXPERIMENT = "genlab"


class RunRecorder(Callback):
    """At the end of training: export the model (the best validation weights when early
    stopping or ``train.keep_best`` kept them, else the final ones) and record status, steps,
    speed and which weights were exported in run.json."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.start = time.perf_counter()

    def on_fit_start(self, trainer: Trainer) -> None:
        self.start = time.perf_counter()
        self.run.update_info(status="training")

    def on_fit_end(self, trainer: Trainer, result: TrainResult) -> None:
        best = self.run.checkpoints / BEST_MODEL
        cfg = trainer.cfg
        keep = cfg.early_stopping_patience is not None or cfg.keep_best
        if (result.stopped_early or keep) and best.exists():
            trainer.model.load_state_dict(load_file(str(best)))
            origin = f"best validation loss {result.best_val_loss:.4f}"
            if result.best_epoch:
                origin += f" at epoch {result.best_epoch}"
            selected = {"weights": "best", "best_epoch": result.best_epoch}
            step = result.best_step if result.best_step is not None else result.steps
        else:
            origin = f"final weights at step {result.steps}"
            selected = {"weights": "final", "best_epoch": None}
            step = result.steps
        export_model(self.run, trainer.model.eval(), origin, step)
        self.run.update_info(
            **selected,
            status="finished" if result.finished else f"interrupted ({result.stop_reason})",
            steps=result.steps,
            epochs_completed=result.epochs_completed,
            stopped_early=result.stopped_early,
            train_images_per_s=result.images_per_s,
            train_seconds=time.perf_counter() - self.start,
        )

    def on_diverged(self, trainer: Trainer) -> None:
        """Export the last good checkpoint's weights (the checkpointer, before, chose it), so
        the diverged run can still be evaluated and sampled; the live weights are broken."""
        found = trainer.divergence
        self.run.update_info(
            status="diverged",
            diverged_at_step=None if found is None else found.step,
        )
        checkpoint = latest_checkpoint(self.run.checkpoints)
        if checkpoint is not None:
            state = load_state(checkpoint)
            trainer.model.load_state_dict(state["model"])
            step = int(state["progress"]["step"])
            export_model(self.run, trainer.model.eval(), f"last good checkpoint, step {step}", step)


def check_loggers(config: RunConfig) -> None:
    """Fail before anything is written when a logger's library is missing."""
    for name in config.train.loggers:
        if name != "jsonl":
            require_extra(name)


def run_callbacks(
    run: RunDir, config: RunConfig, *, progress: bool, data: Any = None
) -> list[Callback]:
    """Every callback a genlab run needs, in order: decisions first (early stopping, sample
    grids and the sample-quality curve that add to the epoch record), then logs, budgets, the
    checkpoint that holds all their state, the export, and MLflow last so it uploads the
    finished folder. ``data`` (the run's DataSplits) feeds the sample-quality curve
    (``train.fd_every``); without it there is none."""
    cfg = config.train
    callbacks: list[Callback] = [
        EarlyStopping(
            cfg.early_stopping_patience, run.checkpoints / BEST_MODEL, keep=cfg.keep_best
        ),
        SampleGrids(run.samples, cfg.sample_every),
        SampleCurve(cfg.fd_every, cfg.fd_samples, data, config.eval.seed, progress=progress),
        ProgressBar(progress),
    ]
    if "jsonl" in cfg.loggers:
        callbacks.append(JsonlLogger(run.metrics_path))
    if "tensorboard" in cfg.loggers:
        text = json.dumps(run_config_to_dict(config, runtime=False), indent=2)
        callbacks.append(TensorBoardLogger(run.path / "tensorboard", text))
    if cfg.max_steps is not None:
        callbacks.append(StepBudget(cfg.max_steps))
    if cfg.max_seconds is not None:
        callbacks.append(TimeBudget(cfg.max_seconds))
    callbacks += [
        SignalStop(),
        Checkpointer(
            run.checkpoints,
            cfg.checkpoint_every,
            cfg.checkpoint_every_steps,
            cfg.checkpoint_every_minutes,
        ),
        RunRecorder(run),
    ]
    if "mlflow" in cfg.loggers:
        callbacks.append(
            MLflowLogger(
                default_tracking_uri(run.path.parent),
                MLFLOW_EXPERIMENT,
                run.path.name,
                run_config_to_dict(config, runtime=False),
                run.path,
                run.path.parent / "mlartifacts",
            )
        )
    return callbacks
