"""Training images/s on the CPU with one process and with N processes (torchrun, gloo DDP).

For the MLP VAE and the DCGAN on Fashion-MNIST, trains ``--steps`` steps (same config, same
global batch) as: one process with ``--threads`` threads, and N processes with
``threads / N`` threads each (the same cores), alternating, best of ``--repeats``. Images/s
is the Trainer's own measurement (run.json ``train_images_per_s``: training steps only, not
start-up or rendezvous).

    python benchmarks/processes_cpu.py [--nproc 2] [--threads 2] [--steps 300] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import environment, save

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"vae_mlp": "configs/vae_mlp_fashion.yaml", "dcgan": "configs/dcgan_fashion.yaml"}


def images_per_s(config: str, steps: int, nproc: int, threads: int) -> float:
    with tempfile.TemporaryDirectory() as runs:
        args = ["train", "--config", config, "--runs-dir", runs, "--no-progress"]
        for setting in (f"train.max_steps={steps}", "train.sample_every=0"):
            args += ["--set", setting]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        if nproc == 1:
            command = [sys.executable, "-m", "genlab", *args, "--set", f"train.threads={threads}"]
        else:
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
            command += ["--nproc-per-node", str(nproc), "-m", "genlab", *args]
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
        (run,) = [p for p in Path(runs).iterdir() if p.is_dir() and not p.name.startswith(".")]
        return float(json.loads((run / "run.json").read_text())["train_images_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for name, config in CONFIGS.items():
        one, many = [], []
        for _ in range(args.repeats):
            one.append(images_per_s(config, args.steps, 1, args.threads))
            many.append(images_per_s(config, args.steps, args.nproc, args.threads // args.nproc))
        row = {
            "model": name,
            "one_process_images_per_s": max(one),
            f"{args.nproc}_processes_images_per_s": max(many),
            "speed_up": max(many) / max(one),
        }
        rows.append(row)
        print(row, flush=True)
    result = {
        "nproc": args.nproc,
        "threads_in_all": args.threads,
        "steps": args.steps,
        "rows": rows,
        "environment": environment(),
    }
    save("processes_cpu", result)


if __name__ == "__main__":
    main()
