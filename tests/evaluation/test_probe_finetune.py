"""Probe and fine-tuning oracles, and the embed/probe/finetune commands on a tiny run."""

import json

import numpy as np
import torch

from genlab.cli import main
from genlab.evaluation.finetune import build_classifier
from genlab.evaluation.probe import probe_features, stratified_subset
from genlab.models import DataInfo, build_model


def separable(n, seed):
    """10 classes at far-apart centres in 10 dimensions: linearly separable."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    return np.eye(10)[labels] * 10 + rng.normal(0, 0.5, (n, 10)), labels


def test_probe_scores_100_percent_on_separable_identity_features():
    train, train_y = separable(2000, 0)
    test, test_y = separable(500, 1)
    results = probe_features(train, train_y, test, test_y, sizes=(100, None), seeds=(0, 1))
    for kind in ("logreg", "knn"):
        for size in ("100", "all"):
            assert results[kind][size]["mean"] > 0.99, (kind, size, results[kind][size])


def test_probe_scores_chance_on_constant_features():
    _, train_y = separable(2000, 0)
    _, test_y = separable(1000, 1)
    results = probe_features(
        np.ones((2000, 5)), train_y, np.ones((1000, 5)), test_y, sizes=(100, None), seeds=(0,)
    )
    for kind in ("logreg", "knn"):
        for size in ("100", "all"):
            assert abs(results[kind][size]["mean"] - 0.1) < 0.02, (kind, size)


def test_stratified_subset_is_balanced_and_seeded():
    labels = np.repeat(np.arange(10), 50)
    index = stratified_subset(labels, 100, seed=3)
    assert np.bincount(labels[index]).tolist() == [10] * 10
    assert np.array_equal(index, stratified_subset(labels, 100, seed=3))
    assert not np.array_equal(index, stratified_subset(labels, 100, seed=4))


def test_finetune_starts_from_exactly_the_encoder_weights():
    for name in ("ae", "vae"):
        torch.manual_seed(123)  # stands in for a trained model: other weights than seed 0
        model = build_model({"name": name}, DataInfo((1, 8, 8), 2))
        fresh = lambda name=name: build_model({"name": name}, DataInfo((1, 8, 8), 2))  # noqa: E731
        pretrained = build_classifier(model, fresh, 10, pretrained=True, seed=0)
        scratch = build_classifier(model, fresh, 10, pretrained=False, seed=0)
        for key, value in model.encoder.state_dict().items():
            assert torch.equal(pretrained.encoder.state_dict()[key], value)
            assert not torch.equal(scratch.encoder.state_dict()[key], value)
        # the copy is independent: training the classifier leaves the model untouched
        pretrained.encoder.state_dict()[key].add_(1.0)
        assert not torch.equal(pretrained.encoder.state_dict()[key], value)
        # the same seed gives the same head and the same fresh encoder
        again = build_classifier(model, fresh, 10, pretrained=False, seed=0)
        assert torch.equal(again.head.weight, scratch.head.weight)


def test_embed_probe_finetune_commands(tmp_path, tiny_overrides, capsys):
    sets = [x for o in tiny_overrides for x in ("--set", o)]
    assert main(["train", *sets]) == 0
    (run,) = (tmp_path / "runs").glob("0*")
    assert main(["embed", str(run), "--variance"]) == 0
    arrays = np.load(run / "embed-test.npz")
    assert arrays["codes"].shape == arrays["variances"].shape == (arrays["labels"].shape[0], 4)
    assert main(["probe", str(run), "--labels", "20,all", "--seeds", "2"]) == 0
    report = json.loads((run / "probe.json").read_text())
    assert set(report["results"]) == {"vae code", "PCA (4 dims)", "raw pixels (64 dims)"}
    assert (run / "probe.md").read_text().count("\n|") >= 7
    assert main(["finetune", str(run), "--labels", "20", "--seeds", "2", "--steps", "20"]) == 0
    report = json.loads((run / "finetune.json").read_text())
    assert set(report["results"]) == {"pretrained", "scratch"}
    assert len(report["results"]["scratch"]["20"]["runs"]) == 2
    capsys.readouterr()
    assert main(["probe", str(run), "--labels", "5"]) == 2
    assert "at least 10" in capsys.readouterr().err
