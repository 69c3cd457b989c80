"""train.keep_best: the weights of the epoch with the lowest validation loss are exported,
training runs to its end, the selection resumes exactly, and eval can still score the final
weights."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genlab import api
from genlab.errors import ConfigError
from genlab.models import load_run_config
from genlab.training.trainer import Trainer

SCRIPT = [5.0, 4.0, 4.5, 3.9, 4.2, 6.0]  # validation losses by epoch: the best is epoch 4


@pytest.fixture
def scripted_validation(monkeypatch):
    original = Trainer.validate

    def scripted(self):
        out = original(self)
        out["loss"] = SCRIPT[self.epoch]  # the epoch being validated, counted from 0
        return out

    monkeypatch.setattr(Trainer, "validate", scripted)


def _weights(run) -> dict[str, torch.Tensor]:
    return load_file(str(run.model_path))


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_best_epochs_weights_are_exported_and_training_goes_on(
    tiny_overrides, scripted_validation
):
    overrides = [*tiny_overrides, "train.epochs=6", "train.sample_every=0"]
    run = api.train(load_run_config(None, [*overrides, "train.keep_best=true"]))
    info = run.info()
    assert info["epochs_completed"] == 6 and info["status"] == "finished"
    assert info["weights"] == "best" and info["best_epoch"] == 4
    assert info["exported_from"] == "best validation loss 3.9000 at epoch 4"
    # the same run stopped after epoch 4 has exactly the exported weights
    four = api.train(load_run_config(None, [*overrides, "train.epochs=4"]))
    assert _equal(_weights(run), _weights(four))
    assert four.info()["weights"] == "final"


def test_the_selection_resumes_exactly(tiny_overrides, scripted_validation):
    overrides = [*tiny_overrides, "train.epochs=6", "train.keep_best=true", "train.sample_every=0"]
    whole = api.train(load_run_config(None, overrides))
    part = api.train(load_run_config(None, [*overrides, "train.max_steps=100"]))  # in epoch 5
    assert part.info()["status"] == "interrupted (max_steps)"
    resumed = api.resume(part.path)
    assert resumed.info()["best_epoch"] == 4
    assert _equal(_weights(whole), _weights(resumed))


def test_eval_scores_the_exported_or_the_final_weights(tiny_overrides, scripted_validation):
    overrides = [*tiny_overrides, "train.epochs=6", "train.keep_best=true", "eval.metrics=[elbo]"]
    run = api.train(load_run_config(None, overrides))
    best = api.evaluate(run, progress=False)
    final = api.evaluate(run, progress=False, final=True)
    assert best["weights"] == "best validation loss 3.9000 at epoch 4"
    assert final["weights"].startswith("final weights at step ")
    assert best["metrics"]["elbo"]["value"] != final["metrics"]["elbo"]["value"]
    assert json.loads((run.path / "eval-final.json").read_text())["weights"] == final["weights"]
    assert json.loads(run.eval_path.read_text())["weights"] == best["weights"]


def test_keep_best_needs_one_validation_loss(tiny_overrides):
    gan = ["model.name=gan", "model.channels=[8,16]", "data.binarize=none"]
    base = [o for o in tiny_overrides if not o.startswith("model.")]
    with pytest.raises(ConfigError, match="train.keep_best needs one validation loss"):
        api.train(load_run_config(None, [*base, *gan, "train.keep_best=true"]))
    with pytest.raises(ConfigError, match="train.keep_best needs a validation split"):
        api.train(
            load_run_config(None, [*tiny_overrides, "train.keep_best=true", "data.val_fraction=0"])
        )
    runs = Path(load_run_config(None, tiny_overrides).runs_dir)
    assert not runs.exists() or not any(runs.iterdir())  # refused before anything was written
