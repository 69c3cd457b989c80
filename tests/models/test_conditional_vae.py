"""The conditional VAE (Sohn, Lee & Yan 2015): q(z|x,y), p(x|z,y), p(z) = N(0, I).

Oracles: on two classes with disjoint supports a trained model samples the class it is asked
for and its Bayes classifier p(y|x) names the class of an image; the IWAE bound on log p(x|y)
is the importance-weighted sum written out by hand; log p(x) = log sum_y p(x|y) p(y) with
the same noise; an unconditional VAE has exactly the parameters it always had."""

import math
from pathlib import Path

import pytest
import torch
from torch import distributions as D
from torch.nn import functional as F

from genlab.errors import ConfigError
from genlab.models import DataInfo, build_model, load_run_config
from genlab.models.common.conditioning import class_log_likelihoods, class_posterior

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
HALVES = ("left", "right")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def full(n: int, label: int) -> torch.Tensor:
    return torch.full((n,), label, dtype=torch.int64)


def halves(n_per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """8x8 binary images: class 0 lights the left half, class 1 the right half (each pixel of
    the lit half on with probability 0.9, of the other half 0.05)."""
    y = torch.arange(2).repeat_interleave(n_per_class)
    p = torch.full((2 * n_per_class, 1, 8, 8), 0.05)
    p[y == 0, :, :, :4] = 0.9
    p[y == 1, :, :, 4:] = 0.9
    return torch.bernoulli(p, generator=gen(seed)), y


def build(classes=HALVES, counts=(), **model) -> torch.nn.Module:
    section = {"name": "vae", "hidden": [32], "latent_dim": 2, "conditional": True, **model}
    return build_model(section, DataInfo((1, 8, 8), 2, tuple(classes), tuple(counts)))


def mass_on_halves(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return images[..., :4].sum((1, 2, 3)), images[..., 4:].sum((1, 2, 3))


@pytest.fixture(scope="module")
def trained():
    """A conditional VAE trained 300 steps on the two halves."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build(counts=(128, 128))
    x, y = halves(128)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = gen(1)
    for _ in range(300):
        batch = torch.randint(0, len(x), (64,), generator=g)
        loss = model.loss(x[batch], "main", generator=g, y=y[batch])["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


@pytest.mark.parametrize("draw", ["sample", "sample_means"])
def test_samples_are_of_the_class_asked_for(trained, draw):
    """z ~ N(0, I) says nothing of the class: only y can put the mass on one half."""
    with torch.no_grad():
        for label in (0, 1):
            images = getattr(trained, draw)(200, generator=gen(2), y=full(200, label))
            left, right = mass_on_halves(images)
            agree = (left > right) if label == 0 else (right > left)
            assert agree.float().mean() > 0.95, (draw, label, agree.float().mean())


def test_without_labels_it_samples_both_classes_by_their_prior(trained):
    with torch.no_grad():
        left, right = mass_on_halves(trained.sample(400, generator=gen(3)))
    assert 0.35 < (left > right).float().mean() < 0.65  # p(y) = (1/2, 1/2)


def test_bayes_rule_on_its_likelihoods_names_the_class(trained):
    """log p(y|x) = log p(x|y) + log p(y) - log p(x): a generative classifier."""
    x, y = halves(50, seed=9)
    values, _ = class_log_likelihoods(trained, x, k=20, generator=gen(4))
    posterior = class_posterior(values, trained.class_log_prior)
    assert (posterior.argmax(1) == y).float().mean() > 0.95


def test_iwae_bound_is_the_weighted_sum_written_out():
    """log (1/k) sum_j p(x|z_j,y) p(z_j) / q(z_j|x,y), z_j = mean + std eps_j, from the same
    eps: with the MLP decoder's fast Bernoulli path (mlp) and the generic one (conv)."""
    for section in ({}, {"encoder": "conv", "channels": [4, 8]}):
        torch.manual_seed(0)
        model = build(classes="abc", **section).eval()
        torch.nn.init.normal_(model.encoder_label.columns.weight)
        x, k, latent = halves(2)[0][:3], 6, 2
        y = torch.tensor([0, 2, 1])
        with torch.no_grad():
            got = model.log_likelihood(x, k=k, generator=gen(5), y=y)
            q = model.encode(x, y)
            z = q.mean[:, None] + q.std[:, None] * torch.randn((3, k, latent), generator=gen(5))
            one_hot = F.one_hot(y, 3).float()[:, None].expand(3, k, 3)
            logits = model.decoder(torch.cat([z, one_hot], -1).flatten(0, 1))[:, 0]
            x_rep = x.repeat_interleave(k, 0)
            log_px = D.Bernoulli(logits=logits).log_prob(x_rep).sum((1, 2, 3)).view(3, k)
            log_pz = D.Normal(0.0, 1.0).log_prob(z).sum(-1)
            log_q = D.Normal(q.mean[:, None], q.std[:, None]).log_prob(z).sum(-1)
            want = torch.logsumexp(log_px + log_pz - log_q, 1) - math.log(k)
        assert got.kind == "iwae_bound"
        torch.testing.assert_close(got.values, want, atol=1e-4, rtol=1e-5)


def test_marginal_likelihood_sums_the_classes_with_the_same_noise():
    """log p(x) = logsumexp_y(log p(x|y) + log p(y)), every class's bound drawn with the same
    noise (common random numbers); log p(y|x) sums to one and is Bayes' rule on the same
    numbers."""
    torch.manual_seed(0)
    model = build(classes="abc", counts=(1, 2, 5)).eval()
    torch.nn.init.normal_(model.encoder_label.columns.weight)
    torch.testing.assert_close(model.class_log_prior, torch.tensor([1.0, 2.0, 5.0]).div(8).log())
    x = halves(2)[0]
    marginal = model.log_likelihood(x, k=4, generator=gen(6))
    per_class = torch.stack(
        [model.log_likelihood(x, k=4, generator=gen(6), y=full(4, c)).values for c in range(3)],
        1,
    )
    assert (per_class.std(1) > 1e-3).all()  # the label matters: a real sum over classes
    want = torch.logsumexp(per_class + model.class_log_prior, 1)
    torch.testing.assert_close(marginal.values, want)
    assert marginal.kind == "iwae_bound" and marginal.stderr is not None

    values, _ = class_log_likelihoods(model, x, k=4, generator=gen(6))
    torch.testing.assert_close(values, per_class)
    posterior = class_posterior(values, model.class_log_prior)
    torch.testing.assert_close(posterior.exp().sum(1), torch.ones(4))
    torch.testing.assert_close(posterior, values + model.class_log_prior - want[:, None])


@pytest.mark.parametrize("objective", [{}, {"train_k": 3}, {"objective": "iwae", "train_k": 3}])
def test_every_objective_trains_the_label_columns(objective):
    model = build(**objective)
    x, y = halves(4)
    terms = model.loss(x, "main", generator=gen(7), y=y)
    terms["loss"].backward()
    assert torch.isfinite(terms["loss"])
    assert model.encoder_label.columns.weight.grad.abs().sum() > 0
    first = model.decoder.body[0].weight  # reads [z, one-hot y]: 2 + 2 inputs
    assert first.shape[1] == 4 and first.grad[:, 2:].abs().sum() > 0


def test_the_iwae_objective_has_gradients_without_labels_too():
    """Its bound's log p(z) - log q(z|x) once squared the drawn eps in place, which z's
    gradient with respect to std needs: backward failed."""
    section = {"name": "vae", "hidden": [8], "latent_dim": 2, "objective": "iwae", "train_k": 3}
    model = build_model(section, DataInfo((1, 8, 8), 2))
    model.loss(halves(4)[0], "main", generator=gen(7))["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_elbo_terms_bound_the_conditional_likelihood():
    """-recon - KL <= log p(x|y); the single-sample IWAE bound is the ELBO's expectation, so
    averaged over many draws the two agree."""
    torch.manual_seed(0)
    model = build().eval()
    x, y = halves(1)
    with torch.no_grad():
        terms = model.elbo_terms(x.repeat(2000, 1, 1, 1), generator=gen(8), y=y.repeat(2000))
        iwae1 = model.log_likelihood(
            x.repeat(2000, 1, 1, 1), k=1, generator=gen(9), y=y.repeat(2000)
        )
    elbo = terms["elbo"].view(2000, 2).mean(0)
    torch.testing.assert_close(elbo, iwae1.values.view(2000, 2).mean(0), atol=0.5, rtol=0)
    torch.testing.assert_close(terms["elbo"], -(terms["recon"] + terms["kl"]))


def test_methods_that_cannot_draw_labels_refuse_without_them():
    model = build().eval()
    x, z = halves(1)[0], torch.zeros(2, 2)
    calls = {
        "encode": lambda: model.encode(x),
        "decode": lambda: model.decode(z),
        "reconstruct": lambda: model.reconstruct(x),
        "reconstruction_log_prob": lambda: model.reconstruction_log_prob(x),
        "elbo_terms": lambda: model.elbo_terms(x),
        "loss": lambda: model.loss(x, "main"),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=f"{name}: this VAE is conditional.*labels"):
            call()
    y = torch.tensor([0, 1])
    assert model.reconstruct(x, y).shape == x.shape
    assert model.decode(z, y).shape == (2, 1, 8, 8)
    assert model.reconstruction_log_prob(x, y).shape == (2,)
    with pytest.raises(ValueError, match=r"lie in \[0, 2\)"):
        model.encode(x, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="int64 of shape"):
        model.sample(2, y=torch.tensor([0.0, 1.0]))


def test_an_unconditional_vae_refuses_labels():
    model = build_model({"name": "vae", "hidden": [8], "latent_dim": 2}, DataInfo((1, 8, 8), 2))
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(2, y=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="unconditional"):
        model.log_likelihood(halves(1)[0], k=2, y=torch.tensor([0, 1]))


MLP_KEYS = [
    "encoder.net.0.weight",
    "encoder.net.0.bias",
    "encoder.net.2.weight",
    "encoder.net.2.bias",
    "decoder.body.0.weight",
    "decoder.body.0.bias",
    "decoder.head.weight",
    "decoder.head.bias",
]
CONV_KEYS = [
    "encoder.features.0.weight",
    "encoder.features.0.bias",
    "encoder.features.2.weight",
    "encoder.features.2.bias",
    "encoder.out.weight",
    "encoder.out.bias",
    "decoder.project.0.weight",
    "decoder.project.0.bias",
    "decoder.up.0.weight",
    "decoder.up.0.bias",
    "decoder.up.2.weight",
    "decoder.up.2.bias",
]


@pytest.mark.parametrize(
    ("section", "keys", "count"),
    [
        # 64*32+32 + 32*8+8 (encoder) + 4*32+32 + 32*64+64 (decoder)
        ({"hidden": [32], "latent_dim": 4}, MLP_KEYS, 4616),
        # 1*8*16+8 + 8*16*16+16 + 64*8+8 (encoder) + 4*64+64 + 16*8*16+8 + 8*16+1 (decoder)
        ({"encoder": "conv", "channels": [8, 16], "latent_dim": 4}, CONV_KEYS, 5225),
    ],
)
def test_an_unconditional_vae_keeps_its_parameters(section, keys, count):
    """Old checkpoints load: the same state-dict keys and sizes, no label layers, no p(y)."""
    model = build_model({"name": "vae", **section}, DataInfo((1, 8, 8), 2, HALVES, (5, 5)))
    assert list(model.state_dict()) == keys
    assert sum(p.numel() for p in model.parameters()) == count
    conditional = build_model(
        {"name": "vae", **section, "conditional": True}, DataInfo((1, 8, 8), 2, HALVES, (5, 5))
    )
    assert set(conditional.state_dict()) == {
        *keys,
        "encoder_label.columns.weight",
        "class_log_prior",
    }
    # the label's columns in q(z|x,y)'s heads (2 x 8) and in the decoder's first layer
    first = 32 if "hidden" in section else 64
    extra = 2 * 8 + 2 * first
    assert sum(p.numel() for p in conditional.parameters()) == count + extra


def test_labels_are_needed_in_the_data():
    with pytest.raises(ConfigError, match="no class labels.*model.conditional=false"):
        build_model({"name": "vae", "conditional": True}, DataInfo((1, 8, 8), 2))
    with pytest.raises(ConfigError, match="one class only"):
        build(classes=("only",))


def test_the_fashion_config_is_conditional():
    cfg = load_run_config(CONFIGS / "cvae_fashion.yaml", [])
    assert cfg.model.family == "vae" and cfg.model.conditional
    assert cfg.data.name == "fashion-mnist"
