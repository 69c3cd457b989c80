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

import contextlib
import dataclasses
import platform
import signal
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from genlab import __version__
from genlab.config import RunConfig
from genlab.data import load_data
from genlab.devices import describe, resolve_device
from genlab.errors import ConfigError, RunError
from genlab.evaluation.runner import check_metric_names
from genlab.evaluation.runner import evaluate as evaluate_model
from genlab.models import build_model, load_run_config
from genlab.representation import embed, finetune, probe
from genlab.runs import EVAL_OVERRIDES, OpenRun, RunDir, check_loggers, open_run, run_callbacks
from genlab.runs.folder import data_info_of, data_info_record
from genlab.runs.guard import remove_stale_outputs, training_lock, trim_metrics
from genlab.training.callbacks import Checkpointer, StoppedAtOnce
from genlab.training.checkpoint import check_state_matches, latest_checkpoint, load_state
from genlab.training.distributed import ProcessGroup, check_batch, join, leave
from genlab.training.step import has_convolutions
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
    "train.device",  # another device resumes too (then not bitwise: another RNG)
    # after a divergence: a lower rate or clipping from the last good checkpoint (the run is
    # then no longer bitwise the uninterrupted one, which is the point)
    "train.lr",
    "train.grad_clip",
    "train.warmup_steps",
    "train.precision",
    "train.explode_factor",
    "train.explode_steps",
    "train.checkpoint_every",
    "train.checkpoint_every_steps",
    "train.checkpoint_every_minutes",
    "train.sample_every",
    "train.fd_every",
)


