"""The model contract, checked for every registered family through its declared tiny
configurations, and the declarations checked against what the family implements."""

import copy
import dataclasses

import pytest
import torch

from genlab.errors import ConfigError
from genlab.models import MODELS, DataInfo, build_model, parse_model_config
from genlab.models.base import (
    GenerativeModel,
    SupportsDecode,
    SupportsElbo,
    SupportsEncode,
    SupportsLikelihood,
    SupportsMarkovChain,
    SupportsPartitionEstimate,
    SupportsReconstruct,
    SupportsSample,
    code_of,
)
from genlab.models.declarations import BINARIZE, SAMPLING_COSTS

FAMILIES = MODELS.names()
VARIANTS = [(f, v, t) for f in FAMILIES for v, t in MODELS.get(f).tiny_configs.items()]


CLASSES = tuple(str(i) for i in range(10))


def info(levels: int) -> DataInfo:
    """8x8 images with ten classes (used only by a conditional tiny config)."""
    return DataInfo((1, 8, 8), levels, CLASSES, tuple(range(1, 11)))


def given(model, n: int) -> dict:
    """The labels keyword a conditional model's methods take: classes 0, 1, 2, ..."""
    if not model.conditional:
        return {}
    return {"y": torch.arange(n) % model.num_classes}


def images(levels: int, n: int = 4, shape=(1, 8, 8)) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, levels, (n, *shape), generator=g).float() / (levels - 1)


@pytest.fixture(params=VARIANTS, ids=lambda p: p[1])
def model_and_data(request):
    family, _, tiny = request.param
    torch.manual_seed(0)
    decay = tiny.train.get("ema_decay")
    model = build_model({"name": family, **tiny.model}, info(tiny.levels), ema_decay=decay)
    return model, images(tiny.levels)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("levels", [2, 256])
def test_default_config_builds_or_refuses_in_one_line(family, levels):
    try:
        with torch.device("meta"):
            model = build_model({"name": family}, DataInfo((1, 8, 8), levels))
    except ConfigError as refused:  # a binary-only family refuses grey levels, in one line
        assert "data.binarize" in str(refused) and "\n" not in str(refused)
        return
    assert isinstance(model, GenerativeModel)


def test_is_registered_and_typed(model_and_data):
    model, _ = model_and_data
    assert isinstance(model, GenerativeModel)
    assert MODELS.get(model.family) is type(model)
    assert dataclasses.is_dataclass(model.config)
    assert isinstance(model.config, type(model).config_class)
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.config.__setattr__(dataclasses.fields(model.config)[0].name, None)


def test_a_family_without_an_objective_cannot_be_built():
    class NoLoss(GenerativeModel):
        pass

    with pytest.raises(TypeError, match="abstract"):
        NoLoss(None, DataInfo((1, 2, 2), 2))


def test_unknown_config_key_is_an_error():
    for family in FAMILIES:
        with pytest.raises(ConfigError, match="no_such_key"):
            parse_model_config({"name": family, "no_such_key": 1})


@pytest.mark.parametrize("family", FAMILIES)
def test_declared_traits_agree_with_the_capabilities(family):
    """What a family says it is matches what it can do: the report and the claims read the
    traits, evaluation the protocols."""
    cls, traits = MODELS.get(family), MODELS.get(family).traits
    assert traits.sampling in SAMPLING_COSTS
    if traits.sampling in ("one_pass", "sequential", "iterative"):
        assert issubclass(cls, SupportsSample), (
            f"{family} samples ({traits.sampling}) but has no sample()"
        )
    if traits.sampling == "chain":
        assert issubclass(cls, SupportsMarkovChain), f"{family} samples by a chain it cannot run"
    if traits.density in ("exact", "bound"):
        assert issubclass(cls, SupportsLikelihood), f"{family} declares a {traits.density} density"
    if traits.density == "estimate":
        assert issubclass(cls, SupportsLikelihood | SupportsPartitionEstimate)
    if traits.density in ("implicit", "none"):
        assert not issubclass(cls, SupportsLikelihood), (
            f"{family} has a likelihood it does not declare"
        )
        assert not issubclass(cls, SupportsPartitionEstimate)
    if traits.encoder:
        assert issubclass(cls, SupportsEncode) and issubclass(cls, SupportsDecode)
    if traits.variational:
        assert traits.encoder and issubclass(cls, SupportsElbo) and traits.density == "bound"
    if traits.autoregressive:
        assert traits.density == "exact" and traits.sampling == "sequential"


@pytest.mark.parametrize("family", FAMILIES)
def test_declarations_are_complete(family):
    cls = MODELS.get(family)
    assert cls.description and "\n" not in cls.description
    assert cls.tiny_configs, f"{family} declares no tiny test configuration"
    for entry in cls.zoo_entries:
        assert entry.family == family and entry.protocol in BINARIZE
        parse_model_config({"name": family, **entry.model})  # the zoo's model section is valid


