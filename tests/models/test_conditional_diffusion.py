"""Class-conditional diffusion and flow matching with classifier-free guidance (Ho & Salimans
2022): label dropout in training, the guided prediction u + w (c - u) in every sampler.

- guidance 0 and 1 are the unconditional and the conditional samplers bit for bit (the
  guided prediction is then one branch's network output, untouched);
- with the exact denoisers and velocity fields of 1-D Gaussian class-conditional data (two
  classes, N(-1, 0.3^2) and N(1.5, 0.5^2) with p(y) = (0.4, 0.6)) plugged in as the network,
  the guided samplers draw the class's Gaussian at w = 1 and the mixture at w = 0. Stated
  tolerances, 20000 draws (float64), with what was measured: each class's mean within 0.02
  (s.e. 0.003 and 0.005; seen at most 0.008) and sd within 0.015 (seen at most 0.006); the
  mixture's mean within 0.03 (s.e. 0.009; seen 0.007), variance within 0.06 (s.e. about 0.02;
  seen 0.008) and mass above 0.1 within 0.015 (s.e. 0.0035; seen 0.004). DDIM samples on 500
  steps (on 100 the class sds come out 0.01 to 0.02 low: DDIM's discretisation), ancestral
  DDPM on all 1000, Heun on 50;
- the fraction of labels dropped in training is ``label_dropout``, within 4 binomial s.e.;
- a tiny conditional model trains on labelled 8x8 digits and samples the classes asked for.
"""

import math

import pytest
import torch
from scipy import stats

from genlab.config import DataConfig
from genlab.data import load_data
from genlab.errors import ConfigError
from genlab.models import DataInfo, build_model
from genlab.models.base import SupportsGuidance
from genlab.models.diffusion import samplers
from genlab.models.diffusion.config import DiffusionConfig
from genlab.models.diffusion.diffusion import Diffusion
from genlab.models.diffusion.guidance import drop_labels, guided
from genlab.models.diffusion.schedules import Denoiser, NoiseSchedule

TINY = Diffusion.tiny_configs
INFO = DataInfo((1, 8, 8), 256, tuple("0123456789"), tuple(range(10, 20)))
F64 = torch.empty(0, dtype=torch.float64)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def model(variant: str, info: DataInfo = INFO, **fields) -> Diffusion:
    torch.manual_seed(0)
    built = build_model({"name": "diffusion", **TINY[variant].model, **fields}, info)
    assert isinstance(built, Diffusion)
    return built


def randomise(net: torch.nn.Module, scale: float = 0.05) -> None:
    """Move every weight off its initialisation (the zero-initialised output layers too)."""
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g(1), dtype=p.dtype))


def images(n: int = 4, seed: int = 2) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 8, 8), generator=g(seed)).float() / 255


# -- the family's declarations and what it refuses -------------------------------------------
def test_the_family_is_conditional_and_guidable_with_label_dropout():
    assert Diffusion.traits.conditional and not Diffusion.unconditional_because
    m = model("ddpm_cond")
    assert isinstance(m, SupportsGuidance) and m.guidance_not_available() is None
    assert m.config.label_dropout == 0.1 and m.config.guidance == 1.0
    assert m.null_label == 10 and m.net.class_embedding is not None
    assert m.net.class_embedding.weight.shape == (11, 4 * m.config.channels)
    assert "dropout" in (model("ddpm_cond", label_dropout=0.0).guidance_not_available() or "")
    plain = model("ddpm_eps")
    assert "unconditional" in (plain.guidance_not_available() or "")
    with pytest.raises(ConfigError, match="cannot be guided: it is unconditional"):
        plain.sample_guided(2, guidance=2.0)


