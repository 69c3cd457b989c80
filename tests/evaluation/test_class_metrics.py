"""The metrics that say whether conditioning works, on a fake conditional model whose answers are
known exactly: independent Bernoulli pixels per class (an exact p(x | y), so its generative
classifier is naive Bayes) and a sampler that returns chosen images for the class asked."""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from genlab import noise
from genlab.config import DataConfig, EvalConfig, ModelConfig
from genlab.data import load_data
from genlab.data.images import ImageSet
from genlab.data.splits import DataSplits
from genlab.errors import ConfigError
from genlab.evaluation import context as eval_context
from genlab.evaluation.class_metrics import UNCONDITIONAL, classify
from genlab.evaluation.feature_net import FeatureNetConfig, load_or_train_feature_net
from genlab.evaluation.runner import evaluate
from genlab.models.base import DataInfo, GenerativeModel, LogLikelihood
from genlab.models.common.conditioning import (
    class_log_likelihoods,
    labels_for,
    marginal_log_likelihood,
)
from genlab.models.declarations import Traits

# a feature network that trains in well under a second and still predicts every digit
NET = FeatureNetConfig(width=4, feature_dim=16, epochs=1, min_steps=150)


@dataclass(frozen=True)
class BernoulliConfig(ModelConfig):
    pass


class ClassBernoulli(GenerativeModel[BernoulliConfig]):
    """p(x | y) = prod_d Bernoulli(x_d; sigmoid(logits[y, d])). Its sampler draws from that,
    or with ``bank`` returns, for each label c asked, the next image of ``bank[c]``."""

    family = "class_bernoulli"
    config_class = BernoulliConfig
    traits = Traits(density="exact", sampling="one_pass", conditional=True)

    def __init__(self, info, logits, bank=None, conditional=True):
        super().__init__(BernoulliConfig(conditional=conditional), info)
        self.logits = nn.Parameter(logits.reshape(len(info.classes), -1).clone())
        self.bank = bank

    def loss(self, x, phase, *, generator=None, y=None):
        return {"loss": -self.log_likelihood(x, k=1, y=y).values.mean()}

    def log_likelihood(self, x, *, k, generator=None, y=None):
        if y is None and self.conditional:
            return marginal_log_likelihood(self, x, k=k, generator=generator)
        logits = self.logits[y if y is not None else torch.zeros_like(x[:, 0, 0, 0]).long()]
        v = x.flatten(1)
        log_p = v * nn.functional.logsigmoid(logits) + (1 - v) * nn.functional.logsigmoid(-logits)
        return LogLikelihood(log_p.sum(1), "exact")

    def sample(self, n, *, generator=None, progress=False, y=None):
        y = labels_for(self, n, y, generator)
        if self.bank is None:
            probabilities = torch.sigmoid(self.logits[y])
            return noise.bernoulli(probabilities, generator).view(n, *self.data_info.shape)
        return from_bank(self.bank, y)


def from_bank(bank, labels):
    """For each label c, the next image of bank[c] (cycling)."""
    taken: Counter[int] = Counter()
    out = []
    for c in labels.tolist():
        out.append(bank[c][taken[c] % len(bank[c])])
        taken[c] += 1
    return torch.stack(out)


class Guided(ClassBernoulli):
    """Classifier-free guidance, faked: w = 0 returns the reference images (the first test
    images, whatever the labels), 0 < w < 1 images the network puts in another class, w >= 1
    images it puts in the class asked for. Records the first draw of each call's generator."""

    def __init__(self, info, logits, banks, reference):
        super().__init__(info, logits)
        self.banks, self.reference, self.draws = banks, reference, []

    def guidance_not_available(self):
        return None

    def sample_guided(
        self,
        n,
        *,
        guidance,
        y=None,
        steps=None,
        sampler=None,
        eta=None,
        generator=None,
        progress=False,
    ):
        self.draws.append((guidance, torch.rand((), generator=generator).item()))
        y = labels_for(self, n, y, generator)
        if guidance == 0:
            return self.reference[:n]
        return from_bank(self.banks["right" if guidance >= 1 else "wrong"], y)


