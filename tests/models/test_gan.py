"""The gan family: phase separation, gradient penalty, EMA, losses, sampling in [0, 1]."""

import copy

import pytest
import torch

from genlab.config import TrainConfig
from genlab.errors import ConfigError
from genlab.models import DataInfo, build_model
from genlab.models.adversarial.gan import GAN
from genlab.training.optim import build_optimizer

SHAPE = (1, 8, 8)


def gan(shape=SHAPE, ema_decay=None, **fields) -> GAN:
    torch.manual_seed(0)
    spec = {"name": "gan", "channels": [8, 16], "hidden": [32], "latent_dim": 4, **fields}
    return build_model(spec, DataInfo(shape, 256), ema_decay=ema_decay)


def real(n: int = 16, shape=SHAPE) -> torch.Tensor:
    return torch.rand((n, *shape), generator=torch.Generator().manual_seed(1))


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> list[str]:
    return [k for k, v in module.named_parameters() if not torch.equal(before[k], v)]


@pytest.mark.parametrize(
    "fields",
    [
        {"architecture": "dcgan", "loss": "non_saturating"},
        {"architecture": "dcgan", "loss": "hinge", "spectral_norm": True},
        {"architecture": "dcgan", "loss": "wgan_gp"},
        {"architecture": "mlp", "loss": "wgan_gp", "spectral_norm": True, "n_critic": 2},
    ],
    ids=["dcgan-ns", "dcgan-hinge-sn", "dcgan-wgan", "mlp-wgan-sn"],
)
def test_each_phase_step_changes_only_its_own_parameters(fields):
    """One optimiser per phase built as the Trainer builds them (phase lr/betas), then one
    step of each phase: the discriminator step moves every discriminator parameter (that has a
    non-zero gradient) and no
    generator parameter, and the generator step the reverse. The other network gets no
    gradient at all (the generator runs without a graph in the discriminator phase; the
    discriminator is frozen in the generator phase)."""
    model = gan(**fields)
    model.train()
    phases = {p.name: p for p in model.phases()}
    assert list(phases) == ["discriminator", "generator"]
    assert phases["discriminator"].repeats == fields.get("n_critic", 1)
    cfg = TrainConfig()
    optims = {
        name: build_optimizer(p.parameters(), cfg, lr=p.lr, betas=p.betas)
        for name, p in phases.items()
    }
    assert optims["generator"].param_groups[0]["betas"] == (0.5, 0.999)
    g = torch.Generator().manual_seed(0)
    x = real()
    for name, own, other in (
        ("discriminator", model.discriminator, model.generator),
        ("generator", model.generator, model.discriminator),
    ):
        before_own, before_other = snapshot(own), snapshot(other)
        optims[name].zero_grad(set_to_none=True)
        model.zero_grad(set_to_none=True)
        model.loss(x, name, generator=g)["loss"].backward()
        assert all(p.grad is None for p in other.parameters()), name
        moved = [k for k, p in own.named_parameters() if p.grad is not None and p.grad.any()]
        assert len(moved) >= len(before_own) - 1, name  # hinge: a bias may get exactly 0
        optims[name].step()
        model.after_step(name)
        assert changed(before_own, own) == moved, name
        assert changed(before_other, other) == [], name