@pytest.mark.parametrize("variant", ["ddpm_eps", "flow_matching"])
def test_an_unconditional_model_keeps_its_parameters_and_refuses_labels(variant):
    """Same state-dict keys as before conditioning existed, and the same initial weights as
    the conditional model's U-Net from the same seed (the class table is built last)."""
    plain, cond = model(variant), model(f"{variant.split('_eps')[0]}_cond")
    assert plain.net.class_embedding is None
    assert not any("class" in key for key in plain.state_dict())
    extra = set(cond.state_dict()) - set(plain.state_dict())
    assert extra == {
        "class_log_prior",
        "net.class_embedding.weight",
        "ema.avg_class_log_prior",
        "ema.avg_net_class_embedding_weight",
    }
    for key, value in plain.state_dict().items():
        assert torch.equal(value, cond.state_dict()[key]), key
    with pytest.raises(ValueError, match="takes no labels"):
        plain.sample(2, y=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="takes no labels"):
        plain.log_likelihood(images(2), k=2, y=torch.tensor([0, 1]))


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"label_dropout": 1.0}, r"model.label_dropout must be in \[0, 1\)"),
        ({"label_dropout": -0.1}, r"model.label_dropout: -0.1 is outside the valid range"),
        ({"guidance": -1.0}, r"model.guidance: -1.0 is outside the valid range \[0, 20\]"),
        ({"guidance": 25.0}, r"model.guidance: 25.0 is outside the valid range \[0, 20\]"),
        ({"guidance": math.nan}, "model.guidance: expected a finite number"),
        ({"guidance": 2.0, "label_dropout": 0.0}, "needs the unconditional model"),
    ],
)
def test_bad_guidance_settings_are_one_line_errors(fields, match):
    with pytest.raises(ConfigError, match=match) as info:
        model("ddpm_cond", **fields)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"label_dropout": 1.5}, r"model.label_dropout must be in \[0, 1\)"),
        ({"guidance": 25.0}, r"model.guidance must be in \[0, 20\]"),
        ({"guidance": math.inf}, "model.guidance must be a finite number"),
    ],
)
def test_the_config_itself_checks_guidance_settings(fields, match):
    with pytest.raises(ConfigError, match=match) as info:
        DiffusionConfig(**fields)
    assert "\n" not in str(info.value)
    DiffusionConfig(label_dropout=0.0, guidance=3.0)  # unconditional: set, and unused


@pytest.mark.parametrize("weight", [-0.5, 20.5, math.inf, math.nan])
def test_a_bad_guidance_weight_at_sampling_is_a_one_line_error(weight):
    m = model("ddpm_cond").eval()
    with pytest.raises(ConfigError, match=r"guidance must be") as info:
        m.sample_guided(2, guidance=weight, generator=g(0))
    assert "\n" not in str(info.value)


def test_labels_are_checked_and_a_conditional_loss_needs_them():
    m = model("ddpm_cond")
    x = images(2)
    with pytest.raises(ValueError, match="needs the batch's labels"):
        m.loss(x, "main", generator=g(0))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        m.loss(x, "main", generator=g(0), y=torch.tensor([0, 10]))  # the null label: no class
    with pytest.raises(ValueError, match="labels must be int64"):
        m.sample(2, y=torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="needs the labels y"):
        m.encode_noise(x)
    with pytest.raises(ValueError, match=r"of shape \(2,\)"):
        m.log_likelihood(x, k=2, y=torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"of shape \(2,\)"):
        m.decode_noise(x, y=torch.tensor([0]))


# -- guidance 0 and 1 are the unconditional and conditional samplers, bit for bit -------------
SAMPLERS = [
    ("ddpm_cond", "ddim"),
    ("ddpm_cond", "ddpm"),
    ("flow_matching_cond", "euler"),
    ("flow_matching_cond", "heun"),
]


@pytest.mark.parametrize(("variant", "sampler"), SAMPLERS)
def test_guidance_one_is_conditional_sampling_bit_for_bit(variant, sampler):
    m = model(variant).eval()
    randomise(m)
    kw = {"steps": 3, "sampler": sampler, **({"eta": 0.5} if sampler == "ddim" else {})}
    y = torch.tensor([0, 3, 7, 9, 2])
    conditional = m.sample_with(5, y=y, generator=g(1), **kw)
    assert torch.equal(m.sample_guided(5, guidance=1.0, y=y, generator=g(1), **kw), conditional)
    # no labels: both draw the same labels from p(y), then the same noise
    drawn = m.sample_with(5, generator=g(2), **kw)
    assert torch.equal(m.sample_guided(5, guidance=1.0, generator=g(2), **kw), drawn)
    assert not torch.equal(m.sample_with(5, y=y.flip(0), generator=g(1), **kw), conditional)


