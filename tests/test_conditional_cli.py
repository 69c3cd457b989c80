"""The command line of conditional runs: training on labels, sampling by class (a name or an
index, one labelled row per class), interpolating within a class, and the one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.cli import main
from genlab.imagegrid import grid_array


def run_cli(args: list, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def sets(*overrides: str) -> list[str]:
    return [x for o in overrides for x in ("--set", o)]


@pytest.fixture
def conditional_run(tmp_path: Path, tiny_overrides: list, capsys: pytest.CaptureFixture) -> Path:
    torch.set_num_threads(1)
    code, _, err = run_cli(["train", *sets(*tiny_overrides, "model.conditional=true")], capsys)
    assert code == 0, err
    (run,) = (tmp_path / "runs").glob("0*")
    return run


def test_a_conditional_run_records_its_classes(conditional_run: Path) -> None:
    info = json.loads((conditional_run / "run.json").read_text())["data_info"]
    assert info["classes"] == [str(i) for i in range(10)] and len(info["class_counts"]) == 10
    config = json.loads((conditional_run / "config.json").read_text())
    assert config["model"]["conditional"] is True


def test_sampling_by_class(conditional_run: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run_cli(["sample", conditional_run, "--per-class", 3], capsys)
    assert code == 0, err
    grid = Path(out.strip().splitlines()[-1])
    assert grid.name == "sample-seed0-per-class3.png"
    plain = grid_array(torch.zeros(30, 1, 8, 8), 3)  # ten rows of three, and a label margin
    picture = np.asarray(Image.open(grid))
    assert picture.shape[0] == plain.shape[0] and picture.shape[1] > plain.shape[1]

    code, out, err = run_cli(["sample", conditional_run, "--class", "7", "-n", 4], capsys)
    assert code == 0, err
    assert Path(out.strip().splitlines()[-1]).name == "sample-seed0-class7-7.png"

    code, out, err = run_cli(["interpolate", conditional_run, "--class", 3, "--pairs", 2], capsys)
    assert code == 0, err
    assert Path(out.strip().splitlines()[-1]).name == "interpolate-seed0-class3-3.png"
    code, out, err = run_cli(["reconstruct", conditional_run, "-n", 4], capsys)
    assert code == 0, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sample", "RUN", "--class", "ten"], "--class 'ten': no such class; the run's classes"),
        (["sample", "RUN", "--class", "1", "--per-class", "2"], "do not go together"),
        (["sample", "RUN", "--guidance", "2"], "--guidance is classifier-free guidance"),
        (["interpolate", "RUN"], "interpolates within one class: give --class"),
        (["embed", "RUN"], "carry the label itself"),
    ],
)
def test_refusals_of_a_conditional_run(
    conditional_run: Path, capsys: pytest.CaptureFixture, args: list, message: str
) -> None:
    before = sorted(p.name for p in (conditional_run / "samples").iterdir())
    code, out, err = run_cli([conditional_run if a == "RUN" else a for a in args], capsys)
    assert code == 2 and out == ""
    assert err.startswith("genlab: error: ") and message in err and err.count("\n") == 1
    assert sorted(p.name for p in (conditional_run / "samples").iterdir()) == before


def test_class_on_an_unconditional_run_is_refused(
    tmp_path: Path, tiny_overrides: list, capsys: pytest.CaptureFixture
) -> None:
    torch.set_num_threads(1)
    assert run_cli(["train", *sets(*tiny_overrides)], capsys)[0] == 0
    (run,) = (tmp_path / "runs").glob("0*")
    code, _, err = run_cli(["sample", run, "--per-class", "2"], capsys)
    assert code == 2 and "--per-class needs a conditional run" in err


def test_conditional_without_labels_or_family_is_refused_before_anything_is_written(
    tmp_path: Path, tiny_overrides: list, capsys: pytest.CaptureFixture
) -> None:
    data = tmp_path / "unlabelled.npz"
    np.savez(data, images=np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype=np.uint8))
    unlabelled = [*tiny_overrides, "data.name=npz", f"data.path={data}", "model.conditional=true"]
    code, out, err = run_cli(["train", *sets(*unlabelled)], capsys)
    assert code == 2 and "model.conditional: the data set has no class labels" in err
    rest = [o for o in tiny_overrides if not o.startswith("model.")]
    rbm = [*rest, "model.name=rbm", "model.hidden=8", "model.conditional=true"]
    code, out, err = run_cli(["train", *sets(*rbm)], capsys)
    assert code == 2 and "the rbm family cannot be conditioned on a class label" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
