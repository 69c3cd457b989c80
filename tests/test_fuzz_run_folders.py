"""Property: a run folder with one file mutated (model.safetensors, a checkpoint, config.json,
run.json, eval.json, metrics.jsonl) is read correctly or refused with a one-line GenlabError;
never another exception, never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fuzzkit import BUDGETS, fuzz
from runkit import train_small

from genlab import api
from genlab.errors import GenlabError
from genlab.reporting.report import summarise
from genlab.runs import RunDir, open_run
from genlab.training.checkpoint import check_state_matches, latest_checkpoint, load_state


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = train_small(tmp_path_factory.mktemp("fuzz-runs"), "eval.metrics=[elbo]")
    api.evaluate(run, progress=False)
    return run.path


def read_everything(path: Path) -> None:
    """What eval, sample, compare and --resume read from a run folder, without training."""
    run = RunDir.open(path)
    run.info()
    run.read_metrics()
    summarise(run)
    opened = open_run(path)
    model = opened.model
    checkpoint = latest_checkpoint(run.checkpoints)
    if checkpoint is not None:
        check_state_matches(load_state(checkpoint), model, checkpoint)


FILES = [
    "model.safetensors",
    "config.json",
    "run.json",
    "eval.json",
    "metrics.jsonl",
    "checkpoints/latest",
    "CHECKPOINT",
]


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("name", FILES)
def test_a_mutated_run_file_is_read_or_refused_in_one_line(trained, tmp_path, name, budget):
    if name == "CHECKPOINT":
        name = f"checkpoints/{latest_checkpoint(trained / 'checkpoints').name}"
    original = (trained / name).read_bytes()
    if name.endswith(".safetensors") and budget > 100:
        original = original[:4096] + original[-256:]  # keep the large cases quick

    def check(data: bytes) -> None:
        copy = tmp_path / "run"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(trained, copy)
        (copy / name).write_bytes(data)
        try:
            read_everything(copy)
        except GenlabError as error:
            assert "\n" not in str(error), str(error)

    fuzz(budget if not name.endswith(".safetensors") else min(budget, 300), original, check)
