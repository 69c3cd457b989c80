"""CLI smoke runs of the autoregressive families: train on digits, exact NLL, sampling."""

import json
import math
from pathlib import Path

import pytest

from genlab.cli import main


@pytest.mark.parametrize("family", ["gated_pixelcnn", "pixelrnn", "pixelcnn"])
def test_train_eval_sample(tmp_path, capsys, family):
    overrides = [
        "data.name=digits",
        "data.binarize=static",
        f"model.name={family}",
        "model.channels=8",
        "model.head_hidden=16",
        "train.epochs=1",
        "train.batch_size=128",
        "train.progress=false",
        "train.threads=1",
        "eval.metrics=[nll]",
        f"runs_dir={tmp_path / 'runs'}",
    ]
    sets = [x for o in overrides for x in ("--set", o)]
    assert main(["train", *sets]) == 0, capsys.readouterr().err
    (run,) = list((tmp_path / "runs").glob("0*"))
    assert list((run / "samples").glob("train-epoch-*.png"))  # the per-epoch grid

    assert main(["eval", str(run), "--no-progress"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "nll_exact" in out
    nll = json.loads((run / "eval.json").read_text())["metrics"]["nll_exact"]
    assert nll["kind"] == "exact" and nll["unit"] == "nats"
    assert 0 < nll["value"] < 64 * math.log(2)  # better than a uniform coin per pixel
    assert nll["bits_per_dim"] == pytest.approx(nll["value"] / (64 * math.log(2)))

    assert main(["sample", str(run), "-n", "9", "--no-progress"]) == 0
    path = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert path.suffix == ".png" and path.exists()
