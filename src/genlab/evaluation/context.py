"""What a metric sees: the model, the evaluation images, the protocol, and shared work.

Several metrics need the same expensive things (the model's samples, their features, the
feature network, the real features); :class:`EvalContext` computes each once, on first use.

Everything runs on the model's device (:attr:`EvalContext.device`): the evaluation images stay
on the CPU and go there batch by batch, the model's noise is drawn there, and the samples and
features live there. Choices of images (which training images, which KID subsets) are drawn on
the CPU, so they are the same on every device.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from tqdm.auto import tqdm

from genlab import noise
from genlab.config import EvalConfig
from genlab.devices import synchronize
from genlab.evaluation.feature_net import FeatureNet, load_or_train_feature_net
from genlab.models.base import (
    DataInfo,
    GenerativeModel,
    LogLikelihood,
    SupportsSample,
    SupportsSampleMeans,
    device_of,
)
from genlab.models.common.conditioning import class_log_likelihoods
from genlab.resources import require_fits

SAMPLE_BATCH = 500  # images per call to model.sample when drawing the evaluation samples


def count_label(n: int) -> str:
    """10000 -> '10k', 2500 -> '2500': the sample count as it appears in metric names."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def draw_in_batches(
    drawer: Callable[..., torch.Tensor],
    n: int,
    generator: torch.Generator,
    bar: Callable[[list[int]], Iterable[int]] = iter,
) -> torch.Tensor:
    """n images from ``drawer(size, generator=...)`` in batches of :data:`SAMPLE_BATCH`,
    without gradients, clamped to [0, 1]: how evaluation draws samples. ``bar`` wraps the
    list of batch sizes (a progress bar)."""
    sizes = [min(SAMPLE_BATCH, n - s) for s in range(0, n, SAMPLE_BATCH)]
    with torch.no_grad():
        chunks = [drawer(size, generator=generator) for size in bar(sizes)]
    return torch.cat(chunks).clamp_(0, 1)


