"""The Markov-chain families end to end: an RBM and a denoising autoencoder trained on digits,
their AIS likelihood checked against exact enumeration, chains, pictures and claims."""

import json

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from genlab import api
from genlab.cli import main
from genlab.errors import ConfigError
from genlab.evaluation.markov_metrics import AIS_CAVEAT
from genlab.models import DataInfo, build_model, load_run_config
from genlab.models.base import Traits
from genlab.models.markov.boltzmann import base_rate_biases, exact_log_partition
from genlab.models.markov.chain import require_chain, snapshot_steps
from genlab.reporting.claims import RunSummary, boltzmann_likelihood, chains_mix_slowly
from genlab.runs import open_run

INFO = DataInfo((1, 8, 8), 2)  # digits, binarised
BASE = ["data.name=digits", "train.progress=false", "train.batch_size=32"]
CHAIN_EVAL = [
    "eval.chain_steps=[2,20]",
    "eval.chain_samples=100",
    "eval.kid_subsets=5",
    "eval.kid_subset_size=50",
]
RBM = ["model.name=rbm", "model.hidden=12", "train.lr=0.01", "train.epochs=30"]  # CD-1
DAE = ["model.name=ae", "model.hidden=[32]", "model.code_dim=8", "model.denoising=0.3"]
DAE += ["model.walkback=1", "train.epochs=3"]


@pytest.fixture(scope="module")
def rbm_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("rbm") / "runs"
    return api.train(load_run_config(None, [*BASE, *RBM, f"runs_dir={runs}"]))


@pytest.fixture(scope="module")
def dae_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("dae") / "runs"
    return api.train(load_run_config(None, [*BASE, *DAE, f"runs_dir={runs}"]))


def test_ais_nll_of_a_trained_rbm_agrees_with_the_exact_nll(rbm_run):
    """12 hidden units: log Z by enumeration, so the test-set NLL is known exactly."""
    metrics = ["eval.metrics=[nll_ais,nll]", "eval.ais_betas=1000", "eval.ais_runs=100"]
    results = api.evaluate(rbm_run, metrics, progress=False)
    entry = results["metrics"]["nll_ais_b1000_r100"]
    opened = open_run(rbm_run)
    model, test = opened.model, opened.data.tensor("test")
    with torch.no_grad():
        exact = (model.free_energy(test).double() + exact_log_partition(*model.params())).mean()
    assert abs(entry["value"] - exact.item()) < 3 * entry["stderr_log_z"] + 0.02
    assert entry["caveat"] == AIS_CAVEAT and entry["runs"] == 100
    assert "nll_ais" in results["not_applicable"]["nll"]  # the exact nll points to it


def test_rbm_learns_digits_better_than_independent_pixels(rbm_run):
    opened = open_run(rbm_run)
    model, train, test = opened.model, opened.data.tensor("train"), opened.data.tensor("test")
    with torch.no_grad():
        rbm_nll = (model.free_energy(test).double() + exact_log_partition(*model.params())).mean()
    bias = base_rate_biases(train.flatten(1))  # the best model with independent pixels
    base_nll = -(test.flatten(1).double() @ bias - F.softplus(bias).sum()).mean()
    assert rbm_nll < base_nll - 2, (rbm_nll, base_nll)  # 23.7 vs 27.2 nats when written
    records = [r for r in rbm_run.read_metrics() if r["kind"] == "epoch"]
    assert records[-1]["val/pseudo_nll"] < records[0]["val/pseudo_nll"]
    assert records[-1]["train/loss"] == pytest.approx(records[-1]["train/pseudo_nll"])


def test_chain_metric_and_claims_for_an_rbm(rbm_run):
    results = api.evaluate(rbm_run, ["eval.metrics=[chain]", *CHAIN_EVAL], progress=False)
    (name,) = results["metrics"]
    entry = results["metrics"][name]
    assert name == "chain_fd_cnn_100" and entry["steps"] == [2, 20]
    assert len(entry["fd"]) == len(entry["class_kept"]) == 2
    assert entry["value"] == entry["fd"][-1]
    assert all(0 <= k <= 1 for k in entry["class_kept"] + entry["class_kept_if_mixed"])


