"""A checkpoint written on another kind of device resumes here: the weights, optimiser and
position load; the noise generator (another RNG algorithm) restarts from (seed, step), and the
resume says it is no longer bitwise the uninterrupted run."""

from __future__ import annotations

import torch
from runkit import train_small

from genlab import api
from genlab.training.checkpoint import latest_checkpoint, load_state, save_state


def test_a_cuda_checkpoint_resumes_on_the_cpu_with_a_fresh_noise_stream(tmp_path, capsys):
    run = train_small(tmp_path, "train.epochs=2", "train.max_steps=20")
    checkpoint = latest_checkpoint(run.checkpoints)
    assert checkpoint is not None
    state = load_state(checkpoint)
    assert state["rng"]["device"] == "cpu"
    # what a CUDA run stores: its device type and a Philox state (16 bytes), plus CUDA's RNG
    state["rng"]["device"] = "cuda"
    state["rng"]["generator"] = torch.zeros(16, dtype=torch.uint8)
    state["rng"]["cuda"] = torch.zeros(16, dtype=torch.uint8)
    save_state(checkpoint, state)
    resumed = api.resume(run.path, ["train.progress=false"])
    assert "not bitwise the uninterrupted run" in capsys.readouterr().out
    assert resumed.info()["status"] == "finished"
    final = load_state(latest_checkpoint(resumed.checkpoints))
    assert final["progress"]["epoch"] == 2 and final["progress"]["step"] > 20  # went on
    assert final["rng"]["device"] == "cpu"  # and holds this device's generator now
