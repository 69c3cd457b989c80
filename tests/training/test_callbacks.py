"""The Trainer's callbacks and the model state that schedules advance."""

import pytest
import torch

from genlab import api
from genlab.config import TrainConfig
from genlab.errors import RunError
from genlab.models import DataInfo, build_model, load_run_config
from genlab.runs import RunDir
from genlab.training.callbacks import Callback
from genlab.training.trainer import Trainer


class FixedBatches:
    """The same few batches every epoch (a deterministic objective)."""

    def __init__(self, images: torch.Tensor, batch: int) -> None:
        self.images, self.batch = images, batch

    def __len__(self) -> int:
        return -(-self.images.shape[0] // self.batch)

    def epoch(self, epoch: int, start_batch: int = 0):
        for index in range(start_batch, len(self)):
            yield self.images[index * self.batch : (index + 1) * self.batch], None


def binary_images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.bernoulli(
        torch.full((n, 1, 4, 4), 0.3), generator=torch.Generator().manual_seed(seed)
    )


def test_kl_warmup_is_model_state_and_validation_scores_the_final_objective():
    torch.manual_seed(0)
    model = build_model(
        {"name": "vae", "hidden": [16], "latent_dim": 2, "kl_warmup_steps": 10},
        DataInfo((1, 4, 4), 2),
    )
    x = binary_images(8)
    model.train()
    assert model.kl_weight() == 0.0  # no step taken yet
    for _ in range(5):
        model.after_step("main")
    assert model.kl_weight() == pytest.approx(0.5)
    assert int(model.state_dict()["kl_warmup_done"]) == 5  # checkpointed with the weights
    model.eval()
    assert model.kl_weight() == 1.0
    gen = torch.Generator().manual_seed(3)
    terms = model.loss(x, "main", generator=gen)
    # in eval mode the loss is the full negative ELBO, whatever the warm-up has reached
    assert terms["loss"].item() == pytest.approx((terms["recon"] + terms["kl"]).item(), rel=1e-6)
    model.train()
    gen = torch.Generator().manual_seed(3)
    half = model.loss(x, "main", generator=gen)
    expected = (half["recon"] + 0.5 * half["kl"]).item()
    assert half["loss"].item() == pytest.approx(expected, rel=1e-6)


def test_validation_during_warmup_uses_beta_target():
    """The Trainer's validation loss equals recon + beta * kl at the target beta, not the
    warm-up's current beta."""
    torch.manual_seed(0)
    model = build_model(
        {"name": "vae", "hidden": [16], "latent_dim": 2, "kl_warmup_steps": 1000},
        DataInfo((1, 4, 4), 2),
    )
    data = FixedBatches(binary_images(32), 8)
    trainer = Trainer(model, TrainConfig(epochs=1, progress=False), data, val=data)
    trainer.fit()
    val = trainer.validate()
    assert val["loss"] == pytest.approx(val["recon"] + val["kl"], rel=1e-6)
    assert int(model.kl_warmup_done) == 4  # one per optimiser step


class Recorder(Callback):
    state_key = "recorder"

    def __init__(self) -> None:
        self.events: list[str] = []
        self.counter = 0

    def on_fit_start(self, trainer):
        self.events.append("start")

    def on_step_end(self, trainer, terms, images):
        self.counter += 1
        self.events.append(f"step{trainer.step}")

    def on_epoch_end(self, trainer, record):
        self.events.append(f"epoch{record['epoch']}")
        record["recorder/steps"] = self.counter

    def on_fit_end(self, trainer, result):
        self.events.append("end")

    def state_dict(self):
        return {"counter": self.counter}

    def load_state_dict(self, state):
        self.counter = state["counter"]


def test_callbacks_hear_every_event_in_order_and_their_state_is_checkpointed():
    torch.manual_seed(0)
    model = build_model({"name": "ae", "code_dim": 3, "hidden": [8]}, DataInfo((1, 4, 4), 2))
    recorder = Recorder()
    trainer = Trainer(
        model,
        TrainConfig(epochs=2, progress=False),
        FixedBatches(binary_images(16), 8),
        callbacks=[recorder],
    )
    trainer.fit()
    assert recorder.events == [
        "start",
        "step1",
        "step2",
        "epoch1",
        "step3",
        "step4",
        "epoch2",
        "end",
    ]
    state = trainer.state_dict()
    assert state["callbacks"] == {"recorder": {"counter": 4}}
    again = Recorder()
    other = Trainer(
        model,
        TrainConfig(epochs=2, progress=False),
        FixedBatches(binary_images(16), 8),
        callbacks=[again],
    )
    other.load_state_dict(state)
    assert again.counter == 4 and other.step == 4


def test_resume_of_a_run_without_a_checkpoint_is_a_one_line_error(tiny_overrides):
    run = api.train(load_run_config(None, tiny_overrides))
    for path in run.checkpoints.iterdir():
        path.unlink()
    with pytest.raises(RunError, match="has no checkpoint to resume from"):
        api.resume(run.path)


def test_resume_removes_temporary_files_a_kill_left_behind(tiny_overrides):
    run = api.train(load_run_config(None, [*tiny_overrides, "train.max_steps=5"]))
    stale = run.checkpoints / ".state-000000099.123.tmp.safetensors"
    stale.write_bytes(b"half a checkpoint")
    resumed = api.resume(run.path)
    assert not stale.exists() and resumed.info()["status"] == "finished"


def test_run_numbers_are_unique_whatever_the_names(tmp_path):
    first = RunDir.create(tmp_path, "digits", "vae")
    second = RunDir.create(tmp_path, "digits", "ae")
    (tmp_path / ".numbers" / "00002").mkdir()  # claimed by another process, folder not yet made
    third = RunDir.create(tmp_path, "mnist", "gan")
    assert [r.path.name[:5] for r in (first, second, third)] == ["00000", "00001", "00003"]