def test_adversarial_families_train_more_than_one_phase(model_and_data):
    model, _ = model_and_data
    assert model.traits.adversarial == (len(model.phases()) > 1)


def test_phases_cover_every_parameter_once(model_and_data):
    model, _ = model_and_data
    seen = [id(p) for phase in model.phases() for p in phase.parameters()]
    assert len(seen) == len(set(seen)) or len(model.phases()) > 1
    assert set(seen) == {id(p) for p in model.parameters()}


def test_loss_is_finite_scalar_with_gradients(model_and_data):
    model, x = model_and_data
    for phase in model.phases():
        model.zero_grad()
        g = torch.Generator().manual_seed(0)
        terms = model.loss(x, phase.name, generator=g, **given(model, len(x)))
        assert terms["loss"].dim() == 0 and torch.isfinite(terms["loss"])
        assert all(v.dim() == 0 for v in terms.values())
        terms["loss"].backward()
        grads = [p.grad for p in phase.parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_loss_is_deterministic_given_the_generator(model_and_data):
    """Given its state (a PCD RBM's persistent chains advance with each call)."""
    model, x = model_and_data
    phase = model.phases()[0].name
    twin = copy.deepcopy(model)
    y = given(model, len(x))
    a = model.loss(x, phase, generator=torch.Generator().manual_seed(5), **y)["loss"]
    b = twin.loss(x, phase, generator=torch.Generator().manual_seed(5), **y)["loss"]
    assert torch.equal(a, b)


def test_capabilities_have_the_right_shapes(model_and_data):
    model, x = model_and_data
    model.eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        if isinstance(model, SupportsLikelihood):
            ll = model.log_likelihood(x, k=3, generator=g)
            assert ll.values.shape == (x.shape[0],)
            discrete = ll.discrete(x[0].numel())
            assert discrete.of == "discrete" and torch.all(discrete.values <= 0)
            assert ll.kind in ("exact", "iwae_bound", "elbo", "estimate")
        if isinstance(model, SupportsSample):
            s = model.sample(3, generator=g)
            assert s.shape == (3, *x.shape[1:]) and s.min() >= 0 and s.max() <= 1
        y = given(model, len(x))
        if isinstance(model, SupportsReconstruct):
            assert model.reconstruct(x, **y).shape == x.shape
        if isinstance(model, SupportsEncode) and isinstance(model, SupportsDecode):
            z = code_of(model.encode(x, **y))
            assert model.decode(z, **y).shape == x.shape


@pytest.mark.parametrize("family", FAMILIES)
def test_conditioning_is_declared(family):
    """A family either takes labels (and has a conditional tiny config the contract runs) or
    says why not, in the words its refusal of model.conditional ends with."""
    cls = MODELS.get(family)
    if cls.traits.conditional:
        assert any(t.model.get("conditional") for t in cls.tiny_configs.values()), family
        assert not cls.unconditional_because, "a conditional family gives no reason against"
        return
    assert cls.unconditional_because and "TODO" not in cls.unconditional_because
    levels = next(iter(cls.tiny_configs.values())).levels
    with pytest.raises(ConfigError, match="cannot be conditioned on a class label") as refused:
        build_model({"name": family, "conditional": True}, info(levels))
    assert cls.unconditional_because in str(refused.value) and "\n" not in str(refused.value)


def test_a_conditional_model_samples_the_classes_asked_and_sums_over_them(model_and_data):
    """Labels reach every sampler; log p(x) of a conditional density model is the sum over
    classes of p(x | y) p(y), whatever its estimator (the same noise for every term)."""
    model, x = model_and_data
    if not model.conditional:
        return
    model.eval()
    with torch.no_grad():
        if isinstance(model, SupportsSample):
            y = torch.tensor([3, 1, 4])
            s = model.sample(3, generator=torch.Generator().manual_seed(0), y=y)
            assert s.shape == (3, *x.shape[1:])
            with pytest.raises(ValueError):
                model.sample(
                    3, generator=torch.Generator().manual_seed(0), y=torch.tensor([10] * 3)
                )
        if isinstance(model, SupportsLikelihood) and model.traits.density == "exact":
            total = model.log_likelihood(x, k=2).values
            terms = torch.stack(
                [
                    model.log_likelihood(x, k=2, y=torch.full((len(x),), c)).values
                    for c in range(model.num_classes)
                ],
                dim=1,
            )
            direct = torch.logsumexp(terms + model.class_log_prior, dim=1)
            assert torch.allclose(total, direct, atol=1e-5)
