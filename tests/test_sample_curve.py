"""The sample-quality curve recorded while training (train.fd_every): its values are the FD of
the exported model's seeded samples, it leaves training untouched, and it says when it cannot
be measured."""

import functools
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from runkit import QUICK_FEATURE_NET, TINY_MODELS, use_quick_feature_net
from safetensors.torch import load_file

from genlab import api, noise
from genlab.cli import main
from genlab.config import TrainConfig
from genlab.data import load_data
from genlab.errors import ConfigError
from genlab.evaluation import feature_net
from genlab.evaluation.sample_quality import frechet_distance
from genlab.models import DataInfo, build_model, load_run_config
from genlab.runs import open_run
from genlab.runs import sample_curve as curve_module
from genlab.runs.folder import data_info_of
from genlab.runs.sample_curve import SECONDS_KEY, SampleCurve, fd_key

N = 40  # samples per measurement (digits has more test images than this)
EPOCHS = 3
FAMILIES = {
    "gan": [
        "model.name=gan",
        "model.architecture=mlp",
        "model.hidden=[16]",
        "data.binarize=none",
        "model.latent_dim=2",
    ],
    "vae": ["model.hidden=[8]", "model.latent_dim=2"],
}
QUICK = QUICK_FEATURE_NET


@pytest.fixture(autouse=True)
def quick_feature_net(monkeypatch):
    return use_quick_feature_net(monkeypatch)


def _train(root, *overrides):
    base = ["data.name=digits", "train.progress=false"]
    return api.train(load_run_config(None, [*base, f"runs_dir={root / 'runs'}", *overrides]))


def _train_family(root, family, *extra):
    return _train(root, *FAMILIES[family], f"train.epochs={EPOCHS}", *extra)


def _epochs(run):
    return [r for r in run.read_metrics() if r["kind"] == "epoch"]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_epoch_records_the_fd_of_the_models_seeded_samples(
    tmp_path, family, quick_feature_net
):
    run = _train_family(tmp_path / "fd", family, "train.fd_every=1", f"train.fd_samples={N}")
    epochs = _epochs(run)
    assert len(epochs) == EPOCHS
    key = fd_key(N)
    assert key == f"test/fd_cnn_{N}"
    values = [r[key] for r in epochs]
    assert all(torch.isfinite(torch.tensor(values))) and all(v >= 0 for v in values)
    assert all(r[SECONDS_KEY] >= 0 for r in epochs)

    # the oracle: the exported (final) model's N samples from a generator seeded eval.seed,
    # in eval mode, against the first N test images, in the data's feature network
    opened = open_run(run)
    model, data = opened.model.eval(), opened.data
    with torch.no_grad():
        samples = model.sample(N, generator=noise.generator(opened.config.eval.seed))
    net, _ = quick_feature_net(data, progress=False)
    real = net.features_of(data.tensor("test")[:N])
    expected = frechet_distance(real, net.features_of(samples.clamp(0, 1)))
    assert values[-1] == pytest.approx(expected, rel=1e-6)

    # and it is the number `genlab eval` reports with the same sample count
    results = api.evaluate(opened, ["eval.metrics=[fd]", f"eval.num_samples={N}"], progress=False)
    assert values[-1] == pytest.approx(results["metrics"][f"fd_cnn_{N}"]["value"], rel=1e-6)

    # with fd_every=0 the run trains exactly the same, only without the curve
    plain = _train_family(tmp_path / "plain", family)
    for with_fd, without in zip(epochs, _epochs(plain), strict=True):
        assert key not in without and SECONDS_KEY not in without
        timing = {key, SECONDS_KEY, "seconds", "images_per_s"}
        assert {k: v for k, v in with_fd.items() if k not in timing} == {
            k: v for k, v in without.items() if k not in timing
        }
    a, b = load_file(str(run.model_path)), load_file(str(plain.model_path))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_resumed_run_records_the_same_curve(tmp_path):
    extra = ("train.fd_every=1", f"train.fd_samples={N}")
    full = _train_family(tmp_path / "full", "vae", *extra)
    part = _train_family(tmp_path / "part", "vae", *extra, "train.max_steps=20")  # in epoch 2
    assert part.info()["status"] == "interrupted (max_steps)"
    resumed = api.resume(part.path)
    key = fd_key(N)
    assert [r[key] for r in _epochs(resumed)] == [r[key] for r in _epochs(full)]
    a, b = load_file(str(full.model_path)), load_file(str(resumed.model_path))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fd_every_two_measures_every_second_epoch_and_the_last(tmp_path):
    run = _train_family(tmp_path, "vae", "train.fd_every=2", f"train.fd_samples={N}")
    assert [fd_key(N) in r for r in _epochs(run)] == [False, True, True]  # epoch 3 is the last


