"""The Python API: everything the command line does, as functions.

>>> from genlab import api
>>> run = api.train(api.load_config("configs/vae_mlp_digits.yaml", ["train.epochs=2"]))
>>> results = api.evaluate(run)                     # writes run/eval.json
>>> api.sample(run, n=64)                           # writes run/samples/sample-seed0.png
"""

from __future__ import annotations

import dataclasses
import platform
import time
from pathlib import Path
from typing import Any

import torch

from genlab import __version__
from genlab.config import RunConfig, load_run_config
from genlab.config_parse import apply_override, parse_dataclass, to_dict
from genlab.data import load_data
from genlab.errors import ConfigError, RunError, TrainingDiverged
from genlab.evaluation.runner import check_metric_names
from genlab.evaluation.runner import evaluate as evaluate_model
from genlab.models import MODELS, DataInfo, build_model
from genlab.models.base import SupportsSample, code_of
from genlab.reporting.images import save_grid
from genlab.reporting.run_dir import RunDir
from genlab.representation import embed, finetune, load_run, probe  # noqa: F401  (the API)
from genlab.training.trainer import Trainer

RESUME_OVERRIDABLE = (
    "train.epochs",
    "train.max_steps",
    "train.max_seconds",
    "train.progress",
    "train.threads",
)


