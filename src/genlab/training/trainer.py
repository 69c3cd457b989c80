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
torch's global RNG (and CUDA's) and the state of every callback that has one.

Devices and processes: the Trainer computes on the device the caller put the model on; its
noise generator lives there too (see :mod:`genlab.noise`). Under torchrun (a
:class:`~genlab.training.distributed.ProcessGroup`) each rank trains on its shard of every
batch with its own noise stream from (seed, rank), gradients are reduced by
DistributedDataParallel, logged terms and validation are averaged over the ranks, and only
rank 0 runs the callbacks; its decisions reach the others (see ``distributed``). A checkpoint
from N ranks holds every rank's generator and buffers and resumes on N ranks exactly. A
checkpoint written on another kind of device resumes too, but its noise stream restarts from
(seed, step), so the run is then no longer bitwise the uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from genlab import noise
from genlab.config import TrainConfig
from genlab.data.seeding import derive_seed
from genlab.errors import ConfigError, RunError, TrainingDiverged
from genlab.models.base import GenerativeModel
from genlab.training.distributed import ProcessGroup
from genlab.training.divergence import Divergence, DivergenceWatch
from genlab.training.epoch_sums import EpochSums
from genlab.training.events import BatchSource, Callback, TrainResult
from genlab.training.optim import build_optimizer, build_schedule
from genlab.training.step import StepEngine, model_loss

