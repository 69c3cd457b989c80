"""Many processes: the process group that torchrun starts, and how the ranks agree.

``torchrun --nproc-per-node N -m genlab train ...`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in their environment;
:func:`join` turns that into a :class:`ProcessGroup` (``gloo`` on the CPU, ``nccl`` on CUDA).
With one process (no torchrun, or ``WORLD_SIZE=1``) there is no group and nothing changes.

Only rank 0 runs the Trainer's callbacks (it alone writes the run folder). The other ranks
follow it: after every callback event rank 0 sends them what was decided (stop or go on), and
when a callback asks for the training state (a checkpoint), rank 0 first asks every rank for
its own part of it — its noise generator, torch's RNG and its model buffers (persistent
chains, batch-norm statistics) — so a checkpoint resumes every rank exactly.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from genlab.errors import ConfigError

_DONE, _GATHER = 0, 1


@dataclass
class ProcessGroup:
    """This process's place among ``world`` ranks and the channel rank 0 leads them by."""

    rank: int
    world: int
    local_rank: int
    backend: str
    control: Any  # a gloo group for small control messages (the default group under gloo)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- collectives on tensors -----------------------------------------------------------
    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over the ranks, in place; returns it."""
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast_object(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank."""
        box = [value]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def gather_objects(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (picklable, CPU tensors), in rank order, on every rank."""
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, value, group=self.control)
        return out

    # -- rank 0 leads, the others follow --------------------------------------------------
    def lead(self, decision: tuple[str, bool] | None) -> None:
        """Rank 0: tell the followers that the event is over and what was decided (go on, or
        stop with a reason); one small broadcast when nothing was decided."""
        if decision is None:
            self._command(_DONE, 0)
        else:
            self._command(_DONE, 2 if decision[1] else 1)
            self.broadcast_object(decision)

    def gather_from_followers(self, local: Any) -> list[Any]:
        """Rank 0 (inside an event): every rank's local state, in rank order."""
        self._command(_GATHER, 0)
        return self.gather_objects(local)

    def follow(self, local_state: Callable[[], Any]) -> tuple[str, bool] | None:
        """Ranks > 0: answer rank 0's requests for local state until it sends its decision."""
        while True:
            message = torch.zeros(2, dtype=torch.int64)
            dist.broadcast(message, src=0, group=self.control)
            command, stop = (int(v) for v in message.tolist())
            if command == _GATHER:
                self.gather_objects(local_state())
            elif stop:
                decision: tuple[str, bool] = self.broadcast_object(None)
                return decision
            else:
                return None

    def _command(self, code: int, stop: int) -> None:
        message = torch.tensor([code, stop], dtype=torch.int64)
        dist.broadcast(message, src=0, group=self.control)


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1") or "1") > 1


def join(device: torch.device) -> ProcessGroup | None:
    """The process group torchrun asked for (None when this is the only process)."""
    if not launched_by_torchrun():
        return None
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        raise ConfigError(
            "WORLD_SIZE is set but RANK/LOCAL_RANK are not: start many processes with "
            "`torchrun --nproc-per-node N -m genlab train ...` or `genlab train --nproc N`"
        ) from None
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"training on many processes needs the CPU or CUDA, not {device.type}")
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    control = dist.new_group(backend="gloo") if backend == "nccl" else dist.group.WORLD
    return ProcessGroup(rank, world, local_rank, backend, control)


def leave(group: ProcessGroup | None) -> None:
    """Wait for every rank, then close the process group. DistributedDataParallel wrappers
    left in reference cycles are collected first: destroyed after their process group, their
    reducers abort the process."""
    if group is not None and dist.is_initialized():
        gc.collect()
        dist.barrier(group=group.control)
        dist.destroy_process_group()


def check_batch(batch_size: int, world: int) -> None:
    """train.batch_size is the global batch: it must split evenly over ``world`` ranks."""
    if batch_size % world:
        raise ConfigError(
            f"train.batch_size={batch_size} is the batch of all {world} processes together "
            f"and must divide by {world}; use a multiple of {world}"
        )