class Encoding(ClassBernoulli):
    """A conditional model with an encoder, an ELBO and reconstructions: its codes must not be
    probed, its ELBO (of log p(x | y)) not reported, and it reconstructs given the labels (an
    image minus its label, here: exact answers)."""

    def __init__(self, info, logits):
        super().__init__(info, logits)
        self.given = []

    def encode(self, x, y=None):
        raise AssertionError("a conditional model's codes carry the label")

    def elbo_terms(self, x, *, generator=None, y=None):
        raise AssertionError("a conditional model's ELBO is of log p(x | y)")

    def reconstruct(self, x, y=None):
        assert y is not None, "a conditional model reconstructs given the label"
        self.given.append(y)
        return (x - y.view(-1, 1, 1, 1) / 100).clamp(0, 1)


@pytest.fixture(scope="module")
def digits():
    torch.set_num_threads(1)
    return load_data(DataConfig(name="digits", binarize="none"), progress=False)


@pytest.fixture
def quick_net(monkeypatch):
    loader = functools.partial(load_or_train_feature_net, cfg=NET)
    monkeypatch.setattr(eval_context, "load_or_train_feature_net", loader)
    return loader


def info_of(data):
    return DataInfo(data.shape, data.levels, data.classes, data.class_counts)


def banks_of(images, classes, count=8):
    """{class: images} of the first ``count`` of each class in ``classes`` (N,)."""
    return {c: images[classes == c][:count] for c in range(10)}


def test_class_agreement_of_real_images_is_the_networks_accuracy_on_them(digits, quick_net):
    net, record = quick_net(digits)
    test, labels = digits.tensor("test"), digits.test.labels
    bank = banks_of(test, labels)  # the first eight test images of each class (8 of "8")
    model = ClassBernoulli(info_of(digits), torch.zeros(10, 64), bank)
    cfg = EvalConfig(metrics=("class_agreement", "fd_intra_class"), class_samples=80)
    result = evaluate(model, digits, cfg, progress=False)["metrics"]
    entry = result["class_agreement_cnn_n80"]
    with torch.no_grad():
        hits = [(net(bank[c]).argmax(1) == c).double() for c in range(10)]
    assert entry["value"] == pytest.approx(torch.cat(hits).mean().item(), abs=1e-12)
    assert entry["per_class"]["3"] == pytest.approx(hits[3].mean().item(), abs=1e-12)
    assert entry["ceiling"] == pytest.approx(record["test_accuracy"], abs=1e-12)
    p = entry["value"]
    assert entry["stderr"] == pytest.approx(math.sqrt(p * (1 - p) / 80))
    assert entry["samples"] == 80 and entry["chance"] == 0.1
    assert entry["prior_entropy_bits"] == pytest.approx(math.log2(10), abs=0.01)
    # the samples of each class are the very test images it is compared with: FD 0
    intra = result["fd_intra_class_cnn_n80"]
    assert intra["value"] == pytest.approx(0.0, abs=1e-6)
    assert set(intra["per_class"]) == set(digits.classes)
    assert intra["images_per_class"]["0"] == 8 and intra["floor"] > 0.01


def test_images_the_network_puts_elsewhere_never_agree_and_its_own_always_do(digits, quick_net):
    net, _ = quick_net(digits)
    test = digits.tensor("test")
    with torch.no_grad():
        predicted = net(test).argmax(1)
    info = info_of(digits)
    cfg = EvalConfig(metrics=("class_agreement",), class_samples=50)
    elsewhere = {c: test[predicted != c] for c in range(10)}
    model = ClassBernoulli(info, torch.zeros(10, 64), elsewhere)
    entry = evaluate(model, digits, cfg, progress=False)["metrics"]["class_agreement_cnn_n50"]
    assert entry["value"] == 0.0 and set(entry["per_class"].values()) == {0.0}
    own = {c: test[predicted == c] for c in range(10)}
    model = ClassBernoulli(info, torch.zeros(10, 64), own)
    entry = evaluate(model, digits, cfg, progress=False)["metrics"]["class_agreement_cnn_n50"]
    assert entry["value"] == 1.0 and entry["stderr"] == 0.0


