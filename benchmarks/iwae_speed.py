"""Speed of the k=1000 importance-weighted NLL estimate over the whole test set.

Times genlab's ``nll`` metric (IWAE, ``--k`` samples per image, all 10 000 Fashion-MNIST test
images by default) for the model of ``configs/vae_mlp_fashion.yaml`` (a trained run with
``--run``, or freshly initialised weights: the cost does not depend on the weights), and
compares its FLOP rate (encoder once per image + decoder k times per image, Linear layers,
2 FLOPs per multiply-add) with the 4096x4096 fp32 matrix-product rate sampled between segments
of 1000 images: its median (same conditions) and its best sample (the conservative reading).

    python benchmarks/iwae_speed.py [--k 1000] [--run runs/00000-fashion-mnist-vae]
        [--device cuda]   # on a GPU: results/iwae_speed_cuda.json, against the GPU's matmul rate
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
from common import MatmulReference, environment, linear_flops, save

from genlab import api
from genlab.data import load_data
from genlab.devices import describe, resolve_device
from genlab.evaluation.runner import evaluate
from genlab.models import DataInfo, build_model
from genlab.runs import open_run

SEGMENT = 1000  # test images timed between two matrix-product samples


class FixedImages:
    """The evaluation entry point's view of a data set: one fixed tensor of test images."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def tensor(self, split: str) -> torch.Tensor:
        return self.images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/vae_mlp_fashion.yaml")
    parser.add_argument("--run", help="evaluate this run's exported model instead")
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--images", type=int, help="only the first N test images")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = resolve_device(args.device)
    if args.run:
        opened = open_run(args.run)
        cfg, model = opened.config, opened.model
    else:
        cfg, model = api.load_config(args.config), None
    data = load_data(cfg.data, progress=False)
    if model is None:
        torch.manual_seed(0)
        model = build_model(cfg.model, DataInfo(data.shape, data.levels)).eval()
    model = model.to(device)
    eval_cfg = dataclasses.replace(cfg.eval, metrics=("nll",), iwae_k=args.k)
    images = data.tensor("test")[: args.images]
    matmul = MatmulReference(device=device)
    seconds, weighted, name = 0.0, 0.0, ""
    for segment in images.split(SEGMENT):  # matmul samples between segments: same conditions
        matmul.sample()
        start = time.perf_counter()
        result = evaluate(model, FixedImages(segment), eval_cfg, progress=False)
        seconds += time.perf_counter() - start
        ((name, metric),) = result["metrics"].items()
        weighted += metric["value"] * segment.shape[0]
    matmul.sample()
    reference = matmul.summary()
    count = images.shape[0]
    flops = count * (linear_flops(model.encoder) + args.k * linear_flops(model.decoder))
    gflops = flops / seconds / 1e9
    save(
        "iwae_speed" if device.type == "cpu" else f"iwae_speed_{device.type}",
        {
            "device": describe(device),
            "config": args.run or args.config,
            "k": args.k,
            "images": count,
            "seconds": seconds,
            "images_per_s": count / seconds,
            "decoded_samples_per_s": count * args.k / seconds,
            "gflops_per_s": gflops,
            **reference,
            "flops_fraction_of_matmul_median": gflops / reference["matmul_gflops_per_s_median"],
            "flops_fraction_of_matmul_best": gflops / reference["matmul_gflops_per_s_best"],
            "metric": name,
            "nll_nats": weighted / count,
            "environment": environment(),
        },
    )


if __name__ == "__main__":
    main()
