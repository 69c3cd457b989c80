"""Autoregressive pixel models: sampling images/s naive vs cached, and training images/s.

For each family, the model of ``configs/<family>_fashion.yaml`` (freshly initialised: the cost
does not depend on the weights; ``pixelrnn_diagonal`` is the pixelrnn config with
``model.lstm=diagonal``) on 28x28 binary images:

- sampling: ``--sample-images`` images drawn with the naive sampler (one full forward pass per
  pixel) and then with the cached incremental sampler (Ramachandran et al. 2017), in the same
  run, from the same generator; reports images/s of each, the speed-up and whether the two
  returned the same images. The cached sampler is also timed on a 64-image batch (the
  training sample grid).
- training: images/s of loss + backward + Adam step on batches of the config's batch size
  (random binary images), the median of ``--train-steps`` timed steps after one warm-up.

    python benchmarks/autoregressive.py [--threads 1] [--sample-images 16] [--families ...]
        [--device cuda]   # on a GPU (results/autoregressive_cuda.json; timings synchronise)
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from common import environment, save

from genlab import noise
from genlab.devices import describe, resolve_device, synchronize
from genlab.models import DataInfo, build_model, load_run_config
from genlab.models.autoregressive.sampling import sample_autoregressive

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
FAMILIES = ("gated_pixelcnn", "pixelrnn", "pixelcnn", "pixelrnn_diagonal")


DEVICE = torch.device("cpu")


def timed_sample(model: torch.nn.Module, n: int, sampler: str) -> tuple[torch.Tensor, float]:
    synchronize(DEVICE)
    start = time.perf_counter()
    images = sample_autoregressive(
        model,  # type: ignore[arg-type]
        n,
        generator=noise.generator(0, DEVICE),
        sampler=sampler,  # type: ignore[arg-type]
    )
    synchronize(DEVICE)
    return images, time.perf_counter() - start


def train_rate(model: torch.nn.Module, batch: int, steps: int) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    times = []
    for step in range(steps + 1):
        x = torch.randint(0, 2, (batch, 1, 28, 28), generator=g).float().to(DEVICE)
        synchronize(DEVICE)
        start = time.perf_counter()
        loss = model.loss(x, "main")["loss"]  # type: ignore[operator]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        synchronize(DEVICE)
        if step:  # the first step is a warm-up
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def bench(family: str, sample_images: int, train_steps: int) -> dict[str, Any]:
    # pixelrnn_diagonal: the pixelrnn config with Diagonal BiLSTM layers instead of Row LSTMs
    base = family.removesuffix("_diagonal")
    config_path = CONFIGS / f"{base}_fashion.yaml"
    overrides = ["model.lstm=diagonal"] if family != base else []
    cfg = load_run_config(str(config_path), overrides)
    torch.manual_seed(0)
    model = build_model(cfg.model, DataInfo((1, 28, 28), 2)).to(DEVICE)
    model.eval()
    naive, t_naive = timed_sample(model, sample_images, "naive")
    cached, t_cached = timed_sample(model, sample_images, "cached")
    _, t_grid = timed_sample(model, 64, "cached")
    model.train()
    result = {
        "config": str(config_path.relative_to(CONFIGS.parent)),
        "overrides": overrides,
        "parameters": sum(p.numel() for p in model.parameters()),
        "sample_images": sample_images,
        "naive_images_per_s": sample_images / t_naive,
        "cached_images_per_s": sample_images / t_cached,
        "cached_speedup": t_naive / t_cached,
        "samplers_identical": bool(torch.equal(naive, cached)),
        "samplers_pixel_agreement": (naive == cached).float().mean().item(),
        "cached_images_per_s_batch64": 64 / t_grid,
        "train_batch_size": cfg.train.batch_size,
        "train_images_per_s": train_rate(model, cfg.train.batch_size, train_steps),
    }
    print(
        f"{family}: naive {result['naive_images_per_s']:.3f} img/s, cached "
        f"{result['cached_images_per_s']:.2f} img/s ({result['cached_speedup']:.0f}x, identical: "
        f"{result['samplers_identical']}), train {result['train_images_per_s']:.0f} img/s",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sample-images", type=int, default=16)
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    global DEVICE
    DEVICE = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    results = {f: bench(f, args.sample_images, args.train_steps) for f in args.families}
    save(
        "autoregressive" if DEVICE.type == "cpu" else f"autoregressive_{DEVICE.type}",
        {
            "device": describe(DEVICE),
            "image_shape": [1, 28, 28],
            "levels": 2,
            "families": results,
            "environment": environment(),
            "note": "shared machine: other jobs ran at the same time",
        },
    )


if __name__ == "__main__":
    main()
