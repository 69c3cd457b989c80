"""Training-step speed of the zoo's models: images/s of one forward, backward and Adam step.

Each named zoo entry (``genlab.zoo.entries``) is built for 28x28 images under its protocol and
trained with Adam on one fixed random batch (the data pipeline is left out): ``--warmup`` untimed
steps, then ``--steps`` timed ones; the median step gives images/s. For a before/after, run it
twice in one session with PYTHONPATH pointing at the earlier source tree for "before".

    python benchmarks/train_step.py --entries pixelrnn pixelcnn [--batch 64 256] \
        [--threads 2] [--label after]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import save_rows

from genlab.models import DataInfo, build_model
from genlab.zoo.entries import BINARIZE, ZOO


def step_speed(name: str, batch: int, warmup: int, steps: int) -> dict:
    entry = {e.name: e for e in ZOO}[name]
    levels = 2 if BINARIZE[entry.protocol] == "static" else 256
    torch.manual_seed(0)
    model = build_model({"name": entry.family, **entry.model}, DataInfo((1, 28, 28), levels))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randint(0, levels, (batch, 1, 28, 28)).float() / (levels - 1)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        model.loss(x, "train")["loss"].backward()
        optimizer.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"entry": name, "batch": batch, "median_step_s": median, "images_per_s": batch / median}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", nargs="+", default=["pixelrnn"])
    parser.add_argument("--batch", nargs="+", type=int, default=[64])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--label", default="current")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.entries:
        for batch in args.batch:
            row = step_speed(name, batch, args.warmup, args.steps)
            print(f"{name:16s} batch {batch:4d}: {row['images_per_s']:8.0f} images/s", flush=True)
            rows.append(row)
    save_rows("train_step", args.label, rows)


if __name__ == "__main__":
    main()