def test_a_chain_sampler_is_skipped_silently(tmp_path, capsys):
    run = _train(tmp_path, *TINY_MODELS["rbm_pcd"], "train.fd_every=1", "train.epochs=1")
    assert not any(k.startswith("test/fd") for r in _epochs(run) for k in r)
    assert "fd_every" not in capsys.readouterr().out


def test_a_model_that_cannot_sample_gets_one_note(tmp_path, capsys):
    run = _train(tmp_path, *TINY_MODELS["ae"], "train.fd_every=1", "train.epochs=2")
    assert not any(k.startswith("test/fd") for r in _epochs(run) for k in r)
    notes = [line for line in capsys.readouterr().out.splitlines() if "fd_every" in line]
    assert notes == [
        "note: train.fd_every=1: no sample-quality curve for this run: the ae family cannot sample"
    ]


def test_a_measurement_leaves_torch_global_rng_alone(monkeypatch):
    """The feature network seeds torch's global RNG when it trains (on the first measurement);
    training must not notice."""
    fresh = functools.partial(feature_net.load_or_train_feature_net, cfg=replace(QUICK, seed=7))
    monkeypatch.setattr(curve_module, "load_or_train_feature_net", fresh)
    config = load_run_config(None, ["model.hidden=[8]", "model.latent_dim=2"])
    data = load_data(config.data, progress=False)
    model = build_model(config.model, data_info_of(data)).train()
    trainer = SimpleNamespace(
        model=model,
        device=torch.device("cpu"),
        epoch=1,
        cfg=SimpleNamespace(epochs=1),
        stopping=False,
    )
    callback = SampleCurve(1, N, data, 0)
    callback.on_fit_start(trainer)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    record: dict = {}
    callback.on_epoch_end(trainer, record)
    assert torch.equal(torch.get_rng_state(), before)
    assert record[fd_key(N)] >= 0 and record[SECONDS_KEY] >= 0
    assert model.training  # eval mode while sampling only


def test_data_without_labels_get_a_reason():
    config = load_run_config(None, ["model.hidden=[8]", "model.latent_dim=2"])
    model = build_model(config.model, DataInfo((1, 8, 8), 2))
    unlabelled = SimpleNamespace(
        train=SimpleNamespace(labels=None), test=SimpleNamespace(labels=None)
    )
    assert "no labels" in (SampleCurve(1, N, unlabelled, 0).skip_reason(model) or "")
    assert SampleCurve(0, N, unlabelled, 0).skip_reason(model) == ""  # off: nothing to say


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.fd_every=-1", "train.fd_every: -1 is outside the valid range [0, 1e+06]"),
        ("train.fd_samples=1", "train.fd_samples: 1 is outside the valid range [2, 1e+07]"),
        ("train.fd_every=often", "train.fd_every: expected an integer"),
    ],
)
def test_bad_fd_settings_are_one_line_config_errors(tmp_path, capsys, override, message):
    with pytest.raises(ConfigError) as info:
        load_run_config(None, [override])
    assert message in str(info.value) and "\n" not in str(info.value)
    runs = tmp_path / "runs"
    assert main(["train", "--set", override, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("genlab: error: ") and message in err[0]
    assert not runs.exists()


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"fd_every": -1}, "train.fd_every must be >= 0, got -1"),
        ({"fd_samples": 1}, "train.fd_samples must be >= 2, got 1"),
    ],
)
def test_the_dataclass_checks_fd_settings_too(fields, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**fields)
