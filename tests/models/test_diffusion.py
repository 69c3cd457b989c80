"""The diffusion family: it builds for 28x28 grey and 32x32 RGB images, trains through the one
Trainer, samples the same images from the same seed with every sampler, refuses settings that
cannot work in one line, and its likelihoods are of the kind they say (a bound on the 8-bit
image for DDPM, an estimate of a dequantised density for flow matching) — checked against a
closed form where a fresh network makes one (a zero velocity field)."""

import dataclasses
import math

import pytest
import torch
from runkit import tiny_overrides_of
from scipy import stats
from sklearn.datasets import load_digits

from genlab import api
from genlab.errors import ConfigError
from genlab.models import MODELS, DataInfo, build_model, load_run_config, parse_model_config
from genlab.models.diffusion.diffusion import Diffusion

TINY = Diffusion.tiny_configs
SHAPES = [(1, 28, 28), (3, 32, 32)]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


CLASSES = ("a", "b", "c")  # read only by the conditional variants


def given(m: Diffusion, n: int) -> dict:
    return {"y": torch.arange(n) % m.num_classes} if m.conditional else {}


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def model(variant: str, shape=(1, 8, 8), **fields) -> Diffusion:
    torch.manual_seed(0)
    spec = {"name": "diffusion", **TINY[variant].model, **fields}
    built = build_model(spec, DataInfo(shape, 256, CLASSES, (1,) * len(CLASSES)))
    assert isinstance(built, Diffusion)
    return built


def randomise(net: torch.nn.Module, scale: float = 0.05) -> None:
    """Move every weight off its initialisation (the zero-initialised output layers too)."""
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g(1), dtype=p.dtype))


def images(n: int = 4, shape=(1, 8, 8), seed: int = 2) -> torch.Tensor:
    return torch.randint(0, 256, (n, *shape), generator=g(seed)).float() / 255


def test_the_family_is_registered_with_its_declarations():
    assert MODELS.get("diffusion") is Diffusion
    assert Diffusion.traits.sampling == "iterative" and Diffusion.traits.density == "estimate"
    assert set(TINY) == {"ddpm_eps", "ddpm_v", "flow_matching", "ddpm_cond", "flow_matching_cond"}
    assert Diffusion.default_ema_decay == 0.999 and model("ddpm_eps").ema is not None


@pytest.mark.parametrize("shape", SHAPES, ids=["28x28", "32x32x3"])
@pytest.mark.parametrize("variant", list(TINY))
def test_builds_trains_samples_and_scores_28x28_grey_and_32x32_rgb(variant, shape):
    m = model(variant, shape)
    x = images(3, shape)
    terms = m.loss(x, "main", generator=g(3), **given(m, len(x)))
    assert torch.isfinite(terms["loss"]) and terms["loss"].dim() == 0
    terms["loss"].backward()
    assert all(p.grad is not None for p in m.net.conv_out.parameters())
    m.eval()
    a = m.sample(2, generator=g(4))
    assert a.shape == (2, *shape) and torch.equal(a, m.sample(2, generator=g(4)))
    assert torch.equal(torch.round(a * 255) / 255, a) and 0 <= a.min() and a.max() <= 1
    ll = m.log_likelihood(x, k=2, generator=g(5))
    assert ll.values.shape == (3,) and torch.isfinite(ll.values).all()
    if m.config.objective == "ddpm":
        assert (ll.kind, ll.of, ll.samples) == ("elbo", "discrete", 2)
    else:
        assert (ll.kind, ll.of, ll.levels, ll.samples) == ("estimate", "dequantised", 256, 2)
    assert (ll.discrete(x[0].numel()).values <= 0).all()


