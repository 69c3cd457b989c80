"""The Python API: everything the command line does, as functions.

>>> from genlab import api
>>> run = api.train(api.load_config("configs/vae_mlp_digits.yaml", ["train.epochs=2"]))
>>> results = api.evaluate(run)                     # writes run/eval.json
>>> api.sample(run, n=64)                           # writes run/samples/sample-seed0.png

Functions that work on a trained run take its folder (a path or a
:class:`~genlab.runs.RunDir`) or an :class:`~genlab.runs.OpenRun`; passing the same OpenRun to
several of them loads its model and data once.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from genlab import __version__
from genlab.config import RunConfig
from genlab.data import load_data
from genlab.errors import ConfigError, RunError
from genlab.evaluation.runner import check_metric_names
from genlab.evaluation.runner import evaluate as evaluate_model
from genlab.models import DataInfo, build_model, load_run_config
from genlab.representation import embed, finetune, probe
from genlab.runs import EVAL_OVERRIDES, OpenRun, RunDir, check_loggers, open_run, run_callbacks
from genlab.runs.guard import remove_stale_outputs, training_lock, trim_metrics
from genlab.training.callbacks import Checkpointer, SignalStop
from genlab.training.checkpoint import (
    check_state_matches,
    latest_checkpoint,
    load_state,
    remove_stale_temporaries,
)
from genlab.training.trainer import Trainer
from genlab.visuals import chain, interpolate, latent_view, reconstruct, sample

Run = OpenRun | RunDir | str | Path

RESUME_OVERRIDABLE = (
    "train.epochs",
    "train.max_steps",
    "train.max_seconds",
    "train.loggers",
    "train.progress",
    "train.threads",
    # after a divergence: a lower rate or clipping from the last good checkpoint (the run is
    # then no longer bitwise the uninterrupted one, which is the point)
    "train.lr",
    "train.grad_clip",
    "train.checkpoint_every",
    "train.checkpoint_every_steps",
    "train.checkpoint_every_minutes",
    "train.sample_every",
)


def load_config(path: str | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """A validated run config from a YAML file (or the defaults) and ``a.b=c`` overrides."""
    return load_run_config(path, tuple(overrides))


def _with_progress(config: RunConfig, progress: bool | None) -> RunConfig:
    if progress is None:
        return config
    return dataclasses.replace(config, train=dataclasses.replace(config.train, progress=progress))


def _prepare(config: RunConfig, data: Any | None = None) -> tuple[Any, Any]:
    """Data and a freshly initialised model; every user error surfaces here, before anything
    is written."""
    if config.train.threads is not None:
        torch.set_num_threads(config.train.threads)
    check_metric_names(config.eval)
    check_loggers(config)
    data = data if data is not None else load_data(config.data, progress=config.train.progress)
    torch.manual_seed(config.train.seed)  # parameter initialisation
    model = build_model(config.model, DataInfo(data.shape, data.levels))
    return data, model


def _trainer(model: Any, data: Any, config: RunConfig, run: RunDir) -> Trainer:
    cfg = config.train
    train = data.stream("train", cfg.batch_size, shuffle=True, seed=cfg.seed)
    val = data.stream("val", 500, shuffle=False) if len(data.val) > 0 else None
    if cfg.early_stopping_patience and val is None:
        raise ConfigError(
            "train.early_stopping_patience needs a validation split; set data.val_fraction > 0"
        )
    phases = model.phases()
    if cfg.early_stopping_patience and len(phases) > 1:
        raise ConfigError(
            f"train.early_stopping_patience needs one validation loss, but the {model.family} "
            f"family trains {len(phases)} phases ({', '.join(p.name for p in phases)}); "
            "set it to null"
        )
    return Trainer(model, cfg, train, val, run_callbacks(run, config, progress=cfg.progress))


def train(config: RunConfig, *, progress: bool | None = None) -> RunDir:
    """Train a new run; returns its folder (``runs/<NNNNN>-<data>-<model>``)."""
    config = _with_progress(config, progress)
    data, model = _prepare(config)
    if len(data.train) < 1:
        raise ConfigError("the training split is empty")
    run = RunDir.create(config.runs_dir, config.data.name, config.model.family)
    run.write_config(config)
    run.update_info(
        family=model.family,
        data_info={"shape": list(data.shape), "levels": data.levels},
        data={
            "name": data.name,
            "fingerprint": data.fingerprint,
            "train": len(data.train),
            "val": len(data.val),
            "test": len(data.test),
        },
        seeds={
            "train": config.train.seed,
            "split": config.data.split_seed,
            "binarize": config.data.binarize_seed,
            "eval": config.eval.seed,
        },
        parameters=sum(p.numel() for p in model.parameters()),
        versions={
            "genlab": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        threads=torch.get_num_threads(),
        status="training",
    )
    with training_lock(run):
        _fit(run, _trainer(model, data, config, run))
    return run


def resume(run: Run, overrides: Sequence[str] = (), *, progress: bool | None = None) -> RunDir:
    """Continue a run from its latest checkpoint, exactly as if it had not stopped; only
    :data:`RESUME_OVERRIDABLE` settings may change."""
    opened = open_run(
        run,
        overrides,
        allow=RESUME_OVERRIDABLE,
        base=("train.max_steps=null", "train.max_seconds=null"),
    )
    folder = opened.run
    with training_lock(folder):
        checkpoint = latest_checkpoint(folder.checkpoints)
        if checkpoint is None:
            raise RunError(
                f"{folder.path} has no checkpoint to resume from (training stopped before the "
                "first one was written); start a new run with `genlab train --config ...`"
            )
        config = _with_progress(opened.config, progress)
        data, model = _prepare(config)
        trainer = _trainer(model, data, config, folder)
        state = load_state(checkpoint)
        check_state_matches(state, model, checkpoint)
        trainer.load_state_dict(state)
        for callback in trainer.callbacks:
            if isinstance(callback, Checkpointer):
                callback.last = checkpoint  # what a divergence message points back to
        # what a killed process left behind: temporaries, log records past the checkpoint,
        # and results of the weights that training now changes
        remove_stale_temporaries(folder.checkpoints)
        trim_metrics(folder, int(state["progress"]["step"]))
        if trainer.epoch < config.train.epochs:  # training will change the weights
            remove_stale_outputs(folder)
        folder.write_config(config)
        _fit(folder, trainer)
    return folder


def _fit(run: RunDir, trainer: Trainer) -> None:
    try:
        trainer.fit()
    except KeyboardInterrupt:
        run.update_info(status="interrupted")
        raise
    finally:  # whatever ended the fit, Ctrl-C must work again as usual
        for callback in trainer.callbacks:
            if isinstance(callback, SignalStop):
                callback.restore()


def evaluate(
    run: Run,
    overrides: Sequence[str] = (),
    *,
    split: str = "test",
    progress: bool = True,
    data_path: str | None = None,
) -> dict[str, Any]:
    """Evaluate a run's exported model with its eval config (plus ``eval.*`` overrides);
    writes eval.json (eval-val.json for the validation split) and returns the results."""
    if split not in ("test", "val"):
        raise ConfigError(f"split must be 'test' or 'val', got {split!r}")
    opened = open_run(run, overrides, allow=EVAL_OVERRIDES, data_path=data_path, progress=progress)
    config = opened.config
    check_metric_names(config.eval)
    model, data = opened.model, opened.data
    start = time.perf_counter()
    results = evaluate_model(
        model, data, config.eval, split=split, progress=progress, run_info=opened.info()
    )
    results = {
        "run": opened.path.name,
        "family": model.family,
        "data": {
            "name": data.name,
            "binarize": _eval_binarization(config),
            "fingerprint": data.fingerprint,
        },
        **results,
        "seconds": time.perf_counter() - start,
    }
    folder = opened.run
    folder.write_json(
        folder.eval_path if split == "test" else folder.path / "eval-val.json", results
    )
    return results


def _eval_binarization(config: RunConfig) -> str:
    mode = config.data.binarize
    if mode in ("dynamic", "static"):
        return f"static (binarize_seed {config.data.binarize_seed})"
    return f"threshold {config.data.threshold}" if mode == "threshold" else "none (8-bit)"


__all__ = [
    "RESUME_OVERRIDABLE",
    "OpenRun",
    "embed",
    "evaluate",
    "finetune",
    "interpolate",
    "latent_view",
    "load_config",
    "open_run",
    "probe",
    "reconstruct",
    "resume",
    "sample",
    "chain",
    "train",
]
