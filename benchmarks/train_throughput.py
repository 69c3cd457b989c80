"""Training throughput of genlab's Trainer vs a plain PyTorch loop, and model FLOP/s.

Trains the model of ``configs/vae_mlp_fashion.yaml`` for one epoch with genlab's Trainer and
with a plain loop (DataLoader over a TensorDataset, the same network, loss, batch size and
dynamic binarisation), in the same process, alternating, best of ``--repeats``. Model FLOP/s
uses the usual convention (training = 3x forward FLOPs of the Linear layers, as in the
model-FLOPs-utilisation of Chowdhery et al. 2022) and is given as a fraction of the 4096x4096
fp32 matrix-product rate sampled between the timed epochs: its median (same conditions) and
its best sample (the conservative reading).

    python benchmarks/train_throughput.py [--repeats 2] [--config configs/vae_mlp_fashion.yaml]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from common import MatmulReference, environment, linear_flops, save
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from genlab import api
from genlab.data import load_data
from genlab.models import DataInfo, build_model
from genlab.training.trainer import Trainer


class PlainVAE(nn.Module):
    """The same 784-400-20 network, written the way a plain PyTorch script would."""

    def __init__(self, hidden: int, latent: int, dims: int) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(dims, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent))
        self.dec = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, logvar = self.enc(x).chunk(2, dim=1)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        logits = self.dec(z)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        kl = 0.5 * (mean.square() + logvar.exp() - logvar - 1).sum(1)
        return (recon + kl).mean()


def reference_epoch(images: torch.Tensor, cfg, hidden: int, latent: int, fused: bool) -> float:
    torch.manual_seed(0)
    model = PlainVAE(hidden, latent, images[0].numel())
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, fused=fused or None)
    loader = DataLoader(
        TensorDataset(images.flatten(1)), batch_size=cfg.train.batch_size, shuffle=True
    )
    count, start = 0, time.perf_counter()
    for (x,) in loader:
        x = torch.bernoulli(x)  # dynamic binarisation
        loss = model(x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        count += x.shape[0]
    return count / (time.perf_counter() - start)


def genlab_epoch(data, cfg) -> float:
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, DataInfo(data.shape, data.levels))
    stream = data.stream("train", cfg.train.batch_size, shuffle=True, seed=cfg.train.seed)
    return Trainer(model, cfg.train, stream).fit().images_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/vae_mlp_fashion.yaml")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cfg = api.load_config(args.config, ["train.epochs=1", "train.progress=false"])
    hidden, latent = cfg.model.hidden[0], cfg.model.latent_dim
    data = load_data(cfg.data, progress=False)
    train_images = data.train.images.float() / 255.0  # intensities; binarised per batch

    matmul = MatmulReference()
    rates: dict[str, list[float]] = {"genlab": [], "reference": [], "reference_fused_adam": []}
    for _ in range(args.repeats):  # alternating, with matmul samples between: same conditions
        matmul.sample()
        rates["genlab"].append(genlab_epoch(data, cfg))
        matmul.sample()
        rates["reference"].append(reference_epoch(train_images, cfg, hidden, latent, False))
        rates["reference_fused_adam"].append(
            reference_epoch(train_images, cfg, hidden, latent, True)
        )
    matmul.sample()
    best = {k: max(v) for k, v in rates.items()}

    model = build_model(cfg.model, DataInfo(data.shape, data.levels))
    train_flops_per_image = 3 * linear_flops(model)
    reference = matmul.summary()
    model_gflops = best["genlab"] * train_flops_per_image / 1e9
    save(
        "train_throughput",
        {
            "config": args.config,
            "batch_size": cfg.train.batch_size,
            "train_images": len(data.train),
            "genlab_images_per_s": best["genlab"],
            "reference_images_per_s": best["reference"],
            "reference_fused_adam_images_per_s": best["reference_fused_adam"],
            "speedup_vs_reference": best["genlab"] / best["reference"],
            "speedup_vs_reference_fused_adam": best["genlab"] / best["reference_fused_adam"],
            "train_flops_per_image": train_flops_per_image,
            "model_gflops_per_s": model_gflops,
            **reference,
            "model_flops_fraction_of_matmul_median": (
                model_gflops / reference["matmul_gflops_per_s_median"]
            ),
            "model_flops_fraction_of_matmul_best": (
                model_gflops / reference["matmul_gflops_per_s_best"]
            ),
            "all_runs_images_per_s": rates,
            "environment": environment(),
        },
    )


if __name__ == "__main__":
    main()
