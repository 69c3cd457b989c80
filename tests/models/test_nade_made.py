"""Math oracles of NADE and MADE: normalisation over every binary image, causality in every
ordering, NADE's O(DH) likelihood against its per-pixel definition, samples against the exact
distribution, config refusals, and a run through the API."""

import itertools
import math

import pytest
import scipy.stats
import torch
from runkit import TINY_MODELS

from genlab import api
from genlab.errors import ConfigError
from genlab.models import DataInfo, build_model, load_run_config, parse_model_config
from genlab.models.autoregressive import nade as nade_module
from genlab.models.autoregressive.made import MADE, connectivity
from genlab.models.autoregressive.nade import NADE, SharedActivations

MODELS = {
    "nade": {"name": "nade", "hidden": 8},
    "made": {"name": "made", "hidden": [8]},
    "made_orderings": {"name": "made", "hidden": [8, 6], "orderings": 3, "direct": True},
}


def random_model(spec: dict, shape, scale: float = 1.0) -> NADE | MADE:
    """The model in float64 with every parameter ~ N(0, scale^2): conditionals far from 1/2."""
    torch.manual_seed(0)
    model = build_model(spec, DataInfo(shape, 2)).double().eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=torch.float64))
    assert isinstance(model, NADE | MADE)
    return model


def all_images(shape) -> torch.Tensor:
    """Every binary image of the given shape, (2 ** D, C, H, W) float64, raster-order binary
    counting (the last pixel changes fastest)."""
    grid = list(itertools.product((0.0, 1.0), repeat=math.prod(shape)))
    return torch.tensor(grid, dtype=torch.float64).view(-1, *shape)


def logits_of(model: NADE | MADE, x: torch.Tensor, k: int) -> torch.Tensor:
    v = x.flatten(1)
    return (
        model.conditional_logits(v) if isinstance(model, NADE) else model.conditional_logits(v, k)
    )


@pytest.mark.parametrize("name", list(MODELS))
def test_probabilities_of_all_images_sum_to_one(name):
    """All 2^12 = 4096 images of shape (1, 3, 4): sum_x p(x) = 1 to float64 rounding."""
    model = random_model(MODELS[name], (1, 3, 4))
    with torch.no_grad():
        log_p = model.log_likelihood(all_images((1, 3, 4)), k=1).values  # (4096,)
    assert torch.logsumexp(log_p, 0).item() == pytest.approx(0.0, abs=1e-10)
    assert log_p.max() - log_p.min() > 5  # far from uniform: the weights matter