@pytest.mark.parametrize(("variant", "sampler"), SAMPLERS)
def test_guidance_zero_is_sampling_with_the_null_label_bit_for_bit(variant, sampler):
    """Class 4's embedding is made the null label's, so conditional sampling of class 4 is
    sampling the unconditional model through the public API: guidance 0 must give the same
    images, whatever labels it is given (it reads none) or none (it draws none)."""
    m = model(variant).eval()
    randomise(m)
    table = m.net.class_embedding
    assert table is not None
    with torch.no_grad():
        table.weight[4] = table.weight[m.null_label]
    kw = {"steps": 3, "sampler": sampler, **({"eta": 0.5} if sampler == "ddim" else {})}
    unconditional = m.sample_with(5, y=torch.full((5,), 4), generator=g(1), **kw)
    for y in (torch.tensor([0, 3, 7, 9, 2]), torch.tensor([1, 1, 1, 1, 1]), None):
        zero = m.sample_guided(5, guidance=0.0, y=y, generator=g(1), **kw)
        assert torch.equal(zero, unconditional)
    y = torch.tensor([0, 3, 7, 9, 2])
    conditional = m.sample_guided(5, guidance=1.0, y=y, generator=g(1), **kw)
    strong = m.sample_guided(5, guidance=3.0, y=y, generator=g(1), **kw)
    assert not torch.equal(conditional, unconditional) and not torch.equal(strong, conditional)


@pytest.mark.parametrize("variant", ["ddpm_cond", "flow_matching_cond"])
def test_the_configured_guidance_is_what_sample_draws_with(variant):
    m = model(variant, guidance=2.5).eval()
    randomise(m)
    y = torch.tensor([5, 6, 7])
    a = m.sample(3, y=y, generator=g(3))
    assert torch.equal(a, m.sample_guided(3, guidance=2.5, y=y, steps=4, generator=g(3)))
    assert torch.equal(a, m.sample_with(3, y=y, generator=g(3), steps=4))


