"""DCGAN training throughput on Fashion-MNIST: genlab's Trainer vs a plain PyTorch loop.

One "image" is one real training image taken through a whole GAN iteration: ``n_critic``
discriminator steps (on it and on as many generated images) and one generator step (on a
fresh batch of generated images), so the rate counts both phases per real image. The model is
``configs/dcgan_fashion.yaml``'s; the plain loop uses the same networks, loss, optimisers and
batch size, without the Trainer (no logging, checkpoints or EMA). The two alternate, best of
``--repeats`` runs of ``--steps`` iterations each (after a few warm-up iterations), with the
4096x4096 fp32 matrix-product rate sampled between them as a reference for machine speed.

    python benchmarks/gan_throughput.py [--steps 200] [--repeats 2] [--threads 1]

Results go to benchmarks/results/gan_throughput_threads<N>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
import torch.nn.functional as F
from common import MatmulReference, environment, save

from genlab import api
from genlab.data import load_data
from genlab.models import DataInfo, build_model, run_config_to_dict
from genlab.models.adversarial.gan import GAN
from genlab.training.callbacks import StepBudget
from genlab.training.trainer import Trainer

WARMUP = 5


def genlab_rate(data, cfg, steps: int) -> float:
    """Images/s of the Trainer over ``steps`` iterations (it times its own loop)."""
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, DataInfo(data.shape, data.levels))
    train = dataclasses.replace(cfg.train, max_steps=steps, progress=False)
    stream = data.stream("train", train.batch_size, shuffle=True, seed=train.seed)
    return Trainer(model, train, stream, callbacks=[StepBudget(steps)]).fit().images_per_s


def plain_rate(images: torch.Tensor, cfg, steps: int) -> float:
    """The same iteration written as a plain script: BCE losses, two Adam optimisers."""
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, DataInfo(tuple(images.shape[1:]), 256))
    assert isinstance(model, GAN)
    gen, disc = model.generator, model.discriminator
    mc = model.config
    opt_d = torch.optim.Adam(disc.parameters(), lr=mc.d_lr, betas=tuple(mc.betas))
    opt_g = torch.optim.Adam(gen.parameters(), lr=mc.g_lr, betas=tuple(mc.betas))
    batch = cfg.train.batch_size
    count, start = 0, 0.0
    for step in range(steps + WARMUP):
        if step == WARMUP:
            count, start = 0, time.perf_counter()
        index = torch.randint(0, images.shape[0], (batch,))
        x = images[index]
        for _ in range(mc.n_critic):
            with torch.no_grad():
                fake = torch.sigmoid(gen(torch.randn(batch, mc.latent_dim)))
            s_real, s_fake = disc(x), disc(fake)
            loss_d = F.softplus(-s_real).mean() + F.softplus(s_fake).mean()
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
        s_fake = disc(torch.sigmoid(gen(torch.randn(batch, mc.latent_dim))))
        loss_g = F.softplus(-s_fake).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        count += batch
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/dcgan_fashion.yaml")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = api.load_config(args.config, ["train.progress=false"])
    data = load_data(cfg.data, progress=False)
    images = data.train.images.float() / 255.0  # (N, 1, 28, 28) in [0, 1]

    matmul = MatmulReference()
    rates: dict[str, list[float]] = {"genlab": [], "plain": []}
    for _ in range(args.repeats):
        matmul.sample()
        rates["genlab"].append(genlab_rate(data, cfg, args.steps))
        matmul.sample()
        rates["plain"].append(plain_rate(images, cfg, args.steps))
    matmul.sample()
    best = {k: max(v) for k, v in rates.items()}
    model = build_model(cfg.model, DataInfo(data.shape, data.levels))
    save(
        f"gan_throughput_threads{args.threads}",
        {
            "config": args.config,
            "model": run_config_to_dict(cfg)["model"],
            "parameters": sum(p.numel() for p in model.parameters()),
            "batch_size": cfg.train.batch_size,
            "steps_per_run": args.steps,
            "images_counted_as": "real images per full iteration (n_critic D steps + 1 G step)",
            "genlab_images_per_s": best["genlab"],
            "plain_loop_images_per_s": best["plain"],
            "genlab_vs_plain": best["genlab"] / best["plain"],
            "epoch_seconds_at_genlab_rate": len(data.train) / best["genlab"],
            **matmul.summary(),
            "all_runs_images_per_s": rates,
            "environment": environment(),
            "note": "shared 2-core machine (other jobs running); best of the repeats",
        },
    )


if __name__ == "__main__":
    main()
