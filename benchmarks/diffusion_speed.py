"""What a diffusion's U-Net costs on this machine: training images/s (one DDPM or flow-matching
step: noise, forward, backward, Adam), network passes per second, and sampling images/s at
several step counts, for the zoo's U-Net and the configs' one, on 28x28 grey images.

    python benchmarks/diffusion_speed.py [--threads 2] [--batch 64] [--repeats 3]

Best of ``--repeats`` timings each, after a warm-up; the 4096x4096 fp32 matrix-product rate is
sampled between them as a reference for machine speed. Results go to
benchmarks/results/diffusion_speed_threads<N>.json.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import MatmulReference, environment, save

from genlab.models import DataInfo, build_model
from genlab.noise import generator

NETS = {
    "zoo (16/32 channels, no attention)": {
        "channels": 16,
        "channel_mults": [1, 2],
        "blocks": 1,
        "attention": False,
    },
    "configs/diffusion_fashion.yaml (32/64/64, attention)": {
        "channels": 32,
        "channel_mults": [1, 2, 2],
        "blocks": 2,
        "attention": True,
    },
}
STEPS = (10, 50)


def best(repeats: int, work) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(net: dict, objective: str, batch: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = build_model(
        {"name": "diffusion", "objective": objective, **net}, DataInfo((1, 28, 28), 256)
    )
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.rand(batch, 1, 28, 28)
    noise = generator(0, torch.device("cpu"))

    def train_step() -> None:
        loss = model.loss(x, "main", generator=noise)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    train_step()  # warm-up
    train = best(repeats, lambda: [train_step() for _ in range(3)]) / 3
    model.eval()
    sampling = {}
    for steps in STEPS:
        with torch.no_grad():
            model.sample_with(8, steps=2, generator=generator(0, torch.device("cpu")))
            seconds = best(
                repeats,
                lambda s=steps: model.sample_with(
                    batch, steps=s, generator=generator(0, torch.device("cpu"))
                ),
            )
        sampling[str(steps)] = batch / seconds
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_images_per_s": batch / train,
        "sample_images_per_s_by_steps": sampling,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reference = MatmulReference()
    rows = []
    for label, net in NETS.items():
        for objective in ("ddpm", "flow_matching"):
            reference.sample()
            row = {
                "net": label,
                "objective": objective,
                **measure(net, objective, args.batch, args.repeats),
            }
            print(row, flush=True)
            rows.append(row)
    reference.sample()
    save(
        f"diffusion_speed_threads{args.threads}",
        {
            "environment": environment(),
            "batch": args.batch,
            "rows": rows,
            "matmul": reference.summary(),
        },
    )


if __name__ == "__main__":
    main()