def test_the_guided_prediction_is_u_plus_w_times_c_minus_u_in_one_batched_call():
    """One network call of 2B images for w outside {0, 1}, one of B images (one branch) at 0
    and 1; the batched combination agrees with separate calls to float32 rounding."""
    m = model("ddpm_cond").eval()
    randomise(m)
    calls: list[int] = []

    def network(x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        calls.append(x.shape[0])
        return m.predict(x, t, labels)

    x = torch.randn(6, 1, 8, 8, generator=g(4))
    t = torch.tensor([0, 3, 7, 11, 15, 19])
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    null = torch.full_like(y, m.null_label)
    with torch.no_grad():
        c, u = m.predict(x, t, y), m.predict(x, t, null)
        for weight in (0.5, 2.5, 7.0):
            calls.clear()
            out = guided(network, y, m.null_label, weight)(x, t)
            torch.testing.assert_close(out, u + weight * (c - u), rtol=0, atol=1e-5)
            assert calls == [12]
        for weight, expected in ((0.0, u), (1.0, c)):
            calls.clear()
            assert torch.equal(guided(network, y, m.null_label, weight)(x, t), expected)
            assert calls == [6]


# -- with exact denoisers of class-conditional Gaussian data ---------------------------------
PRIOR, MEANS, SDS = (0.4, 0.6), (-1.0, 1.5), (0.3, 0.5)
NULL = 2  # the null label of the two classes
N = 20000
HALVES = torch.cat([torch.zeros(N // 2), torch.ones(N // 2)]).long()  # class 0, then class 1


def _select(per_class: list[torch.Tensor], log_joint: list[torch.Tensor], labels: torch.Tensor):
    """The class's prediction for labels 0 and 1; for the null label the mixture's,
    sum_k p(k | x_t) prediction_k, with p(k | x_t) from the joint log densities."""
    posterior = torch.softmax(torch.stack(log_joint), dim=0)
    mixture = (posterior * torch.stack(per_class)).sum(0)
    lab = labels[:, None]
    return torch.where(lab == NULL, mixture, torch.where(lab == 0, per_class[0], per_class[1]))


def exact_eps(schedule: NoiseSchedule):
    """E[eps | x_t, y] (y = 0, 1) and E[eps | x_t] (null label): given class k, x_t ~ N(a m_k,
    a^2 s_k^2 + s^2) and E[eps | x_t, k] = s (x_t - a m_k) / (a^2 s_k^2 + s^2)."""

    def predict(xt: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        a = schedule.at("sqrt_alpha_bar", t, xt)
        s = schedule.at("sqrt_one_minus_alpha_bar", t, xt)
        per_class, log_joint = [], []
        for prior, mean, sd in zip(PRIOR, MEANS, SDS, strict=True):
            var = a * a * sd * sd + s * s
            per_class.append(s * (xt - a * mean) / var)
            log_joint.append(
                math.log(prior) - 0.5 * torch.log(var) - 0.5 * (xt - a * mean) ** 2 / var
            )
        return _select(per_class, log_joint, labels)

    return predict


def exact_velocity(x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """E[eps - x_0 | x_t, y] on the straight path x_t = (1 - t) x_0 + t eps: given class k,
    with v = (1 - t)^2 s_k^2 + t^2 and d = x_t - (1 - t) m_k, E[eps | x_t] = t d / v and
    E[x_0 | x_t] = m_k + (1 - t) s_k^2 d / v; the null label's is the mixture's."""
    tt = t[:, None]
    per_class, log_joint = [], []
    for prior, mean, sd in zip(PRIOR, MEANS, SDS, strict=True):
        var = (1 - tt) ** 2 * sd * sd + tt * tt
        d = x - (1 - tt) * mean
        per_class.append(tt * d / var - (mean + (1 - tt) * sd * sd * d / var))
        log_joint.append(math.log(prior) - 0.5 * torch.log(var) - 0.5 * d * d / var)
    return _select(per_class, log_joint, labels)


def guided_draws(sampler: str, weight: float) -> torch.Tensor:
    """N draws (1-D) of the guided sampler for HALVES with the exact predictions."""
    if sampler == "heun":
        velocity = guided(exact_velocity, HALVES, NULL, weight)
        kw = {"steps": 50, "method": "heun", "generator": g(5), "like": F64}
        return samplers.ode_sample(velocity, (N, 1), **kw)[:, 0]
    schedule = NoiseSchedule.make("linear", 1000)
    den = Denoiser(guided(exact_eps(schedule), HALVES, NULL, weight), "eps", schedule)
    if sampler == "ddpm":
        kw = {"steps": 1000, "variance": "beta", "generator": g(5), "like": F64}
        return samplers.ddpm_sample(den, (N, 1), **kw)[:, 0]
    return samplers.ddim_sample(den, (N, 1), steps=500, eta=0.0, generator=g(5), like=F64)[:, 0]


@pytest.mark.parametrize("sampler", ["ddim", "ddpm", "heun"])
def test_with_the_exact_predictions_guidance_one_draws_each_class(sampler):
    x = guided_draws(sampler, 1.0)
    for k, part in enumerate((x[: N // 2], x[N // 2 :])):
        assert part.mean().item() == pytest.approx(MEANS[k], abs=0.02), k
        assert part.std().item() == pytest.approx(SDS[k], abs=0.015), k


@pytest.mark.parametrize("sampler", ["ddim", "ddpm", "heun"])
def test_with_the_exact_predictions_guidance_zero_draws_the_mixture(sampler):
    x = guided_draws(sampler, 0.0)
    mean = sum(p * m for p, m in zip(PRIOR, MEANS, strict=True))
    second = sum(p * (s * s + m * m) for p, m, s in zip(PRIOR, MEANS, SDS, strict=True))
    above = sum(
        p * stats.norm.sf(0.1, loc=m, scale=s) for p, m, s in zip(PRIOR, MEANS, SDS, strict=True)
    )
    assert x.mean().item() == pytest.approx(mean, abs=0.03)
    assert x.var().item() == pytest.approx(second - mean * mean, abs=0.06)
    assert (x > 0.1).double().mean().item() == pytest.approx(above, abs=0.015)


# -- label dropout ---------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_drop_labels_replaces_each_label_with_the_given_probability(rate):
    labels = torch.arange(N) % 10
    dropped = drop_labels(labels, rate, 10, g(6))
    share = (dropped == 10).double().mean().item()
    assert abs(share - rate) < 4 * math.sqrt(rate * (1 - rate) / N)
    kept = dropped != 10
    assert torch.equal(dropped[kept], labels[kept])
    assert torch.equal(dropped, drop_labels(labels, rate, 10, g(6)))


def test_no_label_dropout_draws_nothing():
    labels = torch.arange(10)
    gen = g(7)
    state = gen.get_state()
    assert drop_labels(labels, 0.0, 10, gen) is labels
    assert torch.equal(gen.get_state(), state)


@pytest.mark.parametrize("variant", ["ddpm_cond", "flow_matching_cond"])
@pytest.mark.parametrize("rate", [0.1, 0.25])
def test_the_loss_trains_on_the_null_label_at_the_label_dropout_rate(variant, rate):
    """The labels the network sees in the loss (recorded at its input): a share ``rate`` is
    the null label, the others the batch's own."""
    m = model(variant, label_dropout=rate)
    seen: list[torch.Tensor] = []

    def record(x: torch.Tensor, time: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        seen.append(labels)
        return torch.zeros_like(x)

    m.net.forward = record  # type: ignore[method-assign]
    y = torch.arange(N) % 10
    m.loss(torch.zeros(N, 1, 8, 8), "main", generator=g(8), y=y)
    (labels,) = seen
    share = (labels == m.null_label).double().mean().item()
    assert abs(share - rate) < 4 * math.sqrt(rate * (1 - rate) / N)
    kept = labels != m.null_label
    assert torch.equal(labels[kept], y[kept])


def test_the_loss_is_a_function_of_the_generator_with_label_dropout():
    m = model("ddpm_cond")
    randomise(m)
    x, y = images(8), torch.arange(8)
    a = m.loss(x, "main", generator=g(9), y=y)["loss"]
    assert torch.equal(a, m.loss(x, "main", generator=g(9), y=y)["loss"])
    assert not torch.equal(a, m.loss(x, "main", generator=g(10), y=y)["loss"])


# -- a tiny conditional model on labelled digits ---------------------------------------------
@pytest.mark.parametrize("variant", ["ddpm_cond", "flow_matching_cond"])
def test_a_tiny_conditional_model_trains_on_digits_and_samples_the_classes_asked_for(variant):
    data = load_data(DataConfig(name="digits", binarize="none"), progress=False)
    info = DataInfo(data.shape, data.levels, data.classes, data.class_counts)
    m = model(variant, info)
    x = data.tensor("train")[:32]
    y = data.train.labels[:32].long()
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    table = m.net.class_embedding
    assert table is not None
    # the zero-initialised last convolutions pass no gradient back at first: the output's
    # learns in the first step, the residual blocks' in the second, the embeddings' in the third
    for step in range(3):
        terms = m.loss(x, "main", generator=g(11 + step), y=y)
        assert terms["loss"].dim() == 0 and torch.isfinite(terms["loss"])
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
    # the rows that learn are those of the labels the last step kept, the null label's if it
    # dropped any (the dropout is the generator's first draw)
    seen = torch.zeros(11, dtype=torch.bool)
    seen[drop_labels(y, m.config.label_dropout, m.null_label, g(13))] = True
    assert table.weight.grad is not None
    assert torch.equal(table.weight.grad.abs().sum(1) > 0, seen)
    m.eval()
    asked = torch.tensor([0, 1, 2, 9, 9])
    for sampled in (
        m.sample(5, y=asked, generator=g(12)),
        m.sample_guided(5, guidance=2.0, y=asked, generator=g(12)),
        m.sample(5, generator=g(12)),
    ):
        assert sampled.shape == (5, *data.shape) and 0 <= sampled.min() and sampled.max() <= 1
    ll = m.log_likelihood(x[:3], k=2, generator=g(13), y=y[:3])
    marginal = m.log_likelihood(x[:3], k=2, generator=g(13))
    assert ll.values.shape == marginal.values.shape == (3,)
    assert ll.kind == marginal.kind and ll.protocol == marginal.protocol
    z = m.encode_noise(x[:3], steps=2, y=y[:3])
    assert m.decode_noise(z, steps=2, y=y[:3]).shape == (3, *data.shape)
