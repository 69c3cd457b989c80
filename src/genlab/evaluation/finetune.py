"""Fine-tuning a trained encoder as a classifier, against the same network from scratch.

The classifier is the model's encoder followed by a linear layer on its code (the AE's code,
or the mean half of a VAE encoder's output). Both variants, encoder-initialised and randomly
initialised, get the same labelled subset, optimiser, number of steps, batch order and seed,
so the difference in test accuracy measures what the unsupervised training contributed.

Both train and run on the model's device; the images and labels stay on the CPU, the batch
order is drawn there (the same on every device) and each batch is moved to the device.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import nn

from genlab.evaluation.probe import stratified_subset, summarize
from genlab.models.base import GenerativeModel, device_of


class EncoderClassifier(nn.Module):
    """encoder (B, C, H, W) -> first ``code_dim`` outputs -> linear -> class logits."""

    def __init__(self, encoder: nn.Module, code_dim: int, classes: int) -> None:
        super().__init__()
        self.encoder, self.code_dim = encoder, code_dim
        self.head = nn.Linear(code_dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x)[:, : self.code_dim])  # (B, classes)


def code_dim_of(model: GenerativeModel) -> int:
    return int(getattr(model.config, "code_dim", None) or model.config.latent_dim)


def build_classifier(
    model: GenerativeModel,
    fresh: Callable[[], GenerativeModel],
    classes: int,
    *,
    pretrained: bool,
    seed: int,
) -> EncoderClassifier:
    """The encoder of ``model`` (a copy, weights exactly as trained) or of a freshly initialised
    model (``fresh()`` under ``seed``), with a linear head initialised under ``seed``; on the
    model's device (initialised on the CPU, so alike on every device)."""
    torch.manual_seed(seed)
    # GenerativeModel declares no encoder: families with Traits(encoder=True) hold an nn.Module
    encoder = cast(nn.Module, copy.deepcopy(model.encoder) if pretrained else fresh().encoder)
    torch.manual_seed(seed + 1)
    return EncoderClassifier(encoder, code_dim_of(model), classes).to(device_of(model))


def train_classifier(
    classifier: EncoderClassifier,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
) -> EncoderClassifier:
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)  # the batch order: on the CPU
    device = device_of(classifier)
    classifier.train()
    order = torch.randperm(x.shape[0], generator=generator)
    position = 0
    for _ in range(steps):
        if position + batch_size > order.shape[0]:
            order, position = torch.randperm(x.shape[0], generator=generator), 0
        index = order[position : position + batch_size]
        position += batch_size
        logits = classifier(x[index].to(device))
        loss = nn.functional.cross_entropy(logits, y[index].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return classifier.eval()


@torch.no_grad()
def accuracy(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    classifier.eval()
    device = device_of(classifier)
    correct = sum(
        int((classifier(xb.to(device)).argmax(1).cpu() == yb).sum())
        for xb, yb in zip(x.split(1000), y.split(1000), strict=True)
    )
    return correct / x.shape[0]


def finetune_comparison(
    model: GenerativeModel,
    fresh: Callable[[], GenerativeModel],
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    sizes: Sequence[int | None] = (100, 1000, None),
    seeds: Sequence[int] = (0, 1, 2),
    steps: int = 1000,
    batch_size: int = 100,
    lr: float = 1e-3,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """``{"pretrained"|"scratch": {size: {"mean", "std", "runs"}}}`` test accuracies."""
    classes = int(max(train_y.max(), test_y.max())) + 1
    labels = train_y.numpy()
    results: dict[str, dict[str, Any]] = {"pretrained": {}, "scratch": {}}
    for size in sizes:
        key = "all" if size is None else str(size)
        runs: dict[str, list[float]] = {"pretrained": [], "scratch": []}
        for seed in seeds if size is not None else seeds[:1]:
            index = torch.from_numpy(stratified_subset(labels, size, seed))
            for variant in runs:
                if progress:
                    progress(f"{variant} {key} labels seed {seed}")
                clf = build_classifier(
                    model, fresh, classes, pretrained=variant == "pretrained", seed=seed
                )
                clf = train_classifier(
                    clf,
                    train_x[index],
                    train_y[index],
                    steps=steps,
                    batch_size=min(batch_size, len(index)),
                    lr=lr,
                    seed=seed,
                )
                runs[variant].append(accuracy(clf, test_x, test_y))
        for variant, accs in runs.items():
            results[variant][key] = summarize(accs, len(index))
    return results


__all__ = ["EncoderClassifier", "build_classifier", "finetune_comparison"]
