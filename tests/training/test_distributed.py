"""Many processes on the CPU: torchrun with gloo, checked against one process.

Each test starts real processes through ``python -m torch.distributed.run`` (torchrun), so
it exercises what a user runs: rendezvous, DDP's gradient reduction, sharding of the global
batch, rank 0 writing the run folder alone, checkpoints holding every rank's state.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from runkit import TINY_MODELS
from safetensors.torch import load_file

from genlab import api
from genlab.config import TrainConfig
from genlab.data.stream import BatchStream
from genlab.models import DataInfo, build_model, load_run_config
from genlab.training.callbacks import SignalStop
from genlab.training.distributed import ProcessGroup
from genlab.training.trainer import Trainer

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="this torch build has no torch.distributed"
)

AE = [
    "data.name=digits",
    "model.name=ae",
    "model.hidden=[32]",
    "model.code_dim=8",
    "train.batch_size=64",
    "train.epochs=2",
    "train.lr=0.003",
    "train.sample_every=0",
]
VAE = [
    "data.name=digits",
    "model.hidden=[32]",
    "model.latent_dim=4",
    "train.batch_size=64",
    "train.epochs=2",
    "train.sample_every=0",
]
GAN = [
    "--config",
    "configs/gan_mlp_digits.yaml",
    "--set",
    "model.hidden=[32,32]",
    "--set",
    "train.epochs=2",
    "--set",
    "train.sample_every=0",
]
ROOT = Path(__file__).resolve().parents[2]


def _sets(overrides: list[str]) -> list[str]:
    return [token for o in overrides for token in ("--set", o)]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"))
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def torchrun(
    args: list[str], *, nproc: int = 2, launcher: list[str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    launcher = launcher or ["--standalone", "--nproc-per-node", str(nproc)]
    command = [sys.executable, "-m", "torch.distributed.run", *launcher, "-m", "genlab", *args]
    return subprocess.run(
        command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout
    )


def _only_run(runs: Path) -> Path:
    folders = [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(folders) == 1, folders
    return folders[0]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def _train_one_process(tmp: Path, overrides: list[str]) -> Path:
    torch.set_num_threads(1)
    config = load_run_config(None, [*overrides, "train.progress=false", f"runs_dir={tmp}"])
    return api.train(config).path


def test_two_processes_with_half_batches_reach_the_parameters_of_one_process(tmp_path):
    """An autoencoder's objective is deterministic: DDP's mean of the two shards' gradients
    is the full batch's gradient, including the short last batch (weighted by shard size)."""
    single = _train_one_process(tmp_path / "one", AE)
    done = torchrun(["train", "--no-progress", "--runs-dir", str(tmp_path / "two"), *_sets(AE)])
    assert done.returncode == 0, done.stderr[-3000:]
    double = _only_run(tmp_path / "two")
    a, b = _weights(single), _weights(double)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5)
    info = json.loads((double / "run.json").read_text())
    assert info["processes"] == 2 and info["status"] == "finished"
    logged = [json.loads(line) for line in (double / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in logged if r.get("kind") == "epoch"]
    assert len(epochs) == 2  # one writer: each epoch logged once
    reference = [
        json.loads(line)
        for line in (single / "metrics.jsonl").read_text().splitlines()
        if '"epoch"' in line
    ]
    reference = [r for r in reference if r.get("kind") == "epoch"]
    for mine, theirs in zip(epochs, reference, strict=True):  # metrics reduced over ranks
        assert mine["val/loss"] == pytest.approx(theirs["val/loss"], rel=1e-4)
        assert mine["train/loss"] == pytest.approx(theirs["train/loss"], rel=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["vae", "gan"])
def test_two_processes_stopped_and_resumed_equal_the_uninterrupted_two(tmp_path, family):
    args = _sets(VAE) if family == "vae" else GAN
    cut = ["--set", "train.max_steps=23", "--set", "train.checkpoint_every_steps=10"]
    _stopped_and_resumed_equals_whole(tmp_path, args, cut)


def _stopped_and_resumed_equals_whole(tmp_path: Path, args: list[str], cut: list[str]) -> None:
    """Train ``args`` whole, and again cut short by ``cut`` then resumed: equal weights."""
    whole = torchrun(["train", "--no-progress", "--runs-dir", str(tmp_path / "a"), *args])
    assert whole.returncode == 0, whole.stderr[-3000:]
    part = torchrun(["train", "--no-progress", "--runs-dir", str(tmp_path / "b"), *args, *cut])
    assert part.returncode == 0, part.stderr[-3000:]
    stopped = _only_run(tmp_path / "b")
    resumed = torchrun(["train", "--no-progress", "--resume", str(stopped)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = _weights(_only_run(tmp_path / "a")), _weights(stopped)
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.slow
def test_a_sigterm_stops_every_rank_with_a_checkpoint_and_resume_is_exact(tmp_path):
    args = _sets([*VAE, "train.epochs=200"])  # long enough to be stopped midway
    whole = torchrun(["train", "--no-progress", "--runs-dir", str(tmp_path / "a"), *args])
    assert whole.returncode == 0, whole.stderr[-3000:]
    runs = tmp_path / "b"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", "-m", "genlab", "train", "--no-progress"]
    command += ["--runs-dir", str(runs), *args]
    process = subprocess.Popen(
        command, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until training has logged a few epochs
        logs = list(runs.glob("*/metrics.jsonl")) if runs.exists() else []
        if logs and logs[0].read_text().count('"kind": "epoch"') >= 3:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    stopped = _only_run(runs)
    info = json.loads((stopped / "run.json").read_text())
    assert info["status"] == "interrupted (sigterm)", (info["status"], err[-3000:])
    resumed = torchrun(["train", "--no-progress", "--resume", str(stopped)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = _weights(_only_run(tmp_path / "a")), _weights(stopped)
    for key in a:
        assert torch.equal(a[key], b[key]), key


class _RecordingGroup(ProcessGroup):
    """Rank 0 of a one-process gloo group that records what it leads; after leading step
    ``signal_at`` it sends itself SIGTERM, as if the signal came while it waited for the
    others (the moment between two events)."""

    def __init__(self, signal_at: int) -> None:
        super().__init__(0, 1, 0, "gloo", torch.distributed.group.WORLD)
        self.trainer: Trainer | None = None
        self.signal_at = signal_at
        self.led: list[tuple[int, tuple[str, bool] | None]] = []

    def lead(self, decision: tuple[str, bool] | None) -> None:
        super().lead(decision)
        assert self.trainer is not None
        self.led.append((self.trainer.step, decision))
        if self.trainer.step == self.signal_at and decision is None:
            os.kill(os.getpid(), signal.SIGTERM)


def test_a_signal_between_two_events_stops_rank_0_only_where_it_tells_the_others():
    """Rank 0 must not leave its loop at a step where it told the other ranks to go on:
    they would run the next step's collectives alone and every rank would hang."""
    before = signal.getsignal(signal.SIGTERM)
    store = torch.distributed.HashStore()
    torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        images = (torch.rand(64, 1, 4, 4) > 0.5).float()
        batches = BatchStream(images, None, mode="binary", batch_size=8, shuffle=False)
        model = build_model({"name": "ae", "code_dim": 3, "hidden": [8]}, DataInfo((1, 4, 4), 2))
        group = _RecordingGroup(signal_at=3)
        trainer = Trainer(
            model, TrainConfig(epochs=2, progress=False), batches, None, [SignalStop()], group=group
        )
        group.trainer = trainer
        result = trainer.fit()
    finally:
        torch.distributed.destroy_process_group()
    assert result.stop_reason == "sigterm" and not result.finished
    assert trainer.step == 4  # the stop is asked for at the next event, the end of step 4
    assert [d for s, d in group.led if s == trainer.step] == [("sigterm", True)] * 2
    assert signal.getsignal(signal.SIGTERM) is before  # restored after the fit


def test_a_checkpoint_of_two_processes_does_not_resume_on_one(tmp_path, capsys):
    cut = [*VAE, "train.max_steps=5"]
    done = torchrun(["train", "--no-progress", "--runs-dir", str(tmp_path), *_sets(cut)])
    assert done.returncode == 0, done.stderr[-3000:]
    from genlab.cli import main

    assert main(["train", "--resume", str(_only_run(tmp_path)), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "written by 2 process(es)" in err[0] and "--nproc 2" in err[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_nodes_on_localhost_through_the_c10d_rendezvous(tmp_path):
    """Two torchrun agents, one process each, meet at a c10d rendezvous on 127.0.0.1 — what
    two machines do with --nnodes 2 --rdzv-endpoint HOST:PORT."""
    single = _train_one_process(tmp_path / "one", AE)
    port = _free_port()
    launcher = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d"]
    launcher += ["--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "genlab-test"]
    args = ["train", "--no-progress", "--runs-dir", str(tmp_path / "two"), *_sets(AE)]
    command = [sys.executable, "-m", "torch.distributed.run", *launcher, "-m", "genlab", *args]
    nodes = [
        subprocess.Popen(
            command, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [node.communicate(timeout=240) for node in nodes]
    for node, (_, err) in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, err.decode()[-3000:]
    a, b = _weights(single), _weights(_only_run(tmp_path / "two"))
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5)


def test_nproc_launches_torchrun_and_checks_the_batch_first(tmp_path, capsys):
    from genlab.cli import main

    bad = ["train", "--nproc", "3", "--runs-dir", str(tmp_path), *_sets(AE)]
    assert main(bad) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "must divide by 3" in err[0]
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
    env = _env()
    done = subprocess.run(
        [sys.executable, "-m", "genlab", "train", "--nproc", "2", "--no-progress"]
        + ["--runs-dir", str(tmp_path), *_sets([*AE, "train.epochs=1"])],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("run: ") == 1  # rank 0 reports
    info = json.loads((_only_run(tmp_path) / "run.json").read_text())
    assert info["processes"] == 2


FAMILY_ARGS = {
    **{k: TINY_MODELS[k] for k in ("ae", "pixelcnn", "gated_pixelcnn", "pixelrnn", "rbm_pcd")},
    "dcgan": ["model.name=gan", "model.channels=[8,16]", "model.latent_dim=8"],
}


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILY_ARGS))
def test_every_family_trains_on_two_processes_and_resumes_exactly(tmp_path, family):
    """Per-rank buffers (the RBM's persistent chains, batch-norm statistics) and every rank's
    noise generator come back from the checkpoint."""
    args = _sets(["data.name=digits", *FAMILY_ARGS[family], "train.batch_size=64"])
    args += _sets(["train.epochs=2", "train.sample_every=0"])
    _stopped_and_resumed_equals_whole(tmp_path, args, _sets(["train.max_steps=30"]))
