"""A crash never loses a run: kills, signals, a full disk, two processes on one run, resumes
that clean up after a killed process, and a way forward after a divergence."""

import errno
import importlib.util
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genlab import api
from genlab.cli import main
from genlab.errors import RunError
from genlab.models import load_run_config
from genlab.runs.guard import training_lock
from genlab.training.checkpoint import latest_checkpoint, load_state

HARNESS = Path(__file__).resolve().parents[2] / "benchmarks" / "crash_harness.py"


def harness():
    spec = importlib.util.spec_from_file_location("crash_harness", HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sigkill_at_random_moments_then_resume_equals_the_uninterrupted_run(tmp_path):
    result = harness().under_fire("vae", 3, tmp_path, random.Random(1))
    assert result["kills"] == 3 and result["all_finished"]
    assert result["corrupt_files_found"] == 0 and result["orphaned_temporaries"] == []
    assert result["duplicate_metric_records"] == 0 and result["bitwise_equal"]
    assert result["equal_epoch_records"]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["vae", "gan", "pixelcnn"])
def test_many_kills(tmp_path, family):
    result = harness().under_fire(family, 10, tmp_path, random.Random(2))
    assert result["corrupt_files_found"] == 0 and result["orphaned_temporaries"] == []
    assert result["duplicate_metric_records"] == 0 and result["bitwise_equal"]
    assert result["equal_epoch_records"]


def test_sigterm_stops_with_a_checkpoint_and_resume_finishes_exactly(tmp_path):
    h = harness()
    overrides = [*h.COMMON, *h.FAMILIES["vae"], "train.checkpoint_every_steps=1000"]
    process = h.genlab(h.train_args(overrides, tmp_path / "runs"))
    while not list((tmp_path / "runs").glob("0*/metrics.jsonl")):
        assert process.poll() is None
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    (run,) = (tmp_path / "runs").glob("0*")
    assert process.returncode == 143, err
    assert b"stopped by SIGTERM with a checkpoint" in err
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted (sigterm)"
    assert latest_checkpoint(run / "checkpoints") is not None
    resumed = subprocess.run(
        [sys.executable, "-m", "genlab", "train", "--resume", str(run)], capture_output=True
    )
    assert resumed.returncode == 0, resumed.stderr
    h.finish(h.genlab(h.train_args(overrides, tmp_path / "reference")))
    (reference,) = (tmp_path / "reference").glob("0*")
    assert h.same_weights(run / "model.safetensors", reference / "model.safetensors")


def tiny(tmp_path, *extra):
    return load_run_config(
        None,
        [
            "data.name=digits",
            "model.hidden=[16]",
            "model.latent_dim=2",
            "train.epochs=3",
            "train.batch_size=64",
            "train.progress=false",
            f"runs_dir={tmp_path / 'runs'}",
            *extra,
        ],
    )


def test_resume_cleans_up_after_a_killed_process(tmp_path):
    run = api.train(tiny(tmp_path, "train.max_steps=30"))  # stops mid-epoch 2, checkpointed
    step = load_state(latest_checkpoint(run.checkpoints))["progress"]["step"]
    # what a process killed later would leave: records past the checkpoint, a torn line,
    # a temporary checkpoint, and results of weights that the resume replaces
    with run.metrics_path.open("a") as fh:
        fh.write(json.dumps({"kind": "train", "step": step + 5}) + "\n" + '{"kind": "tra')
    (run.checkpoints / ".state-000000099.123.tmp.safetensors").write_bytes(b"x" * 100)
    (run.checkpoints / ".tmp2Vf5Y9").write_bytes(b"y" * 100)  # the safetensors library's own
    (run.path / "eval.json").write_text("{}")
    (run.samples / "sample-seed0.png").write_bytes(b"png")
    api.resume(run.path)
    records = run.read_metrics()
    keys = [(r["kind"], r["step"]) for r in records]
    assert len(keys) == len(set(keys)) and max(r["step"] for r in records) == 3 * 23
    assert not list(run.checkpoints.glob(".*"))
    assert not (run.path / "eval.json").exists() and not (run.samples / "sample-seed0.png").exists()
    assert list(run.samples.glob("train-epoch-*.png"))  # training's own history stays


def test_two_trainings_of_one_run_are_refused_by_a_lock(tmp_path, capsys):
    run = api.train(tiny(tmp_path, "train.max_steps=5"))
    with training_lock(run):
        with pytest.raises(RunError, match="being trained by another process"):
            api.resume(run.path)
        assert main(["train", "--resume", str(run.path)]) == 2
    assert "being trained by another process" in capsys.readouterr().err
    api.resume(run.path)  # the lock is released with its holder


def test_checkpoints_every_steps_and_resume_with_a_lower_rate(tmp_path):
    run = api.train(tiny(tmp_path, "train.checkpoint_every_steps=10", "train.max_steps=30"))
    steps = sorted(int(p.stem.split("-")[1]) for p in run.checkpoints.glob("state-*"))
    assert steps == [23, 30]  # every 10 steps and at the end of epoch 1; the newest two kept
    api.resume(run.path, ["train.lr=1e-4", "train.grad_clip=1.0"])
    epochs = [r for r in run.read_metrics() if r["kind"] == "epoch"]
    assert epochs[-1]["lr"] == pytest.approx(1e-4)
    assert json.loads(run.config_path.read_text())["train"]["lr"] == pytest.approx(1e-4)


def test_a_full_disk_fails_in_one_line_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    run = api.train(tiny(tmp_path, "train.max_steps=30"))
    good = latest_checkpoint(run.checkpoints)
    before = load_file(str(good))
    import genlab.training.checkpoint as checkpoint

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(run.checkpoints / "x"))

    monkeypatch.setattr(checkpoint, "save_state", full)
    assert main(["train", "--resume", str(run.path), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("genlab: error:") and "No space left" in err[0]
    assert latest_checkpoint(run.checkpoints) == good
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C works again
    after = load_file(str(good))
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_two_evaluations_of_one_run_leave_a_valid_eval_json(tmp_path):
    run = api.train(tiny(tmp_path, "train.max_steps=5"))
    command = [sys.executable, "-m", "genlab", "eval", str(run.path), "--no-progress"]
    command += ["--set", "eval.metrics=[elbo,nll]", "--set", "eval.iwae_k=5"]
    first, second = subprocess.Popen(command), subprocess.Popen(command)
    assert first.wait(timeout=300) == 0 and second.wait(timeout=300) == 0
    results = json.loads((run.path / "eval.json").read_text())
    assert set(results["metrics"]) == {"elbo", "nll_iwae_k5"}
    assert not [p for p in run.path.iterdir() if p.name.startswith(".eval")]
