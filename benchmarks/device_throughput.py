"""Training images/s of genlab's Trainer against a plain PyTorch loop, per family, on a device.

For each family (MLP VAE, conv VAE, gated PixelCNN, PixelRNN, DCGAN on Fashion-MNIST) and
each precision, the same network — genlab's module, the same initial weights — is trained for
``--steps`` steps twice, alternating: by genlab's Trainer (device-resident uint8 data, dynamic
binarisation, its callbacks off) and by a plain loop written as a PyTorch script would
(batches of pre-binarised float tensors already on the device, ``model.loss`` then
``backward`` and ``step`` for every phase, autocast for bf16). Also the device's measured
matrix-product rate (4096x4096 in fp32 and bf16) for reference. GPU timings synchronise the
device before reading the clock.

    python benchmarks/device_throughput.py --device cuda [--precisions fp32 bf16] [--steps 200]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
from common import MatmulReference, environment, save

from genlab import noise
from genlab.data import load_data
from genlab.devices import describe, resolve_device, synchronize
from genlab.models import DataInfo, build_model, load_run_config
from genlab.training.step import DTYPES
from genlab.training.trainer import Trainer

FAMILIES = {
    "vae_mlp": "configs/vae_mlp_fashion.yaml",
    "vae_conv": "configs/vae_conv_fashion.yaml",
    "gated_pixelcnn": "configs/gated_pixelcnn_fashion.yaml",
    "pixelrnn": "configs/pixelrnn_fashion.yaml",
    "dcgan": "configs/dcgan_fashion.yaml",
}


def _model(config, data, device: torch.device):
    torch.manual_seed(0)
    return build_model(config.model, DataInfo(data.shape, data.levels)).to(device)


def trainer_run(config, data, device: torch.device, steps: int) -> float:
    model = _model(config, data, device)
    cfg = dataclasses.replace(config.train, max_steps=None, progress=False)
    stream = data.stream("train", cfg.batch_size, shuffle=True, seed=0, device=device)
    trainer = Trainer(model, cfg, stream, device=device)

    class Stop:
        state_key = None

        def __getattr__(self, name):
            return lambda *args: None

        def on_step_end(self, trainer, terms, images):
            if trainer.step == 10:  # warm-up done: time from here
                synchronize(device)
                self.start = time.perf_counter()
            if trainer.step >= steps + 10:
                trainer.request_stop("max_steps", interrupt=True)

    stop = Stop()
    trainer.callbacks.append(stop)
    trainer.fit()
    synchronize(device)
    return steps * cfg.batch_size / (time.perf_counter() - stop.start)


def plain_run(config, data, device: torch.device, steps: int, precision: str) -> float:
    model = _model(config, data, device)
    phases = model.phases()
    optimizers = {
        p.name: torch.optim.Adam(
            [q for q in p.parameters() if q.requires_grad],
            lr=p.lr or config.train.lr,
            betas=tuple(p.betas or config.train.betas),
        )
        for p in phases
    }
    batch = config.train.batch_size
    images = data.tensor("train")[: batch * 50].to(device)
    if data.levels == 2:
        images = torch.bernoulli(data.train.images[: batch * 50].float().div(255)).to(device)
    generator = noise.generator(0, device)
    dtype = DTYPES[precision]
    start = 0.0
    for step in range(steps + 10):
        if step == 10:
            synchronize(device)
            start = time.perf_counter()
        x = images[(step % 50) * batch : (step % 50 + 1) * batch]
        for phase in phases:
            for _ in range(phase.repeats):
                with torch.autocast(device.type, dtype=dtype, enabled=precision != "fp32"):
                    loss = model.loss(x, phase.name, generator=generator)["loss"]
                optimizers[phase.name].zero_grad(set_to_none=True)
                loss.float().backward()
                optimizers[phase.name].step()
                model.after_step(phase.name)
    synchronize(device)
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    device = resolve_device(args.device)
    rows = []
    rates = {}
    for precision in args.precisions:
        reference = MatmulReference(device=device, dtype=DTYPES[precision])
        reference.sample(repeats=5)
        rates[precision] = reference.summary()["matmul_gflops_per_s_best"]
    for family in args.families:
        for precision in args.precisions:
            config = load_run_config(FAMILIES[family], [f"train.precision={precision}"])
            data = load_data(config.data, progress=False)
            ours, plain = [], []
            for _ in range(args.repeats):  # alternate, best of repeats
                ours.append(trainer_run(config, data, device, args.steps))
                plain.append(plain_run(config, data, device, args.steps, precision))
            row = {
                "family": family,
                "precision": precision,
                "trainer_images_per_s": max(ours),
                "plain_images_per_s": max(plain),
                "trainer_over_plain": max(ours) / max(plain),
            }
            rows.append(row)
            print(row, flush=True)
    result = {
        "device": describe(device),
        "steps": args.steps,
        "matmul_gflops_per_s": rates,
        "rows": rows,
        "environment": environment(),
    }
    save(f"device_throughput_{device.type}", result)


if __name__ == "__main__":
    main()
