"""``--device``: every command that computes runs on a chosen device.

A device the machine lacks is a one-line error before anything is written; ``--device cpu``
gives bitwise what no flag gives on a machine without a GPU; on a GPU, evaluation agrees with
the CPU within Monte-Carlo error.
"""

import json

import pytest
import torch
from runkit import train_small

from genlab.cli import main
from genlab.runs import open_run

SMALL_EVAL = [
    "--k",
    "20",
    "--set",
    "eval.num_samples=100",
    "--set",
    "eval.kid_subsets=5",
    "--set",
    "eval.kid_subset_size=50",
    "--no-progress",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_small(tmp_path_factory.mktemp("devices")).path


@pytest.fixture
def no_cuda(monkeypatch):
    """This machine as one without CUDA, whatever it has (``auto`` is then the CPU)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def run_cli(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


def files(folder):
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*"))


@pytest.mark.parametrize(
    "command",
    [["eval", "RUN"], ["sample", "RUN", "--out", "TMP/s.png"], ["train", "--runs-dir", "TMP/runs"]],
)
def test_an_absent_cuda_device_is_one_line_and_writes_nothing(
    run, tmp_path, capsys, no_cuda, command
):
    argv = [str(a).replace("RUN", str(run)).replace("TMP", str(tmp_path)) for a in command]
    before, before_tmp = files(run), files(tmp_path)
    code, out, err = run_cli([*argv, "--device", "cuda"], capsys)
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("genlab: error: "), err
    assert "cuda" in err[0] and "no CUDA device" in err[0]
    assert files(run) == before and files(tmp_path) == before_tmp


@pytest.mark.parametrize("command", ["eval", "sample", "train", "probe", "compare", "zoo"])
def test_a_device_that_is_no_device_names_the_valid_ones(run, capsys, command):
    argv = [command] if command in ("train", "zoo") else [command, run]
    code, out, err = run_cli([*argv, "--device", "gpu"], capsys)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("genlab: error: "), err
    assert "'gpu' is not a device" in err[0]
    assert "auto, cpu, cuda, cuda:N or mps" in err[0]


def metric_values(path):
    """eval.json's metrics without the wall-clock measurements."""
    results = json.loads(path.read_text())
    timed = ("sample_images_per_s", "train_images_per_s")
    return {
        name: {k: v for k, v in entry.items() if k != "seconds"}
        for name, entry in results["metrics"].items()
        if name not in timed
    }, results


def test_cpu_is_bitwise_what_no_flag_gives(run, tmp_path, capsys, no_cuda):
    code, _, err = run_cli(["eval", run, *SMALL_EVAL], capsys)
    assert code == 0, err
    plain, results = metric_values(run / "eval.json")
    assert results["device"] == "cpu"
    code, _, err = run_cli(["eval", run, *SMALL_EVAL, "--device", "cpu"], capsys)
    assert code == 0, err
    on_cpu, _ = metric_values(run / "eval.json")
    assert {"nll_iwae_k20", "elbo", "fd_cnn_100", "kid_cnn_100"} <= set(plain)
    assert on_cpu == plain

    for command in (
        ["sample", run, "-n", 16, "--seed", 3],
        ["reconstruct", run, "-n", 8, "--seed", 3],
        ["interpolate", run, "--pairs", 2, "--steps", 4, "--seed", 3],
    ):
        pictures = []
        for flag in ([], ["--device", "cpu"]):
            out = tmp_path / f"{command[0]}-{len(flag)}.png"
            code, _, err = run_cli([*command, "--out", out, *flag], capsys)
            assert code == 0, err
            pictures.append(out.read_bytes())
        assert pictures[0] == pictures[1], command[0]


def test_open_run_puts_the_model_on_the_device_and_leaves_the_data_on_the_cpu(run):
    opened = open_run(run, ["eval.device=cpu"])  # any command may choose its device
    assert opened.device == torch.device("cpu") and opened.config.eval.device == "cpu"
    assert all(p.device.type == "cpu" for p in opened.model.parameters())
    assert opened.data.test.images.dtype == torch.uint8
    assert "device" not in json.loads((run / "config.json").read_text())["eval"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_evaluation_on_cuda_agrees_with_the_cpu(run, capsys):
    nll = {}
    for device in ("cpu", "cuda"):
        argv = ["eval", run, "--k", 1000, "--set", "eval.metrics=[nll,elbo]", "--no-progress"]
        code, _, err = run_cli([*argv, "--device", device], capsys)
        assert code == 0, err
        results = json.loads((run / "eval.json").read_text())
        assert results["device"].startswith(device)
        nll[device] = results["metrics"]["nll_iwae_k1000"]["value"]
    assert nll["cuda"] == pytest.approx(nll["cpu"], rel=1e-3)
    code, _, err = run_cli(["sample", run, "-n", 16, "--device", "cuda"], capsys)
    assert code == 0, err
