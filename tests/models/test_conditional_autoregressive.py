"""Oracles of the class-conditional autoregressive families (gated PixelCNN, MADE, NADE):
p(x | y) normalised over every binary image for every class, the marginal p(x) against
sum_y p(x | y) p(y), the cached sampler against the naive one, samples against the exact
p(x | y), the unconditional models untouched, and a class the samples obey after training."""

import dataclasses
import itertools
import math
from pathlib import Path

import pytest
import scipy.stats
import torch
from runkit import TINY_MODELS

from genlab import api
from genlab.models import DataInfo, build_model, load_run_config
from genlab.models.autoregressive.nade import SharedActivations
from genlab.models.autoregressive.sampling import sample_autoregressive
from genlab.models.common.conditioning import class_log_likelihoods, class_posterior

torch.set_num_threads(1)

COUNTS = (1, 3, 4)  # training images per class: p(y) = (1/8, 3/8, 4/8)
INFO = DataInfo((1, 2, 2), 2, classes=("a", "b", "c"), class_counts=COUNTS)
SPECS = {
    "gated_pixelcnn": {"name": "gated_pixelcnn", "channels": 4, "layers": 2, "head_hidden": 4},
    "made": {"name": "made", "hidden": [8, 6], "orderings": 2, "direct": True},
    "nade": {"name": "nade", "hidden": 8},
}
# the parameters that exist only in a conditional model (the class biases)
LABEL_KEYS = {
    "gated_pixelcnn": {"vlabel.0.weight", "vlabel.1.weight", "hlabel.0.weight", "hlabel.1.weight"},
    "made": {"class_hidden.weight", "class_out.weight"},
    "nade": {"class_hidden.weight"},
}


def conditional(name: str, info: DataInfo = INFO, **extra):
    return build_model({**SPECS[name], **extra, "conditional": True}, info)


def random_model(name: str, scale: float = 1.0, conditional_: bool = True):
    """The model in float64 with every parameter ~ N(0, scale^2): conditionals far from 1/2
    and far apart between the classes."""
    torch.manual_seed(0)
    model = build_model({**SPECS[name], "conditional": conditional_}, INFO).double().eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model


def all_images(shape=(1, 2, 2)) -> torch.Tensor:
    """Every binary image, (2 ** D, C, H, W) float64, the last pixel changing fastest."""
    grid = list(itertools.product((0.0, 1.0), repeat=math.prod(shape)))
    return torch.tensor(grid, dtype=torch.float64).view(-1, *shape)


def labels(value: int, n: int) -> torch.Tensor:
    return torch.full((n,), value, dtype=torch.int64)


def image_index(samples: torch.Tensor) -> torch.Tensor:
    """Each 2x2 binary image's row in :func:`all_images`, (n,) long."""
    weights = torch.tensor([8.0, 4.0, 2.0, 1.0], dtype=samples.dtype)
    return (samples.flatten(1) * weights).sum(1).long()


@pytest.mark.parametrize("name", list(SPECS))
def test_every_class_is_a_distribution_and_the_marginal_is_their_mixture(name):
    """sum_x p(x | y) = 1 for each of the 3 classes over all 16 images of 2x2 pixels;
    log p(x) (no labels) = log sum_y p(x | y) p(y), with p(y) the class counts' frequencies;
    it sums to 1 too, and the posterior p(y | x) is a distribution for every image."""
    model = random_model(name)
    x = all_images()
    each = torch.stack(
        [model.log_likelihood(x, k=1, y=labels(c, 16)).values for c in range(3)], dim=1
    )  # (16, 3): log p(x | y)
    for c in range(3):
        assert torch.logsumexp(each[:, c], 0).item() == pytest.approx(0.0, abs=1e-5)
    assert (each[:, 0] - each[:, 1]).abs().max() > 0.1  # the class changes the distribution
    marginal = model.log_likelihood(x, k=1)
    assert marginal.kind == "exact" and marginal.values.shape == (16,)
    prior = torch.tensor(COUNTS, dtype=torch.float64) / sum(COUNTS)
    direct = torch.log((each.exp() * prior).sum(1))  # log sum_y p(x | y) p(y)
    assert torch.allclose(marginal.values, direct, atol=1e-10)
    assert torch.logsumexp(marginal.values, 0).item() == pytest.approx(0.0, abs=1e-5)
    values, _ = class_log_likelihoods(model, x, k=1)
    assert torch.allclose(values, each, atol=1e-12)
    posterior = class_posterior(values, model.class_log_prior)
    assert torch.allclose(posterior.exp().sum(1), torch.ones(16, dtype=torch.float64))


