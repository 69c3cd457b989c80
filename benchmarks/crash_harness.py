"""Crash consistency, measured: SIGKILL training at random moments, resume, repeat, and compare
the final weights bitwise with an uninterrupted run of the same config.

    python benchmarks/crash_harness.py --kills 100             # VAE, GAN and PixelCNN on digits
    python benchmarks/crash_harness.py --kills 5 --families vae

For each family it trains once without interruption, then once under fire: the first kill
comes after the first checkpoint exists; every later kill comes at a random moment of the
resumed process (while it imports, loads, trains or writes a checkpoint: checkpoints are
written every 2 steps, and half of the kills wait for a temporary checkpoint file to appear,
so they land inside a write). After each kill it counts corrupt
checkpoints (files that do not load), then resumes with `genlab train --resume`. At the end it
reports files outside the documented run-folder layout (orphaned temporaries), duplicate
metric records, whether every weight tensor equals the uninterrupted run's, and whether the
epoch records of metrics.jsonl (every train/ and val/ mean, step and rate; not the timings)
equal the uninterrupted run's. Both runs use one thread, so the arithmetic is the same.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from genlab.errors import RunError
from genlab.runs import RunDir
from genlab.training.checkpoint import load_state

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save  # noqa: E402

COMMON = [
    "data.name=digits",
    "train.threads=1",
    "train.progress=false",
    "train.checkpoint_every_steps=2",
    "train.sample_every=0",
]
FAMILIES = {
    "vae": ["model.name=vae", "model.hidden=[64]", "model.latent_dim=8", "train.epochs=12"],
    "gan": [
        "model.name=gan",
        "model.architecture=mlp",
        "model.hidden=[64]",
        "model.latent_dim=8",
        "train.epochs=8",
    ],
    "pixelcnn": [
        "model.name=pixelcnn",
        "model.channels=8",
        "model.blocks=1",
        "model.head_hidden=16",
        "train.epochs=3",
    ],
}


def genlab(args: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "genlab", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


def train_args(overrides: list[str], runs: Path) -> list[str]:
    sets = [x for o in overrides for x in ("--set", o)]
    return ["train", *sets, "--runs-dir", str(runs)]


def finish(process: subprocess.Popen[bytes]) -> int:
    _, err = process.communicate()
    if process.returncode not in (0, -signal.SIGKILL):
        raise RuntimeError(f"genlab failed ({process.returncode}): {err.decode()[-2000:]}")
    return process.returncode


def corrupt_checkpoints(run: Path) -> int:
    bad = 0
    for path in (run / "checkpoints").glob("state-*.safetensors"):
        try:
            load_state(path)
        except RunError:
            bad += 1
    pointer = run / "checkpoints" / "latest"
    if pointer.exists() and not (run / "checkpoints" / pointer.read_text().strip()).exists():
        bad += 1  # the pointer names a file that is not there
    return bad


def duplicate_records(run: Path) -> int:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    keys = Counter((r["kind"], r["step"]) for r in map(json.loads, lines))
    return sum(count - 1 for count in keys.values())


def orphans(run: Path) -> list[str]:
    """Files outside the documented layout (what a kill inside a write leaves)."""
    return [str(run / name) for name in RunDir(run).undocumented()]


TIMINGS = ("seconds", "images_per_s")


def epoch_records(run: Path) -> list[dict[str, Any]]:
    records = map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
    return [
        {k: v for k, v in r.items() if k not in TIMINGS} for r in records if r["kind"] == "epoch"
    ]


def same_weights(a: Path, b: Path) -> bool:
    x, y = load_file(str(a)), load_file(str(b))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def wait_for_a_write(run: Path, process: subprocess.Popen[bytes], limit: float) -> None:
    """Return as soon as a temporary file appears in the run's checkpoints (a write is under
    way), or after ``limit`` seconds, or when the process ends."""
    end = time.perf_counter() + limit
    folder = run / "checkpoints"
    while time.perf_counter() < end and process.poll() is None:
        if any(name.startswith(".") for name in os.listdir(folder)):
            return
        time.sleep(0.0005)


def killed_run(
    overrides: list[str], kills: int, runs: Path, seconds: float, rng: random.Random
) -> dict[str, Any]:
    """One run killed up to ``kills`` times (fewer if it finishes first) and resumed until it
    finishes; what was found along the way."""
    process = genlab(train_args(overrides, runs))
    while not list(runs.glob("0*/checkpoints/latest")):
        if process.poll() is not None:
            raise RuntimeError("training ended before its first checkpoint")
        time.sleep(0.02)
    (run,) = runs.glob("0*")
    done = corrupt = resumes = torn_writes = 0
    while True:
        if done < kills:
            if rng.random() < 0.5:
                time.sleep(rng.uniform(0.0, seconds))  # anywhere in a process's life
            else:
                wait_for_a_write(run, process, seconds)  # inside a checkpoint write
        if process.poll() is None and done < kills:
            process.send_signal(signal.SIGKILL)
            done += 1
        if finish(process) == 0:
            break
        torn_writes += bool(orphans(run))  # the kill landed inside an atomic write
        corrupt += corrupt_checkpoints(run)
        resumes += 1
        process = genlab(["train", "--resume", str(run)])
    return {
        "run": run,
        "kills": done,
        "kills_inside_a_write": torn_writes,
        "resumes": resumes,
        "corrupt_files_found": corrupt,
        "orphaned_temporaries": orphans(run),
        "duplicate_metric_records": duplicate_records(run),
        "finished": json.loads((run / "run.json").read_text())["status"] == "finished",
    }


def under_fire(family: str, kills: int, root: Path, rng: random.Random) -> dict[str, Any]:
    """Kill runs of ``family`` until ``kills`` kills have landed (a run that finishes first
    is checked and another one started); every run is compared with the uninterrupted one."""
    overrides = [*COMMON, *FAMILIES[family]]
    reference = root / "reference"
    start = time.perf_counter()
    finish(genlab(train_args(overrides, reference)))
    seconds = time.perf_counter() - start  # one uninterrupted run, imports included
    (reference_run,) = reference.glob("0*")
    rounds: list[dict[str, Any]] = []
    while not rounds or sum(r["kills"] for r in rounds) < kills:
        left = kills - sum(r["kills"] for r in rounds)
        rounds.append(killed_run(overrides, left, root / f"killed-{len(rounds)}", seconds, rng))
        rounds[-1]["bitwise_equal"] = same_weights(
            rounds[-1]["run"] / "model.safetensors", reference_run / "model.safetensors"
        )
        rounds[-1]["equal_epoch_records"] = epoch_records(rounds[-1]["run"]) == epoch_records(
            reference_run
        )
    total = {key: sum(r[key] for r in rounds) for key in COUNTS}
    return {
        "family": family,
        "runs": len(rounds),
        **total,
        "orphaned_temporaries": [p for r in rounds for p in r["orphaned_temporaries"]],
        "all_finished": all(r["finished"] for r in rounds),
        "bitwise_equal": all(r["bitwise_equal"] for r in rounds),
        "equal_epoch_records": all(r["equal_epoch_records"] for r in rounds),
        "uninterrupted_seconds": seconds,
    }


COUNTS = (
    "kills",
    "kills_inside_a_write",
    "resumes",
    "corrupt_files_found",
    "duplicate_metric_records",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100, help="kills in all, split by family")
    parser.add_argument("--families", default="vae,gan,pixelcnn")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    families = args.families.split(",")
    rng = random.Random(args.seed)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for i, family in enumerate(families):
            share = args.kills // len(families) + (i < args.kills % len(families))
            results.append(under_fire(family, share, Path(folder) / family, rng))
            print(json.dumps(results[-1]), flush=True)
    save(
        "crash_harness",
        {
            "kills": sum(r["kills"] for r in results),
            "kills_inside_a_write": sum(r["kills_inside_a_write"] for r in results),
            "corrupt_files_found": sum(r["corrupt_files_found"] for r in results),
            "orphaned_temporaries": sum(len(r["orphaned_temporaries"]) for r in results),
            "duplicate_metric_records": sum(r["duplicate_metric_records"] for r in results),
            "all_bitwise_equal": all(r["bitwise_equal"] for r in results),
            "all_equal_epoch_records": all(r["equal_epoch_records"] for r in results),
            "families": results,
        },
    )


if __name__ == "__main__":
    main()
