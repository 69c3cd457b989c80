"""The command line: smoke runs on tiny configs and one-line errors with exit status 2."""

import json

import numpy as np
import pytest

from genlab.cli import main


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def only_run(tmp_path):
    runs = list((tmp_path / "runs").glob("0*"))
    assert len(runs) == 1
    return runs[0]


def test_train_eval_sample_reconstruct_interpolate(tmp_path, tiny_overrides, capsys):
    sets = [x for o in tiny_overrides for x in ("--set", o)]
    code, out, err = run_cli(["train", *sets], capsys)
    assert code == 0, err
    run = only_run(tmp_path)
    assert f"run: {run}" in out

    code, out, err = run_cli(["eval", run, "--k", 50, "--no-progress"], capsys)
    assert code == 0, err
    results = json.loads((run / "eval.json").read_text())
    nll = results["metrics"]["nll_iwae_k50"]
    elbo = results["metrics"]["elbo"]
    assert nll["kind"] == "iwae_bound" and nll["images"] == results["images"]
    assert elbo["value"] <= -nll["value"]  # ELBO <= IWAE estimate of log p(x)
    assert nll["bits_per_dim"] == pytest.approx(nll["value"] / (64 * np.log(2)))
    assert "recon_mse" in results["metrics"]
    assert "nll_iwae_k50" in out

    for command in (
        ["sample", run, "-n", 16],
        ["reconstruct", run, "-n", 8],
        ["interpolate", run, "--pairs", 3, "--steps", 5],
    ):
        code, out, err = run_cli(command, capsys)
        assert code == 0, err
        path = out.strip().splitlines()[-1]
        assert (
            path.endswith(".png")
            and (tmp_path / path).exists()
            or __import__("os").path.exists(path)
        )


def test_list(capsys):
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0
    for word in ("models:", "vae", "datasets:", "digits", "fashion-mnist", "metrics:", "nll"):
        assert word in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "train.epochz=1"], "unknown key 'train.epochz'"),
        (["--set", "model.name=wavenet"], "valid models: ae, "),
        (["--set", "data.name=imagenet"], "valid datasets:"),
        (["--set", "data.binarize=maybe"], "valid values"),
        (["--set", "model.likelihood=bernoulli", "--set", "data.binarize=none"], "2-level"),
        (["--config", "/nonexistent.yaml"], "does not exist"),
        (["--set", "eval.metrics=[fid]"], "valid metrics"),
    ],
)
def test_bad_train_input_exits_2_and_writes_nothing(
    tmp_path, tiny_overrides, capsys, args, message
):
    sets = [x for o in tiny_overrides for x in ("--set", o)]
    code, out, err = run_cli(["train", *sets, *args], capsys)
    assert code == 2
    assert err.startswith("genlab: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("0*"))


def test_bad_data_file_exits_2_and_writes_nothing(tmp_path, tiny_overrides, capsys):
    bad = tmp_path / "bad.npz"
    x = np.random.rand(50, 8, 8)
    x[3, 2, 2] = np.nan
    np.savez(bad, images=x)
    sets = [x for o in tiny_overrides for x in ("--set", o)]
    code, _, err = run_cli(
        ["train", *sets, "--set", "data.name=npz", "--set", f"data.path={bad}"], capsys
    )
    assert code == 2 and "bad.npz" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", ["eval", "sample", "reconstruct", "interpolate"])
def test_missing_run_exits_2(tmp_path, capsys, command):
    code, _, err = run_cli([command, tmp_path / "no-such-run"], capsys)
    assert code == 2 and "does not exist" in err


def test_resume_rejects_changed_settings(tmp_path, tiny_overrides, capsys):
    sets = [x for o in tiny_overrides for x in ("--set", o)]
    assert run_cli(["train", *sets, "--set", "train.epochs=1"], capsys)[0] == 0
    run = only_run(tmp_path)
    code, _, err = run_cli(["train", "--resume", run, "--set", "train.batch_size=7"], capsys)
    assert code == 2 and "only train.epochs" in err


def test_list_metrics_names_every_registered_metric(capsys):
    code, out, _ = run_cli(["list", "metrics"], capsys)
    assert code == 0
    for name in ("nll", "fd", "kid", "precision", "recall", "density", "coverage", "probe"):
        assert f"  {name} " in out