def naive_bayes(data):
    """Per-class Bernoulli pixel probabilities of the binarised training images (smoothed)."""
    x, y = data.tensor("train").flatten(1), data.train.labels
    means = torch.stack([(x[y == c].sum(0) + 1) / ((y == c).sum() + 2) for c in range(10)])
    return torch.log(means) - torch.log1p(-means)  # logits (10, 64)


def test_the_generative_classifier_is_naive_bayes_computed_directly():
    torch.set_num_threads(1)
    data = load_data(DataConfig(name="digits", binarize="static"), progress=False)
    logits = naive_bayes(data)
    model = ClassBernoulli(info_of(data), logits)
    cfg = EvalConfig(metrics=("nll", "gen_classifier"))
    result = evaluate(model, data, cfg, progress=False)["metrics"]
    entry = result["gen_classifier_acc_exact"]  # named with the likelihood's protocol
    # Bayes' rule by hand, in float64
    x, y = data.tensor("test").flatten(1).double(), data.test.labels
    lg = logits.double()
    log_px_y = x @ nn.functional.logsigmoid(lg).T + (1 - x) @ nn.functional.logsigmoid(-lg).T
    counts = torch.tensor(data.class_counts, dtype=torch.float64)
    joint = log_px_y + (counts / counts.sum()).log()
    accuracy = (joint.argmax(1) == y).double().mean().item()
    assert entry["value"] == pytest.approx(accuracy, abs=1e-12) and entry["value"] > 0.7
    conditional = -log_px_y.gather(1, y.unsqueeze(1)).mean().item()
    assert entry["conditional_nll_nats"] == pytest.approx(conditional, rel=1e-5)
    marginal = -torch.logsumexp(joint, 1).mean().item()
    assert entry["marginal_nll_nats"] == pytest.approx(marginal, rel=1e-5)
    # the nll metric reports the same log p(x), through the sum over classes
    assert result["nll_exact"]["value"] == pytest.approx(entry["marginal_nll_nats"], rel=1e-6)
    information = (marginal - conditional) / math.log(2)
    assert entry["label_information_bits"] == pytest.approx(information, rel=1e-4)
    assert 0 < information < entry["prior_entropy_bits"]  # I(x; y) <= H(y)
    assert entry["kind"] == "exact" and entry["images"] == 180


def rows_data(classes=4, side=4):
    """Images of class c: a non-zero pattern of bits in row c, zeros elsewhere: every pattern
    once per class, in train and test alike (disjoint supports)."""
    patterns = torch.tensor([[(p >> b) & 1 for b in range(side)] for p in range(1, 2**side)])
    images, labels = [], []
    for c in range(classes):
        block = torch.zeros(len(patterns), 1, side, side, dtype=torch.uint8)
        block[:, 0, c] = patterns.to(torch.uint8)
        images.append(block)
        labels.append(torch.full((len(patterns),), c))
    images, labels = torch.cat(images), torch.cat(labels)
    names = tuple(f"row {c}" for c in range(classes))
    sets = {s: ImageSet((images * 255).contiguous(), labels, names) for s in ("train", "test")}
    fixed = {"train": images, "val": images[:1], "test": images}
    val = ImageSet((images[:1] * 255).contiguous(), labels[:1], names)
    splits = DataSplits(
        "rows", sets["train"], val, sets["test"], "static", 2, (1, side, side), "f", fixed
    )
    logits = torch.full((classes, side, side), -30.0)
    for c in range(classes):
        logits[c, c] = 0.0  # row c: each pattern equally likely; elsewhere all but surely off
    return splits, logits