@pytest.mark.parametrize("name", list(SPECS))
def test_each_image_is_scored_with_its_own_label(name):
    """A batch of mixed labels gives each image the likelihood of its class alone."""
    model = random_model(name)
    x = all_images()
    y = torch.arange(16) % 3
    mixed = model.log_likelihood(x, k=1, y=y).values
    alone = torch.stack([model.log_likelihood(x, k=1, y=labels(c, 16)).values for c in range(3)])
    assert torch.allclose(mixed, alone[y, torch.arange(16)], atol=1e-12)


@pytest.mark.parametrize("name", list(SPECS))
def test_samples_of_one_class_follow_its_exact_distribution(name):
    """20 000 samples of class 2 against the 16 exact probabilities p(x | y = 2): Pearson's
    chi-square with 15 degrees of freedom below its 1 - 1e-4 quantile (44.3); the seed is
    fixed, so the test is deterministic. The same for samples whose labels are drawn from p(y),
    against the marginal p(x). Weights ~ N(0, 0.5^2) keep every expected count above 5."""
    model = random_model(name, scale=0.5)
    n, threshold = 20_000, scipy.stats.chi2.ppf(1 - 1e-4, df=15)
    x = all_images()
    for y, expected in (
        (labels(2, n), model.log_likelihood(x, k=1, y=labels(2, 16)).values.exp()),
        (None, model.log_likelihood(x, k=1).values.exp()),
    ):
        samples = model.sample(n, generator=torch.Generator().manual_seed(7), y=y)
        assert samples.shape == (n, 1, 2, 2) and torch.all((samples == 0) | (samples == 1))
        observed = torch.bincount(image_index(samples), minlength=16).double()
        assert (n * expected).min() > 5
        statistic = ((observed - n * expected) ** 2 / (n * expected)).sum().item()
        assert statistic < threshold, f"chi-square {statistic:.1f} >= {threshold:.1f}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_cached_sampler_draws_the_naive_samplers_images(dtype):
    """Given the same generator and labels (mixed, or drawn from p(y)), the cached sampler
    (the class bias computed once per layer and image) and the naive one (a full pass per
    pixel) return exactly the same 4x4 images; other labels give other images."""
    info = DataInfo((1, 4, 4), 2, classes=("a", "b", "c"), class_counts=COUNTS)
    torch.manual_seed(0)
    model = conditional("gated_pixelcnn", info).to(dtype)
    y = torch.arange(64) % 3
    for given in (y, None):
        cached, naive = (
            sample_autoregressive(
                model, 64, generator=torch.Generator().manual_seed(5), sampler=s, y=given
            )
            for s in ("cached", "naive")
        )
        assert torch.equal(cached, naive)
    other = model.sample(64, generator=torch.Generator().manual_seed(5), y=(y + 1) % 3)
    assert not torch.equal(other, cached)


@pytest.mark.parametrize("name", list(SPECS))
def test_the_unconditional_model_is_untouched(name):
    """Unconditional: no label layer among its state-dict keys. Conditional: exactly the label
    layers (and the class prior) more, created after every other weight, so the same seed
    gives the same shared weights; with its class biases zeroed the conditional model is the
    unconditional one, in likelihood and, given labels, in its samples."""
    torch.manual_seed(0)
    plain = build_model(SPECS[name], INFO).double()
    torch.manual_seed(0)
    cond = conditional(name).double()
    keys, cond_keys = set(plain.state_dict()), set(cond.state_dict())
    assert not any("label" in key or key.startswith("class_") for key in keys)
    assert cond_keys - keys == LABEL_KEYS[name] | {"class_log_prior"} and keys <= cond_keys
    with torch.no_grad():
        for key in LABEL_KEYS[name]:
            assert torch.count_nonzero(cond.get_parameter(key)) > 0
            cond.get_parameter(key).zero_()
    for key, value in plain.state_dict().items():
        assert torch.equal(value, cond.state_dict()[key])
    x = all_images()
    base = plain.log_likelihood(x, k=1).values
    for c in range(3):
        assert torch.allclose(cond.log_likelihood(x, k=1, y=labels(c, 16)).values, base)
    a = plain.sample(50, generator=torch.Generator().manual_seed(3))
    b = cond.sample(50, generator=torch.Generator().manual_seed(3), y=labels(1, 50))
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", list(SPECS))
def test_labels_are_required_and_checked(name):
    cond, plain = random_model(name), random_model(name, conditional_=False)
    x = all_images()[:4]
    with pytest.raises(ValueError, match="needs the labels y"):
        cond.loss(x, "main")
    with pytest.raises(ValueError, match="unconditional"):
        plain.loss(x, "main", y=labels(0, 4))
    with pytest.raises(ValueError, match="unconditional"):
        plain.log_likelihood(x, k=1, y=labels(0, 4))
    with pytest.raises(ValueError, match="unconditional"):
        plain.sample(4, y=labels(0, 4))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        cond.log_likelihood(x, k=1, y=labels(3, 4))
    with pytest.raises(ValueError, match="int64 of shape"):
        cond.sample(4, y=labels(0, 3))


