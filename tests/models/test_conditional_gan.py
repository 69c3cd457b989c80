"""The class-conditional GAN: the projection discriminator's algebra (Miyato & Koyama 2018,
eq. 3), conditional batch norm against a hand computation, class agreement on a toy whose
classes have disjoint supports, reproducible sampling by class, and every loss conditioned."""

import copy

import pytest
import torch

from genlab import noise
from genlab.config import TrainConfig
from genlab.models import DataInfo, build_model
from genlab.models.adversarial.conditional_layers import ConditionalBatchNorm2d
from genlab.models.adversarial.gan import GAN
from genlab.training.trainer import Trainer

SHAPE = (1, 8, 8)
CLASSES = ("a", "b", "c")


def cgan(shape=SHAPE, classes=CLASSES, ema_decay=None, **fields) -> GAN:
    torch.manual_seed(0)
    spec = {
        "name": "gan",
        "channels": [8, 16],
        "hidden": [32],
        "latent_dim": 4,
        "conditional": True,
        **fields,
    }
    return build_model(
        spec, DataInfo(shape, 256, classes, (1,) * len(classes)), ema_decay=ema_decay
    )


def real(n: int = 12, shape=SHAPE) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand((n, *shape), generator=g), torch.arange(n) % len(CLASSES)


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


VARIANTS = [
    {"architecture": "dcgan"},
    {"architecture": "dcgan", "spectral_norm": True},
    {"architecture": "dcgan", "loss": "wgan_gp"},
    {"architecture": "mlp"},
    {"architecture": "mlp", "spectral_norm": True},
]
IDS = ["dcgan-bn", "dcgan-sn", "dcgan-wgan", "mlp", "mlp-sn"]


# -- the layers' algebra ------------------------------------------------------------------
@pytest.mark.parametrize("fields", VARIANTS, ids=IDS)
def test_projection_adds_the_class_embedding_dotted_with_the_features(fields):
    """D(x, y) = psi(phi(x)) + e_y^T phi(x): with phi(x) the same for every label,
    D(x, y) - D(x, y') = (e_y - e_y')^T phi(x) exactly (the embedding the spectral norm
    divides, where it does, read off the layer)."""
    model = cgan(**fields).double().eval()  # eval: batch norm and spectral norm fixed
    d = model.discriminator
    if not fields.get("spectral_norm"):  # away from the small initial scale
        with torch.no_grad():
            d.projection.embed.weight.normal_(generator=torch.Generator().manual_seed(2))
    x = real()[0].double()
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
    y_other = (y + 1) % 3
    with torch.no_grad():
        phi = d.features(x)  # (B, F)
        e = d.projection.embed.weight  # (num_classes, F), spectral-normalised where asked
        difference = d(x, y) - d(x, y_other)
        expected = ((e[y] - e[y_other]) * phi).sum(dim=1)
        torch.testing.assert_close(difference, expected, rtol=1e-12, atol=1e-12)
        head = d.head if fields["architecture"] == "dcgan" else d.body[-1]
        torch.testing.assert_close(d(x, y), head(phi).squeeze(1) + (e[y] * phi).sum(1))
    assert (difference.abs() > 1e-6).all()  # the classes are told apart
    if fields.get("spectral_norm"):  # the projection is normalised with the rest of D
        assert hasattr(d.projection.embed, "parametrizations")
        sigma = torch.linalg.matrix_norm(e, ord=2).item()
        assert sigma == pytest.approx(1.0, rel=0.05)


