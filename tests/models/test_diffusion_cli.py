"""The diffusion family from the command line: sampling with a chosen number of steps,
sampler and eta, and the likelihood metrics named by their protocol."""

import pytest

from genlab import api
from genlab.cli import main
from genlab.models import load_run_config
from genlab.models.diffusion.diffusion import Diffusion
from tests.runkit import tiny_overrides_of


def tiny_run(tmp_path, variant):
    overrides = [
        "data.name=digits",
        *tiny_overrides_of("diffusion", Diffusion.tiny_configs[variant]),
        "train.max_steps=3",
        "train.batch_size=32",
        "train.progress=false",
        f"runs_dir={tmp_path / 'runs'}",
    ]
    return api.train(load_run_config(None, overrides))


@pytest.fixture(scope="module")
def ddpm(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("ddpm"), "ddpm_eps")


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("fm"), "flow_matching")


def test_sample_takes_steps_sampler_and_eta_and_repeats_with_the_seed(ddpm, capsys):
    run = str(ddpm.path)
    assert main(["sample", run, "-n", "8", "--steps", "3", "--sampler", "ddpm"]) == 0
    first = ddpm.samples / "sample-seed0-steps3-ddpm.png"
    data = first.read_bytes()
    assert main(["sample", run, "-n", "8", "--steps", "3", "--sampler", "ddpm"]) == 0
    assert first.read_bytes() == data  # the same images from the same seed
    assert main(["sample", run, "-n", "8", "--steps", "2", "--eta", "0.5"]) == 0
    assert (ddpm.samples / "sample-seed0-steps2-eta0.5.png").exists()
    assert main(["sample", run, "-n", "8"]) == 0  # model.sample_steps
    assert (ddpm.samples / "sample-seed0.png").exists()
    assert not list(ddpm.samples.glob("chain-*"))  # a diffusion draws no Markov chains
    capsys.readouterr()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sampler", "euler"], "does not fit objective ddpm"),
        (["--eta", "2"], "eta must be in [0, 1]"),
        (["--steps", "21"], "sampling steps must be in [1, 20]"),
        (["--steps", "0"], "--steps must be a positive integer"),
        (["--temperature", "0.5"], "no sampling temperature"),
    ],
)
def test_bad_sampling_settings_are_one_line(ddpm, capsys, args, message):
    assert main(["sample", str(ddpm.path), "-n", "4", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_the_likelihood_metrics_carry_their_protocol(ddpm, flow):
    sets = ["eval.metrics=[nll]", "eval.max_images=8", "eval.bound_terms=5"]
    bound = api.evaluate(ddpm, sets, progress=False)["metrics"]["nll_diffusion_bound_t5"]
    assert bound["kind"] == "elbo" and "stderr_mc" in bound
    assert "strata" in bound["method"] and bound["value"] > 0
    every = api.evaluate(ddpm, [*sets[:2], "eval.bound_terms=20"], progress=False)["metrics"]
    assert "nll_diffusion_bound_all" in every  # T = 20 terms: all of them, no MC error
    ode = api.evaluate(flow, sets, progress=False)["metrics"]["nll_ode_heun_s2_p1_k1"]
    assert ode["kind"] == "estimate" and "Hutchinson" in ode["method"]
    assert ode["bits_per_dim"] > 0 and "continuous_nll_nats" in ode


def test_other_families_refuse_a_sampler(tmp_path, capsys):
    run = api.train(
        load_run_config(
            None,
            [
                "data.name=digits",
                "model.hidden=[16]",
                "model.latent_dim=2",
                "train.max_steps=3",
                "train.progress=false",
                f"runs_dir={tmp_path / 'runs'}",
            ],
        )
    )
    assert main(["sample", str(run.path), "--sampler", "ddim"]) == 2
    assert "no choice of sampler" in capsys.readouterr().err


def test_fd_against_the_number_of_steps(ddpm):
    sets = [
        "eval.metrics=[fd_vs_steps]",
        "eval.steps_curve=[2,5,50]",
        "eval.steps_curve_samples=40",
    ]
    entry = api.evaluate(ddpm, sets, progress=False)["metrics"]["fd_vs_steps_cnn_n40"]
    assert [p["steps"] for p in entry["points"]] == [2, 5]  # T = 20: 50 steps left out
    assert entry["value"] == entry["points"][-1]["fd"] >= 0
    assert all(p["images_per_s"] > 0 for p in entry["points"])
