"""Quality reached per CPU second by the zoo's autoregressive and GAN configurations.

Each named zoo entry (``genlab.zoo.entries``, plus any ``--set`` overrides) trains on
Fashion-MNIST for ``--seconds`` of wall-clock time (train.max_seconds) on ``--threads``
threads, under its zoo protocol (binarised for the autoregressive models, grey levels for the
GAN). Then:

- likelihood models: the validation loss after every epoch (nats per image: the exact NLL of
  the autoregressive models, the negative ELBO of a VAE) and the test-set NLL of the final
  weights (``genlab eval`` with the nll metric: exact, or a VAE's IWAE bound);
- the GAN: the FD of 1000 samples against 1000 test images in the feature network's space
  after every epoch (``train.fd_every=1``), the last one reported;

with epochs completed and training images/s. The "before" row of BENCHMARKS.md runs this
script with PYTHONPATH pointing at the earlier source tree.

    python benchmarks/zoo_configs.py --entries pixelcnn gan-grey [--seconds 600] \
        [--set model.channels=24] [--threads 2] [--label after]

A run ends at ``--seconds`` or at train.epochs (``--set train.epochs=100``), whichever is
first.
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

import torch
from common import save_rows

from genlab import api
from genlab.models import run_config_from_dict
from genlab.zoo.entries import BINARIZE, ZOO


def parse_sets(items: list[str]) -> dict[str, dict[str, Any]]:
    """``section.key=value`` overrides (values parsed as YAML-ish JSON where they can be)."""
    import json

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        path, _, text = item.partition("=")
        section, _, key = path.partition(".")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        out.setdefault(section, {})[key] = value
    return out


def measure(name: str, seconds: float, sets: dict[str, dict[str, Any]], root: str) -> dict:
    entry = {e.name: e for e in ZOO}[name]
    sampling = entry.family == "gan"
    tree = {
        "data": {"name": "fashion-mnist", "binarize": BINARIZE[entry.protocol]},
        "model": {"name": entry.family, **entry.model, **sets.get("model", {})},
        "train": {
            "epochs": 1000,
            **entry.train,
            **({"fd_every": 1, "fd_samples": 1000} if sampling else {}),
            **sets.get("train", {}),
            "max_seconds": seconds,
            "sample_every": 0,
        },
        "eval": {"metrics": ["nll"]},
        "runs_dir": root,
    }
    run = api.train(run_config_from_dict(tree), progress=False)
    info = run.info()
    epochs = [r for r in run.read_metrics() if r.get("kind") == "epoch"]
    result: dict[str, Any] = {
        "entry": name,
        "model": tree["model"],
        "train": {k: v for k, v in tree["train"].items() if k != "max_seconds"},
        "seconds": seconds,
        "epochs": info.get("epochs_completed"),
        "images_per_s": info.get("train_images_per_s"),
    }
    if sampling:
        curve = [(r["epoch"], r.get("test/fd_cnn_1k")) for r in epochs]
        result["fd_cnn_1k_by_epoch"] = curve
        result["fd_cnn_1k"] = curve[-1][1] if curve else None
    else:
        result["val_loss_by_epoch"] = [(r["epoch"], r.get("val/loss")) for r in epochs]
        metrics = api.evaluate(run, progress=False)["metrics"]
        name = next(k for k in metrics if k.startswith("nll_"))  # nll_exact, nll_iwae_k1000
        result["test_nll"] = {"metric": name, "value": metrics[name]["value"]}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", nargs="+", default=["pixelcnn", "gan-grey"])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--label", default="current")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sets = parse_sets(args.sets)
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for name in args.entries:
            row = measure(name, args.seconds, sets, root)
            print(row, flush=True)
            rows.append(row)
    save_rows("zoo_configs", args.label, rows)


if __name__ == "__main__":
    main()