def test_conditional_batch_norm_equals_a_hand_computation():
    """Train mode: (h - mean_c) / sqrt(var_c + eps) with the batch's biased variance per
    channel c, times gamma[y, c], plus beta[y, c]; eval mode: the running statistics."""
    torch.manual_seed(0)
    layer = ConditionalBatchNorm2d(3, 4).double()
    assert torch.equal(layer.gain.weight, torch.ones(3, 4, dtype=torch.float64))  # init
    assert torch.equal(layer.bias.weight, torch.zeros(3, 4, dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        layer.gain.weight.copy_(torch.randn(3, 4, generator=g, dtype=torch.float64))
        layer.bias.weight.copy_(torch.randn(3, 4, generator=g, dtype=torch.float64))
    h = 3 + 2 * torch.randn(6, 4, 5, 5, generator=g, dtype=torch.float64)
    y = torch.tensor([2, 0, 1, 1, 0, 2])
    out = layer.train()(h, y)
    mean = h.mean(dim=(0, 2, 3), keepdim=True)
    var = h.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    gamma, beta = layer.gain.weight[y], layer.bias.weight[y]  # (B, C)
    normed = (h - mean) / torch.sqrt(var + 1e-5)
    torch.testing.assert_close(out, normed * gamma[:, :, None, None] + beta[:, :, None, None])
    for c in range(3):  # each image uses its own class's gain and bias, channel by channel
        rows = y == c
        hand = normed[rows] * layer.gain.weight[c].view(1, 4, 1, 1) + layer.bias.weight[c].view(
            1, 4, 1, 1
        )
        torch.testing.assert_close(out[rows], hand)
    layer.eval()
    norm = layer.norm
    running = (h - norm.running_mean.view(1, 4, 1, 1)) / torch.sqrt(
        norm.running_var.view(1, 4, 1, 1) + 1e-5
    )
    expected = running * gamma[:, :, None, None] + beta[:, :, None, None]
    torch.testing.assert_close(layer(h, y).detach(), expected)


def test_conditional_dcgan_generator_starts_as_the_plain_one():
    """Every batch norm of the conditional DCGAN generator is a conditional one with gain 1
    and bias 0 for every class, so at initialisation the labels change nothing."""
    model = cgan(architecture="dcgan")
    layers = list(model.generator.modules())
    cbn = [m for m in layers if isinstance(m, ConditionalBatchNorm2d)]
    assert len(cbn) == 2
    assert not [m for m in layers if isinstance(m, torch.nn.BatchNorm2d) and m.affine]
    for m in cbn:
        assert torch.equal(m.gain.weight, torch.ones_like(m.gain.weight))
        assert torch.equal(m.bias.weight, torch.zeros_like(m.bias.weight))
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    same = [model.generate(z, torch.full((3,), c)) for c in range(3)]
    assert torch.equal(same[0], same[1]) and torch.equal(same[0], same[2])


# -- learning the classes -------------------------------------------------------------------
CENTRES = torch.tensor([[-2.0, 0.0], [2.0, 0.0]])  # class 0 left, class 1 right


def toy(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Points of N(centre_y, 0.25^2 I) as (1, 1, 2) "images", mapped into [0, 1] by
    p -> 0.5 + p / 8: the classes' supports are disjoint (16 standard deviations apart)."""
    y = torch.randint(0, 2, (n,), generator=generator)
    p = CENTRES[y] + 0.25 * torch.randn(n, 2, generator=generator)
    return (0.5 + p / 8).view(n, 1, 1, 2), y


class ToyBatches:
    def __init__(self, batches: int, batch: int) -> None:
        self.batches, self.batch = batches, batch

    def __len__(self) -> int:
        return self.batches

    def epoch(self, epoch: int, start_batch: int = 0):
        for index in range(start_batch, self.batches):
            yield toy(self.batch, torch.Generator().manual_seed(epoch * 10_007 + index))


def test_conditional_mlp_gan_generates_the_class_asked_for():
    """Trained by genlab's Trainer (which passes the batch's labels), the averaged generator
    puts > 95 % of the samples of each class on that class's side, near its centre; an
    unconditional generator could not beat 50 % for both classes at once."""
    model = cgan(
        shape=(1, 1, 2),
        classes=("left", "right"),
        ema_decay=0.99,
        architecture="mlp",
        hidden=[32, 32],
        latent_dim=2,
        d_lr=1e-3,
        g_lr=1e-3,
    )
    result = Trainer(model, TrainConfig(epochs=1, seed=1, progress=False), ToyBatches(300, 64))
    assert result.fit().steps == 300
    model.use_average()
    model.eval()
    with torch.no_grad():
        for label, side in ((0, -1), (1, 1)):
            y = torch.full((1000,), label)
            points = model.sample(1000, generator=torch.Generator().manual_seed(7), y=y)
            p = (points.view(-1, 2) - 0.5) * 8
            agreement = (p[:, 0] * side > 0).float().mean().item()
            assert agreement > 0.95, (label, agreement)
            assert (p.mean(dim=0) - CENTRES[label]).norm() < 0.5, p.mean(dim=0)


# -- sampling ---------------------------------------------------------------------------------
def _one_generator_step(model: GAN) -> None:
    """One Adam step of the generator phase with labels, so the class tables part ways."""
    x, y = real()
    optimiser = torch.optim.Adam(model.generator.parameters(), lr=1e-2)
    model.loss(x, "generator", generator=torch.Generator().manual_seed(0), y=y)["loss"].backward()
    optimiser.step()


@pytest.mark.parametrize("architecture", ["dcgan", "mlp"])
def test_sampling_by_class_is_reproducible_and_the_class_matters(architecture):
    model = cgan(architecture=architecture)
    _one_generator_step(model)
    model.eval()
    y = torch.tensor([0, 1, 2, 1])

    def draw(labels: torch.Tensor | None, seed: int = 3) -> torch.Tensor:
        with torch.no_grad():
            return model.sample(4, generator=torch.Generator().manual_seed(seed), y=labels)

    assert torch.equal(draw(y), draw(y))
    other = draw(torch.tensor([1, 2, 0, 0]))
    assert all(not torch.equal(a, b) for a, b in zip(draw(y), other, strict=True))
    # y=None draws labels from p(y) after z: the same z as for given labels
    g = torch.Generator().manual_seed(3)
    z = noise.normal((4, model.latent_dim), g)
    drawn = model.draw_classes(4, g)
    with torch.no_grad():
        torch.testing.assert_close(draw(None), model.generate(z, drawn), rtol=0, atol=0)
    with pytest.raises(ValueError, match="pass labels y"):
        model.generate(z)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        model.sample(4, y=torch.tensor([0, 1, 2, 3]))


def test_the_generator_average_holds_the_class_tables():
    model = cgan(architecture="dcgan", ema_decay=0.5)
    assert model.ema is not None
    assert set(model.ema.tensors()) == set(model.generator.state_dict())
    assert any("gain" in k for k in model.ema.tensors())
    reference = copy.deepcopy(model.generator)
    _one_generator_step(model)
    model.update_average()  # the first update's decay is min(0.5, 1/10): mostly the live weights
    z, y = torch.randn(3, 4, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2])
    reference.load_state_dict(model.ema.tensors())
    with torch.no_grad(), model.averaged():
        torch.testing.assert_close(model.generate(z, y), torch.sigmoid(reference.eval()(z, y)))


# -- the losses, conditioned ------------------------------------------------------------------
@pytest.mark.parametrize("architecture", ["dcgan", "mlp"])
@pytest.mark.parametrize("loss", ["non_saturating", "hinge", "wgan_gp"])
def test_every_loss_runs_conditioned_and_matches_its_formula(architecture, loss):
    """The discriminator's loss from D(x, y) and D(G(z, y), y) with the batch's labels; the
    generator's from D(G(z, y), y); gradients reach both networks' class parameters."""
    model = cgan(architecture=architecture, loss=loss)
    x, y = real()
    terms = model.loss(x, "discriminator", generator=torch.Generator().manual_seed(0), y=y)
    terms["loss"].backward()
    projection = list(model.discriminator.projection.parameters())
    assert projection and all(p.grad is not None and p.grad.any() for p in projection)
    z = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))
    sp = torch.nn.functional.softplus
    with torch.no_grad():
        fake = torch.sigmoid(model.generator(z, y))
        d = model.discriminator
        if d.has_batch_norm:
            s_real, s_fake = d(x, y), d(fake, y)
        else:
            both = d(torch.cat([x, fake]), torch.cat([y, y]))
            s_real, s_fake = both[:12], both[12:]
    if loss == "non_saturating":
        d_loss = (sp(-s_real) + sp(s_fake)).mean()
    elif loss == "hinge":
        d_loss = (torch.relu(1 - s_real) + torch.relu(1 + s_fake)).mean()
    else:
        d_loss = s_fake.mean() - s_real.mean() + 10.0 * terms["gp"]
    torch.testing.assert_close(terms["loss"].detach(), d_loss)
    model.zero_grad()
    g_terms = model.loss(x, "generator", generator=torch.Generator().manual_seed(0), y=y)
    g_terms["loss"].backward()
    with torch.no_grad():
        s_fake = model.discriminator(torch.sigmoid(model.generator(z, y)), y)
    g_loss = sp(-s_fake).mean() if loss == "non_saturating" else -s_fake.mean()
    torch.testing.assert_close(g_terms["loss"].detach(), g_loss)
    class_grads = [
        p.grad for n, p in model.generator.named_parameters() if "embed" in n or "gain" in n
    ]
    assert class_grads and all(g is not None and g.any() for g in class_grads)