def test_nade_gradients_with_a_hidden_bias_per_image_pass_gradcheck():
    """NADE's O(DH) gradient when a_1 = c + U h differs between the images of a batch."""
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, 6, generator=g, dtype=torch.float64).round()
    shapes = [(5, 6), (3, 5), (6, 5), (6,)]  # W, c + U h per image, V, b
    params = tuple(
        torch.randn(s, generator=g, dtype=torch.float64).requires_grad_(True) for s in shapes
    )
    assert torch.autograd.gradcheck(lambda *p: SharedActivations.apply(x, *p), params)


def halves(n: int, y: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """8x8 binary images: class 0 lights the left half, class 1 the right half, and every pixel
    flips with probability 0.1."""
    left = (torch.arange(8) < 4).float().expand(8, 8)  # (8, 8)
    clean = torch.where(y.view(n, 1, 1, 1) == 0, left, 1 - left)  # (n, 1, 8, 8)
    flips = (torch.rand(n, 1, 8, 8, generator=g) < 0.1).float()
    return (clean - flips).abs()


@pytest.mark.parametrize("name", list(SPECS))
def test_trained_samples_obey_the_class_asked_for(name):
    """Two classes with disjoint supports (left or right half lit, pixel noise): after 300
    steps of Adam a tiny conditional model's samples of each class light the half of that
    class in more than 95% of 100 images."""
    info = DataInfo((1, 8, 8), 2, classes=("left", "right"), class_counts=(1, 1))
    sizes = {"gated_pixelcnn": {"channels": 8, "head_hidden": 8}, "made": {"hidden": [32]}}
    torch.manual_seed(0)
    model = conditional(name, info, **sizes.get(name, {"hidden": 16}))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        y = torch.randint(0, 2, (32,), generator=g)
        loss = model.loss(halves(32, y, g), "main", generator=g, y=y)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    for c in (0, 1):
        samples = model.sample(100, generator=torch.Generator().manual_seed(c), y=labels(c, 100))
        left, right = samples[..., :4].mean((1, 2, 3)), samples[..., 4:].mean((1, 2, 3))
        obeyed = (left > right) if c == 0 else (right > left)
        assert obeyed.float().mean() > 0.95, f"class {c}: {obeyed.float().mean():.2f}"


@pytest.mark.parametrize("variant", ["gated_pixelcnn_cond", "made_cond", "nade_cond"])
def test_trains_and_evaluates_through_the_api(tiny_overrides, variant):
    """The Trainer passes the digits' labels; ``nll`` reports the marginal log p(x)."""
    base = [o for o in tiny_overrides if not o.startswith(("model.", "eval."))]
    overrides = [*base, *TINY_MODELS[variant], "train.max_steps=5", "eval.metrics=[nll]"]
    run = api.train(load_run_config(None, overrides))
    result = api.evaluate(run, progress=False)["metrics"]["nll_exact"]
    assert result["kind"] == "exact"
    # 5 steps from the start: about log 2 a pixel
    assert 0.7 * 64 * math.log(2) < result["value"] < 1.3 * 64 * math.log(2)


def test_the_conditional_fashion_config_is_the_gated_one_with_labels():
    configs = Path(__file__).resolve().parents[2] / "configs"
    cond = load_run_config(configs / "gated_pixelcnn_cond_fashion.yaml", [])
    plain = load_run_config(configs / "gated_pixelcnn_fashion.yaml", [])
    assert cond.model.conditional and not plain.model.conditional
    assert dataclasses.replace(cond.model, conditional=False) == plain.model
    assert (cond.data, cond.train) == (plain.data, plain.train)
