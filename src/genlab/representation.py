"""What a trained model's codes are worth: ``embed``, ``probe`` and ``finetune`` for a run.

- ``embed``: the codes of a split (AE code, VAE posterior mean and optionally variance) with
  labels, as ``.npz``.
- ``probe``: frozen codes -> logistic regression and k-NN with 100 / 1000 / all labels, next
  to raw pixels and PCA with as many dimensions as the code (``probe.json``, ``probe.md``).
- ``finetune``: encoder + linear head trained end to end vs the same network from scratch
  (``finetune.json``, ``finetune.md``).

Each computes where the model is: on ``device`` when one is given, else on the OpenRun's
device (``eval.device``). Codes come back to the CPU for numpy and scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA

from genlab.errors import ConfigError, RunError
from genlab.evaluation.features import encode_images
from genlab.evaluation.finetune import code_dim_of, finetune_comparison
from genlab.evaluation.probe import probe_features
from genlab.fileio import atomic_path, atomic_write_text
from genlab.models import build_model
from genlab.runs import OpenRun, RunDir, device_overrides, open_run

Sizes = Sequence[int | None]
Run = OpenRun | RunDir | str | Path


def _labels(data: Any, split: str) -> torch.Tensor:
    labels = getattr(data, split).labels
    if labels is None:
        raise RunError(f"dataset {data.name!r} has no labels; probe and finetune need classes")
    return labels


def _check_sizes(sizes: Sizes) -> None:
    if any(s is not None and s < 10 for s in sizes):
        raise ConfigError(f"label counts must be at least 10 (one per class), got {list(sizes)}")


def embed(
    run: Run,
    *,
    split: str = "test",
    variance: bool = False,
    out: str | Path | None = None,
    data_path: str | None = None,
    device: str | None = None,
) -> Path:
    """Write the codes of ``split`` as ``.npz`` (codes, labels[, variances])."""
    if split not in ("train", "val", "test"):
        raise ConfigError(f"split must be train, val or test, got {split!r}")
    opened = open_run(run, device_overrides(device), data_path=data_path)
    model, data = opened.model, opened.data
    codes, variances = encode_images(model, data.tensor(split), variance=variance)
    arrays = {"codes": codes.cpu().numpy()}
    labels = getattr(data, split).labels
    if labels is not None:
        arrays["labels"] = labels.numpy()
    if variances is not None:
        arrays["variances"] = variances.cpu().numpy()
    path = Path(out) if out else opened.path / f"embed-{split}.npz"
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
    return path


def probe(
    run: Run,
    *,
    sizes: Sizes = (100, 1000, None),
    seeds: Sequence[int] = (0, 1, 2),
    baselines: bool = True,
    data_path: str | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Probe accuracies of the run's codes (and raw-pixel / PCA baselines); writes probe.json/md.
    The codes are computed on the device; the probes (scikit-learn) fit on the CPU."""
    _check_sizes(sizes)
    opened = open_run(run, device_overrides(device), data_path=data_path)
    model, data = opened.model, opened.data
    train_x, test_x = data.tensor("train"), data.tensor("test")
    train_y, test_y = _labels(data, "train").numpy(), _labels(data, "test").numpy()
    code_train = encode_images(model, train_x)[0].cpu()
    code_test = encode_images(model, test_x)[0].cpu()
    dims = code_train.shape[1]
    feature_sets = {f"{model.family} code": (code_train.numpy(), code_test.numpy())}
    if baselines:
        raw_train, raw_test = train_x.flatten(1).numpy(), test_x.flatten(1).numpy()
        pca = PCA(n_components=dims, random_state=0).fit(raw_train)
        feature_sets[f"PCA ({dims} dims)"] = (pca.transform(raw_train), pca.transform(raw_test))
        feature_sets[f"raw pixels ({raw_train.shape[1]} dims)"] = (raw_train, raw_test)
    results = {
        name: probe_features(tr, train_y, te, test_y, sizes=sizes, seeds=seeds)
        for name, (tr, te) in feature_sets.items()
    }
    report = {
        "run": opened.path.name,
        "features": "model input view (binarised as in evaluation)",
        "code_dims": dims,
        "seeds": list(seeds),
        "test_images": int(test_y.shape[0]),
        "results": results,
        "weights_used": opened.weights.record(),
    }
    opened.run.write_json(opened.path / "probe.json", report)
    atomic_write_text(opened.path / "probe.md", probe_table(report))
    return report


def finetune(
    run: Run,
    *,
    sizes: Sizes = (100, 1000, None),
    seeds: Sequence[int] = (0, 1, 2),
    steps: int = 1000,
    lr: float = 1e-3,
    data_path: str | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Encoder-initialised vs from-scratch classifiers, trained on the device; writes
    finetune.json/md."""
    _check_sizes(sizes)
    if steps < 1:
        raise ConfigError(f"steps must be positive, got {steps}")
    opened = open_run(run, device_overrides(device), data_path=data_path)
    model, data = opened.model, opened.data
    results = finetune_comparison(
        model,
        lambda: build_model(opened.config.model, model.data_info, ema_decay=0.0),
        data.tensor("train"),
        _labels(data, "train"),
        data.tensor("test"),
        _labels(data, "test"),
        sizes=sizes,
        seeds=seeds,
        steps=steps,
        lr=lr,
    )
    report = {
        "run": opened.path.name,
        "code_dims": code_dim_of(model),
        "steps": steps,
        "lr": lr,
        "batch_size": 100,
        "seeds": list(seeds),
        "results": results,
        "weights_used": opened.weights.record(),
    }
    opened.run.write_json(opened.path / "finetune.json", report)
    atomic_write_text(opened.path / "finetune.md", finetune_table(report))
    return report


def _cell(entry: dict[str, Any]) -> str:
    return f"{100 * entry['mean']:.1f} ± {100 * entry['std']:.1f}"


def probe_table(report: dict[str, Any]) -> str:
    results = report["results"]
    first = next(iter(results.values()))
    sizes = list(next(iter(first.values())))
    head = "| features | classifier | " + " | ".join(f"{s} labels" for s in sizes) + " |"
    rows = [head, "|" + "---|" * (len(sizes) + 2)]
    for name, by_classifier in results.items():
        for kind, by_size in by_classifier.items():
            rows.append(
                f"| {name} | {kind} | " + " | ".join(_cell(by_size[s]) for s in sizes) + " |"
            )
    return (
        "Test accuracy (%), mean ± std over seeds "
        + str(report["seeds"])
        + "\n\n"
        + "\n".join(rows)
        + "\n"
    )


def finetune_table(report: dict[str, Any]) -> str:
    results = report["results"]
    sizes = list(results["pretrained"])
    rows = [
        "| initialisation | " + " | ".join(f"{s} labels" for s in sizes) + " |",
        "|" + "---|" * (len(sizes) + 1),
    ]
    for variant, by_size in results.items():
        rows.append(f"| {variant} | " + " | ".join(_cell(by_size[s]) for s in sizes) + " |")
    return (
        f"Test accuracy (%) of encoder + linear head, {report['steps']} Adam steps, "
        f"mean ± std over seeds {report['seeds']}\n\n" + "\n".join(rows) + "\n"
    )
