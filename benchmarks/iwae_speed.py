"""Speed of the k=1000 importance-weighted NLL estimate over the whole test set.

Times genlab's ``nll`` metric (IWAE, ``--k`` samples per image, all 10 000 Fashion-MNIST test
images by default) for the model of ``configs/vae_mlp_fashion.yaml`` (a trained run with
``--run``, or freshly initialised weights: the cost does not depend on the weights), and
compares its FLOP rate (encoder once per image + decoder k times per image, Linear layers,
2 FLOPs per multiply-add) with the best 4096x4096 fp32 matrix-product rate of the same run.

    python benchmarks/iwae_speed.py [--k 1000] [--run runs/00000-fashion-mnist-vae]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
from common import environment, linear_flops, matmul_rate, save

from genlab import api
from genlab.data import load_data
from genlab.evaluation.runner import evaluate
from genlab.models import DataInfo, build_model
from genlab.reporting.run_dir import RunDir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/vae_mlp_fashion.yaml")
    parser.add_argument("--run", help="evaluate this run's exported model instead")
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--images", type=int, help="only the first N test images")
    args = parser.parse_args()
    if args.run:
        run = RunDir.open(args.run)
        cfg, model = run.read_config(), run.load_model()
    else:
        cfg = api.load_config(args.config)
        model = None
    data = load_data(cfg.data, progress=False)
    if model is None:
        torch.manual_seed(0)
        model = build_model(cfg.model, DataInfo(data.shape, data.levels)).eval()
    eval_cfg = dataclasses.replace(
        cfg.eval, metrics=("nll",), iwae_k=args.k, max_images=args.images
    )
    peak_before = matmul_rate()
    start = time.perf_counter()
    result = evaluate(model, data, eval_cfg, progress=False)
    seconds = time.perf_counter() - start
    peak = max(peak_before, matmul_rate())
    ((name, metric),) = result["metrics"].items()
    images = result["images"]
    flops = images * (linear_flops(model.encoder) + args.k * linear_flops(model.decoder))
    save(
        "iwae_speed",
        {
            "config": args.run or args.config,
            "k": args.k,
            "images": images,
            "seconds": seconds,
            "images_per_s": images / seconds,
            "decoded_samples_per_s": images * args.k / seconds,
            "gflops_per_s": flops / seconds / 1e9,
            "matmul_gflops_per_s": peak / 1e9,
            "flops_fraction_of_matmul": flops / seconds / peak,
            "metric": name,
            "nll_nats": metric["value"],
            "environment": environment(),
        },
    )


if __name__ == "__main__":
    main()
