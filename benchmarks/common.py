"""Shared helpers for the benchmarks: the matrix-product reference rate and FLOP counting."""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genlab.devices import synchronize
from genlab.fileio import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results"


class MatmulReference:
    """Samples of the fp32 n x n matrix-product rate, taken between pieces of the measured work
    so both see the same machine conditions (a shared VM's speed drifts by 20-30%)."""

    def __init__(
        self,
        n: int = 4096,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.n, self.device = n, torch.device(device)
        self.a = torch.randn(n, n, device=self.device, dtype=dtype)
        self.b = torch.randn(n, n, device=self.device, dtype=dtype)
        self.a @ self.b  # warm-up
        synchronize(self.device)
        self.samples: list[float] = []

    def sample(self, repeats: int = 3) -> None:
        for _ in range(repeats):
            start = time.perf_counter()
            self.a @ self.b
            synchronize(self.device)
            self.samples.append(2 * self.n**3 / (time.perf_counter() - start))

    def summary(self) -> dict[str, float]:
        return {
            "matmul_gflops_per_s_median": statistics.median(self.samples) / 1e9,
            "matmul_gflops_per_s_best": max(self.samples) / 1e9,
            "matmul_samples": len(self.samples),
        }


def linear_flops(module: nn.Module) -> int:
    """Forward FLOPs per image (2 per multiply-add) of every nn.Linear in ``module``.

    The benchmarks use MLP models, whose compute is all in their Linear layers; refuse others
    rather than report a wrong count."""
    if any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in module.modules()):
        raise SystemExit("FLOP counting here covers MLP models only; use an mlp encoder/decoder")
    return sum(
        2 * m.in_features * m.out_features for m in module.modules() if isinstance(m, nn.Linear)
    )


def environment() -> dict[str, Any]:
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
    }


def save_rows(name: str, label: str, rows: list[dict[str, Any]]) -> Path:
    """Save labelled result rows (a before/after pair shares ``name``) as ``<name>_<label>``."""
    return save(f"{name}_{label}", {"environment": environment(), "label": label, "rows": rows})


def save(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    atomic_write_json(path, result)
    print(json.dumps(result, indent=2))
    print(f"saved {path}")
    return path