@dataclass
class EvalContext:
    model: GenerativeModel
    images: torch.Tensor  # (N, C, H, W) evaluation images as the model sees them, on the CPU
    cfg: EvalConfig
    data: Any = None  # DataSplits: labels, training split, feature network
    run_info: dict[str, Any] | None = None  # run.json of the evaluated run, if any
    split: str = "test"  # which split ``images`` are
    progress: bool = True
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def info(self) -> DataInfo:
        return self.model.data_info

    @property
    def device(self) -> torch.device:
        """Where the evaluation computes: the model's device."""
        return device_of(self.model)

    def generator(self, stream: int = 0) -> torch.Generator:
        """A fresh generator seeded with eval.seed on the model's device: each metric draws the
        same noise. A non-zero ``stream`` (the IWAE k) gives an independent stream, so that
        estimates with different settings are not correlated through shared draws."""
        seed = self.cfg.seed if stream == 0 else (self.cfg.seed * 1_000_003 + stream) % 2**63
        return noise.generator(seed, self.device)

    def choice_generator(self) -> torch.Generator:
        """A fresh CPU generator seeded with eval.seed, for choices of images (subsets,
        orders): they are the same whatever the device."""
        return noise.generator(self.cfg.seed)

    def batches(self, limit: int | None = None) -> Iterable[torch.Tensor]:
        """The evaluation images (the first ``limit`` of them) in batches of
        eval.batch_size, each moved to the device."""
        images = self.images if limit is None else self.images[:limit]
        return (x.to(self.device) for x in images.split(self.cfg.batch_size))

    def bar(self, iterable: Iterable[Any], name: str, total: int | None = None) -> Iterable[Any]:
        return tqdm(
            iterable,
            total=total,
            desc=name,
            unit="batch",
            disable=not self.progress,
            leave=False,
            dynamic_ncols=True,
        )

    def batch_bar(self, name: str, limit: int | None = None) -> Iterable[torch.Tensor]:
        count = self.images.shape[0] if limit is None else min(limit, self.images.shape[0])
        return self.bar(self.batches(limit), name, -(-count // self.cfg.batch_size))

    def class_results(
        self, batch: int, x: torch.Tensor, k: int, generator: torch.Generator
    ) -> list[LogLikelihood]:
        """log p(x | y) of every class for evaluation batch number ``batch`` (``x``), computed
        once: the nll metric (log p(x) through the sum over classes) and the generative
        classifier of a conditional model read the same C likelihoods, drawn from the same
        generator stream on first use."""
        return cast(
            list[LogLikelihood],
            self.memo(
                f"class_results_k{k}_{batch}",
                lambda: class_log_likelihoods(self.model, x, k=k, generator=generator)[1],
            ),
        )

    def has(self, key: str) -> bool:
        """Whether ``key`` (e.g. "samples") has been computed already."""
        return key in self._memo

    def memo(self, key: str, compute: Any) -> Any:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def has_labels(self) -> bool:
        """Whether the data have train and test labels (feature network, probes)."""
        splits = [getattr(self.data, name, None) for name in ("train", "test")]
        return all(s is not None and s.labels is not None for s in splits)

    # -- sample-quality inputs ------------------------------------------------------------
    @property
    def num_samples(self) -> int:
        """Samples drawn, and real images compared with: eval.num_samples, or fewer when the
        evaluation split is smaller, so both sets always have the same size (the k-NN metrics
        are not symmetric in set size). Metric names carry this number."""
        return min(self.cfg.num_samples, self.images.shape[0])

    def feature_net(self) -> tuple[FeatureNet, dict[str, Any]]:
        """The data's feature network (on the device) and its record."""
        return self.memo(
            "feature_net",
            lambda: load_or_train_feature_net(
                self.data, device=self.device, progress=self.progress
            ),
        )

    def samples(self, source: str = "samples") -> tuple[torch.Tensor, float]:
        """(num_samples images (n, C, H, W) on the device, seconds spent drawing them).
        ``source`` "samples": the model's samples as it defines them; "means": its mean images
        E[x|z] (:class:`SupportsSampleMeans`), drawn from the same noise."""

        def draw() -> tuple[torch.Tensor, float]:
            # only metrics for samplers ask for samples
            model = cast(SupportsSample | SupportsSampleMeans, self.model)
            drawer = model.sample if source == "samples" else model.sample_means  # type: ignore[union-attr]
            generator, n = self.generator(), self.num_samples
            require_fits(
                8 * n * self.info.num_dims,  # the samples as float32, and their binarised copy
                f"eval.num_samples={n:,} samples",
                "lower eval.num_samples",
            )
            start = time.perf_counter()
            samples = draw_in_batches(
                drawer, n, generator, lambda sizes: self.bar(sizes, source, len(sizes))
            )
            synchronize(self.device)
            return samples, time.perf_counter() - start

        return self.memo(source, draw)

    def sample_features(self, source: str = "samples") -> torch.Tensor:
        return self.memo(
            f"{source}_features",
            lambda: self.feature_net()[0].features_of(self.samples(source)[0]),
        )

    def real_features(self) -> torch.Tensor:
        """Features of the first num_samples evaluation images: the reference set."""
        return self.memo(
            "real_features",
            lambda: self.feature_net()[0].features_of(self.images[: self.num_samples]),
        )

    def floor_features(self) -> torch.Tensor:
        """Features of as many training images (as the model sees them, seeded choice) as the
        reference set has: real against real, the floor of every sample-quality metric."""

        return self.memo(
            "floor_features", lambda: self.feature_net()[0].features_of(self.floor_images())
        )

    def floor_images(self, count: int | None = None) -> torch.Tensor:
        """The training images (as the model sees them) that real-against-real floors use: a
        seeded random choice, so class-sorted data contribute every class; as many as the
        reference set has, or ``count``."""
        train = self.data.tensor("train")
        count = min(count or self.real_features().shape[0], train.shape[0])
        index = noise.permutation(train.shape[0], self.choice_generator())[:count]
        return train[index]
