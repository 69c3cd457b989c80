"""What happens around the training loop, one callback per concern.

A :class:`~genlab.training.trainer.Callback` hears five events from the Trainer —
``on_fit_start``, ``on_step_end`` (after each iteration, with its detached loss terms),
``on_epoch_end`` (with the epoch's record: train means, validation terms, lr, images/s,
which earlier callbacks may add to),
``on_fit_end`` and ``on_diverged`` — and may keep state that checkpoints carry
(``state_key``, ``state_dict``, ``load_state_dict``). Callbacks run in the order given, so a
checkpoint written last holds what the others decided.

This module has the callbacks that need nothing beyond torch: progress bar, JSONL log, sample
grids, checkpoints, early stopping and budgets; TensorBoard and MLflow are in ``loggers.py``.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from genlab import noise
from genlab.fileio import append_line, atomic_path
from genlab.imagegrid import grid_array, save_grid
from genlab.models.base import SupportsSample
from genlab.training.checkpoint import finite_state, rewind, write_checkpoint
from genlab.training.trainer import Callback, Trainer, TrainResult

LOG_EVERY = 100  # steps between "train" records
SAMPLE_GRID = 64
COLLAPSE_RMS = 0.01  # median pairwise RMS pixel distance below which samples count as collapsed


def loss_terms(terms: dict[str, torch.Tensor]) -> dict[str, float]:
    """``{"loss": v}``, or ``{"<phase>": v}`` per phase of a multi-phase model."""
    return {
        k.removesuffix("/loss").removesuffix("loss") or "loss": v.item()
        for k, v in terms.items()
        if k == "loss" or k.endswith("/loss")
    }


class ProgressBar(Callback):
    """A tqdm bar over all batches of the run, with epoch, losses and images/s."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self._epoch_start = 0.0
        self._images = 0

    def on_fit_start(self, trainer: Trainer) -> None:
        per_epoch = trainer.batches_per_epoch
        self.bar = tqdm(
            total=trainer.cfg.epochs * per_epoch,
            initial=trainer.epoch * per_epoch + trainer.batch,
            desc="train",
            unit="batch",
            disable=not self.enabled,
            dynamic_ncols=True,
        )
        self._epoch_start, self._images = time.perf_counter(), 0

    def on_step_end(self, trainer: Trainer, terms: dict[str, torch.Tensor], images: int) -> None:
        self.bar.update(1)
        self._images += images
        if trainer.step % 20 == 0 or trainer.batch == trainer.batches_per_epoch:
            rate = self._images / max(time.perf_counter() - self._epoch_start, 1e-9)
            self.bar.set_postfix(
                epoch=f"{trainer.epoch + 1}/{trainer.cfg.epochs}",
                **{k: f"{v:.3f}" for k, v in loss_terms(terms).items()},
                img_s=f"{rate:,.0f}",
                refresh=False,  # let tqdm's own rate limit decide when to redraw
            )

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self._epoch_start, self._images = time.perf_counter(), 0

    def on_fit_end(self, trainer: Trainer, result: TrainResult) -> None:
        self.bar.close()

    def on_diverged(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()


class JsonlLogger(Callback):
    """``metrics.jsonl``: a ``train`` record every LOG_EVERY steps and an ``epoch`` record per
    epoch, one JSON object per line, appended."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def on_step_end(self, trainer: Trainer, terms: dict[str, torch.Tensor], images: int) -> None:
        if trainer.step % LOG_EVERY == 0:
            self.write(
                {
                    "kind": "train",
                    "epoch": trainer.epoch + 1,
                    "step": trainer.step,
                    **{k: v.item() for k, v in terms.items()},
                    "lr": trainer.lr(),
                }
            )

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self.write(record)

    def write(self, record: dict[str, Any]) -> None:
        append_line(self.path, json.dumps(record))


def sample_diversity(images: torch.Tensor) -> float:
    """Median RMS pixel distance (in [0, 1] units) over all pairs of a batch of images."""
    flat = images.flatten(1).double()  # (N, D)
    distances = torch.cdist(flat, flat) / flat.shape[1] ** 0.5  # (N, N)
    upper = torch.triu_indices(flat.shape[0], flat.shape[0], offset=1)
    return distances[upper[0], upper[1]].median().item()


class SampleGrids(Callback):
    """Every ``every`` epochs (and after the last) a grid of samples from a fixed seed, saved
    as ``train-epoch-NNNN.png``; its diversity goes in the epoch record as
    ``samples/pairwise_rms`` and a RuntimeWarning says when the samples have collapsed.
    The grid (uint8, H x W x C) stays in ``latest`` for loggers that show images."""

    def __init__(self, folder: Path, every: int) -> None:
        self.folder, self.every = Path(folder), every
        self.latest: tuple[int, Any] | None = None  # (epoch, grid array)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        model, epoch = trainer.model, trainer.epoch
        if not isinstance(model, SupportsSample) or self.every == 0:
            return
        if epoch % self.every and epoch != trainer.cfg.epochs:
            return
        model.eval()
        with torch.no_grad(), trainer.model.averaged():
            images = model.sample(SAMPLE_GRID, generator=noise.generator(0, trainer.device))
        images = images.cpu()
        trainer.model.train()
        weights = {"file": "training weights", "epoch": epoch, "step": trainer.step}
        save_grid(
            images,
            self.folder / f"train-epoch-{epoch:04d}.png",
            text={"genlab:weights": json.dumps(weights)},
        )
        self.latest = (epoch, grid_array(images))
        diversity = sample_diversity(images)
        if diversity < COLLAPSE_RMS:
            warnings.warn(
                f"epoch {epoch}: the {SAMPLE_GRID} samples have collapsed (median pairwise "
                f"RMS distance {diversity:.4f} < {COLLAPSE_RMS}): the model makes nearly one "
                "image whatever its noise",
                RuntimeWarning,
                stacklevel=2,
            )
        record["samples/pairwise_rms"] = diversity


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs without a lower validation loss (None: never); with
    ``keep`` (early stopping or ``train.keep_best``) the best weights are kept in
    ``best_path``. The result reports the best loss and its epoch."""

    state_key = "early_stopping"

    def __init__(
        self, patience: int | None, best_path: Path | None = None, *, keep: bool = False
    ) -> None:
        self.patience, self.best_path = patience, best_path
        self.keep = keep or patience is not None
        self.best, self.bad_epochs, self.best_epoch = math.inf, 0, 0
        self.best_step = 0

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        loss = trainer.val_loss
        if loss is None:
            return
        if loss < self.best:
            self.best, self.bad_epochs, self.best_epoch = loss, 0, trainer.epoch
            self.best_step = trainer.step
            if self.best_path is not None and self.keep:
                state = {
                    k: v.detach().cpu().contiguous() for k, v in trainer.model.state_dict().items()
                }
                with atomic_path(self.best_path) as tmp:
                    save_file(state, str(tmp))
            return
        self.bad_epochs += 1
        if self.patience is not None and self.bad_epochs >= self.patience:
            trainer.request_stop("early_stopping", interrupt=False)

    def on_fit_end(self, trainer: Trainer, result: TrainResult) -> None:
        result.best_val_loss = self.best if math.isfinite(self.best) else None
        result.best_epoch = self.best_epoch if math.isfinite(self.best) else None
        result.best_step = self.best_step if math.isfinite(self.best) else None

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "best_epoch": self.best_epoch,
            "best_step": self.best_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad_epochs = float(state["best"]), int(state["bad_epochs"])
        self.best_epoch = int(state.get("best_epoch", 0))  # checkpoints before keep_best: 0
        self.best_step = int(state.get("best_step", 0))


class Checkpointer(Callback):
    """Training-state checkpoints in ``folder``: every ``every`` epochs, after the last epoch,
    when training stops early or is interrupted (a budget, a signal), and also every
    ``every_steps`` steps and every ``every_minutes`` minutes when set. Put it last."""

    def __init__(
        self,
        folder: Path,
        every: int,
        every_steps: int | None = None,
        every_minutes: float | None = None,
    ) -> None:
        self.folder, self.every = Path(folder), every
        self.every_steps, self.every_minutes = every_steps, every_minutes
        self.last: Path | None = None
        self.saved_at = time.monotonic()

    def on_fit_start(self, trainer: Trainer) -> None:
        self.saved_at = time.monotonic()

    def on_step_end(self, trainer: Trainer, terms: dict[str, torch.Tensor], images: int) -> None:
        if trainer.stopping or trainer.batch >= trainer.batches_per_epoch:
            return  # the end of fit or of the epoch saves (with the epoch's record)
        by_steps = self.every_steps is not None and trainer.step % self.every_steps == 0
        by_time = (
            self.every_minutes is not None
            and time.monotonic() - self.saved_at >= 60 * self.every_minutes
        )
        if by_steps or by_time:
            self.save(trainer)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        last = trainer.epoch == trainer.cfg.epochs or trainer.stopping
        if trainer.epoch % self.every == 0 or last:
            self.save(trainer)

    def on_fit_end(self, trainer: Trainer, result: TrainResult) -> None:
        if not result.finished:
            self.save(trainer)

    def save(self, trainer: Trainer) -> None:
        """Write a checkpoint, unless the weights or optimiser state already hold NaN or
        infinities (the loss will say so at the next step; the last good one stays)."""
        state = trainer.state_dict()
        if not finite_state({"model": state["model"], "optimizers": state["optimizers"]}):
            return
        self.last = write_checkpoint(self.folder, trainer.step, state)
        self.saved_at = time.monotonic()

    def on_diverged(self, trainer: Trainer) -> None:
        """Keep as "last good" the newest checkpoint before the divergence: finite, and one
        whose next step still had a sound loss (the weights of the step just before the bad
        loss made that loss, so their checkpoint goes too)."""
        found = trainer.divergence
        if found is None:
            return
        self.last = rewind(self.folder, found.step - 2)

    def describe_recovery(self) -> str | None:
        if self.last is None:
            return None
        run = self.folder.parent
        return (
            f"the last good checkpoint is {self.last.name} (step "
            f"{int(self.last.stem.split('-')[1])}; its weights are exported). Continue from it "
            f"with a lower rate or clipping: `genlab train --resume {run} --set "
            "train.lr=<lower> --set train.grad_clip=1` (train.warmup_steps and "
            "train.precision may change too)"
        )


class StoppedAtOnce(KeyboardInterrupt):
    """A second SIGINT or SIGTERM while training was already stopping: stop now, without the
    checkpoint of the current step (the last one written stays)."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


class SignalStop(Callback):
    """SIGINT (Ctrl-C) and SIGTERM stop training after the current step, as a budget would:
    the Checkpointer saves and the run is marked ``interrupted (sigint)``; a second signal
    stops at once (:class:`StoppedAtOnce`, which the caller turns into the run's status).
    Handlers are installed for the fit only, and only in the main thread (where Python
    delivers signals); they stay until every callback has heard how the fit ended (``on_exit``),
    so a signal while the run records its end still ends in a written status.

    A signal arrives at any moment, but the stop is asked for at the next event: under
    torchrun rank 0 tells the other ranks what was decided at the end of every event, and a
    stop it set between two events would end its loop a step before theirs."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.previous: dict[int, Any] = {}
        self.pending: str | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self.pending = None
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum: int, frame: Any) -> None:
            name = signal.Signals(signum).name.lower()
            if trainer.stopping or self.pending is not None:
                raise StoppedAtOnce(name)
            self.pending = name

        self.previous = {s: signal.signal(s, handler) for s in self.SIGNALS}

    def _ask(self, trainer: Trainer) -> None:
        if self.pending is not None:
            trainer.request_stop(self.pending, interrupt=True)

    def on_step_end(self, trainer: Trainer, terms: dict[str, torch.Tensor], images: int) -> None:
        self._ask(trainer)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self._ask(trainer)

    def restore(self) -> None:
        for number, previous in self.previous.items():
            signal.signal(number, previous)
        self.previous = {}

    def on_exit(self, trainer: Trainer) -> None:
        self.restore()


class StepBudget(Callback):
    def __init__(self, max_steps: int) -> None:
        self.max_steps = max_steps

    def on_step_end(self, trainer: Trainer, terms: dict[str, torch.Tensor], images: int) -> None:
        if trainer.step >= self.max_steps:
            trainer.request_stop("max_steps", interrupt=True)


class TimeBudget(Callback):
    """Stop once ``max_seconds`` of wall-clock time have passed in this fit() call."""

    def __init__(self, max_seconds: float) -> None:
        self.max_seconds = max_seconds

    def on_step_end(self, trainer: Trainer, terms: dict[str, torch.Tensor], images: int) -> None:
        if time.perf_counter() - trainer.fit_start >= self.max_seconds:
            trainer.request_stop("max_seconds", interrupt=True)
