"""The one training loop of genlab, shared by every family.

The Trainer knows phases, optimisers, schedules, batches, checkpoints and logs; it never
knows which family it trains. Each iteration takes one batch and runs every phase the model
declares (``repeats`` times each), each phase with its own optimiser and schedule.

Resuming from a checkpoint continues exactly: the checkpoint holds model, optimisers,
schedulers, step/epoch/batch position, the model's noise generator and torch's global RNG,
and the data stream derives every shuffle and binarisation draw from (seed, epoch, batch).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from genlab.config import TrainConfig
from genlab.errors import ConfigError, TrainingDiverged
from genlab.models.base import GenerativeModel, SupportsSample
from genlab.reporting.images import save_grid
from genlab.reporting.run_dir import RunDir
from genlab.training.checkpoint import latest_checkpoint, load_state, write_checkpoint
from genlab.training.optim import build_optimizer, build_schedule

VAL_BATCH = 500
LOG_EVERY = 100  # steps between "train" records in metrics.jsonl
SAMPLE_GRID = 64
COLLAPSE_RMS = 0.01  # median pairwise RMS pixel distance below which samples count as collapsed


def sample_diversity(images: torch.Tensor) -> float:
    """Median RMS pixel distance (in [0, 1] units) over all pairs of a batch of images."""
    flat = images.flatten(1).double()  # (N, D)
    distances = torch.cdist(flat, flat) / flat.shape[1] ** 0.5  # (N, N)
    upper = torch.triu_indices(flat.shape[0], flat.shape[0], offset=1)
    return distances[upper[0], upper[1]].median().item()


@dataclass
class TrainResult:
    steps: int
    epochs_completed: int
    stopped_early: bool
    finished: bool  # False when max_steps or max_seconds interrupted the schedule
    best_val_loss: float | None
    images_per_s: float
    stop_reason: str = ""  # "max_steps" or "max_seconds" when interrupted


class Trainer:
    def __init__(
        self, model: GenerativeModel, data: Any, cfg: TrainConfig, run: RunDir | None = None
    ) -> None:
        self.model, self.data, self.cfg, self.run = model, data, cfg, run
        self.phases = model.phases()
        self.params = {p.name: [q for q in p.parameters() if q.requires_grad] for p in self.phases}
        self.optimizers = {
            p.name: build_optimizer(self.params[p.name], cfg, lr=p.lr, betas=p.betas)
            for p in self.phases
        }
        self.stream = data.stream("train", cfg.batch_size, shuffle=True, seed=cfg.seed)
        if len(self.stream) == 0:
            raise ConfigError(
                f"the training split has no images for train.batch_size={cfg.batch_size}"
            )
        self.schedulers = {
            name: build_schedule(opt, cfg, len(self.stream))
            for name, opt in self.optimizers.items()
        }
        has_val = len(data.val) > 0
        if cfg.early_stopping_patience and not has_val:
            raise ConfigError(
                "train.early_stopping_patience needs a validation split; set data.val_fraction > 0"
            )
        if cfg.early_stopping_patience and len(self.phases) > 1:
            raise ConfigError(
                f"train.early_stopping_patience needs one validation loss, but the {model.family} "
                f"family trains {len(self.phases)} phases "
                f"({', '.join(p.name for p in self.phases)}); set it to null"
            )
        self.val_stream = data.stream("val", VAL_BATCH, shuffle=False) if has_val else None
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.epoch = self.batch = self.step = 0
        self.best_val = math.inf
        self.bad_epochs = 0
        self.last_checkpoint: Path | None = None
        self._image_count = 0
        self._fit_start = time.perf_counter()
        self._stop_reason = ""
        self._train_seconds = 0.0
        self._epoch_train_record: dict[str, float] = {}
        self._bar: Any = None

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "progress": {
                "epoch": self.epoch,
                "batch": self.batch,
                "step": self.step,
                "best_val": self.best_val,
                "bad_epochs": self.bad_epochs,
            },
            "rng": {"generator": self.generator.get_state(), "torch": torch.get_rng_state()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][name])
        progress = state["progress"]
        self.epoch, self.batch, self.step = progress["epoch"], progress["batch"], progress["step"]
        self.best_val, self.bad_epochs = progress["best_val"], progress["bad_epochs"]
        self.generator.set_state(state["rng"]["generator"])
        torch.set_rng_state(state["rng"]["torch"])

    def resume_from(self, run: RunDir) -> bool:
        """Load the run's latest checkpoint; False when it has none yet."""
        path = latest_checkpoint(run.checkpoints)
        if path is None:
            return False
        self.load_state_dict(load_state(path))
        self.last_checkpoint = path
        return True

    # -- the loop -------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        cfg = self.cfg
        interrupted = stopped_early = False
        self._fit_start = time.perf_counter()
        self._stop_reason = ""
        per_epoch = len(self.stream)
        self._bar = tqdm(
            total=cfg.epochs * per_epoch,
            initial=self.epoch * per_epoch + self.batch,
            desc="train",
            unit="batch",
            disable=not cfg.progress,
            dynamic_ncols=True,
        )
        while self.epoch < cfg.epochs and not (interrupted or stopped_early):
            interrupted = self._run_epoch()
            if interrupted:
                break
            record = {"kind": "epoch", "epoch": self.epoch + 1, "step": self.step}
            record.update(self._epoch_train_record)
            if self.val_stream is not None:
                val = self.validate()
                record.update({f"val/{k}": v for k, v in val.items()})
                if "loss" in val:  # one phase: its loss drives early stopping and best weights
                    stopped_early = self._early_stopping(val["loss"])
            self.epoch += 1
            self.batch = 0
            record.update(self._save_samples())
            self._log(record)
            last = self.epoch == cfg.epochs or stopped_early
            if self.epoch % cfg.checkpoint_every == 0 or last:
                self.checkpoint()
        self._bar.close()
        if interrupted:
            self.checkpoint()
        best = self.best_val if math.isfinite(self.best_val) else None
        rate = self._image_count / self._train_seconds if self._train_seconds else 0.0
        return TrainResult(
            self.step, self.epoch, stopped_early, not interrupted, best, rate, self._stop_reason
        )

    def _run_epoch(self) -> bool:
        """Train over the rest of the current epoch; True if max_steps/max_seconds stopped it."""
        cfg, model = self.cfg, self.model
        model.train()
        keys: list[str] = []
        total: torch.Tensor | None = None
        batches = images = 0
        start = time.perf_counter()
        bar = self._bar
        for x, _ in self.stream.epoch(self.epoch, self.batch):
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
            bar.update(1)
            if self.step % 20 == 0 or self.batch == len(self.stream):
                rate = images / max(time.perf_counter() - start, 1e-9)
                losses = {  # "loss", or one "<phase>/loss" per phase
                    k.removesuffix("/loss").removesuffix("loss") or "loss": f"{v.item():.3f}"
                    for k, v in terms.items()
                    if k == "loss" or k.endswith("/loss")
                }
                bar.set_postfix(
                    epoch=f"{self.epoch + 1}/{cfg.epochs}",
                    **losses,
                    img_s=f"{rate:,.0f}",
                    refresh=False,  # let tqdm's own rate limit decide when to redraw
                )
            if self.step % LOG_EVERY == 0:
                self._log(
                    {
                        "kind": "train",
                        "epoch": self.epoch + 1,
                        "step": self.step,
                        **{k: v.item() for k, v in terms.items()},
                        "lr": self._lr(),
                    }
                )
            if cfg.max_steps is not None and self.step >= cfg.max_steps:
                self._stop_reason = "max_steps"
                break
            if (
                cfg.max_seconds is not None
                and time.perf_counter() - self._fit_start >= cfg.max_seconds
            ):
                self._stop_reason = "max_seconds"
                break
        seconds = time.perf_counter() - start
        self._image_count += images
        self._train_seconds += seconds
        means = (total / max(batches, 1)).tolist() if total is not None else []
        self._epoch_train_record = {f"train/{k}": v for k, v in zip(keys, means, strict=True)}
        self._epoch_train_record.update(
            {
                "images_per_s": images / seconds if seconds else 0.0,
                "seconds": seconds,
                "lr": self._lr(),
            }
        )
        return self.batch < len(self.stream)

    def _train_step(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logged: dict[str, torch.Tensor] = {}
        for phase in self.phases:
            optimizer = self.optimizers[phase.name]
            for _ in range(phase.repeats):
                terms = self.model.loss(x, phase.name, generator=self.generator, step=self.step)
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
        """Mean of every loss term over the validation split, with a fixed noise seed."""
        assert self.val_stream is not None
        self.model.eval()
        generator = torch.Generator().manual_seed(self.cfg.seed + 1)
        sums: dict[str, float] = {}
        count = 0
        for x, _ in self.val_stream.epoch(0):
            for phase in self.phases:
                terms = self.model.loss(x, phase.name, generator=generator, step=self.step)
                prefix = "" if len(self.phases) == 1 else f"{phase.name}/"
                for key, value in terms.items():
                    sums[prefix + key] = sums.get(prefix + key, 0.0) + value.item() * x.shape[0]
            count += x.shape[0]
        self.model.train()
        return {k: v / count for k, v in sums.items()}

    def _early_stopping(self, val_loss: float) -> bool:
        if val_loss < self.best_val:
            self.best_val, self.bad_epochs = val_loss, 0
            if self.run is not None and self.cfg.early_stopping_patience:
                state = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
                tmp = self.run.checkpoints / "best-model.safetensors.tmp"
                save_file(state, str(tmp))
                tmp.replace(self.run.checkpoints / "best-model.safetensors")
            return False
        self.bad_epochs += 1
        patience = self.cfg.early_stopping_patience
        return patience is not None and self.bad_epochs >= patience

    # -- side effects ---------------------------------------------------------------------
    def checkpoint(self) -> None:
        if self.run is not None:
            self.last_checkpoint = write_checkpoint(
                self.run.checkpoints, self.step, self.state_dict()
            )

    def _log(self, record: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.append_metrics(record)

    def _save_samples(self) -> dict[str, float]:
        """Save a grid of samples from a fixed seed; return their diversity for the log, and
        warn when the samples have collapsed onto (nearly) one image."""
        cfg = self.cfg
        if self.run is None or not isinstance(self.model, SupportsSample):
            return {}
        if cfg.sample_every == 0 or (self.epoch % cfg.sample_every and self.epoch != cfg.epochs):
            return {}
        self.model.eval()
        with torch.no_grad():
            images = self.model.sample(SAMPLE_GRID, generator=torch.Generator().manual_seed(0))
        self.model.train()
        save_grid(images, self.run.samples / f"train-epoch-{self.epoch:04d}.png")
        diversity = sample_diversity(images)
        if diversity < COLLAPSE_RMS:
            warnings.warn(
                f"epoch {self.epoch}: the {SAMPLE_GRID} samples have collapsed (median pairwise "
                f"RMS distance {diversity:.4f} < {COLLAPSE_RMS}): the model makes nearly one "
                "image whatever its noise",
                RuntimeWarning,
                stacklevel=2,
            )
        return {"samples/pairwise_rms": diversity}

    def _lr(self) -> float:
        return self.optimizers[self.phases[0].name].param_groups[0]["lr"]

    def _diverged(self, value: float, phase: str) -> TrainingDiverged:
        where = f"step {self.step + 1} (epoch {self.epoch + 1}, phase {phase})"
        kept = (
            f"the last good checkpoint is {self.last_checkpoint}"
            if self.last_checkpoint
            else ("no checkpoint had been written yet")
        )
        return TrainingDiverged(
            f"training stopped: the loss became {value} at {where}; {kept}. "
            "Try a lower train.lr, set train.grad_clip, or use model.kl_warmup_steps"
        )
