"""Which device a process computes on: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

One device per process. ``auto`` is CUDA when PyTorch sees a GPU (the process's local rank
under torchrun), else the CPU. A device that this machine does not have is a
:class:`~genlab.errors.ConfigError` that says which devices it does have. The library never
moves a tensor to a device behind its caller's back: callers pass the device they resolved.
"""

from __future__ import annotations

import os
import re

import torch

from genlab.errors import ConfigError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"
_PATTERN = re.compile(r"^(auto|cpu|mps|cuda)(?::(\d+))?$")


def available_devices() -> list[str]:
    """The devices this process can use, as ``--device`` spells them."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        found.append("mps")
    return found


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def check_device_name(name: str, key: str = "--device") -> str:
    """``name`` if it is spelled like a device (whether or not this machine has it)."""
    match = _PATTERN.match(name) if isinstance(name, str) else None
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise ConfigError(f"{key}={name!r} is not a device; use {DEVICE_CHOICES}")
    return name


def resolve_device(name: str = "auto", key: str = "--device") -> torch.device:
    """The ``torch.device`` for ``name``; an error naming the devices here if it is absent."""
    check_device_name(name, key)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", _local_rank() % torch.cuda.device_count())
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"{key}={name}: this machine has no CUDA device (torch {torch.__version__}"
                f"{'' if torch.version.cuda else ', a build without CUDA'}); "
                f"use one of: {', '.join(available_devices())}, or auto"
            )
        count = torch.cuda.device_count()
        if device.index is None:
            return torch.device("cuda", _local_rank() % count)
        if device.index >= count:
            raise ConfigError(
                f"{key}={name}: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}"
            )
    if device.type == "mps" and not _mps_available():
        raise ConfigError(
            f"{key}={name}: Apple's MPS backend is not available here; "
            f"use one of: {', '.join(available_devices())}, or auto"
        )
    return device


def _local_rank() -> int:
    """This process's rank on its node under torchrun (0 otherwise)."""
    try:
        return int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        return 0


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a clock read after it times the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def describe(device: torch.device) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H200)``: what run.json and reports record."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)