def load_config(path: str | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """A validated run config from a YAML file (or the defaults) and ``a.b=c`` overrides."""
    return load_run_config(path, tuple(overrides))


def _with_progress(config: RunConfig, progress: bool | None) -> RunConfig:
    if progress is None:
        return config
    return dataclasses.replace(config, train=dataclasses.replace(config.train, progress=progress))


class _Place:
    """Where this process trains: its device and, under torchrun, its process group."""

    def __init__(self, config: RunConfig) -> None:
        self.device = resolve_device(config.train.device, "train.device")
        self.group: ProcessGroup | None = join(self.device)
        check_batch(config.train.batch_size, 1 if self.group is None else self.group.world)

    @property
    def is_main(self) -> bool:
        return self.group is None or self.group.is_main


def _prepare(config: RunConfig, place: _Place, data: Any | None = None) -> tuple[Any, Any]:
    """Data and a freshly initialised model on the device; every user error surfaces here,
    before anything is written."""
    if config.train.threads is not None:
        torch.set_num_threads(config.train.threads)
    check_metric_names(config.eval)
    check_loggers(config)
    data = data if data is not None else load_data(config.data, progress=config.train.progress)
    torch.manual_seed(config.train.seed)  # parameter initialisation, the same on every device
    info = data_info_of(data)
    model = build_model(config.model, info, ema_decay=config.train.ema_decay).to(place.device)
    _check_selection(config, model, len(data.val) > 0)
    if config.train.channels_last and has_convolutions(model):
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return data, model


def _check_selection(config: RunConfig, model: Any, has_val: bool) -> None:
    """Early stopping and keep_best choose weights by one validation loss: refused, before
    anything is written, without a validation split or for a family of several phases."""
    cfg = config.train
    selecting = [
        (key, fix)
        for key, on, fix in (
            ("train.early_stopping_patience", cfg.early_stopping_patience, "set it to null"),
            ("train.keep_best", cfg.keep_best, "set it to false"),
        )
        if on
    ]
    phases = model.phases()
    for key, fix in selecting:
        if not has_val:
            raise ConfigError(f"{key} needs a validation split; set data.val_fraction > 0")
        if len(phases) > 1:
            raise ConfigError(
                f"{key} needs one validation loss, but the {model.family} family trains "
                f"{len(phases)} phases ({', '.join(p.name for p in phases)}); {fix}"
            )


def _trainer(model: Any, data: Any, config: RunConfig, run: RunDir, place: _Place) -> Trainer:
    cfg = config.train
    rank, world = (0, 1) if place.group is None else (place.group.rank, place.group.world)
    shard = {"device": place.device, "rank": rank, "world": world}
    train = data.stream("train", cfg.batch_size, shuffle=True, seed=cfg.seed, **shard)
    val = data.stream("val", 500, shuffle=False, **shard) if len(data.val) > 0 else None
    callbacks = (
        run_callbacks(run, config, progress=cfg.progress, data=data) if place.is_main else []
    )
    return Trainer(model, cfg, train, val, callbacks, device=place.device, group=place.group)


def train(config: RunConfig, *, progress: bool | None = None) -> RunDir:
    """Train a new run; returns its folder (``runs/<NNNNN>-<data>-<model>``). Under torchrun
    every rank calls this; rank 0 writes the run folder and all ranks return it."""
    config = _with_progress(config, progress)
    place = _Place(config)
    try:
        return _train(config, place)
    finally:
        leave(place.group)


def _train(config: RunConfig, place: _Place) -> RunDir:
    data, model = _prepare(config, place)
    if len(data.train) < 1:
        raise ConfigError("the training split is empty")
    if not place.is_main:
        assert place.group is not None
        run = RunDir(Path(place.group.broadcast_object(None)))
        _fit(run, _trainer(model, data, config, run, place))
        return run
    run = RunDir.create(config.runs_dir, config.data.name, config.model.family)
    run.write_config(config)
    run.update_info(**_run_record(config, data, model, place), status="training")
    if place.group is not None:  # the followers open the folder rank 0 made
        place.group.broadcast_object(str(run.path))
    with training_lock(run):
        _fit(run, _trainer(model, data, config, run, place))
    return run


def _run_record(config: RunConfig, data: Any, model: Any, place: _Place) -> dict[str, Any]:
    """What run.json records about a run when training starts."""
    return {
        "family": model.family,
        "data_info": data_info_record(data_info_of(data)),
        "data": {
            "name": data.name,
            "fingerprint": data.fingerprint,
            "train": len(data.train),
            "val": len(data.val),
            "test": len(data.test),
        },
        "seeds": {
            "train": config.train.seed,
            "split": config.data.split_seed,
            "binarize": config.data.binarize_seed,
            "eval": config.eval.seed,
        },
        "parameters": sum(p.numel() for p in model.parameters()),
        "versions": {
            "genlab": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "threads": torch.get_num_threads(),
        "device": describe(place.device),
        "processes": 1 if place.group is None else place.group.world,
        "precision": config.train.precision,
    }


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
    place = _Place(opened.config)
    try:
        with training_lock(folder) if place.is_main else _no_lock():
            _resume(folder, opened.config, place, progress)
    finally:
        leave(place.group)
    return folder


def _resume(folder: RunDir, config: RunConfig, place: _Place, progress: bool | None) -> None:
    checkpoint = latest_checkpoint(folder.checkpoints)
    if (
        checkpoint is None
        and folder.info_path.exists()
        and folder.info().get("status") == "diverged"
    ):
        raise RunError(
            f"{folder.path} diverged before any checkpoint from before the divergence was "
            "kept, so there is nothing sound to resume from; start a new run with a lower "
            "train.lr (or train.grad_clip)"
        )
    if checkpoint is None:
        raise RunError(
            f"{folder.path} has no checkpoint to resume from (training stopped before the "
            "first one was written); start a new run with `genlab train --config ...`"
        )
    config = _with_progress(config, progress)
    data, model = _prepare(config, place)
    trainer = _trainer(model, data, config, folder, place)
    state = load_state(checkpoint)
    check_state_matches(state, model, checkpoint)
    trainer.load_state_dict(state)
    if not place.is_main:
        _fit(folder, trainer)
        return
    for callback in trainer.callbacks:
        if isinstance(callback, Checkpointer):
            callback.last = checkpoint  # what a divergence message points back to
    # what a killed process left behind: temporaries, log records past the checkpoint,
    # and results of the weights that training now changes
    folder.remove_orphans(unnamed_too=True)  # we hold the training lock
    if not folder.info_path.exists():
        print(
            f"note: {folder.info_path} was missing; it is written again from config.json, the "
            "data and the checkpoint (marked 'repaired'; the first training's speed is lost)"
        )
        folder.update_info(
            **_run_record(config, data, model, place),
            repaired="run.json rebuilt at a resume",
        )
    folder.update_info(precision=config.train.precision)
    trim_metrics(folder, int(state["progress"]["step"]))
    if trainer.epoch < config.train.epochs:  # training will change the weights
        remove_stale_outputs(folder)
    folder.write_config(config)
    if trainer.resumed_across_devices:
        print(
            f"note: the checkpoint was written on another kind of device; training goes on "
            f"on {describe(place.device)} with a fresh noise stream, so it is not bitwise "
            "the uninterrupted run"
        )
    _fit(folder, trainer)


@contextlib.contextmanager
def _no_lock() -> Iterator[None]:
    yield


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


def _fit(run: RunDir, trainer: Trainer) -> None:
    if trainer.group is not None and not trainer.group.is_main:
        # torchrun passes Ctrl-C and SIGTERM to every rank: rank 0 stops them all at a step
        # with a checkpoint, so the others must not die in the middle of a collective
        with _signals_ignored():
            trainer.fit()
        return
    try:
        trainer.fit()
    except KeyboardInterrupt as exc:  # a second signal, or Ctrl-C outside the fit's handlers
        # the status is written with signals ignored, so a third one cannot cut it short
        with _signals_ignored():
            how = exc.signal_name if isinstance(exc, StoppedAtOnce) else "sigint"
            run.update_info(status=f"interrupted ({how}, at once)")
        exc.run_path = run.path  # type: ignore[attr-defined]
        raise


def evaluate(
    run: Run,
    overrides: Sequence[str] = (),
    *,
    split: str = "test",
    progress: bool = True,
    data_path: str | None = None,
    final: bool = False,
) -> dict[str, Any]:
    """Evaluate a run's exported model with its eval config (plus ``eval.*`` overrides);
    writes eval.json (eval-val.json for the validation split) and returns the results. It runs
    on ``eval.device`` (``--device``; ``auto``: CUDA if available), recorded as ``device``.
    ``final`` evaluates the weights of the run's last checkpoint instead (the final weights,
    where ``train.keep_best`` exported those of the best validation epoch) and writes
    eval-final.json (eval-val-final.json)."""
    if split not in ("test", "val"):
        raise ConfigError(f"split must be 'test' or 'val', got {split!r}")
    opened = open_run(run, overrides, allow=EVAL_OVERRIDES, data_path=data_path, progress=progress)
    config = opened.config
    check_metric_names(config.eval)
    model, data = opened.model, opened.data
    weights = str(opened.info().get("exported_from", "exported weights"))
    used = opened.weights.record()  # loads the model (refused while the run trains)
    if final:
        weights, used = _load_final_weights(opened)
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
        "weights": weights,
        "weights_used": used,
        **results,
        "device": describe(opened.device),
        "seconds": time.perf_counter() - start,
    }
    folder = opened.run
    name = ("eval" if split == "test" else "eval-val") + ("-final" if final else "")
    folder.write_json(folder.eval_path if name == "eval" else folder.path / f"{name}.json", results)
    return results


def _load_final_weights(opened: OpenRun) -> tuple[str, dict[str, Any]]:
    """Load the model state of the run's last checkpoint into its opened model (averaged
    weights where it keeps an average); returns where they come from, and their record."""
    checkpoint = latest_checkpoint(opened.run.checkpoints)
    if checkpoint is None:
        raise RunError(
            f"{opened.path} has no training checkpoint to take its final weights from; "
            "evaluate its exported model (drop --final)"
        )
    state = load_state(checkpoint)
    model = opened.model
    check_state_matches(state, model, checkpoint)
    model.load_state_dict({k: v.to(opened.device) for k, v in state["model"].items()})
    model.use_average()
    step = int(state["progress"]["step"])
    used = {"file": f"checkpoints/{checkpoint.name}", "step": step, "sha256": None}
    return f"final weights at step {step} ({checkpoint.name})", used


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
