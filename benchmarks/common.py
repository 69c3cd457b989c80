"""Shared helpers for the benchmarks: the matrix-product reference rate and FLOP counting."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

RESULTS = Path(__file__).resolve().parent / "results"


def matmul_rate(n: int = 4096, repeats: int = 5) -> float:
    """Best FLOP/s of an n x n fp32 matrix product over ``repeats`` tries (after a warm-up)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


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


def save(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"saved {path}")
    return path