@pytest.mark.parametrize("architecture", ["dcgan", "mlp"])
def test_a_spectral_normalised_projection_learns_under_the_hinge_loss(architecture):
    """Spectral norm runs a power iteration at every training-mode call, so the formula test
    above leaves it out; here a hinge step on the normalised projection: finite, with
    gradients on its weight."""
    model = cgan(architecture=architecture, loss="hinge", spectral_norm=True)
    x, y = real()
    for phase in ("discriminator", "generator"):
        model.zero_grad()
        terms = model.loss(x, phase, generator=torch.Generator().manual_seed(0), y=y)
        assert torch.isfinite(terms["loss"])
        terms["loss"].backward()
    projection = dict(model.discriminator.projection.named_parameters())
    assert list(projection) == ["embed.parametrizations.weight.original"]
    model.zero_grad()
    model.loss(x, "discriminator", generator=torch.Generator().manual_seed(0), y=y)[
        "loss"
    ].backward()
    assert projection["embed.parametrizations.weight.original"].grad.any()


@pytest.mark.parametrize("architecture", ["dcgan", "mlp"])
def test_gradient_penalty_differentiates_the_critic_of_the_real_labels(architecture):
    """GP = mean_i (||grad_x D(x_hat_i, y_i)||_2 - 1)^2 with the real images' labels y_i,
    against a per-image loop of autograd.grad; other labels give another penalty."""
    model = cgan(architecture=architecture, loss="wgan_gp").double()
    x, y = real()
    x, fake = x.double(), torch.rand((12, *SHAPE), dtype=torch.float64)
    gp = model.gradient_penalty(x, fake, torch.Generator().manual_seed(3), y)
    e = torch.rand((12, 1, 1, 1), generator=torch.Generator().manual_seed(3)).double()
    norms = []
    for i in range(12):
        x_hat = (e[i] * x[i] + (1 - e[i]) * fake[i]).unsqueeze(0).requires_grad_(True)
        (grad,) = torch.autograd.grad(model.discriminator(x_hat, y[i : i + 1]).sum(), x_hat)
        norms.append(grad.flatten().norm())
    torch.testing.assert_close(gp, (torch.stack(norms) - 1).square().mean(), rtol=1e-10, atol=0)
    other = model.gradient_penalty(x, fake, torch.Generator().manual_seed(3), (y + 1) % 3)
    assert not torch.allclose(gp, other)


