"""A VAE's two kinds of images: samples x ~ p(x|z), as the model defines them, and decoder
means E[x|z]; each scored apart, under names that say which."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from genlab.cli import main
from genlab.models import build_model
from genlab.models.base import DataInfo

INFO_BINARY = DataInfo((1, 6, 6), 2)
INFO_GREY = DataInfo((1, 6, 6), 256)


def _vae(info: DataInfo, likelihood: str):
    torch.manual_seed(0)
    config = {"name": "vae", "hidden": [8], "latent_dim": 2, "likelihood": likelihood}
    return build_model(config, info).eval()


@pytest.mark.parametrize("info, likelihood", [(INFO_BINARY, "bernoulli"), (INFO_GREY, "logistic")])
def test_samples_are_draws_from_the_decoder_and_means_its_expectation(info, likelihood):
    model = _vae(info, likelihood)
    with torch.no_grad():
        means = model.sample_means(5, generator=torch.Generator().manual_seed(3))
        z = torch.randn(5, 2, generator=torch.Generator().manual_seed(3))
        assert torch.equal(means, model.decode(z))  # the same z as a seeded prior draw
        samples = model.sample(5, generator=torch.Generator().manual_seed(3))
        levels = info.levels - 1
        assert torch.equal(samples, torch.round(samples * levels) / levels)  # on the data's grid
        # with one z repeated, many draws of x ~ p(x|z)
        params = model.decoder(z[:1].expand(20000, 2))
        draws = model.likelihood.sample(params, torch.Generator().manual_seed(4))
    mean = model.decode(z[:1])[0]
    if likelihood == "bernoulli":  # the average of many draws of x ~ p(x|z) is E[x|z]
        spread = draws.std(0) / 20000**0.5
        assert ((draws.mean(0) - mean).abs() <= 5 * spread + 2e-3).all()
    else:  # a logistic is symmetric: the median of its draws is its location, within a bin
        inside = (mean > 0.05) & (mean < 0.95)  # away from the edge bins that take the tails
        error = (draws.median(0).values - mean).abs()[inside]
        assert inside.sum() > 10 and (error <= 1 / 255 + 0.04).all()


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("means")
    sets = [
        "data.name=digits",
        "model.hidden=[8]",
        "model.latent_dim=2",
        "train.epochs=1",
        "train.progress=false",
        "eval.num_samples=100",
        f"runs_dir={root / 'runs'}",
    ]
    assert main(["train", *[x for s in sets for x in ("--set", s)]]) == 0
    (run,) = (root / "runs").glob("0*")
    return run


def test_eval_scores_samples_and_means_apart(vae_run, capsys):
    metrics = "[fd, fd_means, sharpness, sharpness_means, precision, precision_means]"
    assert main(["eval", str(vae_run), "--set", f"eval.metrics={metrics}", "--no-progress"]) == 0
    results = json.loads((vae_run / "eval.json").read_text())["metrics"]
    pairs = [("fd_cnn_100", "fd_cnn_100_means"), ("sharpness_lap_100", "sharpness_lap_100_means")]
    pairs.append(("precision_cnn_k3_100", "precision_cnn_k3_100_means"))
    for samples, means in pairs:
        assert results[samples]["source"] == "samples" and results[means]["source"] == "means"
        assert results[samples]["value"] != results[means]["value"]
    # binary draws have far more pixel-level energy than smooth grey means
    assert results["sharpness_lap_100"]["value"] > 2 * results["sharpness_lap_100_means"]["value"]
    out = capsys.readouterr().out
    assert "fd_cnn_100_means" in out


def test_sample_means_flag_writes_the_decoder_means(vae_run, capsys):
    assert main(["sample", str(vae_run), "-n", "9", "--means", "--no-progress"]) == 0
    path = vae_run / "samples" / "means-seed0.png"
    assert capsys.readouterr().out.strip() == str(path)
    grid = Image.open(path)
    assert grid.size[0] > 3 * 8
    assert main(["sample", str(vae_run), "-n", "9", "--no-progress"]) == 0
    assert (vae_run / "samples" / "sample-seed0.png").exists()


def test_means_of_a_model_without_them_is_one_line_error(tmp_path, capsys):
    sets = [
        "data.name=digits",
        "model.name=gan",
        "model.architecture=mlp",
        "model.latent_dim=2",
        "train.epochs=1",
        "train.max_steps=2",
        "train.progress=false",
        f"runs_dir={tmp_path / 'runs'}",
    ]
    assert main(["train", *[x for s in sets for x in ("--set", s)]]) == 0
    (run,) = (tmp_path / "runs").glob("0*")
    capsys.readouterr()
    assert main(["sample", str(run), "--means", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("genlab: error:") and "--means" in err[0]
    assert not (run / "samples" / "means-seed0.png").exists()
    assert main(["sample", str(run), "--means", "--steps", "3"]) == 2
