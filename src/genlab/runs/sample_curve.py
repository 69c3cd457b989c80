"""A sample-quality curve recorded during training: the Fréchet distance (FD) of the model's
samples every ``train.fd_every`` epochs, in the epoch's ``metrics.jsonl`` record.

The protocol is evaluation's ``fd`` metric (:mod:`genlab.evaluation.sample_metrics`) on the
test split: n = min(``train.fd_samples``, test images) samples drawn in eval mode without
gradients, in batches of :data:`~genlab.evaluation.context.SAMPLE_BATCH`, from a generator
seeded with ``eval.seed`` on the training device, clamped to [0, 1]; their features in the
data's feature network against the features of the first n test images as the model sees
them. So with ``eval.num_samples = train.fd_samples`` the point after the last epoch is the
``fd_cnn_<n>`` that ``genlab eval`` reports for the final weights. The record gets
``test/fd_cnn_<n>`` (the name carries the split, the feature network and n) and
``fd_seconds``, the measurement's own time.

Measuring is not training: the Trainer has timed the epoch's batches (the record's
``seconds``, from which reports draw quality against compute) before any callback runs, so
neither a measurement nor the feature network's training on first use counts; torch's
global RNG is restored after each measurement, so a run with the curve trains exactly as
one without it. Markov-chain samplers (``Traits.sampling == "chain"``: RBM, denoising
autoencoder) are skipped silently:
their samples depend on a chain length, which the ``chain`` metric measures. A model that
cannot sample, or data without labels for the feature network, get one note and no curve.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import torch

from genlab import noise
from genlab.evaluation.context import count_label, draw_in_batches
from genlab.evaluation.feature_net import FEATURE_NET_NAME, FeatureNet, load_or_train_feature_net
from genlab.evaluation.sample_quality import frechet_distance
from genlab.models.base import GenerativeModel, SupportsMarkovChain, SupportsSample
from genlab.resources import require_fits
from genlab.training.trainer import Callback, Trainer

SPLIT = "test"  # the reference images: evaluation's default split
FD_PREFIX = f"{SPLIT}/fd_{FEATURE_NET_NAME}_"  # + the sample count: test/fd_cnn_1k
SECONDS_KEY = "fd_seconds"


def fd_key(n: int) -> str:
    """The epoch-record key of an FD measured on ``n`` samples: ``test/fd_cnn_1k``."""
    return FD_PREFIX + count_label(n)


def draw_samples(model: GenerativeModel, n: int, seed: int, device: torch.device) -> torch.Tensor:
    """n samples (n, C, H, W) in [0, 1] as evaluation draws them: eval mode, no gradients, one
    generator seeded ``seed`` on ``device``, batches of SAMPLE_BATCH, from the averaged
    weights where the model keeps an average; the model's mode and weights are restored
    after."""
    sampler: Any = model
    training = model.training
    model.eval()
    try:
        with model.averaged():
            return draw_in_batches(sampler.sample, n, noise.generator(seed, device))
    finally:
        model.train(training)


class SampleCurve(Callback):
    """Every ``every`` epochs (and after the last) the FD of ``samples`` samples against as
    many test images of ``data`` (a :class:`~genlab.data.DataSplits`), recorded in the epoch
    record; ``every`` 0 measures nothing. Put it before the loggers."""

    def __init__(
        self, every: int, samples: int, data: Any, seed: int, *, progress: bool = False
    ) -> None:
        self.every, self.samples, self.data, self.seed = every, samples, data, seed
        self.progress = progress
        self.active = False
        self.noted = False
        self.n = 0  # samples and test images per measurement
        self.net: FeatureNet | None = None
        self.real: torch.Tensor | None = None  # (n, F) features of the test images, kept

    def skip_reason(self, model: GenerativeModel) -> str | None:
        """None when the curve is measured; "" to skip silently; otherwise why it cannot be."""
        if self.every == 0:
            return ""
        runs_chain = not (
            isinstance(model, SupportsMarkovChain) and model.chain_not_available() is not None
        )
        if model.traits.sampling == "chain" and runs_chain:
            return ""
        if not isinstance(model, SupportsSample):
            return f"the {model.family} family cannot sample"
        if self.data is None:
            return "no data were given to measure against"
        splits = [getattr(self.data, name, None) for name in ("train", SPLIT)]
        if not all(s is not None and s.labels is not None for s in splits):
            return "the data have no labels to train the feature network on"
        if min(self.samples, len(self.data.test)) < 2:
            return "it needs at least two test images"
        return None

    def on_fit_start(self, trainer: Trainer) -> None:
        reason = self.skip_reason(trainer.model)
        self.active = reason is None
        if reason and not self.noted:
            self.noted = True
            print(
                f"note: train.fd_every={self.every}: no sample-quality curve for this run: {reason}"
            )
        if self.active:
            self.n = min(self.samples, len(self.data.test))
            require_fits(
                4 * self.n * trainer.model.data_info.num_dims,  # the samples as float32
                f"train.fd_samples={self.n:,} samples",
                "lower train.fd_samples",
            )

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        epoch = trainer.epoch
        if not self.active or (
            epoch % self.every and epoch != trainer.cfg.epochs and not trainer.stopping
        ):
            return
        start = time.perf_counter()
        device = trainer.device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            value = self.measure(trainer.model, device)
        if math.isfinite(value):
            record[fd_key(self.n)] = value
        else:
            warnings.warn(
                f"epoch {epoch}: the samples are not finite; no FD recorded",
                RuntimeWarning,
                stacklevel=2,
            )
        record[SECONDS_KEY] = time.perf_counter() - start

    def measure(self, model: GenerativeModel, device: torch.device) -> float:
        """The FD of the model's seeded samples against the test images (the feature network
        is loaded, or trained and cached, on the first call)."""
        if self.net is None or self.real is None:
            self.net, _ = load_or_train_feature_net(
                self.data, device=device, progress=self.progress
            )
            self.real = self.net.features_of(self.data.tensor(SPLIT)[: self.n])
        samples = draw_samples(model, self.n, self.seed, device)
        if not torch.isfinite(samples).all():
            return math.nan
        return frechet_distance(self.real, self.net.features_of(samples))
