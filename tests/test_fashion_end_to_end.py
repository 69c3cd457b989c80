"""The classic MLP VAE on Fashion-MNIST, through the command line, as a user runs it.

An independent implementation of the same model reaches about 242 nats (IWAE, k=1000,
statically binarised test set) after 5 epochs; genlab must land within a nat or so of it,
with the ELBO below the log-likelihood estimate. About 70 s on 2 cores: marked slow.
"""

import json
from pathlib import Path

import pytest

from genlab.cli import main

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "vae_mlp_fashion.yaml"
DEBIAN = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN.exists(), reason="needs Debian's dataset-fashion-mnist package")
def test_five_epochs_reach_the_reference_likelihood(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GENLAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    code = main(
        [
            "train",
            "--config",
            str(CONFIG),
            "--set",
            "train.epochs=5",
            "--runs-dir",
            str(runs),
            "--no-progress",
        ]
    )
    assert code == 0
    (run,) = runs.glob("0*")
    assert main(["eval", str(run), "--no-progress"]) == 0
    metrics = json.loads((run / "eval.json").read_text())["metrics"]
    nll = metrics["nll_iwae_k1000"]
    assert nll["images"] == 10_000 and nll["k"] == 1000
    assert abs(nll["value"] - 242.0) < 1.5, nll
    assert nll["stderr_mc"] < 0.05
    assert metrics["elbo"]["value"] <= -nll["value"]
    assert "nll_iwae_k1000" in capsys.readouterr().out
