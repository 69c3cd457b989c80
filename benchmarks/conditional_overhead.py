"""What conditioning on the label costs: training images/s and sampling images/s of each
conditional family's shipped Fashion-MNIST model against the same model unconditional, and a
guided diffusion's sampling (two network passes per step) against its conditional sampling.

    python benchmarks/conditional_overhead.py [--threads 2] [--batch 64] [--repeats 3]

Random images and labels of Fashion-MNIST's shape (28x28, ten classes); best of ``--repeats``
timings after a warm-up, conditional and unconditional interleaved so they see the same
machine. Results go to benchmarks/results/conditional_overhead_threads<N>.json.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch
from common import environment, save

from genlab.models import DataInfo, build_model
from genlab.noise import generator

CLASSES = tuple(str(i) for i in range(10))
MODELS: dict[str, tuple[dict[str, Any], int]] = {  # the configs' model sections, their levels
    "vae (cvae_fashion.yaml)": ({"name": "vae", "hidden": [400], "latent_dim": 20}, 2),
    "gan (dcgan_cond_fashion.yaml)": (
        {"name": "gan", "architecture": "dcgan", "latent_dim": 64, "channels": [64, 128]},
        256,
    ),
    "gated_pixelcnn (gated_pixelcnn_cond_fashion.yaml)": (
        {"name": "gated_pixelcnn", "channels": 24, "layers": 5, "head_hidden": 64},
        2,
    ),
    "diffusion (zoo U-Net, 10 DDIM steps)": (
        {
            "name": "diffusion",
            "channels": 16,
            "channel_mults": [1, 2],
            "blocks": 1,
            "attention": False,
            "sampler": "ddim",
            "sample_steps": 10,
        },
        256,
    ),
}


def best(repeats: int, work: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def build(spec: dict[str, Any], levels: int, conditional: bool) -> Any:
    torch.manual_seed(0)
    info = DataInfo((1, 28, 28), levels, CLASSES, (6000,) * 10)
    return build_model({**spec, "conditional": conditional}, info)


def train_rate(model: Any, batch: int, repeats: int) -> float:
    x = torch.rand(batch, 1, 28, 28)
    x = x.round() if model.data_info.levels == 2 else x
    y = {"y": torch.arange(batch) % 10} if model.conditional else {}
    optimizers = {p.name: torch.optim.Adam(p.parameters(), 1e-4) for p in model.phases()}
    noise = generator(0, torch.device("cpu"))

    def step() -> None:
        for phase in model.phases():
            loss = model.loss(x, phase.name, generator=noise, **y)["loss"]
            optimizers[phase.name].zero_grad()
            loss.backward()
            optimizers[phase.name].step()

    step()
    return batch / best(repeats, step)


def sample_rate(model: Any, n: int, repeats: int, **kwargs: Any) -> float:
    model.eval()
    draw = model.sample_guided if "guidance" in kwargs else model.sample

    def work() -> None:
        with torch.no_grad():
            draw(n, generator=generator(0, torch.device("cpu")), **kwargs)

    work()
    return n / best(repeats, work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for label, (spec, levels) in MODELS.items():
        n = 4 if spec["name"] == "gated_pixelcnn" else args.batch  # sequential: a few images
        row: dict[str, Any] = {"model": label}
        for conditional in (False, True):
            model = build(spec, levels, conditional)
            key = "conditional" if conditional else "unconditional"
            row[f"{key}_train_images_per_s"] = train_rate(model, args.batch, args.repeats)
            row[f"{key}_sample_images_per_s"] = sample_rate(model, n, args.repeats)
            if conditional and spec["name"] == "diffusion":
                row["guided_w3_sample_images_per_s"] = sample_rate(
                    model, n, args.repeats, guidance=3.0
                )
        row["train_ratio"] = (
            row["conditional_train_images_per_s"] / row["unconditional_train_images_per_s"]
        )
        row["sample_ratio"] = (
            row["conditional_sample_images_per_s"] / row["unconditional_sample_images_per_s"]
        )
        print(row, flush=True)
        rows.append(row)
    save(
        f"conditional_overhead_threads{args.threads}",
        {"environment": environment(), "batch": args.batch, "rows": rows},
    )


if __name__ == "__main__":
    main()