def test_sample_steps_writes_the_final_states_and_chains_over_time(rbm_run, capsys):
    code = main(["sample", str(rbm_run.path), "-n", "6", "--steps", "30", "--no-progress"])
    assert code == 0
    grid, chains = capsys.readouterr().out.split()
    assert grid.endswith("sample-seed0-steps30.png") and "chain-noise-seed0-steps30" in chains
    columns = len(snapshot_steps(30))
    width, height = Image.open(chains).size
    assert width / height == pytest.approx(columns / 8, rel=0.05)  # 8 chains, one per row
    assert main(["sample", str(rbm_run.path), "--steps", "20", "--from", "test"]) == 0
    capsys.readouterr()
    before = sorted(p.name for p in rbm_run.samples.iterdir())
    assert main(["sample", str(rbm_run.path), "--steps", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["genlab: error: --steps must be a positive integer, got 0"]
    assert sorted(p.name for p in rbm_run.samples.iterdir()) == before


def test_persistent_chains_are_model_state_and_advance_each_step():
    model = build_model({"name": "rbm", "hidden": 5, "persistent": True, "chains": 7}, INFO)
    assert model.state_dict()["chains"].shape == (7, 64) and not bool(model.started)
    x = (torch.rand(10, 1, 8, 8) < 0.3).float()
    generator = torch.Generator().manual_seed(0)
    model.loss(x, "main", generator=generator)
    first = model.chains.clone()
    assert bool(model.started) and set(first.unique().tolist()) <= {0.0, 1.0}
    model.loss(x, "main", generator=generator)
    assert not torch.equal(first, model.chains)
    # visible biases start at the first batch's pixel log-odds
    assert torch.allclose(model.visible_bias, base_rate_biases(x.flatten(1)).float())


def test_denoising_autoencoder_chain_runs_and_a_plain_one_says_why_not(dae_run, tmp_path):
    records = [r for r in dae_run.read_metrics() if r["kind"] == "epoch"]
    assert "train/walkback_recon" in records[-1]
    results = api.evaluate(dae_run, ["eval.metrics=[chain]", *CHAIN_EVAL], progress=False)
    assert "chain_fd_cnn_100" in results["metrics"]
    path = api.chain(dae_run, steps=10, n=4, start="test", progress=False)
    assert path.exists()
    plain = build_model({"name": "ae", "hidden": [8]}, DataInfo((1, 8, 8), 2))
    with pytest.raises(ConfigError, match="model.denoising"):
        require_chain(plain)
    assert main(["sample", str(dae_run.path)]) == 2  # a DAE samples only with --steps
    assert main(["sample", str(dae_run.path), "--steps", "5", "--no-progress"]) == 0


def test_walkback_needs_corruption_and_a_bernoulli_decoder():
    with pytest.raises(ConfigError, match="model.denoising"):
        build_model({"name": "ae", "walkback": 1}, DataInfo((1, 8, 8), 2))
    with pytest.raises(ConfigError, match="model.loss=bce"):
        build_model({"name": "ae", "walkback": 1, "denoising": 0.2}, DataInfo((1, 8, 8), 256))


def summary(metrics):
    return RunSummary("r", "rbm", Traits(density="estimate", sampling="chain"), "k", metrics, {})


def test_claims_read_the_chain_and_ais_metrics():
    chain = {"steps": [10, 1000], "fd": [50.0, 30.0], "chains": 2000}
    slow = summary({"chain_fd_cnn_2k": {**chain, "class_kept": [0.9, 0.6]} | _mixed()})
    fast = summary({"chain_fd_cnn_2k": {**chain, "class_kept": [0.5, 0.11]} | _mixed()})
    assert chains_mix_slowly([slow])[0] == "holds"
    assert chains_mix_slowly([fast])[0] == "does not hold"
    assert chains_mix_slowly([summary({})])[0] == "not measured"
    ais = {
        "value": 250.0,
        "bits_per_dim": 0.46,
        "log_z": 500.0,
        "stderr_log_z": 0.2,
        "runs": 100,
        "betas": 10000,
        "log_weight_std": 1.5,
    }
    verdict, evidence = boltzmann_likelihood([summary({"nll_ais_b10000_r100": ais})])
    assert verdict == "holds" and "500.00 ± 0.200" in evidence and "optimistic" in evidence


def _mixed():
    return {"class_kept_if_mixed": [0.1, 0.1]}


def test_eval_config_rejects_bad_chain_and_ais_settings():
    for bad in ("eval.chain_steps=[]", "eval.chain_steps=[0]", "eval.ais_betas=2"):
        with pytest.raises(ConfigError):
            load_run_config(None, [bad])
    assert json.dumps(snapshot_steps(1000)) == "[0, 1, 3, 10, 32, 100, 316, 1000]"
