"""The per-dataset feature network, and sample metrics computed through the registry."""

import pytest
import torch

from genlab.config import DataConfig, EvalConfig
from genlab.data import load_data
from genlab.evaluation.feature_net import FeatureNetConfig, cache_path, load_or_train_feature_net
from genlab.evaluation.runner import evaluate
from genlab.models import DataInfo, GenerativeModel

SAMPLE_METRICS = ("fd", "kid", "precision", "recall", "density", "coverage", "sample_speed")


@pytest.fixture(scope="module")
def digits():
    return load_data(DataConfig(name="digits", binarize="none"), progress=False)


class ImageBank(GenerativeModel):
    """A 'model' whose samples are draws from a fixed set of images (an oracle or a noise)."""

    family = "bank"

    def __init__(self, bank: torch.Tensor) -> None:
        super().__init__(None, DataInfo(tuple(bank.shape[1:]), 256))
        self.bank = bank

    def loss(self, x, phase, *, generator=None):  # noqa: ANN001, ANN201
        raise NotImplementedError("a bank of images is not trained")

    def sample(self, n, *, generator=None, progress=False):  # noqa: ANN001, ANN201
        return self.bank[torch.randint(0, self.bank.shape[0], (n,), generator=generator)]


def test_feature_net_is_accurate_and_cached(digits):
    net, record = load_or_train_feature_net(digits, progress=False)
    assert record["test_accuracy"] > 0.85 and record["test_accuracy_binarised"] > 0.6
    assert cache_path(digits, FeatureNetConfig()).with_suffix(".safetensors").exists()
    again, record_again = load_or_train_feature_net(digits, progress=False)
    assert record_again == record
    x = digits.tensor("test")[:10]
    assert torch.equal(net.features_of(x), again.features_of(x))
    assert net.features_of(x).shape == (10, 128)


def test_sample_metrics_rank_an_oracle_above_noise(digits):
    cfg = EvalConfig(metrics=SAMPLE_METRICS, num_samples=1000, kid_subsets=10, kid_subset_size=100)
    n = digits.tensor("test").shape[0]  # fewer than 1000: every set has n images
    oracle = evaluate(ImageBank(digits.tensor("train")), digits, cfg, progress=False)["metrics"]
    noise_bank = torch.rand(500, *digits.shape, generator=torch.Generator().manual_seed(0))
    noise = evaluate(ImageBank(noise_bank), digits, cfg, progress=False)["metrics"]
    assert set(oracle) == {
        f"fd_cnn_{n}",
        f"kid_cnn_{n}",
        f"precision_cnn_k3_{n}",
        f"recall_cnn_k3_{n}",
        f"density_cnn_k5_{n}",
        f"coverage_cnn_k5_{n}",
        "sample_images_per_s",
    }
    oracle = {k.removesuffix(f"_{n}"): v for k, v in oracle.items()}
    noise = {k.removesuffix(f"_{n}"): v for k, v in noise.items()}
    fd, fd_noise = oracle["fd_cnn"], noise["fd_cnn"]
    assert fd["samples"] == n and fd["real_images"] == n
    assert fd["value"] < 2 * fd["floor"] + 1 and fd_noise["value"] > 3 * fd["value"]
    assert noise["kid_cnn"]["value"] > 5 * abs(oracle["kid_cnn"]["value"])
    assert oracle["precision_cnn_k3"]["value"] > 0.8
    assert oracle["recall_cnn_k3"]["value"] > 0.8
    assert noise["precision_cnn_k3"]["value"] < 0.5
    assert noise["recall_cnn_k3"]["value"] < 0.2
    assert noise["coverage_cnn_k5"]["value"] < oracle["coverage_cnn_k5"]["value"]
    assert fd["feature_net"]["test_accuracy"] > 0.85


def test_sample_metrics_are_not_applicable_without_labels(digits):
    class Unlabelled:
        def __init__(self, data):
            self.data = data

        def tensor(self, split):
            return self.data.tensor(split)

    cfg = EvalConfig(metrics=SAMPLE_METRICS, num_samples=50)
    result = evaluate(ImageBank(digits.tensor("train")), Unlabelled(digits), cfg, progress=False)
    assert set(result["not_applicable"]) == set(SAMPLE_METRICS) - {"sample_speed"}
    assert "labels" in result["not_applicable"]["fd"]


def test_sample_metrics_use_as_many_samples_as_evaluation_images(digits):
    cfg = EvalConfig(metrics=("fd", "recall"), num_samples=10_000)
    metrics = evaluate(ImageBank(digits.tensor("train")), digits, cfg, progress=False)["metrics"]
    n = digits.tensor("test").shape[0]
    assert metrics[f"fd_cnn_{n}"]["samples"] == metrics[f"fd_cnn_{n}"]["real_images"] == n
    assert metrics[f"recall_cnn_k3_{n}"]["value"] > 0.8  # equal sizes: a fair k-NN recall
