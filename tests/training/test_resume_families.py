"""Resume is bitwise exact for every family's declared tiny configurations (the GAN has its
own, deeper test too), including a VAE whose KL warm-up is model state advanced after each
step and a GAN's average of weights."""

import pytest
import torch
from runkit import TINY_MODELS
from safetensors.torch import load_file

from genlab import api
from genlab.models import MODELS, load_run_config


def test_every_family_declares_a_tiny_configuration():
    declared = {o.split("=")[1] for v in TINY_MODELS.values() for o in v[:1]}
    assert declared == set(MODELS.names())


@pytest.mark.parametrize("variant", list(TINY_MODELS))
def test_resume_is_bitwise_identical(tiny_overrides, variant):
    base = [o for o in tiny_overrides if not o.startswith(("model.", "eval."))]
    overrides = [*base, *TINY_MODELS[variant], "train.sample_every=0"]
    full = api.train(load_run_config(None, overrides))
    part = api.train(load_run_config(None, [*overrides, "train.max_steps=30"]))  # mid-epoch 2
    assert part.info()["status"] == "interrupted (max_steps)"
    resumed = api.resume(part.path)
    a, b = load_file(str(full.model_path)), load_file(str(resumed.model_path))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
