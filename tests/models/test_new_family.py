"""Adding a family is its class and one registration: everything else follows from what it
declares. Two tiny families, written as README "Extending genlab" says, prove it; they are
also the oracle for bits/dim of both kinds of likelihood: a uniform categorical over 256
levels and a uniform density on dequantised [0, 1]^D both give exactly 8 bits/dim."""

import math
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from runkit import tiny_variants
from safetensors.torch import load_file

from genlab import api
from genlab.config import ModelConfig, Ranges
from genlab.models import MODELS, DataInfo, LogLikelihood, build_model, load_run_config
from genlab.models.base import GenerativeModel
from genlab.models.declarations import GREY, TinyConfig, Traits, ZooEntry
from genlab.zoo.entries import declared_entries


@dataclass(frozen=True)
class PixelsConfig(ModelConfig):
    RANGES: ClassVar[Ranges] = {"init_scale": (0.0, 10.0)}
    init_scale: float = 0.0  # 0: every level equally likely at the start


class IndependentPixels(GenerativeModel[PixelsConfig]):
    """p(x) = prod_i Categorical(x_i; softmax(theta_i)): every pixel on its own."""

    config_class = PixelsConfig
    traits = Traits(density="exact", sampling="one_pass")
    description = "independent categorical pixels (a test family)"
    tiny_configs = {"pixels_test": TinyConfig({}, 256)}
    zoo_entries = (ZooEntry("pixels-test", GREY, 0.1, 1, {}),)

    def __init__(self, config: PixelsConfig, data_info: DataInfo) -> None:
        super().__init__(config, data_info)
        self.logits = torch.nn.Parameter(
            config.init_scale * torch.randn(*data_info.shape, data_info.levels)
        )

    def log_likelihood(self, x, *, k, generator=None):
        levels = self.data_info.levels
        index = (x * (levels - 1)).round().long().unsqueeze(-1)  # (B, C, H, W, 1)
        log_p = self.logits.log_softmax(-1).expand(x.shape[0], *self.logits.shape)
        return LogLikelihood(log_p.gather(-1, index).flatten(1).sum(1), "exact")

    def loss(self, x, phase, *, generator=None):
        nll = -self.log_likelihood(x, k=1).values.mean()
        return {"loss": nll}

    def sample(self, n, *, generator=None, progress=False):
        probs = (
            self.logits.softmax(-1).expand(n, *self.logits.shape).reshape(-1, self.logits.shape[-1])
        )
        levels = torch.multinomial(probs, 1, generator=generator).reshape(
            n, *self.logits.shape[:-1]
        )
        return levels.float() / (self.data_info.levels - 1)


@dataclass(frozen=True)
class UniformConfig(PixelsConfig):
    pass


class UniformDensity(IndependentPixels):
    """A continuous density on [0, 1]^D, uniform: log p(y) = 0 for dequantised y."""

    config_class = UniformConfig
    description = "a uniform density on dequantised images (a test family)"
    tiny_configs = {"uniform_test": TinyConfig({}, 256)}
    zoo_entries = ()

    def log_likelihood(self, x, *, k, generator=None):
        zero = (self.logits.sum() * 0).expand(x.shape[0])  # (B,): log 1, with a gradient path
        return LogLikelihood(zero, "exact", of="dequantised", levels=self.data_info.levels)


@pytest.fixture
def registered(monkeypatch):
    """The two families registered as a new family would be, and removed afterwards."""
    monkeypatch.setattr(MODELS, "_items", dict(MODELS._items))
    MODELS.register("pixels_test")(IndependentPixels)
    MODELS.register("uniform_test")(UniformDensity)
    yield
    for cls in (IndependentPixels, UniformDensity):
        del cls.config_class.family  # back to ModelConfig's unset name


def test_two_families_cannot_share_a_config_class(registered):
    class Twin(IndependentPixels):
        pass

    with pytest.raises(ValueError, match="config class of its own"):
        MODELS.register("twin_test")(Twin)


def test_the_registration_is_all_the_rest_of_genlab_needs(registered):
    assert {"pixels_test", "uniform_test"} <= set(MODELS.names())
    variants = tiny_variants()
    assert variants["pixels_test"][0] == "model.name=pixels_test"
    assert "data.binarize=none" in variants["uniform_test"]
    entries = [e for e in declared_entries() if e.family == "pixels_test"]
    assert [e.name for e in entries] == ["pixels-test"]
    model = build_model({"name": "pixels_test"}, DataInfo((1, 8, 8), 256))
    assert model.family == "pixels_test" and model.traits.sampling == "one_pass"


@pytest.mark.parametrize("family", ["pixels_test", "uniform_test"])
def test_a_uniform_model_of_8_bit_images_has_8_bits_per_dim(registered, tiny_overrides, family):
    """Categorical: -log P(x) = D log 256. Dequantised: -log p(y) = 0 for the density, and the
    bound on the discrete likelihood adds D log 256: 8 bits/dim by both routes."""
    base = [o for o in tiny_overrides if not o.startswith(("model.", "eval."))]
    overrides = [*base, *tiny_variants()[family], "train.max_steps=1", "train.lr=1e-12"]
    run = api.train(load_run_config(None, [*overrides, "eval.metrics=[nll]"]))
    name = "nll_exact" if family == "pixels_test" else "nll_dequant_k1"
    result = api.evaluate(run, progress=False)["metrics"][name]
    dims = 64
    assert result["bits_per_dim"] == pytest.approx(8.0, abs=1e-6)
    assert result["value"] == pytest.approx(dims * math.log(256), rel=1e-6)
    if family == "uniform_test":
        assert result["kind"] == "dequantised_bound"
        assert result["continuous_nll_nats"] == pytest.approx(0.0, abs=1e-9)


def test_a_new_family_trains_and_resumes_exactly(registered, tiny_overrides):
    base = [o for o in tiny_overrides if not o.startswith(("model.", "eval."))]
    overrides = [*base, *tiny_variants()["pixels_test"], "train.sample_every=0"]
    overrides.append("model.init_scale=0.5")
    full = api.train(load_run_config(None, overrides))
    part = api.train(load_run_config(None, [*overrides, "train.max_steps=30"]))
    resumed = api.resume(part.path)
    a, b = load_file(str(full.model_path)), load_file(str(resumed.model_path))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
