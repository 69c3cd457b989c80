"""A tiny MLP GAN learns a 2-D mixture of eight Gaussians and covers every mode.

The points are "images" of shape (1, 1, 2) with coordinates in [0, 1], drawn by a batch source
of fresh mixture samples and trained by genlab's own Trainer: the family's phases, losses, EMA
and per-phase optimisers, exactly as in a real run.
"""

import math

import torch

from genlab.config import TrainConfig
from genlab.models import DataInfo, build_model
from genlab.training.trainer import Trainer

MODES = 8
RADIUS, STD = 0.35, 0.02


def centres() -> torch.Tensor:
    angles = torch.arange(MODES) * (2 * math.pi / MODES)
    return 0.5 + RADIUS * torch.stack([angles.cos(), angles.sin()], dim=1)  # (M, 2)


def mixture(n: int, generator: torch.Generator) -> torch.Tensor:
    which = torch.randint(0, MODES, (n,), generator=generator)
    points = centres()[which] + STD * torch.randn(n, 2, generator=generator)
    return points.view(n, 1, 1, 2)  # (n, C=1, H=1, W=2)


class MixtureBatches:
    """``batches`` fresh mixture batches per epoch, reproducible from (seed, epoch, batch)."""

    def __init__(self, batches: int, batch: int, seed: int) -> None:
        self.batches, self.batch, self.seed = batches, batch, seed

    def __len__(self) -> int:
        return self.batches

    def epoch(self, epoch: int, start_batch: int = 0):
        for index in range(start_batch, self.batches):
            rng = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 10_007 + index)
            yield mixture(self.batch, rng), None


def train_gan(steps: int, batch: int = 128, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(
        {
            "name": "gan",
            "architecture": "mlp",
            "hidden": [64, 64],
            "latent_dim": 2,
            "d_lr": 1e-3,
            "g_lr": 1e-3,
        },
        DataInfo((1, 1, 2), 256),
        ema_decay=0.99,
    )
    if steps:
        cfg = TrainConfig(epochs=1, seed=1, progress=False)
        result = Trainer(model, cfg, MixtureBatches(steps, batch, seed)).fit()
        assert result.steps == steps and result.finished
    model.use_average()  # as a model loaded from its run folder
    return model.eval()


def test_mlp_gan_covers_every_mode_of_a_gaussian_mixture():
    torch.set_num_threads(1)
    model = train_gan(steps=1500)
    with torch.no_grad():
        points = model.sample(4000, generator=torch.Generator().manual_seed(7)).view(-1, 2)
    distance = torch.cdist(points, centres())  # (N, M)
    nearest = distance.min(dim=1)
    counts = torch.bincount(nearest.indices, minlength=MODES)
    share = counts.float() / points.shape[0]
    # every mode holds at least a third of its fair share (1/8) of the samples
    assert share.min() > 1 / (3 * MODES), share.tolist()
    # and the samples lie on the modes: most within 4 standard deviations of a centre
    close = (nearest.values < 4 * STD).float().mean().item()
    assert close > 0.6, close


def test_an_untrained_gan_does_not_pass_the_coverage_check():
    """The check above can fail: the same network before training misses modes."""
    model = train_gan(steps=0)
    with torch.no_grad():
        points = model.sample(4000, generator=torch.Generator().manual_seed(7)).view(-1, 2)
    nearest = torch.cdist(points, centres()).min(dim=1)
    close = (nearest.values < 4 * STD).float().mean().item()
    share = torch.bincount(nearest.indices, minlength=MODES).float() / points.shape[0]
    assert close < 0.6 or share.min() <= 1 / (3 * MODES)