def test_disjoint_class_supports_are_classified_without_error():
    data, logits = rows_data()
    model = ClassBernoulli(info_of(data), logits)
    cfg = EvalConfig(metrics=("gen_classifier",), batch_size=7)
    entry = evaluate(model, data, cfg, progress=False)["metrics"]["gen_classifier_acc_exact"]
    assert entry["value"] == 1.0 and entry["images"] == 60
    assert entry["posterior_nll_nats"] == pytest.approx(0.0, abs=1e-9)
    # the label tells all it can: H(y) = 2 bits for four balanced classes
    assert entry["prior_entropy_bits"] == pytest.approx(2.0, abs=1e-6)
    assert entry["label_information_bits"] == pytest.approx(2.0, abs=1e-6)
    assert entry["conditional_nll_nats"] == pytest.approx(4 * math.log(2), abs=1e-6)


def test_a_sampler_with_disjoint_class_supports_agrees_with_the_class_asked(quick_net):
    data, logits = rows_data()
    for c in range(4):
        logits[c, c] = 2.0  # row c: bits on with probability 0.88, the blank row rare
    model = ClassBernoulli(info_of(data), logits)
    cfg = EvalConfig(metrics=("class_agreement",), class_samples=400)
    entry = evaluate(model, data, cfg, progress=False)["metrics"]["class_agreement_cnn_n400"]
    assert entry["ceiling"] == 1.0 and entry["value"] > 0.97


def test_posterior_rows_sum_to_one():
    torch.manual_seed(0)
    data, _ = rows_data()
    model = ClassBernoulli(info_of(data), torch.randn(4, 16))
    _, results = class_log_likelihoods(model, data.tensor("test"), k=1)
    values, log_posterior, result = classify(model, results)
    assert values.shape == log_posterior.shape == (60, 4) and result.kind == "exact"
    assert torch.allclose(log_posterior.exp().sum(1), torch.ones(60, dtype=torch.float64))
    # Bayes' rule: the posterior's log-odds between classes are the likelihoods' plus the prior's
    prior = model.get_buffer("class_log_prior").double()
    odds = (log_posterior[:, 1] - log_posterior[:, 0]) - (values[:, 1] - values[:, 0])
    assert torch.allclose(odds, (prior[1] - prior[0]).expand(60))


def test_the_guidance_curve_scores_each_weight_from_the_same_noise(digits, quick_net):
    net, _ = quick_net(digits)
    test = digits.tensor("test")
    with torch.no_grad():
        predicted = net(test).argmax(1)
    banks = {
        "right": {c: test[predicted == c] for c in range(10)},
        "wrong": {c: test[predicted != c] for c in range(10)},
    }
    model = Guided(info_of(digits), torch.zeros(10, 64), banks, test)
    cfg = EvalConfig(
        metrics=("guidance_curve",),
        guidance_curve=(2.0, 0.0, 1.0, 0.5, 1.0),
        guidance_curve_samples=60,
    )
    entry = evaluate(model, digits, cfg, progress=False)["metrics"]["guidance_curve_cnn_n60"]
    points = entry["points"]
    assert [p["guidance"] for p in points] == [0.0, 0.5, 1.0, 2.0]  # each weight once, in order
    assert [p["class_agreement"] for p in points[1:]] == [0.0, 1.0, 1.0]
    # w = 0 returned the very images compared with: FD 0, precision and recall 1
    assert points[0]["fd"] == pytest.approx(0.0, abs=1e-6)
    assert points[0]["precision"] == points[0]["recall"] == 1.0
    assert entry["value"] == min(p["fd"] for p in points) and entry["best_guidance"] == 0.0
    p = points[1]["precision"]
    assert points[1]["precision_stderr"] == pytest.approx(math.sqrt(p * (1 - p) / 60))
    first_draws = {draw for _, draw in model.draws}
    assert len(model.draws) == 4 and len(first_draws) == 1  # one seed for every weight


def test_an_unconditional_model_or_unlabelled_data_are_not_applicable(digits):
    cfg = EvalConfig(metrics=("class_agreement", "fd_intra_class", "gen_classifier"))
    model = ClassBernoulli(info_of(digits), torch.zeros(10, 64), conditional=False)
    reasons = evaluate(model, digits, cfg, progress=False)["not_applicable"]
    assert set(reasons.values()) == {UNCONDITIONAL}
    unlabelled = DataSplits(
        "bare",
        ImageSet(digits.train.images),
        ImageSet(digits.val.images),
        ImageSet(digits.test.images),
        "none",
        256,
        digits.shape,
        "g",
        digits.fixed,
    )
    model = ClassBernoulli(info_of(digits), torch.zeros(10, 64))
    reasons = evaluate(model, unlabelled, cfg, progress=False)["not_applicable"]
    assert set(reasons) == set(cfg.metrics) and all("labels" in r for r in reasons.values())