@pytest.mark.parametrize(
    ("fields", "levels", "shape", "match"),
    [
        ({}, 2, (1, 8, 8), "data.binarize=none"),
        ({"channel_mults": [1, 2, 2, 2]}, 256, (1, 28, 28), "at most 3 levels"),
        ({"channel_mults": [1, 1, 1, 1, 1, 1, 1]}, 256, (3, 32, 32), "at most 6 levels"),
        ({"sampler": "euler"}, 256, (1, 8, 8), "valid samplers for ddpm: ddpm, ddim"),
        ({"objective": "flow_matching", "sampler": "ddim"}, 256, (1, 8, 8), "euler, heun"),
        ({"timesteps": 10, "sample_steps": 20}, 256, (1, 8, 8), "model.sample_steps=20"),
        ({"channel_mults": []}, 256, (1, 8, 8), "model.channel_mults"),
        ({"eta": 1.5}, 256, (1, 8, 8), "model.eta"),
        ({"timesteps": 1}, 256, (1, 8, 8), "model.timesteps"),
        ({"probe": "uniform"}, 256, (1, 8, 8), "model.probe"),
    ],
)
def test_bad_settings_are_one_line_errors(fields, levels, shape, match):
    with pytest.raises(ConfigError, match=match) as info:
        build_model({"name": "diffusion", **fields}, DataInfo(shape, levels))
    assert "\n" not in str(info.value)


def test_every_numeric_field_declares_its_range():
    config = parse_model_config({"name": "diffusion"})
    numeric = {
        f.name
        for f in dataclasses.fields(config)
        if isinstance(getattr(config, f.name), (int, float, tuple))
        and not isinstance(getattr(config, f.name), bool)
    }
    assert numeric <= set(type(config).RANGES)


def test_sample_with_takes_the_sampler_steps_and_eta_asked_for():
    m = model("ddpm_eps").eval()
    randomise(m)
    runs = {
        "ddpm": lambda s: m.sample_with(3, steps=7, sampler="ddpm", generator=g(s)),
        "ddim": lambda s: m.sample_with(3, steps=20, sampler="ddim", generator=g(s)),
        "ddim_eta": lambda s: m.sample_with(3, steps=2, sampler="ddim", eta=0.7, generator=g(s)),
    }
    for name, run in runs.items():
        a = run(6)
        assert a.shape == (3, 1, 8, 8) and torch.equal(a, run(6)), name
    with pytest.raises(ConfigError, match="valid samplers for ddpm"):
        m.sample_with(2, steps=3, sampler="heun")
    with pytest.raises(ConfigError, match=r"steps must be in \[1, 20\]"):
        m.sample_with(2, steps=21)
    fm = model("flow_matching").eval()
    randomise(fm)
    for sampler in ("euler", "heun"):
        a = fm.sample_with(2, steps=3, sampler=sampler, generator=g(7))
        assert torch.equal(a, fm.sample_with(2, steps=3, sampler=sampler, generator=g(7)))


def test_a_fresh_flow_matching_likelihood_is_the_prior_in_closed_form():
    """A fresh network outputs zero (zero-initialised last layer): the ODE leaves x where it
    is and the divergence is 0, so log p(y) = sum log N(2y - 1; 0, 1) + D log 2 on [0, 1]^D,
    y = (k + u) / 256 with the u the same generator draws first."""
    m = model("flow_matching").double().eval()
    x = images(5).double()
    ll = m.log_likelihood(x, k=1, generator=g(8))
    u = torch.rand(x.shape, generator=g(8), dtype=torch.float64)
    y = (torch.round(x * 255) + u) / 256
    closed = stats.norm.logpdf((2 * y - 1).numpy()).reshape(5, -1).sum(1) + 64 * math.log(2)
    torch.testing.assert_close(ll.values, torch.from_numpy(closed), rtol=0, atol=1e-9)


def test_hutchinson_probes_agree_with_the_exact_divergence_on_a_randomised_network():
    m = model("flow_matching", probes=16, ode_steps=4).double().eval()
    randomise(m, 0.1)
    x = images(6).double()
    est = m.ode_likelihood(x, generator=g(9))
    exact = model("flow_matching", probe="exact", ode_steps=4).double().eval()
    exact.load_state_dict(m.state_dict())
    ref = exact.ode_likelihood(x, generator=g(9))  # the same u: drawn first
    assert est.stderr is not None and ref.stderr is None
    assert ((est.values - ref.values).abs() < 4 * est.stderr + 1e-6).all()


