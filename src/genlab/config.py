"""Typed, frozen configuration: one dataclass per concern, loaded from YAML + overrides.

A run's configuration has four sections::

    data:  DataConfig    which images, how they are split and binarised
    model: a ModelConfig subclass, the family's own typed config, chosen by ``model.name``
    train: TrainConfig   optimiser, schedule, epochs, checkpoints, seeds, loggers
    eval:  EvalConfig    which metrics and their protocol (e.g. IWAE k)

Unknown keys and invalid values raise :class:`~genlab.errors.ConfigError` listing what is valid.
Fields marked ``runtime`` (progress bars, threads, where runs go) describe how this process
runs, not the experiment: they are not saved in a run's ``config.json``.

This module knows no family: :mod:`genlab.models.run_config` parses a whole run config, model
section included, through the model registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from genlab.devices import check_device_name
from genlab.errors import ConfigError

RUNTIME: dict[str, Any] = {"runtime": True}  # field metadata: not saved in config.json
Binarize = Literal["dynamic", "static", "threshold", "none"]
# Every numeric field of every config class declares its inclusive range in RANGES (a class
# attribute); parsing rejects values outside it, NaN and infinities. Ranges rule out what
# cannot be meant (negative rates, 1e12 epochs); memory limits are checked when building.
Ranges = dict[str, tuple[float, float]]
SEED_RANGE = (0, 2**63 - 1)
GUIDANCE_WEIGHTS = (0.0, 20.0)  # the weights a guided sampler takes (diffusion's MAX_GUIDANCE)


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how the model sees them.

    ``binarize``: ``dynamic`` resamples every pixel ~ Bernoulli(intensity) at each batch;
    ``static`` samples once with ``binarize_seed``; ``threshold`` uses intensity > ``threshold``;
    ``none`` keeps the 256 grey levels. Validation and test splits are always fixed: static
    with ``binarize_seed`` for dynamic/static training, so numbers compare across runs.
    """

    RANGES: ClassVar[Ranges] = {
        "val_fraction": (0.0, 0.9),
        "test_fraction": (0.01, 0.9),
        "threshold": (0.0, 1.0),
        "split_seed": SEED_RANGE,
        "binarize_seed": SEED_RANGE,
        "image_size": (1, 4096),
    }

    name: str = "digits"
    path: str | None = None  # data dir for idx/cifar10 sources; the folder or .npz file otherwise
    mirror: str | None = None  # base URL replacing a dataset's official download location
    download: bool = True
    val_fraction: float = 0.1
    split_seed: int = 0
    binarize: Binarize = "dynamic"
    threshold: float = 0.5
    binarize_seed: int = 0
    image_size: int | None = None  # folder source: resize to image_size x image_size
    grayscale: bool = False  # folder source: convert to one channel
    test_fraction: float = 0.1  # folder/npz sources without their own test split

    def __post_init__(self) -> None:
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction must be in [0, 1), got {self.val_fraction}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"data.test_fraction must be in (0, 1), got {self.test_fraction}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"data.threshold must be in [0, 1], got {self.threshold}")
        if self.image_size is not None and self.image_size < 1:
            raise ConfigError(f"data.image_size must be a positive integer, got {self.image_size}")