def test_metrics_that_would_misread_a_conditional_model_say_why(digits):
    metrics = ("elbo", "recon_error", "probe", "guidance_curve")
    model = Encoding(info_of(digits), torch.zeros(10, 64))
    cfg = EvalConfig(metrics=metrics, batch_size=7)
    result = evaluate(model, digits, cfg, progress=False)
    reasons = result["not_applicable"]
    assert set(reasons) == {"elbo", "probe", "guidance_curve"}
    assert "log p(x | y)" in reasons["elbo"] and "given each image's label" in reasons["probe"]
    assert "no classifier-free guidance" in reasons["guidance_curve"]
    # reconstructions given each test image's own label, named apart from unconditional ones
    assert torch.equal(torch.cat(model.given), digits.test.labels)
    entry = result["metrics"]["recon_mse_given_label"]
    x, y = digits.tensor("test"), digits.test.labels.double().view(-1, 1, 1, 1)
    expected = (x.double() - (x.double() - y / 100).clamp(0, 1)).square().mean().item()
    assert entry["value"] == pytest.approx(expected, rel=1e-6) and entry["value"] > 0


def test_fewer_class_samples_than_two_per_class_decide_no_intra_class_fd(digits):
    model = ClassBernoulli(info_of(digits), torch.zeros(10, 64))
    cfg = EvalConfig(metrics=("fd_intra_class",), class_samples=15)
    reason = evaluate(model, digits, cfg, progress=False)["not_applicable"]["fd_intra_class"]
    assert "eval.class_samples=15" in reason and "10 classes" in reason


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"guidance_curve": ()}, r"eval.guidance_curve must be guidance weights in \[0, 20\]"),
        ({"guidance_curve": (1.0, -2.0)}, r"must be guidance weights in \[0, 20\].*\[1.0, -2.0\]"),
        ({"guidance_curve": (1.0, float("nan"))}, "must be guidance weights in"),
        ({"guidance_curve": (25.0,)}, "must be guidance weights in"),
        ({"class_samples": 1}, "eval.class_samples must be >= 2"),
        ({"guidance_curve_samples": 0}, "eval.guidance_curve_samples must be >= 2"),
    ],
)
def test_bad_class_metric_settings_are_one_line(fields, message):
    with pytest.raises(ConfigError, match=message):
        EvalConfig(**fields)


def test_nll_and_the_classifier_share_one_pass_over_the_classes(monkeypatch):
    """A conditional model's nll (log p(x) through the sum over classes) equals its own
    marginal log_likelihood, and nll with gen_classifier compute the C likelihoods once."""
    torch.manual_seed(0)
    data, _ = rows_data()
    model = ClassBernoulli(info_of(data), torch.randn(4, 16))
    calls = Counter()
    original = ClassBernoulli.log_likelihood

    def counted(self, x, *, k, generator=None, y=None):
        calls["given" if y is not None else "marginal"] += 1
        return original(self, x, k=k, generator=generator, y=y)

    monkeypatch.setattr(ClassBernoulli, "log_likelihood", counted)
    cfg = EvalConfig(metrics=("nll", "gen_classifier"))
    metrics = evaluate(model, data, cfg, progress=False)["metrics"]
    batches = -(-data.tensor("test").shape[0] // cfg.batch_size)
    assert calls == {"given": 4 * batches}  # once per class and batch, for both metrics
    with torch.no_grad():
        direct = -original(model, data.tensor("test"), k=1).values.double().mean().item()
    assert metrics["nll_exact"]["value"] == pytest.approx(direct, rel=1e-6)
    assert metrics["gen_classifier_acc_exact"]["marginal_nll_nats"] == pytest.approx(direct)
