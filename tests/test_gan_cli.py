"""CLI smoke run of a tiny GAN on digits: train, sample, interpolate in z, eval."""

import json

import numpy as np
import torch
from PIL import Image

from genlab.cli import main
from genlab.imagegrid import grid_array


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_gan_train_sample_interpolate_eval(tmp_path, tiny_overrides, capsys):
    overrides = [*tiny_overrides, "model.name=gan", "model.architecture=mlp"]
    sets = [x for o in overrides for x in ("--set", o)]
    code, out, err = run_cli(["train", *sets], capsys)
    assert code == 0, err
    (run,) = (tmp_path / "runs").glob("0*")
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "train-epoch-0001.png",
        "train-epoch-0002.png",
    ]

    code, out, err = run_cli(["sample", run, "-n", 16, "--out", tmp_path / "s.png"], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "s.png").size[0] > 8 * 4

    out_a, out_b = tmp_path / "a.png", tmp_path / "b.png"
    for target, seed in ((out_a, 0), (out_b, 1)):
        code, out, err = run_cli(
            ["interpolate", run, "--pairs", 3, "--steps", 5, "--seed", seed, "--out", target],
            capsys,
        )
        assert code == 0, err
        assert out.strip().splitlines()[-1] == str(target)
    a = np.asarray(Image.open(out_a))
    b = np.asarray(Image.open(out_b))
    # 3 rows (pairs) of 5 columns (steps) of 8x8 images, no real images at the ends
    assert a.shape[:2] == grid_array(torch.zeros(15, 1, 8, 8), 5).shape[:2]
    assert not np.array_equal(a, b)  # the seed picks the latents

    metrics = ["--set", "eval.metrics=[nll,elbo,recon_error,sample_speed]"]
    code, out, err = run_cli(["eval", run, *metrics, "--no-progress"], capsys)
    assert code == 0, err
    results = json.loads((run / "eval.json").read_text())
    assert {"nll", "elbo", "recon_error"} <= set(results["not_applicable"])
    assert set(results["metrics"]) == {"sample_images_per_s"}
