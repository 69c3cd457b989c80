"""Linear and k-NN probes: how much class information frozen features hold.

For each number of labels (e.g. 100, 1000, all) and each seed, a class-stratified subset of
the training split is labelled; multinomial logistic regression and a k-nearest-neighbour
classifier are fitted on its features and scored on the whole test split. Features are
standardised with statistics of the whole (unlabelled) training split.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

KNN_K = 5


def stratified_subset(labels: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """Indices of n training examples, as equal per class as possible (all if n is None)."""
    if n is None or n >= labels.shape[0]:
        return np.arange(labels.shape[0])
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    quota = np.full(len(classes), n // len(classes))
    quota[rng.permutation(len(classes))[: n % len(classes)]] += 1
    chosen = [idx[:q] for idx, q in zip(per_class, quota, strict=True)]
    return np.sort(np.concatenate(chosen))


def summarize(accuracies: list[float], labels: int) -> dict[str, Any]:
    """Mean and standard deviation over seeds of test accuracies with ``labels`` labels."""
    return {
        "mean": statistics.fmean(accuracies),
        "std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "runs": accuracies,
        "labels": int(labels),
    }


def _classifier(kind: str, n: int):  # noqa: ANN202
    if kind == "logreg":
        return LogisticRegression(max_iter=500)
    return KNeighborsClassifier(n_neighbors=min(KNN_K, n))


def probe_features(
    train: np.ndarray,
    train_labels: np.ndarray,
    test: np.ndarray,
    test_labels: np.ndarray,
    *,
    sizes: Sequence[int | None] = (100, 1000, None),
    seeds: Sequence[int] = (0, 1, 2),
    classifiers: Sequence[str] = ("logreg", "knn"),
) -> dict[str, dict[str, Any]]:
    """``{classifier: {size: {"mean", "std", "runs"}}}`` test accuracies; size "all" for None."""
    scaler = StandardScaler().fit(train)
    train, test = scaler.transform(train), scaler.transform(test)
    results: dict[str, dict[str, Any]] = {}
    for kind in classifiers:
        results[kind] = {}
        for size in sizes:
            key = "all" if size is None else str(size)
            runs = []
            for seed in seeds if size is not None else seeds[:1]:  # all labels: one subset
                index = stratified_subset(train_labels, size, seed)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    model = _classifier(kind, len(index)).fit(train[index], train_labels[index])
                runs.append(float((model.predict(test) == test_labels).mean()))
            results[kind][key] = summarize(runs, len(index))
    return results
