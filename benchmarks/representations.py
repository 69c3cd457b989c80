"""What autoencoder and VAE codes are worth on Fashion-MNIST, all at code size 20.

Trains the linear, mlp and conv autoencoders and the mlp and conv VAEs from ``configs/``
(``--epochs`` each), then for each: reconstruction error on the test set (posterior mean for
the VAEs), linear/k-NN probe accuracy with 100 / 1000 / all labels (raw-pixel and PCA-20
baselines alongside), and encoder + linear head fine-tuned vs the same network from scratch.
Writes ``benchmarks/results/representations.json`` and prints Markdown tables.

    python benchmarks/representations.py [--epochs 10] [--seeds 3] [--steps 1000]
"""

from __future__ import annotations

import argparse
import time

from common import environment, save

from genlab import api
from genlab.representation import finetune_table, probe_table

CONFIGS = [
    "ae_linear_fashion",
    "ae_mlp_fashion",
    "ae_conv_fashion",
    "vae_mlp_fashion",
    "vae_conv_fashion",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--runs-dir", default="runs/representations")
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    results = {}
    for index, name in enumerate(CONFIGS):
        start = time.perf_counter()
        config = api.load_config(
            f"configs/{name}.yaml",
            [
                f"train.epochs={args.epochs}",
                f"runs_dir={args.runs_dir}",
                "train.progress=false",
                "eval.metrics=[recon_error]",
            ],
        )
        run = api.train(config)
        train_seconds = time.perf_counter() - start
        recon = api.evaluate(run, progress=False)["metrics"]["recon_mse"]
        probe = api.probe(run, seeds=seeds, baselines=index == 0)
        finetune = api.finetune(run, seeds=seeds, steps=args.steps)
        results[name] = {
            "run": str(run.path),
            "train_seconds": train_seconds,
            "recon_mse": recon["value"],
            "probe": probe["results"],
            "finetune": finetune["results"],
            "seconds": time.perf_counter() - start,
        }
        print(f"## {name}: recon_mse {recon['value']:.4f}, {train_seconds:.0f} s training")
        print(probe_table(probe))
        print(finetune_table(finetune), flush=True)
    save(
        "representations",
        {
            "epochs": args.epochs,
            "seeds": seeds,
            "finetune_steps": args.steps,
            "code_dims": 20,
            "models": results,
            "environment": environment(),
        },
    )


if __name__ == "__main__":
    main()