RANK_NOISE = 6  # seed tag of the noise streams of ranks > 0 (rank 0 uses train.seed itself)


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
        *,
        device: torch.device | None = None,
        group: ProcessGroup | None = None,
    ) -> None:
        self.model, self.cfg, self.train_batches, self.val_batches = model, cfg, train, val
        self.group = group
        self.callbacks = list(callbacks) if group is None or group.is_main else []
        self.device = device if device is not None else _model_device(model)
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
        self.engine = StepEngine(model, cfg, self.device, group, len(self.phases))
        self.generator = noise.generator(self.noise_seed(), self.device)
        self.resumed_across_devices = False
        self.epoch = self.batch = self.step = 0
        self.val_loss: float | None = None
        self.watch = DivergenceWatch(cfg.explode_factor, cfg.explode_steps)
        self.divergence: Divergence | None = None
        # the current epoch's running sums of logged terms, so that an epoch interrupted and
        # resumed logs the means over all its steps (they are part of the training state)
        self.epoch_sums = EpochSums()
        self.images_seen = 0  # in this fit() call
        self.train_seconds = 0.0
        self.fit_start = time.perf_counter()
        self._stop: tuple[str, bool] | None = None  # (reason, interrupts the schedule)
        for callback in self.callbacks:
            callback.setup(self)

    @property
    def rank(self) -> int:
        return 0 if self.group is None else self.group.rank

    @property
    def world(self) -> int:
        return 1 if self.group is None else self.group.world

    def noise_seed(self, *extra: int) -> int:
        """train.seed for rank 0 of an uninterrupted run; derived from (seed, rank, ...)
        otherwise."""
        if self.rank == 0 and not extra:
            return self.cfg.seed
        return derive_seed(RANK_NOISE, self.cfg.seed, self.rank, *extra)

    @property
    def batches_per_epoch(self) -> int:
        return len(self.train_batches)

    def lr(self) -> float:
        return float(self.optimizers[self.phases[0].name].param_groups[0]["lr"])

    def request_stop(self, reason: str, *, interrupt: bool) -> None:
        """Stop after the current step (``interrupt``: a budget cut the schedule short) or at
        the end of the current epoch (early stopping). Call it from a callback event, never
        from a signal handler: under torchrun the decision reaches the other ranks at the end
        of the event, and the loop must not see a stop they do not."""
        if self._stop is None:
            self._stop = (reason, interrupt)

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The whole training state; under torchrun called by rank 0 inside a callback event,
        and then it holds every rank's own part (``ranks``)."""
        state = {
            "model": self.model.state_dict(),
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "progress": {"epoch": self.epoch, "batch": self.batch, "step": self.step},
            "rng": self._rng_state(),
            "divergence_watch": self.watch.state_dict(),
            "epoch_sums": self.epoch_sums.state_dict(),
            "callbacks": {
                c.state_key: c.state_dict() for c in self.callbacks if c.state_key is not None
            },
            **self.engine.state_dict(),
        }
        if self.group is not None:
            state["world_size"] = self.world
            state["ranks"] = self.group.gather_from_followers(self._local_state())
        return state

    def _rng_state(self) -> dict[str, Any]:
        rng: dict[str, Any] = {
            "device": self.device.type,
            "generator": self.generator.get_state(),
            "torch": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def _local_state(self) -> dict[str, Any]:
        """What differs between ranks: the RNGs and the model's buffers (CPU tensors)."""
        buffers = {k: v.detach().cpu() for k, v in self.model.named_buffers()}
        return {"rng": self._rng_state(), "buffers": buffers}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved_world = int(state.get("world_size", 1))
        if saved_world != self.world:
            raise RunError(
                f"this checkpoint was written by {saved_world} process(es) and resumes only on "
                f"as many: use `torchrun --nproc-per-node {saved_world} -m genlab resume ...` "
                f"(or `genlab resume RUN --nproc {saved_world}`)"
                if saved_world > 1
                else "this checkpoint was written by one process; resume it without torchrun"
            )
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
        if "divergence_watch" in state:  # checkpoints before the watch start it afresh
            self.watch.load_state_dict(state["divergence_watch"])
        if "epoch_sums" in state:
            self.epoch_sums.load_state_dict(state["epoch_sums"], self.device)
        self.engine.load_state_dict(state)
        if self.group is not None:
            local = state["ranks"][self.rank]
            named = dict(self.model.named_buffers())
            for key, value in local["buffers"].items():
                named[key].copy_(value)
            self._load_rng(local["rng"])
        else:
            self._load_rng(state["rng"])
        saved = state.get("callbacks", {})
        for callback in self.callbacks:
            if callback.state_key is not None and callback.state_key in saved:
                callback.load_state_dict(saved[callback.state_key])

    def _load_rng(self, rng: dict[str, Any]) -> None:
        torch.set_rng_state(rng["torch"])
        if rng.get("device", "cpu") == self.device.type:
            self.generator.set_state(rng["generator"])
            if "cuda" in rng:
                torch.cuda.set_rng_state(rng["cuda"], self.device)
        else:  # another kind of generator: a fresh stream, reproducible from (seed, step)
            self.generator = noise.generator(self.noise_seed(self.step), self.device)
            self.resumed_across_devices = True

    def _set_base_lr(self, name: str, lr: float) -> None:
        """Make ``lr`` the rate the schedule scales (when it differs from the checkpoint's)."""
        optimizer, schedule = self.optimizers[name], self.schedulers[name]
        # recomputed even when the rate is the checkpoint's: train.warmup_steps may have
        # changed the schedule (the same product as the schedule's own, so bitwise the same
        # rate when nothing changed)
        schedule.base_lrs = [lr] * len(optimizer.param_groups)
        factors = [f(schedule.last_epoch) for f in schedule.lr_lambdas]
        for group, factor in zip(optimizer.param_groups, factors, strict=True):
            group["initial_lr"], group["lr"] = lr, lr * factor

    # -- the loop -------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        try:
            return self._fit()
        finally:
            for callback in self.callbacks:
                callback.on_exit(self)

    def _fit(self) -> TrainResult:
        self.fit_start = time.perf_counter()
        self._stop = None
        self._emit("on_fit_start")
        while self.epoch < self.cfg.epochs:
            train_means = self._run_epoch()
            if self.group is not None:
                self._check_ranks_agree()
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
        if self.batch == 0:
            self.epoch_sums = EpochSums()
        sums = self.epoch_sums
        start = time.perf_counter()
        last = start
        for x, y in self.train_batches.epoch(self.epoch, self.batch):
            terms = self._train_step(x, y)
            if self.group is not None:
                terms = self._mean_over_ranks(terms, x.shape[0])
            count = self._global_size(x)
            sums.add(terms, count)
            self.images_seen += count
            self.batch += 1
            self.step += 1
            self._emit("on_step_end", terms, count)
            now = time.perf_counter()
            sums.seconds += now - last
            last = now
            if self._stop is not None and self._stop[1]:
                break  # a budget: stop now, mid-epoch
        self.train_seconds += time.perf_counter() - start
        return {**sums.means(), "lr": self.lr()}

    def _global_size(self, x: torch.Tensor) -> int:
        """Images of this step on all ranks together."""
        if self.group is None:
            return int(x.shape[0])
        return int(self.train_batches.global_size(self.batch))  # type: ignore[attr-defined]

    def _train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        logged: dict[str, torch.Tensor] = {}
        scale = 1.0
        if self.group is not None:  # shards of unequal size: weight so ranks average right
            scale = self.train_batches.shard_scale(self.batch)  # type: ignore[attr-defined]
        for phase in self.phases:
            optimizer = self.optimizers[phase.name]
            for _ in range(phase.repeats):
                terms = self.engine.loss(x, phase.name, self.generator, y)
                loss = terms["loss"]
                check = loss.detach().float().reshape(1)
                if self.group is not None:  # every rank stops together
                    check = self.group.sum_(check.clone())
                found = self.watch.check(phase.name, float(check.item()), self.step + 1)
                if found is not None:
                    raise self._diverged(found)
                self.engine.step(
                    loss * scale if scale != 1.0 else loss,
                    optimizer,
                    self.params[phase.name],
                    self.cfg.grad_clip,
                )
                self.model.after_step(phase.name)
            self.schedulers[phase.name].step()
            prefix = "" if len(self.phases) == 1 else f"{phase.name}/"
            logged.update({prefix + k: v.detach().float() for k, v in terms.items()})
        self.model.update_average()
        return logged

    def _mean_over_ranks(
        self, terms: dict[str, torch.Tensor], images: int
    ) -> dict[str, torch.Tensor]:
        """Each term's mean over the global batch (rank means weighted by shard sizes)."""
        assert self.group is not None
        stacked = torch.cat([torch.stack(list(terms.values())) * images, self._ones(images)])
        self.group.sum_(stacked)
        means = stacked[:-1] / stacked[-1]
        return dict(zip(terms, means, strict=True))

    def _check_ranks_agree(self) -> None:
        """Every rank must hold the same parameters (DDP keeps them equal only through equal
        updates); a model whose data-dependent set-up saw only its own shard breaks that."""
        assert self.group is not None
        total = float(sum(p.detach().double().sum().item() for p in self.model.parameters()))
        if len(set(self.group.gather_objects(total))) > 1:  # every rank sees every value
            raise RuntimeError(
                f"the {self.world} processes' parameters differ after epoch {self.epoch + 1}: "
                "the model set itself up from its own shard of the data"
            )

    def _ones(self, value: float) -> torch.Tensor:
        return torch.full((1,), float(value), device=self.device)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean of every loss term over the validation batches, with a fixed noise seed, in
        eval mode: the model's final objective, whatever its training schedule."""
        assert self.val_batches is not None
        self.model.eval()
        seed = self.cfg.seed + 1
        if self.rank:
            seed = derive_seed(RANK_NOISE, seed, self.rank)
        generator = noise.generator(seed, self.device)
        sums: dict[str, torch.Tensor] = {}
        count = 0
        for x, y in self.val_batches.epoch(0):
            for phase in self.phases:
                terms = model_loss(self.model, x, phase.name, generator, y)
                prefix = "" if len(self.phases) == 1 else f"{phase.name}/"
                for key, value in terms.items():
                    total = value.detach().double() * x.shape[0]
                    sums[prefix + key] = (
                        sums[prefix + key] + total if prefix + key in sums else total
                    )
            count += x.shape[0]
        self.model.train()
        keys = list(sums)
        totals = torch.stack([sums[k] for k in keys]).cpu().tolist() if keys else []
        if self.group is not None:  # every rank validated its shard: add them up
            reduced = torch.tensor([*totals, count], dtype=torch.float64, device=self.device)
            *totals, count = self.group.sum_(reduced).tolist()
        return {k: v / count for k, v in zip(keys, totals, strict=True)}

    # -- callbacks ------------------------------------------------------------------------
    def _emit(self, event: str, *args: Any) -> None:
        if self.group is not None and not self.group.is_main:
            decided = self.group.follow(self._local_state)  # rank 0 runs the callbacks
            if decided is not None and self._stop is None:
                self._stop = decided
            return
        for callback in self.callbacks:
            getattr(callback, event)(self, *args)
        if self.group is not None:
            self.group.lead(self._stop)

    def _diverged(self, found: Divergence) -> TrainingDiverged:
        """Tell the callbacks (the checkpointer rewinds to the last good checkpoint, the run
        records its status), and say what happened and the way forward."""
        self.divergence = found
        where = f"step {found.step} (epoch {self.epoch + 1}, phase {found.phase})"
        self._emit("on_diverged")
        kept = next(
            (text for c in self.callbacks if (text := c.describe_recovery()) is not None),
            "no checkpoint before the divergence is kept; start again with a lower train.lr",
        )
        return TrainingDiverged(
            f"training diverged: the loss was {found.value:.4g} ({found.rule}) at {where}; {kept}"
        )


def _model_device(model: torch.nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")