def test_the_ddpm_bound_sampled_over_steps_agrees_with_all_its_terms():
    """k < T uniformly drawn steps estimate the sum of the T = 20 terms: the mean over 32
    images within 4 standard errors; k >= T evaluates all terms (no standard error)."""
    m = model("ddpm_eps").eval()
    randomise(m)
    x = images(32, seed=10)
    full = m.log_likelihood(x, k=20, generator=g(11))
    assert full.stderr is None and full.samples == 20 and full.kind == "elbo"
    mc = m.log_likelihood(x, k=8, generator=g(12))
    assert mc.stderr is not None and mc.samples == 8
    se = math.sqrt(mc.stderr.square().sum().item()) / 32
    assert abs(mc.values.mean().item() - full.values.mean().item()) < 4 * se
    assert (full.values < 0).all()  # -log P(x) >= the KL terms and decoder term >= 0
    fm = model("flow_matching")
    assert fm.bound_not_available() and m.bound_not_available() is None
    assert m.ode_not_available() and fm.ode_not_available() is None
    with pytest.raises(ConfigError, match="no variational bound"):
        fm.variational_bound(x, terms=None)
    with pytest.raises(ConfigError, match="objective=flow_matching"):
        m.ode_likelihood(x)


@pytest.mark.parametrize("variant", ["ddpm_eps", "flow_matching"])
def test_noise_codes_of_a_fresh_network_decode_back_exactly(variant):
    """A zero network makes deterministic DDIM (eps = 0) a pure rescaling and the ODE (v = 0)
    the identity: decode_noise(encode_noise(x)) is x, bit for bit on the 8-bit grid."""
    m = model(variant).eval()
    x = images(6)
    z = m.encode_noise(x, steps=5)
    assert z.shape == x.shape and torch.equal(m.decode_noise(z, steps=5), x)


def test_the_model_builds_on_the_meta_device_and_in_float64():
    with torch.device("meta"):
        built = build_model({"name": "diffusion"}, DataInfo((1, 28, 28), 256))
    assert all(p.is_meta for p in built.parameters())
    m = model("ddpm_v").double()
    assert m.loss(images().double(), "main", generator=g(13))["loss"].dtype == torch.float64


@pytest.mark.parametrize("variant", list(TINY))
def test_a_tiny_run_trains_through_the_trainer(tmp_path, variant):
    overrides = [
        "data.name=digits",
        *tiny_overrides_of("diffusion", TINY[variant]),
        "train.max_steps=3",
        "train.batch_size=32",
        "train.progress=false",
        f"runs_dir={tmp_path / 'runs'}",
    ]
    run = api.train(load_run_config(None, overrides))
    assert run.info()["status"] == "interrupted (max_steps)"
    assert run.model_path.exists()


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["ddpm", "flow_matching"])
def test_noise_codes_of_a_briefly_trained_model_decode_back_to_the_image(objective):
    """300 Adam steps on 8x8 digits (about 10 s), then decode_noise(encode_noise(x)) for 64
    training images. DDPM (T = 100), deterministic DDIM: error O(1/K) in the steps, mean
    |error| 9.6 levels of 255 at K = 20 and 4.1 at K = 50 (bounded by 6, and falling by half).
    Flow matching, Heun: 97.7 % of pixels exact at K = 20 (none off by more than 3 levels) and
    every pixel at K = 50 (bounded by 95 % and 99.5 %, at most one level off)."""
    digits = torch.from_numpy(load_digits().images).float()[:, None]  # (N, 1, 8, 8), 0..16
    x = torch.round(digits / 16 * 255) / 255
    extra = {"timesteps": 100} if objective == "ddpm" else {"objective": "flow_matching"}
    spec = {"channels": 16, "channel_mults": [1, 2], "blocks": 1, "attention": False}
    torch.manual_seed(0)
    built = build_model(
        {"name": "diffusion", **spec, **extra, "sample_steps": 20},
        DataInfo((1, 8, 8), 256),
        ema_decay=0.0,
    )
    assert isinstance(built, Diffusion)
    opt, gen = torch.optim.Adam(built.parameters(), 2e-3), g(0)
    for _ in range(300):
        batch = x[torch.randint(0, len(x), (64,), generator=gen)]
        loss = built.loss(batch, "main", generator=gen)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    built.eval()
    xs = x[:64]

    def error(steps: int) -> torch.Tensor:
        return (built.decode_noise(built.encode_noise(xs, steps=steps), steps=steps) - xs).abs()

    if objective == "ddpm":
        coarse, fine = error(20).mean() * 255, error(50).mean() * 255
        assert fine < 6 and fine < coarse / 2
    else:
        coarse, fine = error(20) * 255, error(50) * 255
        assert (coarse < 0.5).float().mean() > 0.95
        assert (fine < 0.5).float().mean() > 0.995 and fine.max() < 1.5