def test_each_ordering_of_an_ensemble_is_normalised_and_they_differ():
    model = random_model(MODELS["made_orderings"], (1, 3, 4))
    assert torch.equal(model.orders[0], torch.arange(12))  # the first is the raster order
    assert len({tuple(o.tolist()) for o in model.orders}) == 3
    x = all_images((1, 3, 4))
    with torch.no_grad():
        each = torch.stack([model.log_prob_of(x, k) for k in range(3)])  # (3, 4096)
    assert torch.logsumexp(each, 1).abs().max().item() < 1e-10
    ensemble = torch.logsumexp(each, 0) - math.log(3)
    assert torch.allclose(model.log_likelihood(x, k=1).values, ensemble, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", list(MODELS))
def test_no_conditional_sees_its_own_pixel_or_a_later_one(name):
    """Flipping pixel i leaves the conditional of every pixel at or before i in the ordering
    bitwise unchanged, for every i and every ordering. With direct connections (and in NADE,
    where every hidden unit sees every earlier pixel) every later conditional does change:
    the check can fail."""
    shape = (1, 3, 4)
    model = random_model(MODELS[name], shape)
    d = math.prod(shape)
    x = torch.rand(6, *shape, generator=torch.Generator().manual_seed(2)).round().double()
    orders = model.orders if isinstance(model, MADE) else torch.arange(d)[None]
    sees_all = isinstance(model, NADE) or model.config.direct
    with torch.no_grad():
        for k, order in enumerate(orders.tolist()):
            rank = torch.empty(d, dtype=torch.long)
            rank[order] = torch.arange(d)
            base = logits_of(model, x, k)  # (6, D)
            for i in range(d):
                flipped = x.flatten(1).clone()
                flipped[:, i] = 1 - flipped[:, i]
                changed = logits_of(model, flipped.view_as(x), k) != base  # (6, D)
                earlier = rank <= rank[i]
                assert not changed[:, earlier].any(), f"ordering {k}: pixel {i} leaks"
                if sees_all:
                    assert changed[:, ~earlier].all(), f"ordering {k}: pixel {i} unseen"


def test_made_masks_follow_the_degrees_of_the_paper():
    """Every path from input d' to output d passes degrees m^0(d') <= m^1 <= ... < m^0(d):
    the product of the masks connects output d only to inputs before it in the ordering."""
    orders, masks = connectivity(10, [7, 5], 4, seed=3, direct=True)
    for k in range(4):
        rank = torch.empty(10, dtype=torch.long)
        rank[orders[k]] = torch.arange(10)
        paths = masks[2][k].long() @ masks[1][k].long() @ masks[0][k].long()  # (D, D)
        before = rank[:, None] > rank[None, :]  # output d may see input d'
        assert not paths[~before].any()
        assert torch.equal(masks[3][k], before)  # the direct connection


@pytest.mark.parametrize("pixels", [20, 3, 1], ids=lambda p: f"{p}-pixel-blocks")
@pytest.mark.parametrize("batch", [1, 5])
def test_nade_cumulative_sum_equals_the_per_pixel_definition(monkeypatch, batch, pixels):
    """The blocked cumulative sums give the logits, the likelihood and (through the
    hand-written backward pass) every gradient of the per-pixel loop under autograd."""
    monkeypatch.setattr(nade_module, "BLOCK_ELEMENTS", pixels * batch * 7)  # 7 hidden units
    model = random_model({"name": "nade", "hidden": 7}, (1, 4, 5))
    assert len(nade_module._blocks(20, batch, 7)) == math.ceil(20 / pixels)
    x = torch.rand(batch, 1, 4, 5, generator=torch.Generator().manual_seed(4)).round().double()
    v = x.flatten(1)
    fast, naive = model.conditional_logits(v), model.conditional_logits_naive(v)
    assert fast.shape == (batch, 20)
    assert torch.allclose(fast, naive, rtol=0, atol=1e-12)
    weights = torch.randn(batch, 20, generator=torch.Generator().manual_seed(5)).double()
    grads = [
        torch.autograd.grad((f * weights).sum(), list(model.parameters())) for f in (fast, naive)
    ]
    for name, a, b in zip(dict(model.named_parameters()), *grads, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-12), name
    assert torch.allclose(model.log_prob(x), model.log_prob_naive(x), rtol=0, atol=1e-12)


def test_nade_gradients_pass_gradcheck():
    """Finite differences of the blocked computation agree with its backward pass."""
    model = random_model({"name": "nade", "hidden": 3}, (1, 2, 4))
    x = torch.rand(3, 8, generator=torch.Generator().manual_seed(6)).round().double()
    params = tuple(p.detach().requires_grad_(True) for p in model.parameters())
    assert torch.autograd.gradcheck(lambda *p: SharedActivations.apply(x, *p), params)


@pytest.mark.parametrize("name", list(MODELS))
def test_samples_follow_the_exact_distribution(name):
    """20 000 samples of a D = 4 model (1, 2, 2) against the 16 exact probabilities: Pearson's
    chi-square with 15 degrees of freedom stays below its 1 - 1e-4 quantile (37.7). The seed
    is fixed, so the test is deterministic; a correct sampler fails it for 1 seed in 10^4.
    Weights ~ N(0, 0.5^2) keep every expected count above 5, where the chi-square law holds;
    drawing the ensemble in its first ordering only gives a statistic near 800."""
    model = random_model(MODELS[name], (1, 2, 2), scale=0.5)
    n = 20_000
    samples = model.sample(n, generator=torch.Generator().manual_seed(7))
    assert samples.shape == (n, 1, 2, 2) and samples.dtype == torch.float64
    assert torch.all((samples == 0) | (samples == 1))
    index = (samples.flatten(1) * torch.tensor([8.0, 4.0, 2.0, 1.0], dtype=torch.float64)).sum(1)
    observed = torch.bincount(index.long(), minlength=16).double()
    with torch.no_grad():
        p = model.log_likelihood(all_images((1, 2, 2)), k=1).values.exp()  # same counting order
    assert (n * p).min() > 5
    statistic = ((observed - n * p) ** 2 / (n * p)).sum().item()
    threshold = scipy.stats.chi2.ppf(1 - 1e-4, df=15)
    assert statistic < threshold, f"chi-square {statistic:.1f} >= {threshold:.1f}"


@pytest.mark.parametrize("name", list(MODELS))
def test_the_same_seed_gives_the_same_images(name):
    model = random_model(MODELS[name], (1, 3, 4))
    a = model.sample(9, generator=torch.Generator().manual_seed(3))
    b = model.sample(9, generator=torch.Generator().manual_seed(3))
    c = model.sample(9, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_made_draws_its_training_ordering_from_the_generator():
    """One ordering set per batch, chosen by the generator: the same generator gives the same
    loss, and across seeds the loss takes K different values (one per set)."""
    model = random_model(MODELS["made_orderings"], (1, 3, 4)).train()
    x = torch.rand(8, 1, 3, 4, generator=torch.Generator().manual_seed(5)).round().double()
    losses = [
        model.loss(x, "main", generator=torch.Generator().manual_seed(s))["loss"] for s in range(30)
    ]
    assert torch.equal(
        losses[0], model.loss(x, "main", generator=torch.Generator().manual_seed(0))["loss"]
    )
    per_set = {round(-model.log_prob_of(x, k).mean().item(), 9) for k in range(3)}
    assert {round(v.item(), 9) for v in losses} == per_set
    with torch.no_grad():  # validation: the ensemble
        ensemble = model.eval().loss(x, "main")["nll"]
    assert ensemble.item() == pytest.approx(-model.log_prob(x).mean().item(), abs=1e-12)


@pytest.mark.parametrize(
    "model, key",
    [
        ({"name": "made", "orderings": 0}, "model.orderings"),
        ({"name": "made", "hidden": []}, "model.hidden"),
        ({"name": "made", "hidden": [0]}, "model.hidden"),
        ({"name": "made", "hidden": 0}, "model.hidden"),
        ({"name": "nade", "hidden": 0}, "model.hidden"),
        ({"name": "nade", "hidden": []}, "model.hidden"),
        ({"name": "nade", "init_std": 0}, "model.init_std"),
    ],
    ids=str,
)
def test_bad_config_values_are_one_line_errors(model, key):
    with pytest.raises(ConfigError) as refused:
        parse_model_config(model)
    message = str(refused.value)
    assert key in message and "\n" not in message


def test_the_orderings_error_says_what_is_valid():
    from genlab.models.autoregressive.made import MADEConfig

    with pytest.raises(ConfigError, match=r"model\.orderings must be an integer >= 1"):
        MADEConfig(orderings=0)
    with pytest.raises(ConfigError, match=r"e\.g\. \[500\]"):
        MADEConfig(hidden=())


@pytest.mark.parametrize("family", ["nade", "made"])
def test_grey_levels_are_refused_with_the_setting_to_change(family):
    with pytest.raises(ConfigError) as refused:
        build_model({"name": family}, DataInfo((1, 8, 8), 256))
    assert "data.binarize" in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("variant", ["nade", "made", "made_orderings"])
def test_trains_and_evaluates_through_the_api(tiny_overrides, variant):
    base = [o for o in tiny_overrides if not o.startswith(("model.", "eval."))]
    overrides = [*base, *TINY_MODELS[variant], "train.max_steps=5", "eval.metrics=[nll]"]
    run = api.train(load_run_config(None, overrides))
    result = api.evaluate(run, progress=False)["metrics"]["nll_exact"]
    assert result["kind"] == "exact"
    # 5 steps from the start: about log 2 a pixel (seen: 43.6 to 45.0 nats for 64 pixels)
    assert 0.8 * 64 * math.log(2) < result["value"] < 1.2 * 64 * math.log(2)
    assert result["bits_per_dim"] == pytest.approx(result["value"] / (64 * math.log(2)))