def test_labels_are_required_when_conditional_and_refused_otherwise():
    model = cgan(architecture="mlp")
    x, y = real()
    with pytest.raises(ValueError, match="needs the batch's labels"):
        model.loss(x, "generator")
    with pytest.raises(ValueError, match="needs the batch's labels"):
        model.loss(x, "generator", y=y.int())
    torch.manual_seed(0)
    plain = build_model(
        {"name": "gan", "architecture": "mlp", "hidden": [32]}, DataInfo(SHAPE, 256)
    )
    with pytest.raises(ValueError, match="takes no labels"):
        plain.loss(x, "generator", y=y)
    with pytest.raises(ValueError, match="takes no labels"):
        plain.generate(torch.randn(12, plain.latent_dim), y)


def test_the_unconditional_gan_gains_no_class_parameters():
    torch.manual_seed(0)
    for architecture in ("dcgan", "mlp"):
        spec = {"name": "gan", "architecture": architecture, "channels": [8, 16], "hidden": [32]}
        plain = build_model(spec, DataInfo(SHAPE, 256, CLASSES, (1, 1, 1)))
        names = list(plain.state_dict())
        assert not any(k in n for n in names for k in ("projection", "embed", "gain", "prior"))


def test_conditional_dcgan_runs_in_bf16_autocast_and_channels_last():
    """The class terms in the precision and memory layout options: bf16 autocast on the CPU
    and channels_last images give finite losses within 2 % of fp32's."""
    model = cgan(architecture="dcgan", loss="hinge")
    x, y = real()
    ref = model.loss(x, "discriminator", generator=torch.Generator().manual_seed(0), y=y)["loss"]
    model = model.to(memory_format=torch.channels_last)
    xl = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = model.loss(xl, "discriminator", generator=torch.Generator().manual_seed(0), y=y)
        gen = model.loss(xl, "generator", generator=torch.Generator().manual_seed(0), y=y)
    assert torch.isfinite(low["loss"]) and torch.isfinite(gen["loss"])
    assert low["loss"].item() == pytest.approx(ref.item(), rel=0.02)
