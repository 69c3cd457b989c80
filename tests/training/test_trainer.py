"""The Trainer: exact resume, divergence handling, early stopping, run-folder contents."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genlab import api
from genlab.errors import TrainingDiverged
from genlab.models import load_run_config
from genlab.models.latent.vae import VAE
from genlab.runs import RunDir
from genlab.training.callbacks import sample_diversity


def weights(run: RunDir) -> dict[str, torch.Tensor]:
    return load_file(str(run.model_path))


def assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("stop_at", [7, 23 + 5])  # mid-epoch 1; mid-epoch 2 (23 batches/epoch)
def test_resume_is_bitwise_identical(tiny_overrides, stop_at):
    full = api.train(load_run_config(None, tiny_overrides))
    part = api.train(load_run_config(None, [*tiny_overrides, f"train.max_steps={stop_at}"]))
    assert part.info()["status"] == "interrupted (max_steps)"
    assert part.info()["steps"] == stop_at
    resumed = api.resume(part.path)
    assert resumed.info()["status"] == "finished"
    assert_bitwise_equal(weights(full), weights(resumed))
    state_full = sorted(full.checkpoints.glob("state-*"))[-1]
    state_resumed = sorted(resumed.checkpoints.glob("state-*"))[-1]
    assert state_full.name == state_resumed.name


def test_resume_with_more_epochs_continues(tiny_overrides):
    run = api.train(load_run_config(None, [*tiny_overrides, "train.epochs=1"]))
    api.resume(run.path, ["train.epochs=2"])
    epochs = [r["epoch"] for r in run.read_metrics() if r["kind"] == "epoch"]
    assert epochs == [1, 2]


def test_run_folder_contents(tiny_config):
    run = api.train(tiny_config)
    names = {p.name for p in run.path.iterdir()}
    assert {
        "config.json",
        "run.json",
        "metrics.jsonl",
        "checkpoints",
        "samples",
        "model.safetensors",
    } <= names
    info = json.loads(run.info_path.read_text())
    assert info["seeds"]["train"] == 0
    assert info["data_info"] == {
        "shape": [1, 8, 8],
        "levels": 2,
        "classes": [str(i) for i in range(10)],
        "class_counts": info["data_info"]["class_counts"],
    }
    assert sum(info["data_info"]["class_counts"]) == info["data"]["train"]
    records = [r for r in run.read_metrics() if r["kind"] == "epoch"]
    assert len(records) == 2
    assert {"train/loss", "val/loss", "val/elbo", "images_per_s"} <= set(records[0])
    assert list(run.samples.glob("train-epoch-*.png"))
    assert not list(run.path.rglob("*.tmp"))
    assert run.path.name.startswith("00000-digits-vae")


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_config, monkeypatch):
    original = VAE.loss

    calls = []

    def loss_that_explodes(self, x, phase, *, generator=None):
        terms = original(self, x, phase, generator=generator)
        if self.training:
            calls.append(1)
            if len(calls) > 30:  # step 31, during epoch 2
                terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setattr(VAE, "loss", loss_that_explodes)
    with pytest.raises(
        TrainingDiverged, match=r"loss was nan \(not a finite number\) at step 31 .*state-000000023"
    ):
        api.train(tiny_config)
    (folder,) = Path(tiny_config.runs_dir).glob("0*")
    run = RunDir(folder)
    assert run.info()["status"] == "diverged"
    assert (run.checkpoints / "latest").read_text().strip() == "state-000000023.safetensors"
    # a way forward: the last good weights are exported, and a resume with a lower rate from
    # the same checkpoint trains past the step that diverged
    assert run.info()["exported_from"] == "last good checkpoint, step 23"
    assert api.evaluate(folder, ["eval.metrics=[elbo]"], progress=False)["metrics"]["elbo"]
    monkeypatch.setattr(VAE, "loss", original)
    resumed = api.resume(folder, ["train.lr=1e-4"])
    assert resumed.info()["status"] == "finished"


def test_early_stopping_exports_the_best_weights(tiny_overrides, monkeypatch):
    from genlab.training.trainer import Trainer

    losses = iter([5.0, 4.0, 4.5, 4.6, 9.0])
    original = Trainer.validate

    def scripted(self):
        out = original(self)
        out["loss"] = next(losses)
        return out

    monkeypatch.setattr(Trainer, "validate", scripted)
    cfg = load_run_config(
        None, [*tiny_overrides, "train.epochs=5", "train.early_stopping_patience=2"]
    )
    run = api.train(cfg)
    info = run.info()
    assert info["stopped_early"] and info["epochs_completed"] == 4
    assert info["exported_from"] == "best validation loss 4.0000 at epoch 2"
    assert_bitwise_equal(weights(run), load_file(str(run.checkpoints / "best-model.safetensors")))


def test_a_time_budget_stops_training_and_exports_the_weights(tiny_overrides):
    run = api.train(load_run_config(None, [*tiny_overrides, "train.max_seconds=0.001"]))
    info = run.info()
    assert info["status"] == "interrupted (max_seconds)" and info["steps"] == 1
    assert run.model_path.exists()


def test_sample_diversity_measures_pairwise_distance():
    same = torch.full((5, 1, 4, 4), 0.3)
    assert sample_diversity(same) == 0.0
    black_white = torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4)])
    assert sample_diversity(black_white) == pytest.approx(1.0)


def test_collapsed_samples_raise_a_warning_and_are_logged(tiny_overrides, monkeypatch):
    def collapsed(self, n, *, generator=None, progress=False):  # noqa: ANN001, ANN202
        return torch.full((n, *self.data_info.shape), 0.5)

    monkeypatch.setattr(VAE, "sample", collapsed)
    with pytest.warns(RuntimeWarning, match="collapsed"):
        run = api.train(load_run_config(None, [*tiny_overrides, "train.epochs=1"]))
    epochs = [r for r in run.read_metrics() if r["kind"] == "epoch"]
    assert epochs[-1]["samples/pairwise_rms"] == 0.0
