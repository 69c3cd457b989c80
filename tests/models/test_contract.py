"""The model contract, checked for every registered family."""

import dataclasses

import pytest
import torch

from genlab.errors import ConfigError
from genlab.models import MODELS, DataInfo, build_model, parse_model_config
from genlab.models.base import (
    GenerativeModel,
    SupportsDecode,
    SupportsEncode,
    SupportsLikelihood,
    SupportsReconstruct,
    SupportsSample,
    code_of,
)

FAMILIES = MODELS.names()


def images(levels: int, n: int = 4, shape=(1, 8, 8)) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, levels, (n, *shape), generator=g).float() / (levels - 1)


@pytest.fixture(
    params=[(f, lv) for f in FAMILIES for lv in (2, 256)], ids=lambda p: f"{p[0]}-{p[1]}"
)
def model_and_data(request):
    family, levels = request.param
    torch.manual_seed(0)
    try:
        model = build_model({"name": family}, DataInfo((1, 8, 8), levels))
    except ConfigError as refused:  # a binary-only family refuses grey levels, in one line
        assert levels == 256 and "data.binarize" in str(refused)
        pytest.skip(f"{family} models binary pixels only")
    return model, images(levels)


def test_is_registered_and_typed(model_and_data):
    model, _ = model_and_data
    assert isinstance(model, GenerativeModel)
    assert MODELS.get(model.family) is type(model)
    assert dataclasses.is_dataclass(model.config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.config.__setattr__(dataclasses.fields(model.config)[0].name, None)


def test_unknown_config_key_is_an_error():
    for family in FAMILIES:
        with pytest.raises(ConfigError, match="no_such_key"):
            parse_model_config({"name": family, "no_such_key": 1})


def test_phases_cover_every_parameter_once(model_and_data):
    model, _ = model_and_data
    seen = [id(p) for phase in model.phases() for p in phase.parameters()]
    assert len(seen) == len(set(seen)) or len(model.phases()) > 1
    assert set(seen) == {id(p) for p in model.parameters()}


def test_loss_is_finite_scalar_with_gradients(model_and_data):
    model, x = model_and_data
    for phase in model.phases():
        model.zero_grad()
        terms = model.loss(x, phase.name, generator=torch.Generator().manual_seed(0))
        assert terms["loss"].dim() == 0 and torch.isfinite(terms["loss"])
        assert all(v.dim() == 0 for v in terms.values())
        terms["loss"].backward()
        grads = [p.grad for p in phase.parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_loss_is_deterministic_given_the_generator(model_and_data):
    model, x = model_and_data
    phase = model.phases()[0].name
    a = model.loss(x, phase, generator=torch.Generator().manual_seed(5))["loss"]
    b = model.loss(x, phase, generator=torch.Generator().manual_seed(5))["loss"]
    assert torch.equal(a, b)


def test_capabilities_have_the_right_shapes(model_and_data):
    model, x = model_and_data
    model.eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        if isinstance(model, SupportsLikelihood):
            ll = model.log_likelihood(x, k=3, generator=g)
            assert ll.values.shape == (x.shape[0],) and torch.all(ll.values <= 0)
            assert ll.kind in ("exact", "iwae_bound", "elbo")
        if isinstance(model, SupportsSample):
            s = model.sample(3, generator=g)
            assert s.shape == (3, *x.shape[1:]) and s.min() >= 0 and s.max() <= 1
        if isinstance(model, SupportsReconstruct):
            assert model.reconstruct(x).shape == x.shape
        if isinstance(model, SupportsEncode) and isinstance(model, SupportsDecode):
            z = code_of(model.encode(x))
            assert model.decode(z).shape == x.shape
