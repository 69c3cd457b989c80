"""Normalizing flows against the mathematics: exact inverses, log-determinants equal to the
brute-force Jacobian's, a density that integrates to one, samples that follow it, and bits/dim
of a known density in closed form."""

import json
import math
from pathlib import Path

import pytest
import torch
from runkit import tiny_variants, train_small
from scipy import stats

from genlab import api
from genlab.cli import main
from genlab.errors import ConfigError, TrainingDiverged
from genlab.models import DataInfo, build_model, load_run_config
from genlab.models.flows.bijections import (
    ActNorm,
    AffineCoupling,
    InvertibleConv1x1,
    checkerboard,
    inverse_logit_transform,
    logit_transform,
    squeeze,
    unsqueeze,
)
from genlab.models.flows.multiscale import MultiScaleFlow
from genlab.runs import RunDir

FLOWS = ["realnvp", "glow"]


def flow(kind: str, shape=(1, 8, 8), **fields):
    torch.manual_seed(0)
    spec = {"name": "flow", "flow": kind, "scales": 2, "steps": 2, "channels": 8, **fields}
    return build_model(spec, DataInfo(shape, 256)).double()


def randomise(model: torch.nn.Module, scale: float = 0.3) -> None:
    """Move every weight off its (identity-making) initialisation."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def images(n: int = 6, shape=(1, 8, 8)) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    return torch.randint(0, 256, (n, *shape), generator=g).double() / 255


@pytest.mark.parametrize("kind", FLOWS)
def test_inverse_of_forward_is_the_identity_in_float64(kind):
    model = flow(kind)
    randomise(model)
    v = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    latents, _ = model.flow(v)
    assert sum(z[0].numel() for z in latents) == 64
    torch.testing.assert_close(model.flow.inverse(latents), v, rtol=0, atol=1e-10)


def test_squeeze_and_logit_invert_exactly():
    h = torch.randn(2, 3, 4, 6, dtype=torch.float64)
    assert torch.equal(unsqueeze(squeeze(h)), h)
    assert squeeze(h).shape == (2, 12, 2, 3)
    y = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    v, _ = logit_transform(y, 0.05)
    torch.testing.assert_close(inverse_logit_transform(v, 0.05), y, rtol=0, atol=1e-12)


def _brute_logdet(fn, v: torch.Tensor) -> float:
    jac = torch.autograd.functional.jacobian(
        lambda t: fn(t.reshape(v.shape)).flatten(), v.flatten()
    )
    return torch.linalg.slogdet(jac)[1].item()


@pytest.mark.parametrize("kind", FLOWS)
def test_summed_log_determinant_equals_slogdet_of_the_jacobian(kind):
    """log|det df/dv| of the whole multi-scale flow (and of the logit transform) against
    slogdet of the Jacobian that autograd builds column by column, on a 1x4x4 image."""
    model = flow(kind, shape=(1, 4, 4))
    randomise(model)
    v = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(4), dtype=torch.float64)

    def flat_latents(t):
        return torch.cat([z.flatten(1) for z in model.flow(t)[0]], dim=1)

    _, logdet = model.flow(v)
    assert logdet.item() == pytest.approx(_brute_logdet(flat_latents, v), abs=1e-8)
    y = torch.rand(1, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    _, logit_logdet = logit_transform(y, 0.05)
    brute = _brute_logdet(lambda t: logit_transform(t, 0.05)[0], y)
    assert logit_logdet.item() == pytest.approx(brute, abs=1e-8)


@pytest.mark.parametrize(
    "layer",
    [ActNorm(4), InvertibleConv1x1(4), AffineCoupling(checkerboard(4, 2, 2, parity=1), 6)],
    ids=["actnorm", "invconv1x1", "coupling"],
)
def test_each_layer_inverts_and_has_the_jacobians_log_determinant(layer):
    layer = layer.double()
    randomise(layer)
    layer.eval()  # actnorm: no data-dependent initialisation here
    h = torch.randn(1, 4, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    y, logdet = layer(h)
    torch.testing.assert_close(layer.inverse(y), h, rtol=0, atol=1e-10)
    assert logdet.item() == pytest.approx(_brute_logdet(lambda t: layer(t)[0], h), abs=1e-8)


def test_the_lu_weight_has_the_determinant_its_log_scales_say():
    conv = InvertibleConv1x1(5).double()
    randomise(conv)
    assert torch.linalg.slogdet(conv.weight())[1].item() == pytest.approx(
        conv.log_s.sum().item(), abs=1e-10
    )


def test_actnorm_initialises_from_the_first_batch():
    norm = ActNorm(3)
    h = 2.0 + 5.0 * torch.randn(64, 3, 4, 4, generator=torch.Generator().manual_seed(7))
    y, _ = norm(h)  # training mode: initialises
    assert bool(norm.initialized)
    torch.testing.assert_close(y.mean((0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(y.std((0, 2, 3), unbiased=False), torch.ones(3), atol=1e-3, rtol=0)


def _square_mass_and_samples(model, n: int = 20000):
    """The density's mass on the unit square per cell of an 8x8 grid (by quadrature), and n
    samples' positions before quantisation."""
    cells = 400
    centres = (torch.arange(cells, dtype=torch.float64) + 0.5) / cells
    grid = torch.cartesian_prod(centres, centres).reshape(-1, 1, 1, 2)
    with torch.no_grad():
        density = torch.exp(model.log_density(grid)).reshape(cells, cells) / cells**2
        z = torch.randn(n, 2, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
        y = inverse_logit_transform(model.flow.inverse([z.reshape(-1, 1, 1, 2)]), 0.05)
    return density.reshape(8, 50, 8, 50).sum((1, 3)).flatten(), y.reshape(-1, 2)


def test_the_density_on_the_unit_square_is_the_flows_mass_inside_the_logit_box():
    """With the logit transform's alpha, y in (0, 1)^D covers v in [logit a, logit(1 - a)]^D
    only: p(y) integrates to the flow's mass inside that box (less than one; what falls
    outside is sampled as the extreme levels). For a fresh flow, a standard normal in v, that
    mass is (Phi(logit 0.95) - Phi(logit 0.05))^2 in closed form."""
    fresh = flow("realnvp", shape=(1, 1, 2), scales=1, steps=3)
    mass, _ = _square_mass_and_samples(fresh)
    edge = math.log(0.95 / 0.05)
    exact = (stats.norm.cdf(edge) - stats.norm.cdf(-edge)) ** 2
    assert mass.sum().item() == pytest.approx(exact, abs=1e-4)


def test_2d_samples_follow_the_density():
    """A randomised one-scale RealNVP on 1x1x2 'images' (a density on the unit square): the
    share of samples inside the square equals the quadrature mass (4 standard errors), and
    their 8x8 histogram matches the mass per cell (chi-square p > 0.001)."""
    model = flow("realnvp", shape=(1, 1, 2), scales=1, steps=3)
    randomise(model, 0.8)
    mass, y = _square_mass_and_samples(model)
    inside = ((y > 0) & (y < 1)).all(1)
    n, share = y.shape[0], inside.double().mean().item()
    assert abs(share - mass.sum().item()) < 4 * math.sqrt(share * (1 - share) / n) + 1e-3
    bins = (y[inside] * 8).long()
    counts = torch.bincount(bins[:, 0] * 8 + bins[:, 1], minlength=64).double()
    expected = mass * n
    keep = expected > 5
    chi2 = ((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum().item()
    assert stats.chi2.sf(chi2, int(keep.sum()) - 1) > 1e-3


def test_bits_per_dim_of_a_fresh_flow_equal_the_closed_form():
    """A fresh flow is the identity (zero-initialised couplings): its density is a factorised
    standard normal in logit space, log p(y) = sum_i log N(v_i) + log(1 - 2a) - log s_i -
    log(1 - s_i), computed here with scipy, and the NLL adds D log 256 for the 8-bit bound."""
    model = flow("realnvp").eval()
    x = images()
    ll = model.log_likelihood(x, k=1, generator=torch.Generator().manual_seed(9))
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    y = (torch.round(x * 255) + u) / 256
    s = 0.05 + 0.9 * y
    v = torch.log(s / (1 - s))
    closed = stats.norm.logpdf(v.numpy()) + math.log(0.9) - torch.log(s * (1 - s)).numpy()
    expected = torch.from_numpy(closed).flatten(1).sum(1)
    torch.testing.assert_close(ll.values, expected, rtol=1e-9, atol=1e-9)
    discrete = ll.discrete(64)
    torch.testing.assert_close(discrete.values, expected - 64 * math.log(256))
    assert ll.of == "dequantised" and discrete.kind == "dequantised_bound"


def test_importance_weighted_dequantisation_is_at_least_the_single_draw_bound_on_average():
    model = flow("glow")
    randomise(model, 0.1)
    x = images(20)
    one = model.log_likelihood(x, k=1, generator=torch.Generator().manual_seed(10)).values
    many = model.log_likelihood(x, k=16, generator=torch.Generator().manual_seed(10))
    assert many.samples == 16 and many.stderr is not None
    assert many.values.mean() > one.mean() - 0.5


@pytest.mark.parametrize("kind", FLOWS)
def test_reconstruction_is_exact_and_codes_decode(kind):
    model = flow(kind).float()
    randomise(model, 0.05)
    x = images(8).float()
    with torch.no_grad():
        assert torch.equal(model.reconstruct(x), x)
        z = model.encode(x)
        assert z.shape == (8, 64)
        s = model.sample_tempered(4, temperature=0.7, generator=torch.Generator().manual_seed(0))
        again = model.sample_tempered(
            4, temperature=0.7, generator=torch.Generator().manual_seed(0)
        )
    assert torch.equal(s, again) and s.shape == (4, 1, 8, 8)
    assert torch.equal(torch.round(s * 255) / 255, s)  # 8-bit levels


@pytest.mark.parametrize(
    "fields, levels, shape, match",
    [
        ({}, 2, (1, 8, 8), "data.binarize=none"),
        ({"flow": "glow", "scales": 3}, 256, (1, 28, 28), "model.scales 1 or 2"),
        ({"flow": "realnvp", "scales": 4}, 256, (1, 28, 28), "not divisible by 8"),
        ({"scales": 0}, 256, (1, 8, 8), "model.scales"),
        ({"logit_alpha": 0.5}, 256, (1, 8, 8), "logit_alpha"),
    ],
)
def test_bad_settings_are_one_line_errors(fields, levels, shape, match):
    with pytest.raises(ConfigError, match=match) as info:
        build_model({"name": "flow", **fields}, DataInfo(shape, levels))
    assert "\n" not in str(info.value)


def test_a_temperature_must_be_positive():
    with pytest.raises(ConfigError, match="temperature"):
        flow("realnvp").sample_tempered(2, temperature=0.0)


def test_a_flow_run_from_the_command_line(tmp_path, tiny_overrides, capsys):
    """Train, evaluate (the bound on the 8-bit NLL), sample at a temperature, reconstruct
    exactly, interpolate and embed; --temperature elsewhere is a one-line error."""
    base = [o for o in tiny_overrides if not o.startswith(("model.", "eval."))]
    sets = [a for o in [*base, *tiny_variants()["glow"], "train.epochs=1"] for a in ("--set", o)]
    assert main(["train", *sets]) == 0
    run = next((tmp_path / "runs").glob("0*"))
    assert main(["eval", str(run), "--no-progress", "--set", "eval.metrics=[nll,recon_error]"]) == 0
    capsys.readouterr()
    metrics = json.loads((run / "eval.json").read_text())["metrics"]
    nll = metrics["nll_dequant_k1"]
    assert nll["kind"] == "dequantised_bound"
    assert nll["value"] == pytest.approx(nll["continuous_nll_nats"] + 64 * math.log(256))
    assert nll["bits_per_dim"] == pytest.approx(nll["value"] / (64 * math.log(2)))
    assert metrics["recon_mse"]["value"] == 0.0  # exact reconstruction
    for command in (
        ["sample", str(run), "-n", "8", "--temperature", "0.7", "--no-progress"],
        ["reconstruct", str(run), "-n", "8"],
        ["interpolate", str(run), "--pairs", "2", "--steps", "4"],
        ["embed", str(run)],
    ):
        assert main(command) == 0, command
    assert (run / "samples" / "sample-seed0-t0.7.png").exists()
    capsys.readouterr()
    assert main(["sample", str(run), "--temperature", "0"]) == 2
    assert "--temperature must be a positive number" in capsys.readouterr().err


def test_temperature_is_refused_for_a_family_without_one(tmp_path, tiny_overrides, capsys):
    run = train_small(tmp_path)
    capsys.readouterr()
    assert main(["sample", str(run.path), "--temperature", "0.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no sampling temperature" in err[0]


def test_an_overflowing_log_determinant_stops_training_like_any_divergence(
    tiny_overrides, monkeypatch
):
    """A log-determinant that overflows (here: forced to +inf from step 31) makes the loss
    non-finite: the run stops as diverged, with the last good checkpoint exported."""
    original = MultiScaleFlow.forward
    calls = []

    def overflowing(self, h):
        latents, logdet = original(self, h)
        if self.training:
            calls.append(1)
            if len(calls) > 30:
                logdet = logdet + float("inf")
        return latents, logdet

    monkeypatch.setattr(MultiScaleFlow, "forward", overflowing)
    base = [o for o in tiny_overrides if not o.startswith(("model.", "eval."))]
    config = load_run_config(None, [*base, *tiny_variants()["realnvp"]])
    with pytest.raises(TrainingDiverged, match="the loss was -?inf"):
        api.train(config)
    (folder,) = Path(config.runs_dir).glob("0*")
    info = RunDir(folder).info()
    assert info["status"] == "diverged" and info["exported_from"].startswith("last good")
