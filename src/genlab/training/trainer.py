"""The one training loop of genlab, shared by every family.

The Trainer knows phases, optimisers, schedules and batches; it never knows which family it
trains, and it writes nothing itself. Each iteration takes one batch and runs every phase the
model declares (``repeats`` times each), each phase with its own optimiser and schedule.
Everything else — metrics logs, the progress bar, sample grids, checkpoints, early stopping,
time and step budgets, TensorBoard or MLflow — is a :class:`~genlab.training.callbacks.Callback`.

Batches come from any :class:`BatchSource`: ``len()`` batches per epoch and
``epoch(e, start_batch)`` that yields ``(x, labels)`` reproducibly, so a resumed run sees
exactly the batches it would have seen.

Resuming from a checkpoint continues exactly: the state holds the model (with any schedule
state in its buffers), optimisers, schedulers, step/epoch/batch position, the noise generator,
torch's global RNG and the state of every callback that has one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from genlab.config import TrainConfig
from genlab.errors import ConfigError, TrainingDiverged
from genlab.models.base import GenerativeModel
from genlab.training.optim import build_optimizer, build_schedule


class Callback:
    """Base class: every event does nothing; ``state_key`` None means no checkpointed state."""

    state_key: str | None = None

    def setup(self, trainer: Trainer) -> None:
        """Called once when the Trainer is built (before any state is loaded)."""

    def on_fit_start(self, trainer: Trainer) -> None: ...

    def on_step_end(
        self, trainer: Trainer, terms: dict[str, torch.Tensor], images: int
    ) -> None: ...

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None: ...

    def on_fit_end(self, trainer: Trainer, result: TrainResult) -> None: ...

    def on_diverged(self, trainer: Trainer) -> None: ...

    def describe_recovery(self) -> str | None:
        """Where a diverged run can be picked up again (a checkpoint), if this callback knows."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class BatchSource(Protocol):
    def __len__(self) -> int: ...

    def epoch(
        self, epoch: int, start_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]: ...


@dataclass
class TrainResult:
    steps: int
    epochs_completed: int
    stopped_early: bool
    finished: bool  # False when a budget (max_steps, max_seconds) interrupted the schedule
    best_val_loss: float | None
    images_per_s: float
    stop_reason: str = ""  # "max_steps" or "max_seconds" when interrupted


