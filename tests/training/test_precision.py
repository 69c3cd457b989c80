"""Speed features against fp32 eager on the CPU: bf16 and fp16 autocast, channels_last and
torch.compile agree with the plain computation within the tolerances stated here.

Stated tolerances, with what was measured on a 2-core CPU (digits, batch 64):
- channels_last: the same arithmetic in another memory order: losses within 1e-5 relative
  (seen: 2e-7), parameters after 10 Adam steps within 1e-4 (seen: 4.4e-5, PixelCNN). Glow's
  zero-initialised coupling outputs start with near-zero gradients, which Adam scales up to
  steps of about the learning rate whose sign reordered sums can flip: its parameters agree
  within 3e-3 (seen: 1.5e-3, an output bias) while its losses agree within 1e-5 (2e-6).
- torch.compile: fused kernels reorder float sums: losses within 1e-4 relative, parameters
  within 1e-4 after 10 steps.
- bf16 autocast (8 bits of mantissa): the first loss within 2 % of fp32 (seen: 0.02 %), and
  after 30 steps the loss within 3 % of fp32's (seen: 0.06 %).
- fp16 autocast with the gradient scaler: the same bounds (seen: 0.0007 % and 1.7 %, the
  PixelCNN's 30th step).
"""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch
from runkit import TINY_MODELS

from genlab.config import TrainConfig
from genlab.data import load_data
from genlab.models import MODELS, DataInfo, build_model, load_run_config
from genlab.runs.folder import data_info_of
from genlab.training.step import StepEngine, has_convolutions
from genlab.training.trainer import Trainer

FAMILIES = TINY_MODELS  # every family's declared tiny configurations
PARAMETER_TOLERANCE = {"glow": 3e-3}  # channels_last, after 10 steps: see above


def _convolutional() -> list[str]:
    """The declared variants whose networks have convolutions (channels_last changes them)."""
    found = []
    for variant, overrides in TINY_MODELS.items():
        config = load_run_config(None, ["data.name=digits", *overrides])
        levels = 256 if config.data.binarize == "none" else 2
        with torch.device("meta"):
            info = DataInfo((1, 8, 8), levels, tuple("0123456789"), (1,) * 10)
            if has_convolutions(build_model(config.model, info)):
                found.append(variant)
    return found


def _setup(overrides: list[str], **train: object) -> tuple[torch.nn.Module, TrainConfig, object]:
    config = load_run_config(None, ["data.name=digits", *overrides, "train.progress=false"])
    data = load_data(config.data, progress=False)
    torch.manual_seed(0)
    model = build_model(config.model, data_info_of(data))
    cfg = dataclasses.replace(config.train, batch_size=64, **train)  # type: ignore[arg-type]
    return model, cfg, data


def _train(overrides: list[str], steps: int, **train: object) -> tuple[list[float], dict]:
    model, cfg, data = _setup(overrides, **train)
    if cfg.channels_last and has_convolutions(model):
        model = model.to(memory_format=torch.channels_last)
    stream = data.stream("train", cfg.batch_size, shuffle=True, seed=0)
    trainer = Trainer(model, dataclasses.replace(cfg, max_steps=steps), stream)
    losses: list[float] = []

    class Record:
        state_key = None

        def __getattr__(self, name: str):  # every other event: nothing
            return lambda *args: None

        def on_step_end(self, trainer, terms, images):
            key = "loss" if "loss" in terms else next(k for k in terms if k.endswith("/loss"))
            losses.append(float(terms[key]))
            if trainer.step >= steps:
                trainer.request_stop("max_steps", interrupt=True)

    trainer.callbacks.append(Record())
    trainer.fit()
    return losses, {k: v.detach().clone() for k, v in model.state_dict().items()}


def _close_states(a: dict, b: dict, atol: float) -> None:
    for key in a:
        if a[key].is_floating_point():
            torch.testing.assert_close(b[key], a[key], rtol=0, atol=atol, msg=key)


@pytest.mark.parametrize("family", _convolutional())
def test_channels_last_agrees_with_the_default_layout(family):
    ref_losses, ref_state = _train(FAMILIES[family], 10)
    losses, state = _train(FAMILIES[family], 10, channels_last=True)
    assert losses == pytest.approx(ref_losses, rel=1e-5)
    _close_states(ref_state, state, PARAMETER_TOLERANCE.get(family, 1e-4))


def _likelihood_trained() -> list[str]:
    """Variants of families trained on a likelihood or its bound: their loss falls steadily,
    so 30 steps in low precision can be held against fp32's (a GAN's losses need not fall)."""
    return [
        variant
        for variant, overrides in TINY_MODELS.items()
        if MODELS.get(overrides[0].split("=")[1]).traits.density in ("exact", "bound")
    ]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("family", _likelihood_trained())
def test_mixed_precision_trains_like_fp32(family, precision):
    ref, _ = _train(FAMILIES[family], 30)
    low, state = _train(FAMILIES[family], 30, precision=precision)
    assert low[0] == pytest.approx(ref[0], rel=0.02)
    assert ref[-1] < ref[0] and low[-1] < low[0]
    assert low[-1] == pytest.approx(ref[-1], rel=0.03)
    assert all(v.dtype in (torch.float32, torch.int64, torch.bool) for v in state.values())


def test_fp16_uses_a_gradient_scaler_that_is_checkpointed():
    model, cfg, _ = _setup(FAMILIES["vae_conv"], precision="fp16")
    engine = StepEngine(model, cfg, torch.device("cpu"), None, 1)
    assert engine.scaler.is_enabled() and "scaler" in engine.state_dict()
    model, cfg, _ = _setup(FAMILIES["vae_conv"], precision="bf16")
    assert StepEngine(model, cfg, torch.device("cpu"), None, 1).state_dict() == {}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="torch.compile on the CPU needs g++")
def test_torch_compile_agrees_with_eager():
    torch._dynamo.reset()
    ref_losses, ref_state = _train(FAMILIES["vae_conv"], 10)
    losses, state = _train(FAMILIES["vae_conv"], 10, compile=True)
    assert losses == pytest.approx(ref_losses, rel=1e-4)
    _close_states(ref_state, state, 1e-4)
