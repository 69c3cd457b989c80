"""A GAN resumes exactly: two optimisers, two schedules, the EMA and batch-norm statistics."""

import pytest
import torch
from safetensors.torch import load_file

from genlab import api
from genlab.models import load_run_config
from genlab.training.checkpoint import load_state

GAN_SETTINGS = {
    "dcgan": ["model.name=gan", "model.channels=[8,16]", "train.ema_decay=0.9"],
    "mlp-wgan-sn": [
        "model.name=gan",
        "model.architecture=mlp",
        "model.loss=wgan_gp",
        "model.spectral_norm=true",
        "model.n_critic=2",
        "model.betas=[0.0,0.9]",
    ],
}


def flatten(node, prefix: str = "") -> dict[str, object]:
    """Every leaf of a nested state (dicts, lists, tuples) under a dotted path."""
    if isinstance(node, dict):
        return {
            k: v for key, sub in node.items() for k, v in flatten(sub, f"{prefix}{key}.").items()
        }
    if isinstance(node, (list, tuple)):
        return {
            k: v for i, sub in enumerate(node) for k, v in flatten(sub, f"{prefix}{i}.").items()
        }
    return {prefix.rstrip("."): node}


def assert_states_identical(a: dict, b: dict) -> None:
    flat_a, flat_b = flatten(a), flatten(b)
    assert flat_a.keys() == flat_b.keys()
    for key, value in flat_a.items():
        other = flat_b[key]
        if isinstance(value, torch.Tensor):
            assert value.dtype == other.dtype and torch.equal(value, other), key
        else:
            assert value == other, key


@pytest.mark.filterwarnings("ignore:epoch 1. the 64 samples have collapsed")
@pytest.mark.parametrize("variant", list(GAN_SETTINGS))
def test_gan_resume_is_bitwise_identical(tiny_overrides, variant):
    overrides = [*tiny_overrides, *GAN_SETTINGS[variant]]
    full = api.train(load_run_config(None, overrides))
    part = api.train(load_run_config(None, [*overrides, "train.max_steps=30"]))  # mid-epoch 2
    assert part.info()["status"] == "interrupted (max_steps)"
    resumed = api.resume(part.path)
    assert resumed.info()["status"] == "finished"

    state_full = load_state(sorted(full.checkpoints.glob("state-*"))[-1])
    state_resumed = load_state(sorted(resumed.checkpoints.glob("state-*"))[-1])
    assert set(state_full["optimizers"]) == {"discriminator", "generator"}
    assert any(k.startswith("ema.") for k in state_full["model"])
    assert_states_identical(state_full, state_resumed)

    weights_full = load_file(str(full.model_path))
    weights_resumed = load_file(str(resumed.model_path))
    assert weights_full.keys() == weights_resumed.keys()
    assert all(torch.equal(weights_full[k], weights_resumed[k]) for k in weights_full)
    # the EMA moved away from the generator it averages
    ema_keys = [k for k in weights_full if k.startswith("ema.avg_")]
    assert ema_keys and int(weights_full["ema.updates"]) == full.info()["steps"]

    records = [r for r in full.read_metrics() if r["kind"] == "epoch"]
    assert {"train/discriminator/loss", "train/generator/loss", "val/generator/loss"} <= set(
        records[-1]
    )
    assert "samples/pairwise_rms" in records[-1]