def load_config(path: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    return load_run_config(path, overrides)


def _open(run: RunDir | str | Path) -> RunDir:
    return run if isinstance(run, RunDir) else RunDir.open(run)


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        torch.set_num_threads(threads)


def _prepare(config: RunConfig, progress: bool) -> tuple[Any, Any, Trainer]:
    """Data, model and Trainer; every user error surfaces here, before anything is written."""
    _set_threads(config.train.threads)
    check_metric_names(config.eval)
    data = load_data(config.data, progress=progress)
    torch.manual_seed(config.train.seed)  # parameter initialisation
    model = build_model(config.model, DataInfo(data.shape, data.levels))
    trainer = Trainer(model, data, config.train)
    return data, model, trainer


def train(config: RunConfig, *, progress: bool | None = None) -> RunDir:
    """Train a new run; returns its folder (``runs/<NNNNN>-<data>-<model>``)."""
    if progress is not None:
        config = dataclasses.replace(
            config, train=dataclasses.replace(config.train, progress=progress)
        )
    data, model, trainer = _prepare(config, config.train.progress)
    run = RunDir.create(config.runs_dir, config.data.name, config.model["name"])
    run.write_config(config)
    run.update_info(
        family=model.family,
        data_info={"shape": list(data.shape), "levels": data.levels},
        data={
            "name": data.name,
            "fingerprint": data.fingerprint,
            "train": len(data.train),
            "val": len(data.val),
            "test": len(data.test),
        },
        seeds={
            "train": config.train.seed,
            "split": config.data.split_seed,
            "binarize": config.data.binarize_seed,
            "eval": config.eval.seed,
        },
        parameters=sum(p.numel() for p in model.parameters()),
        versions={
            "genlab": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        threads=torch.get_num_threads(),
        status="training",
    )
    return _fit(run, trainer)


def resume(
    run: RunDir | str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    progress: bool | None = None,
) -> RunDir:
    """Continue a run from its latest checkpoint, exactly as if it had not stopped."""
    run = _open(run)
    bad = [o for o in overrides if o.partition("=")[0].strip() not in RESUME_OVERRIDABLE]
    if bad:
        raise ConfigError(
            f"cannot change {', '.join(repr(o) for o in bad)} when resuming; only "
            f"{', '.join(RESUME_OVERRIDABLE)} may change (start a new run for anything else)"
        )
    tree = to_dict(run.read_config())
    tree["train"]["max_steps"] = tree["train"]["max_seconds"] = None
    for assignment in overrides:
        apply_override(tree, assignment)
    if progress is not None:
        tree["train"]["progress"] = progress
    config = parse_dataclass(RunConfig, tree, "")
    _, _, trainer = _prepare(config, config.train.progress)
    trainer.resume_from(run)
    run.write_config(config)
    run.update_info(status="training")
    return _fit(run, trainer)


def _fit(run: RunDir, trainer: Trainer) -> RunDir:
    trainer.run = run
    start = time.perf_counter()
    try:
        result = trainer.fit()
    except TrainingDiverged:
        run.update_info(status="diverged")
        raise
    except KeyboardInterrupt:
        run.update_info(status="interrupted")
        raise
    best = run.checkpoints / "best-model.safetensors"
    if result.stopped_early or (trainer.cfg.early_stopping_patience and best.exists()):
        from safetensors.torch import load_file

        trainer.model.load_state_dict(load_file(str(best)))
        origin = f"best validation loss {result.best_val_loss:.4f}"
    else:
        origin = f"final weights at step {result.steps}"
    run.export_model(trainer.model.eval(), origin)
    run.update_info(
        status="finished" if result.finished else f"interrupted ({result.stop_reason})",
        steps=result.steps,
        epochs_completed=result.epochs_completed,
        stopped_early=result.stopped_early,
        train_images_per_s=result.images_per_s,
        train_seconds=time.perf_counter() - start,
    )
    return run


def evaluate(
    run: RunDir | str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    split: str = "test",
    progress: bool = True,
    data_path: str | None = None,
) -> dict[str, Any]:
    """Evaluate a run's exported model with its eval config (plus overrides); writes eval.json."""
    run = _open(run)
    tree = to_dict(run.read_config())
    for assignment in overrides:
        if not assignment.partition("=")[0].strip().startswith("eval."):
            raise ConfigError(f"eval overrides must start with 'eval.', got {assignment!r}")
        apply_override(tree, assignment)
    if data_path is not None:
        tree["data"]["path"] = data_path
    config = parse_dataclass(RunConfig, tree, "")
    check_metric_names(config.eval)
    if split not in ("test", "val"):
        raise ConfigError(f"split must be 'test' or 'val', got {split!r}")
    model = run.load_model()
    data = load_data(config.data, progress=progress)
    start = time.perf_counter()
    results = evaluate_model(
        model, data, config.eval, split=split, progress=progress, run_info=run.info()
    )
    results = {
        "run": run.path.name,
        "family": model.family,
        "data": {
            "name": data.name,
            "binarize": _eval_binarization(config),
            "fingerprint": data.fingerprint,
        },
        **results,
        "seconds": time.perf_counter() - start,
    }
    run.write_json(run.eval_path if split == "test" else run.path / "eval-val.json", results)
    return results


def _eval_binarization(config: RunConfig) -> str:
    mode = config.data.binarize
    if mode in ("dynamic", "static"):
        return f"static (binarize_seed {config.data.binarize_seed})"
    return f"threshold {config.data.threshold}" if mode == "threshold" else "none (8-bit)"


def sample(
    run: RunDir | str | Path,
    *,
    n: int = 64,
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """A grid of n samples from the model; returns the PNG's path. Slow samplers
    (autoregressive models) show a progress bar unless ``progress`` is False."""
    run = _open(run)
    _positive(n, "n")
    model = run.load_model()
    if not isinstance(model, SupportsSample):
        raise RunError(
            f"the {model.family} family cannot sample: a plain autoencoder has no prior over "
            "its codes to sample from; use `genlab reconstruct` or `genlab interpolate`, or "
            "train a vae"
        )
    with torch.no_grad():
        images = model.sample(n, generator=torch.Generator().manual_seed(seed), progress=progress)
    return save_grid(images, out or run.samples / f"sample-seed{seed}.png")


def reconstruct(
    run: RunDir | str | Path,
    *,
    n: int = 32,
    seed: int = 0,
    out: str | Path | None = None,
    data_path: str | None = None,
) -> Path:
    """Test images (odd rows) above their reconstructions (even rows); returns the PNG's path."""
    run, model, images = _test_images(run, n, seed, data_path)
    if not hasattr(model, "reconstruct"):
        raise RunError(f"the {model.family} family does not reconstruct its input")
    with torch.no_grad():
        recon = model.reconstruct(images)  # type: ignore[attr-defined]
    ncol = min(8, n)
    rows = []
    for start in range(0, n, ncol):
        rows += [images[start : start + ncol], recon[start : start + ncol]]
    return save_grid(torch.cat(rows), out or run.samples / f"reconstruct-seed{seed}.png", ncol=ncol)


def interpolate(
    run: RunDir | str | Path,
    *,
    pairs: int = 8,
    steps: int = 8,
    seed: int = 0,
    out: str | Path | None = None,
    data_path: str | None = None,
) -> Path:
    """Decode straight lines between the codes of test-image pairs: one row per pair, the two
    real images at the ends; returns the PNG's path.

    A model without an encoder but with a latent space (``latent_dim`` and ``generate(z)``,
    a GAN) interpolates instead between pairs of latents z ~ N(0, I) drawn with ``seed``: one
    row per pair, ``steps`` generated images from one end to the other; no data is loaded."""
    _positive(steps, "steps")
    opened = _open(run)
    family = MODELS.get(opened.read_config().model["name"])
    if not hasattr(family, "encode") and hasattr(family, "generate"):
        _positive(pairs, "pairs")
        model = opened.load_model()
        latent_dim: int = model.latent_dim  # type: ignore[assignment]
        z = torch.randn(2 * pairs, latent_dim, generator=torch.Generator().manual_seed(seed))
        t = torch.linspace(0, 1, steps).view(1, steps, 1)
        path = z[0::2].unsqueeze(1) * (1 - t) + z[1::2].unsqueeze(1) * t  # (P, S, L)
        with torch.no_grad():
            generated = model.generate(path.flatten(0, 1))  # type: ignore[operator]
        return save_grid(
            generated, out or opened.samples / f"interpolate-seed{seed}.png", ncol=steps
        )
    if not (hasattr(family, "encode") and hasattr(family, "decode")):
        raise RunError(f"the {family.family} family has no latent space to interpolate in")
    run, model, images = _test_images(opened, 2 * pairs, seed, data_path)
    with torch.no_grad():
        codes = code_of(model.encode(images))  # (2P, L): posterior mean, or the AE's code
        start, end = codes[0::2], codes[1::2]
        t = torch.linspace(0, 1, steps).view(1, steps, 1)
        path = start.unsqueeze(1) * (1 - t) + end.unsqueeze(1) * t  # (P, S, L)
        decoded = model.decode(path.flatten(0, 1)).view(pairs, steps, *images.shape[1:])
    grid = torch.cat([images[0::2].unsqueeze(1), decoded, images[1::2].unsqueeze(1)], dim=1)
    return save_grid(
        grid.flatten(0, 1), out or run.samples / f"interpolate-seed{seed}.png", ncol=steps + 2
    )


def _test_images(run: RunDir | str | Path, n: int, seed: int, data_path: str | None):  # noqa: ANN202
    _positive(n, "the number of images")
    run, _, model, data = load_run(run, data_path)
    test = data.tensor("test")
    if n > test.shape[0]:
        raise ConfigError(f"asked for {n} test images but the test split has {test.shape[0]}")
    index = torch.randperm(test.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
    return run, model, test[index]


def _positive(value: int, what: str) -> None:
    if value < 1:
        raise ConfigError(f"{what} must be a positive integer, got {value}")