class Trainer:
    """``Trainer(model, cfg, train, val=None, callbacks=[...]).fit()``.

    Callbacks see the trainer: ``epoch``, ``batch``, ``step``, ``model``, ``phases``,
    ``val_loss`` (the last validation loss of a one-phase model) and can ask it to stop
    (:meth:`request_stop`).
    """

    def __init__(
        self,
        model: GenerativeModel,
        cfg: TrainConfig,
        train: BatchSource,
        val: BatchSource | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.model, self.cfg, self.train_batches, self.val_batches = model, cfg, train, val
        self.callbacks = list(callbacks)
        if len(train) == 0:
            raise ConfigError(
                f"the training split has no images for train.batch_size={cfg.batch_size}"
            )
        self.phases = model.phases()
        self.params = {p.name: [q for q in p.parameters() if q.requires_grad] for p in self.phases}
        self.optimizers = {
            p.name: build_optimizer(self.params[p.name], cfg, lr=p.lr, betas=p.betas)
            for p in self.phases
        }
        self.schedulers = {
            name: build_schedule(opt, cfg, len(train)) for name, opt in self.optimizers.items()
        }
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.epoch = self.batch = self.step = 0
        self.val_loss: float | None = None
        self.images_seen = 0  # in this fit() call
        self.train_seconds = 0.0
        self.fit_start = time.perf_counter()
        self._stop: tuple[str, bool] | None = None  # (reason, interrupts the schedule)
        for callback in self.callbacks:
            callback.setup(self)

    @property
    def batches_per_epoch(self) -> int:
        return len(self.train_batches)

    def lr(self) -> float:
        return float(self.optimizers[self.phases[0].name].param_groups[0]["lr"])

    def request_stop(self, reason: str, *, interrupt: bool) -> None:
        """Stop after the current step (``interrupt``: a budget cut the schedule short) or at
        the end of the current epoch (early stopping)."""
        if self._stop is None:
            self._stop = (reason, interrupt)

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "progress": {"epoch": self.epoch, "batch": self.batch, "step": self.step},
            "rng": {"generator": self.generator.get_state(), "torch": torch.get_rng_state()},
            "callbacks": {
                c.state_key: c.state_dict() for c in self.callbacks if c.state_key is not None
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][name])
        for phase in self.phases:
            if phase.lr is None:  # the phase follows train.lr, which a resume may lower
                self._set_base_lr(phase.name, self.cfg.lr)
        progress = state["progress"]
        self.epoch, self.batch, self.step = progress["epoch"], progress["batch"], progress["step"]
        self.generator.set_state(state["rng"]["generator"])
        torch.set_rng_state(state["rng"]["torch"])
        saved = state.get("callbacks", {})
        for callback in self.callbacks:
            if callback.state_key is not None and callback.state_key in saved:
                callback.load_state_dict(saved[callback.state_key])

    def _set_base_lr(self, name: str, lr: float) -> None:
        """Make ``lr`` the rate the schedule scales (when it differs from the checkpoint's)."""
        optimizer, schedule = self.optimizers[name], self.schedulers[name]
        if all(group.get("initial_lr") == lr for group in optimizer.param_groups):
            return
        schedule.base_lrs = [lr] * len(optimizer.param_groups)
        factors = [f(schedule.last_epoch) for f in schedule.lr_lambdas]
        for group, factor in zip(optimizer.param_groups, factors, strict=True):
            group["initial_lr"], group["lr"] = lr, lr * factor

    # -- the loop -------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        self.fit_start = time.perf_counter()
        self._stop = None
        self._emit("on_fit_start")
        while self.epoch < self.cfg.epochs:
            train_means = self._run_epoch()
            if self._stop is not None and self.batch < self.batches_per_epoch:
                break  # a budget stopped training mid-epoch
            record: dict[str, Any] = {"kind": "epoch", "epoch": self.epoch + 1, "step": self.step}
            record.update(train_means)
            if self.val_batches is not None and len(self.val_batches) > 0:
                val = self.validate()
                record.update({f"val/{k}": v for k, v in val.items()})
                self.val_loss = val.get("loss")  # one phase: the loss early stopping watches
            self.epoch += 1
            self.batch = 0
            self._emit("on_epoch_end", record)
            if self._stop is not None:
                break
        reason, interrupt = self._stop or ("", False)
        interrupted = interrupt and (self.epoch < self.cfg.epochs or self.batch > 0)
        result = TrainResult(
            steps=self.step,
            epochs_completed=self.epoch,
            stopped_early=self._stop is not None and not interrupt,
            finished=not interrupted,
            best_val_loss=None,
            images_per_s=self.images_seen / self.train_seconds if self.train_seconds else 0.0,
            stop_reason=reason if interrupted else "",
        )
        self._emit("on_fit_end", result)
        return result

    @property
    def stopping(self) -> bool:
        """True once a callback asked training to stop (checked by checkpointing callbacks)."""
        return self._stop is not None

    def _run_epoch(self) -> dict[str, float]:
        """Train over the rest of the current epoch; the mean of every logged term."""
        self.model.train()
        keys: list[str] = []
        total: torch.Tensor | None = None
        batches = images = 0
        start = time.perf_counter()
        for x, _ in self.train_batches.epoch(self.epoch, self.batch):
            terms = self._train_step(x)
            stacked = torch.stack(list(terms.values()))
            if total is None:
                keys, total = list(terms), stacked
            else:
                total += stacked
            batches += 1
            images += x.shape[0]
            self.batch += 1
            self.step += 1
            self._emit("on_step_end", terms, x.shape[0])
            if self._stop is not None and self._stop[1]:
                break  # a budget: stop now, mid-epoch
        seconds = time.perf_counter() - start
        self.images_seen += images
        self.train_seconds += seconds
        means = (total / max(batches, 1)).tolist() if total is not None else []
        record = {f"train/{k}": v for k, v in zip(keys, means, strict=True)}
        record.update(
            {
                "images_per_s": images / seconds if seconds else 0.0,
                "seconds": seconds,
                "lr": self.lr(),
            }
        )
        return record

    def _train_step(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logged: dict[str, torch.Tensor] = {}
        for phase in self.phases:
            optimizer = self.optimizers[phase.name]
            for _ in range(phase.repeats):
                terms = self.model.loss(x, phase.name, generator=self.generator)
                loss = terms["loss"]
                if not torch.isfinite(loss):
                    raise self._diverged(loss.item(), phase.name)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.cfg.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(self.params[phase.name], self.cfg.grad_clip)
                optimizer.step()
                self.model.after_step(phase.name)
            self.schedulers[phase.name].step()
            prefix = "" if len(self.phases) == 1 else f"{phase.name}/"
            logged.update({prefix + k: v.detach() for k, v in terms.items()})
        return logged

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean of every loss term over the validation batches, with a fixed noise seed, in
        eval mode: the model's final objective, whatever its training schedule."""
        assert self.val_batches is not None
        self.model.eval()
        generator = torch.Generator().manual_seed(self.cfg.seed + 1)
        sums: dict[str, float] = {}
        count = 0
        for x, _ in self.val_batches.epoch(0):
            for phase in self.phases:
                terms = self.model.loss(x, phase.name, generator=generator)
                prefix = "" if len(self.phases) == 1 else f"{phase.name}/"
                for key, value in terms.items():
                    sums[prefix + key] = sums.get(prefix + key, 0.0) + value.item() * x.shape[0]
            count += x.shape[0]
        self.model.train()
        return {k: v / count for k, v in sums.items()}

    # -- callbacks ------------------------------------------------------------------------
    def _emit(self, event: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(self, *args)

    def _diverged(self, value: float, phase: str) -> TrainingDiverged:
        where = f"step {self.step + 1} (epoch {self.epoch + 1}, phase {phase})"
        kept = next(
            (text for c in self.callbacks if (text := c.describe_recovery()) is not None),
            "no checkpoint had been written yet",
        )
        for callback in self.callbacks:
            callback.on_diverged(self)
        return TrainingDiverged(
            f"training stopped: the loss became {value} at {where}; {kept}. "
            "Try a lower train.lr, set train.grad_clip, or use model.kl_warmup_steps"
        )