def test_discriminator_params_keep_requires_grad_after_generator_loss():
    model = gan()
    model.loss(real(), "generator", generator=torch.Generator().manual_seed(0))
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("architecture", ["dcgan", "mlp"])
def test_gradient_penalty_matches_a_direct_autograd_computation(architecture):
    """The batched penalty against a per-image loop of autograd.grad on the same interpolates;
    its gradient in one discriminator weight against a central finite difference."""
    model = gan(architecture=architecture, loss="wgan_gp").double()
    x, fake = real().double(), torch.rand((16, *SHAPE), dtype=torch.float64)
    gp = model.gradient_penalty(x, fake, generator=torch.Generator().manual_seed(3))

    e = torch.rand((16, 1, 1, 1), generator=torch.Generator().manual_seed(3)).double()
    norms = []
    for i in range(16):
        x_hat = (e[i] * x[i] + (1 - e[i]) * fake[i]).unsqueeze(0).requires_grad_(True)
        (grad,) = torch.autograd.grad(model.discriminator(x_hat).sum(), x_hat)
        norms.append(grad.flatten().norm())
    direct = (torch.stack(norms) - 1).square().mean()
    torch.testing.assert_close(gp, direct, rtol=1e-10, atol=0)

    weight = next(model.discriminator.parameters())  # the first layer's weight
    (analytic,) = torch.autograd.grad(gp, weight)
    index, h = (0,) * weight.dim(), 1e-6

    def penalty_at(delta: float) -> float:
        with torch.no_grad():
            weight[index] += delta
        value = model.gradient_penalty(x, fake, generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            weight[index] -= delta
        return value.item()

    numeric = (penalty_at(h) - penalty_at(-h)) / (2 * h)
    assert analytic[index].item() == pytest.approx(numeric, rel=1e-5, abs=1e-9)
    assert analytic.abs().sum() > 0


def test_wgan_loss_adds_the_penalty_and_validation_leaves_it_out():
    model = gan(loss="wgan_gp", gp_weight=7.0)
    x = real()
    terms = model.loss(x, "discriminator", generator=torch.Generator().manual_seed(0))
    expected = -terms["wasserstein"] + 7.0 * terms["gp"]
    torch.testing.assert_close(terms["loss"].detach(), expected)
    assert terms["wasserstein"] == pytest.approx((terms["d_real"] - terms["d_fake"]).item())
    with torch.no_grad():
        val = model.loss(x, "discriminator", generator=torch.Generator().manual_seed(0))
    assert "gp" not in val
    torch.testing.assert_close(val["loss"], -val["wasserstein"])


@pytest.mark.parametrize("loss", ["non_saturating", "hinge"])
def test_losses_match_their_formulas(loss):
    model = gan(architecture="mlp", loss=loss)
    x = real()
    terms = model.loss(x, "discriminator", generator=torch.Generator().manual_seed(0))
    z = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fake = torch.sigmoid(model.generator(z))
        s_real, s_fake = model.discriminator(x), model.discriminator(fake)
        sp = torch.nn.functional.softplus
        if loss == "non_saturating":
            d_loss = (sp(-s_real) + sp(s_fake)).mean()
        else:
            d_loss = (torch.relu(1 - s_real) + torch.relu(1 + s_fake)).mean()
    torch.testing.assert_close(terms["loss"].detach(), d_loss)
    g_terms = model.loss(x, "generator", generator=torch.Generator().manual_seed(0))
    g_loss = sp(-s_fake).mean() if loss == "non_saturating" else -s_fake.mean()
    torch.testing.assert_close(g_terms["loss"].detach(), g_loss)


def test_ema_update_is_exact():
    """a <- d a + (1 - d) w with d = min(decay, (1 + n) / (10 + n)) after each iteration; it
    follows the generator only; integer buffers are copied; within averaged() generate() runs
    the averaged weights, and the live ones come back after."""
    model = gan(architecture="dcgan", ema_decay=0.5)
    ema = model.ema
    assert ema is not None
    averages = [copy.deepcopy(ema.tensors())]
    g = torch.Generator().manual_seed(0)
    for n in range(12):
        with torch.no_grad():  # move the weights and the batch-norm statistics
            model.generator(torch.randn(8, 4, generator=g))  # train mode: running stats move
            for p in model.generator.parameters():
                p.add_(torch.randn(p.shape, generator=g))
        model.after_step("discriminator")  # no effect
        model.after_step("generator")  # no effect: the Trainer updates after the iteration
        assert int(ema.updates) == n
        model.update_average()
        d = min(0.5, (1 + n) / (10 + n))
        live = dict(model.generator.state_dict())
        expected = {}
        for name, old in averages[-1].items():
            if old.is_floating_point():
                expected[name] = d * old + (1 - d) * live[name]
            else:
                expected[name] = live[name]
        for name, value in ema.tensors().items():
            torch.testing.assert_close(value, expected[name], rtol=1e-6, atol=1e-7)
        averages.append(copy.deepcopy(ema.tensors()))
    assert any(not torch.equal(averages[-1][k], live[k]) for k in live)
    assert ema.current_decay() == 0.5

    reference = copy.deepcopy(model.generator)
    reference.load_state_dict(ema.tensors())
    z = torch.randn(5, 4, generator=g)
    model.train()
    before = copy.deepcopy(model.generator.state_dict())
    with model.averaged():
        torch.testing.assert_close(model.generate(z), torch.sigmoid(reference.eval()(z)))
    assert model.generator.training  # generate() restores the mode
    after = model.generator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the live weights are back
    assert set(ema.tensors()) == set(model.generator.state_dict())  # the generator only
    model.use_average()  # as a model loaded from a run
    torch.testing.assert_close(model.generate(z), torch.sigmoid(reference.eval()(z)))


def test_without_ema_sample_uses_the_live_generator():
    model = gan(architecture="mlp", ema_decay=0.0)
    assert model.ema is None
    model.update_average()
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(2))
    s = model.sample(3, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(s, torch.sigmoid(model.generator(z)))


@pytest.mark.parametrize("architecture", ["dcgan", "mlp"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_shapes_and_range(architecture, shape):
    model = gan(shape, architecture=architecture).eval()
    with torch.no_grad():
        s = model.sample(3, generator=torch.Generator().manual_seed(0))
        scores = model.discriminator(s)
    assert s.shape == (3, *shape) and 0 <= s.min() and s.max() <= 1
    assert scores.shape == (3,)
    assert model.generate(torch.zeros(2, model.latent_dim)).shape == (2, *shape)


def test_state_dict_holds_the_ema_as_buffers_not_parameters():
    model = gan()
    names = set(model.state_dict())
    assert any(k.startswith("ema.avg_") for k in names) and "ema.updates" in names
    params = {id(p) for p in model.parameters()}
    phase_params = {id(p) for phase in model.phases() for p in phase.parameters()}
    assert params == phase_params


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"loss": "l2"}, "model.loss"),
        ({"n_critic": 0}, "n_critic"),
        ({"betas": [0.5]}, "betas"),
        ({"d_lr": 0}, "d_lr"),
        ({"channels": [8, 16, 32, 64]}, "divisible by 16"),
    ],
)
def test_bad_config_is_a_one_line_error(fields, match):
    with pytest.raises(ConfigError, match=match) as info:
        gan(**fields)
    assert "\n" not in str(info.value)
