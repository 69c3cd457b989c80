"""The feature network of a dataset: a small CNN classifier whose penultimate layer is the
feature space of the sample-quality metrics (FD, KID, precision/recall, density/coverage).

There is no Inception network here (nothing downloads), so genlab trains its own classifier per
dataset, in the spirit of the per-domain feature networks used for MNIST-like data: trained on
the dataset's training split with a fixed seed, then cached under the user cache directory,
keyed by the dataset's content fingerprint and the network's configuration. Its test accuracy
is stored with it and reported next to every metric computed in its feature space.

Models see either binarised or 8-bit images, so the network is trained on both: each batch is
binarised (an exact Bernoulli draw per pixel) with probability ``binarize_prob``.

The network trains and runs on the device it is given (the evaluated model's). Its batches are
chosen and binarised on the CPU with its seed, the same on every device, and moved there; so a
network trained on a GPU differs from the CPU's only by rounding, and the cache holds one per
dataset and configuration whatever the device it was trained on.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from genlab.data.locate import user_cache_dir
from genlab.errors import RunError
from genlab.fileio import atomic_path, atomic_write_json
from genlab.models.base import device_of

FEATURE_NET_NAME = "cnn"  # the <net> part of metric names such as fd_cnn_10k


@dataclass(frozen=True)
class FeatureNetConfig:
    width: int = 16  # channels of the first conv layer; the next two have twice as many
    feature_dim: int = 128  # size of the penultimate layer: the feature space
    epochs: int = 2
    min_steps: int = 800  # small datasets train for more epochs, up to this many steps
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0
    binarize_prob: float = 0.5  # fraction of training batches shown binarised

    def key(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


class FeatureNet(nn.Module):
    """conv3x3(w) -> conv4x4/2(2w) -> conv4x4/2(2w) -> linear(feature_dim) -> linear(classes)."""

    def __init__(self, shape: tuple[int, int, int], classes: int, cfg: FeatureNetConfig) -> None:
        super().__init__()
        c, h, w = shape
        width = cfg.width
        self.body = nn.Sequential(
            nn.Conv2d(c, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        flat = 2 * width * (h // 4) * (w // 4)
        self.features = nn.Sequential(nn.Linear(flat, cfg.feature_dim), nn.ReLU())
        self.head = nn.Linear(cfg.feature_dim, classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.body(x))  # (B, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))  # (B, classes)

    @torch.no_grad()
    def features_of(self, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Penultimate-layer features (N, feature_dim) of images (N, C, H, W) in [0, 1], on
        the network's device (each batch of ``images`` is moved there)."""
        self.eval()
        device = device_of(self)
        return torch.cat([self.embed(x.to(device)) for x in images.split(batch_size)])


def _grey(images: torch.Tensor) -> torch.Tensor:
    return images.float().div_(255.0)


def _binarised(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.bernoulli(x, generator=generator)


def _accuracy(net: FeatureNet, images: torch.Tensor, labels: torch.Tensor) -> float:
    net.eval()
    device = device_of(net)
    with torch.no_grad():
        logits = torch.cat([net(x.to(device)).cpu() for x in images.split(1000)])
    return (logits.argmax(1) == labels).double().mean().item()


def train_feature_net(
    data: Any,
    cfg: FeatureNetConfig,
    *,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> tuple[FeatureNet, dict[str, Any]]:
    """Train the classifier on ``data``'s training split on ``device``; return it (there)
    and its record."""
    train, test = data.train, data.test
    if train.labels is None or test.labels is None:
        raise RunError(
            f"the {data.name} data have no labels, so no feature network can be trained for "
            "the sample-quality metrics; give the images labels (class folders or an npz "
            "'labels' array) or leave those metrics out of eval.metrics"
        )
    classes = int(train.labels.max().item()) + 1
    torch.manual_seed(cfg.seed)
    net = FeatureNet(data.shape, classes, cfg).to(device)  # initialised on the CPU
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    generator = torch.Generator().manual_seed(cfg.seed)  # batches: chosen on the CPU
    n = train.images.shape[0]
    per_epoch = -(-n // cfg.batch_size)
    epochs = max(cfg.epochs, -(-cfg.min_steps // per_epoch))
    steps = epochs * per_epoch
    start = time.perf_counter()
    bar = tqdm(total=steps, desc=f"feature net ({data.name})", unit="batch", disable=not progress)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for index in order.split(cfg.batch_size):
            x = _grey(train.images[index])  # (B, C, H, W)
            if torch.rand((), generator=generator).item() < cfg.binarize_prob:
                x = _binarised(x, generator)
            logits = net(x.to(device))
            loss = nn.functional.cross_entropy(logits, train.labels[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    test_grey = _grey(test.images)
    record = {
        "name": FEATURE_NET_NAME,
        "dataset": data.name,
        "fingerprint": data.fingerprint,
        "classes": classes,
        "config": asdict(cfg),
        "test_accuracy": _accuracy(net, test_grey, test.labels),
        "test_accuracy_binarised": _accuracy(
            net, _binarised(test_grey, torch.Generator().manual_seed(0)), test.labels
        ),
        "train_seconds": time.perf_counter() - start,
    }
    net.eval()
    return net, record


def cache_path(data: Any, cfg: FeatureNetConfig) -> Path:
    return user_cache_dir() / "feature-nets" / f"{data.name}-{data.fingerprint}-{cfg.key()}"


def load_or_train_feature_net(
    data: Any,
    cfg: FeatureNetConfig | None = None,
    *,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> tuple[FeatureNet, dict[str, Any]]:
    """The cached feature network for ``data`` (trained and cached on first use), on
    ``device``."""
    cfg = cfg or FeatureNetConfig()
    base = cache_path(data, cfg)
    weights, meta = base.with_suffix(".safetensors"), base.with_suffix(".json")
    if weights.exists() and meta.exists():
        record = json.loads(meta.read_text())
        net = FeatureNet(data.shape, record["classes"], cfg)
        net.load_state_dict(load_file(str(weights)))
        net.eval()
        return net.to(device), record
    net, record = train_feature_net(data, cfg, device=device, progress=progress)
    base.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp))
    atomic_write_json(meta, record)  # written last: its presence says the weights are complete
    return net, record