Logger = Literal["jsonl", "tensorboard", "mlflow"]


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation loop (shared by every family)."""

    RANGES: ClassVar[Ranges] = {
        "epochs": (1, 1_000_000),
        "batch_size": (1, 1_000_000),
        "lr": (1e-12, 10.0),
        "betas": (0.0, 0.999999),
        "momentum": (0.0, 0.999999),
        "weight_decay": (0.0, 10.0),
        "warmup_steps": (0, 10**9),
        "step_size_epochs": (1, 1_000_000),
        "step_gamma": (1e-6, 1.0),
        "grad_clip": (1e-9, 1e9),
        "early_stopping_patience": (1, 1_000_000),
        "checkpoint_every": (1, 1_000_000),
        "checkpoint_every_steps": (1, 10**12),
        "checkpoint_every_minutes": (0.01, 10**6),
        "sample_every": (0, 1_000_000),
        "fd_every": (0, 1_000_000),
        "fd_samples": (2, 10_000_000),
        "seed": SEED_RANGE,
        "threads": (1, 4096),
        "max_steps": (1, 10**12),
        "max_seconds": (0.001, 10**9),
        "ema_decay": (0.0, 0.999999),
        "explode_factor": (1.0, 1e30),
        "explode_steps": (1, 10**6),
    }

    epochs: int = 10
    batch_size: int = 128
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    betas: tuple[float, ...] = (0.9, 0.999)  # adam, adamw
    momentum: float = 0.0  # sgd
    weight_decay: float = 0.0
    schedule: Literal["constant", "cosine", "step"] = "constant"
    warmup_steps: int = 0
    step_size_epochs: int = 10  # schedule=step: decay every this many epochs
    step_gamma: float = 0.5
    grad_clip: float | None = None  # max global grad norm
    # an exponential moving average of the weights, which sampling and evaluation use (0:
    # none; null: the family's default, 0.999 for the GAN's generator and none elsewhere)
    ema_decay: float | None = None
    early_stopping_patience: int | None = None  # epochs without validation improvement
    # keep the weights of the epoch with the lowest validation loss and export those (as early
    # stopping does) without stopping; the final weights stay in the last checkpoint
    keep_best: bool = False
    # divergence: a NaN or infinite loss always stops training; so does a loss that explodes,
    # |loss| > explode_factor * (median |loss| of its phase's last 100 steps + 1) for
    # explode_steps steps in a row (explode_factor null: only NaN and infinities)
    explode_factor: float | None = 1000.0
    explode_steps: int = 10
    checkpoint_every: int = 1  # epochs between training-state checkpoints
    checkpoint_every_steps: int | None = None  # also every this many optimisation steps
    checkpoint_every_minutes: float | None = None  # also every this many minutes of training
    sample_every: int = 1  # epochs between sample grids in samples/ (0: never; last one always)
    # a sample-quality curve (one-pass samplers, labelled data): every fd_every epochs (0: never;
    # the last epoch too) the FD of fd_samples samples against as many test images, recorded
    # in the epoch's metrics.jsonl record as test/fd_cnn_<n>; not counted as training time
    fd_every: int = 0
    fd_samples: int = 1000
    seed: int = 0
    loggers: tuple[Logger, ...] = ("jsonl",)  # experiment tracking: jsonl, tensorboard, mlflow
    threads: int | None = field(default=None, metadata=RUNTIME)  # torch.set_num_threads
    progress: bool = field(default=True, metadata=RUNTIME)
    max_steps: int | None = None  # stop after this many optimisation steps (for smoke runs)
    max_seconds: float | None = None  # stop after this much wall-clock time (a time budget)
    # where and how fast: the device is this process's choice (not saved; a run trained on
    # one device resumes and evaluates on another); precision and compilation are the recipe
    device: str = field(default="auto", metadata=RUNTIME)  # auto, cpu, cuda, cuda:N, mps
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast; fp16 with a grad scaler
    channels_last: bool = False  # NHWC memory format for convolutional networks
    compile: bool = False  # torch.compile the model's objective

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size", "checkpoint_every", "step_size_epochs"):
            if getattr(self, key) < 1:
                raise ConfigError(f"train.{key} must be >= 1, got {getattr(self, key)}")
        if self.sample_every < 0:
            raise ConfigError(f"train.sample_every must be >= 0, got {self.sample_every}")
        if self.fd_every < 0:
            raise ConfigError(f"train.fd_every must be >= 0, got {self.fd_every}")
        if self.fd_samples < 2:
            raise ConfigError(f"train.fd_samples must be >= 2, got {self.fd_samples}")
        if self.lr <= 0:
            raise ConfigError(f"train.lr must be positive, got {self.lr}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"train.betas must be two numbers in [0, 1), got {list(self.betas)}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"train.momentum must be in [0, 1), got {self.momentum}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ConfigError(f"train.grad_clip must be positive or null, got {self.grad_clip}")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ConfigError("train.early_stopping_patience must be >= 1 or null")
        if self.ema_decay is not None and not 0 <= self.ema_decay < 1:
            raise ConfigError(f"train.ema_decay must be in [0, 1) or null, got {self.ema_decay}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ConfigError(f"train.max_seconds must be positive or null, got {self.max_seconds}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"train.max_steps must be >= 1 or null, got {self.max_steps}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"train.threads must be >= 1 or null, got {self.threads}")
        check_device_name(self.device, "train.device")
        if len(set(self.loggers)) != len(self.loggers):
            raise ConfigError(f"train.loggers names a logger twice: {list(self.loggers)}")


@dataclass(frozen=True)
class EvalConfig:
    """The evaluation protocol; metric names carry these settings (``nll_iwae_k1000``,
    ``fd_cnn_10k``, ``precision_cnn_k3_10k``, ``probe_logreg_acc_n1000``)."""

    RANGES: ClassVar[Ranges] = {
        "iwae_k": (1, 1_000_000),
        "dequant_k": (1, 100_000),
        "bound_terms": (1, 100_000),
        "likelihood_images": (1, 10**9),
        "steps_curve": (1, 100_000),
        "steps_curve_samples": (2, 1_000_000),
        "class_samples": (2, 10_000_000),
        "guidance_curve": GUIDANCE_WEIGHTS,
        "guidance_curve_samples": (2, 1_000_000),
        "batch_size": (1, 1_000_000),
        "seed": SEED_RANGE,
        "max_images": (1, 10**9),
        "num_samples": (1, 10_000_000),
        "pr_k": (1, 1000),
        "dc_k": (1, 1000),
        "kid_subsets": (1, 100_000),
        "kid_subset_size": (2, 1_000_000),
        "probe_labels": (1, 10**8),
        "speed_samples": (1, 1_000_000),
        "ais_betas": (3, 10**7),
        "ais_runs": (1, 1_000_000),
        "chain_steps": (1, 10**7),
        "chain_samples": (1, 1_000_000),
    }

    metrics: tuple[str, ...] | None = None  # None: every metric the registry runs by default
    iwae_k: int = 1000
    # draws of the uniform dequantisation noise per test image for a continuous density (a
    # flow); more than one gives the importance-weighted bound (nll_dequant_k<K>)
    dequant_k: int = 1
    # a diffusion's variational bound: its decoder term exactly and one step t drawn in each of
    # this many strata of the other steps per test image (stratified Monte Carlo of the sum
    # over T steps; T or more: every term; nll_diffusion_bound_t<N>)
    bound_terms: int = 100
    # the nll metric on the first N test images only (a costly estimator, e.g. a diffusion's,
    # on a subset; the result says how many); null: all of them
    likelihood_images: int | None = None
    # an iterative sampler's FD and speed against its number of steps (the fd_vs_steps metric,
    # diffusion): the step counts (those a model cannot take are left out) and the samples
    steps_curve: tuple[int, ...] = (10, 25, 50, 100, 250, 1000)
    steps_curve_samples: int = 500
    # a conditional model's class metrics (class_agreement, fd_intra_class): samples drawn for
    # the classes in turn (labels 0, 1, ..., C-1, 0, 1, ...), the same samples for both
    class_samples: int = 2000
    # classifier-free guidance (the guidance_curve metric, a conditional diffusion trained with
    # label dropout): the weights w (0: unconditional, 1: conditional) and the samples at each
    guidance_curve: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0)
    guidance_curve_samples: int = 500
    batch_size: int = 100  # test images per batch; IWAE splits each batch's k samples further
    seed: int = 1234
    max_images: int | None = None  # evaluate on the first N test images only (quick checks)
    num_samples: int = 10000  # model samples for the sample-quality metrics
    pr_k: int = 3  # neighbourhood size of precision/recall (Kynkäänniemi et al. 2019)
    dc_k: int = 5  # neighbourhood size of density/coverage (Naeem et al. 2020)
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    probe_labels: int = 1000  # class-balanced training labels for probe_logreg_acc
    speed_samples: int = 100  # images timed by sample_speed when no sample metric drew any
    ais_betas: int = 10000  # AIS intermediate temperatures for an RBM's log Z (nll_ais_b<N>)
    ais_runs: int = 100  # independent AIS runs; their spread gives log Z's standard error
    chain_steps: tuple[int, ...] = (10, 100, 1000)  # Markov-chain lengths the chain metric scores
    chain_samples: int = 2000  # chains run by the chain metric (from noise and from test images)
    device: str = field(default="auto", metadata=RUNTIME)  # auto, cpu, cuda, cuda:N, mps

    def __post_init__(self) -> None:
        for key in (
            "iwae_k",
            "dequant_k",
            "bound_terms",
            "batch_size",
            "num_samples",
            "pr_k",
            "dc_k",
            "kid_subsets",
            "probe_labels",
            "speed_samples",
            "ais_runs",
            "chain_samples",
        ):
            if getattr(self, key) < 1:
                raise ConfigError(f"eval.{key} must be >= 1, got {getattr(self, key)}")
        if self.kid_subset_size < 2:
            raise ConfigError(f"eval.kid_subset_size must be >= 2, got {self.kid_subset_size}")
        if self.ais_betas < 3:
            raise ConfigError(f"eval.ais_betas must be >= 3, got {self.ais_betas}")
        if not self.chain_steps or any(s < 1 for s in self.chain_steps):
            raise ConfigError(f"eval.chain_steps must be step counts >= 1, got {self.chain_steps}")
        check_device_name(self.device, "eval.device")
        if self.max_images is not None and self.max_images < 1:
            raise ConfigError(f"eval.max_images must be >= 1 or null, got {self.max_images}")
        if self.likelihood_images is not None and self.likelihood_images < 1:
            raise ConfigError(
                f"eval.likelihood_images must be >= 1 or null, got {self.likelihood_images}"
            )
        if not self.steps_curve or any(s < 1 for s in self.steps_curve):
            raise ConfigError(f"eval.steps_curve must be step counts >= 1, got {self.steps_curve}")
        if self.steps_curve_samples < 2:
            raise ConfigError(
                f"eval.steps_curve_samples must be >= 2, got {self.steps_curve_samples}"
            )
        for key in ("class_samples", "guidance_curve_samples"):
            if getattr(self, key) < 2:
                raise ConfigError(f"eval.{key} must be >= 2, got {getattr(self, key)}")
        low, high = GUIDANCE_WEIGHTS
        if not self.guidance_curve or not all(low <= w <= high for w in self.guidance_curve):
            raise ConfigError(
                f"eval.guidance_curve must be guidance weights in [{low:g}, {high:g}] (0: "
                f"unconditional, 1: conditional), got {list(self.guidance_curve)}"
            )


@dataclass(frozen=True)
class ModelConfig:
    """Base of every family's typed config (a frozen dataclass in the family's module).

    ``family`` is the registry name, set when the family registers; ``model.name`` in a
    config file chooses the class. ``conditional`` (every family reads it; those that cannot
    take labels refuse it, saying why) conditions the model on the data set's class labels:
    it then learns p(x | y) and samples a class asked for.
    """

    family: ClassVar[str] = ""
    RANGES: ClassVar[Ranges] = {}  # every numeric field's inclusive [low, high]

    conditional: bool = False


@dataclass(frozen=True)
class RunConfig:
    """A whole run: data, the family's typed model config, training and evaluation."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(kw_only=True)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    runs_dir: str = field(default="runs", metadata=RUNTIME)
