"""``genlab zoo``: one model of each family trained within a time budget, evaluated under one
protocol, and compared in one report.

The budget is wall-clock time. Each family gets a fixed share of it as a training time limit
(``train.max_seconds``; a family that finishes its epochs sooner leaves the time unused);
the rest is meant for evaluation (feature network, likelihoods, samples, probes, the short
fine-tuning comparison for the autoencoder) and the report. Evaluation is not cut short, so
the whole command can run somewhat over the budget; zoo.json records the time every stage took.
Every model sees the same statically binarised data, so likelihoods and sample metrics compare.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab import api
from genlab.compare import compare
from genlab.devices import resolve_device
from genlab.errors import ConfigError
from genlab.fileio import atomic_write_json
from genlab.models import MODELS, run_config_from_dict
from genlab.runs import RunDir, device_overrides, open_run


@dataclass(frozen=True)
class ZooEntry:
    family: str
    share: float  # fraction of the budget given to training this model
    model: dict[str, Any]
    train: dict[str, Any] = field(default_factory=dict)
    finetune: bool = False  # also run the short fine-tuning comparison (encoder families)


# as configs/rbm_fashion.yaml: PCD needs its learning rate to decay, so a fixed epoch count
# (about 40 s on 2 cores for Fashion-MNIST) rather than the time limit ends its training
RBM_TRAIN = {
    "epochs": 10,
    "batch_size": 100,
    "lr": 1e-3,
    "schedule": "cosine",
    "weight_decay": 1e-4,
}

ZOO: tuple[ZooEntry, ...] = (
    ZooEntry("vae", 0.13, {"encoder": "mlp", "hidden": [400], "latent_dim": 20}),
    ZooEntry("ae", 0.07, {"encoder": "conv", "channels": [32, 64], "code_dim": 20}, finetune=True),
    ZooEntry(
        "pixelcnn",
        0.10,
        {"channels": 16, "blocks": 4, "kernel": 3, "first_kernel": 7, "head_hidden": 64},
        {"batch_size": 64},
    ),
    ZooEntry(
        "gated_pixelcnn",
        0.15,
        {"channels": 24, "layers": 5, "kernel": 3, "first_kernel": 7, "head_hidden": 64},
        {"batch_size": 64},
    ),
    ZooEntry(
        "pixelrnn",
        0.13,
        {"channels": 16, "layers": 2, "kernel": 3, "first_kernel": 7, "head_hidden": 64},
        {"batch_size": 64},
    ),
    ZooEntry(
        "gan",
        0.17,
        {"architecture": "dcgan", "latent_dim": 64, "channels": [64, 128]},
        {"batch_size": 64},
    ),
    ZooEntry(
        "rbm",
        0.05,
        {"hidden": 500, "cd_k": 1, "persistent": True, "chains": 100},
        RBM_TRAIN,
    ),
)
EVAL_SHARE = 1.0 - sum(entry.share for entry in ZOO)  # evaluation and report
MAX_BUDGET_HOURS = 1000
MAX_EPOCHS = 100  # the time limit, not the epoch count, ends training in practice


def parse_budget(text: str) -> float:
    """'30m', '1h', '90s', '1h30m' or plain seconds -> seconds."""
    match = re.fullmatch(
        r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text
    )
    if not text.strip() or match is None or not any(match.groups()):
        raise ConfigError(f"budget {text!r} is not a duration; use e.g. 30m, 1h, 1h30m or 900s")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = 3600 * hours + 60 * minutes + seconds
    if total <= 0:
        raise ConfigError(f"budget must be positive, got {text!r}")
    if total > MAX_BUDGET_HOURS * 3600:
        raise ConfigError(f"budget {text!r} is over {MAX_BUDGET_HOURS} hours; give a shorter one")
    return total


def eval_samples(budget: float) -> int:
    """Samples for the sample-quality metrics: fewer on short budgets (the name says how many)."""
    return 10000 if budget >= 4 * 3600 else 2000 if budget >= 20 * 60 else 500


def plan(budget: float, families: list[str] | None = None) -> list[tuple[ZooEntry, float]]:
    """(entry, training seconds) for every registered family in the zoo (or those named)."""
    available = [e for e in ZOO if e.family in MODELS.names()]
    if families:
        unknown = sorted(set(families) - {e.family for e in available})
        if unknown:
            raise ConfigError(
                f"unknown or unavailable zoo families {', '.join(unknown)}; valid: "
                f"{', '.join(e.family for e in available)}"
            )
        available = [e for e in available if e.family in families]
    return [(entry, entry.share * budget) for entry in available]


def run_zoo(
    data: str,
    budget: str,
    *,
    runs_dir: str | Path = "runs",
    families: list[str] | None = None,
    data_dir: str | None = None,
    progress: bool = True,
    device: str | None = None,
) -> Path:
    """Train, evaluate and compare; returns the report's index.html. ``device`` is where
    every run trains (``train.device``) and is evaluated (``eval.device``); default auto."""
    seconds = parse_budget(budget)
    if device is not None:
        resolve_device(device, "--device")  # a device this machine lacks: an error up front
    schedule = plan(seconds, families)
    root = Path(runs_dir) / f"zoo-{time.strftime('%Y%m%d-%H%M%S')}-{data}"
    samples = eval_samples(seconds)
    record: dict[str, Any] = {
        "data": data,
        "budget_seconds": seconds,
        "shares": {e.family: e.share for e, _ in schedule} | {"evaluation": EVAL_SHARE},
        "eval_num_samples": samples,
        "stages": {},
    }
    runs: list[tuple[ZooEntry, RunDir]] = []
    configs = []
    for entry, limit in schedule:  # validate every config before training anything
        tree = {
            "data": {
                "name": data,
                "binarize": "static",
                **({"path": data_dir} if data_dir else {}),
            },
            "model": {"name": entry.family, **entry.model},
            "train": {
                "epochs": MAX_EPOCHS,
                "max_seconds": limit,
                **entry.train,
                **({"device": device} if device is not None else {}),
            },
            "eval": {"num_samples": samples},
            "runs_dir": str(root / "runs"),
        }
        configs.append((entry, run_config_from_dict(tree)))
    for entry, config in configs:  # the first run creates root/runs (after loading its data)
        if progress:
            print(f"zoo: training {entry.family} for up to {config.train.max_seconds:.0f} s")
        start = time.perf_counter()
        runs.append((entry, api.train(config, progress=progress)))
        record["stages"][f"train {entry.family}"] = time.perf_counter() - start
    opened = []
    for entry, run in runs:  # each run's model and data load once, for evaluation and report
        start = time.perf_counter()
        handle = open_run(run, device_overrides(device), progress=progress)
        api.evaluate(handle, progress=progress)
        if entry.finetune:
            api.finetune(handle, sizes=(1000,), seeds=(0,), steps=300)
        opened.append(handle)
        record["stages"][f"evaluate {run.path.name}"] = time.perf_counter() - start
    start = time.perf_counter()
    html = compare(opened, root / "report", progress=progress)
    record["stages"]["report"] = time.perf_counter() - start
    record["total_seconds"] = sum(record["stages"].values())
    atomic_write_json(root / "zoo.json", record)
    return html
