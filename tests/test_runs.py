"""The runs layer: open_run's override rules, and every command loading a run's model and
data at most once."""

import json
import os
import stat

import pytest

from genlab import api
from genlab.compare import compare
from genlab.errors import ConfigError, RunError
from genlab.evaluation.metrics import METRICS, Metric, MetricResult
from genlab.fileio import atomic_path, atomic_write_json, atomic_write_text
from genlab.models import load_run_config
from genlab.reporting.report_render import format_value
from genlab.runs import open as runs_open
from genlab.runs import open_run


@pytest.fixture
def trained(tiny_overrides):
    overrides = [*tiny_overrides, "eval.metrics=[nll,elbo,recon_error,probe]"]
    return [api.train(load_run_config(None, overrides)) for _ in range(2)]


@pytest.fixture
def load_counts(monkeypatch):
    counts = {"data": 0, "model": 0}
    real_data, real_model = runs_open.load_data, runs_open.load_exported

    def count_data(*args, **kwargs):
        counts["data"] += 1
        return real_data(*args, **kwargs)

    def count_model(*args, **kwargs):
        counts["model"] += 1
        return real_model(*args, **kwargs)

    monkeypatch.setattr(runs_open, "load_data", count_data)
    monkeypatch.setattr(runs_open, "load_exported", count_model)
    return counts


def test_compare_loads_each_runs_data_and_model_once(trained, tmp_path, load_counts):
    html = compare([r.path for r in trained], tmp_path / "report", progress=False)
    assert html.exists() and all(r.eval_path.exists() for r in trained)  # evaluated first
    assert load_counts == {"data": 2, "model": 2}
    text = (tmp_path / "report" / "report.md").read_text()
    assert "nll_iwae_k20 ↓" in text and "elbo ↑" in text


def test_an_open_run_is_shared_by_commands(trained, load_counts):
    opened = open_run(trained[0], progress=False)
    api.evaluate(opened, progress=False)
    api.sample(opened, n=4, progress=False)
    api.reconstruct(opened, n=4)
    api.interpolate(opened, pairs=2, steps=3)
    api.probe(opened, sizes=(20,), seeds=(0,), baselines=False)
    assert load_counts == {"data": 1, "model": 1}


def test_open_run_applies_only_allowed_overrides(trained):
    run = trained[0].path
    assert open_run(run, ["eval.iwae_k=7"], allow=("eval.",)).config.eval.iwae_k == 7
    with pytest.raises(ConfigError, match="only eval. may change"):
        open_run(run, ["train.lr=0.5"], allow=("eval.",))
    with pytest.raises(ConfigError, match="no setting may change"):
        open_run(run, ["eval.iwae_k=7"])
    changed = open_run(run, data_path="/somewhere/else")
    assert changed.config.data.path == "/somewhere/else"


def test_config_json_keeps_the_experiment_not_the_runtime(trained):
    saved = json.loads(trained[0].config_path.read_text())
    assert "runs_dir" not in saved and "progress" not in saved["train"]
    assert saved["model"]["name"] == "vae" and saved["model"]["latent_dim"] == 4


def test_a_damaged_model_file_is_a_one_line_error(trained):
    model_path = trained[0].model_path
    model_path.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(RunError, match="does not match the run's config"):
        _ = open_run(trained[0]).model
    model_path.write_bytes(b"abc")
    with pytest.raises(RunError, match="not a readable safetensors file"):
        _ = open_run(trained[0]).model


class PixelMean(Metric):
    """A metric defined in one place: name, direction, format and computation."""

    description = "mean pixel intensity of the evaluation images"
    direction = "higher"
    by_default = False

    def format(self, entry):
        return f"{entry['value']:.3f} mean intensity"

    def compute(self, ctx):
        return MetricResult("pixel_mean", ctx.images.mean().item(), "")


def test_a_new_metric_needs_only_its_class(trained, monkeypatch, capsys):
    monkeypatch.setitem(METRICS._items, "pixel_mean", PixelMean())
    results = api.evaluate(trained[0], ["eval.metrics=[pixel_mean,elbo]"], progress=False)
    entry = results["metrics"]["pixel_mean"]
    assert entry["metric"] == "pixel_mean" and format_value(entry).endswith("mean intensity")
    from genlab.cli import main

    assert main(["list", "metrics"]) == 0
    assert "mean pixel intensity" in capsys.readouterr().out
    assert "pixel_mean" not in api.evaluate(trained[1], progress=False)["metrics"]  # not default


def test_atomic_writes_leave_no_temporary_file_and_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a.txt", "hello")
    finally:
        os.umask(old)
    assert path.read_text() == "hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    with pytest.raises(ZeroDivisionError), atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("half")
        raise ZeroDivisionError("the writer failed half-way")
    assert path.read_text() == "hello"  # the old file is untouched
    atomic_write_json(tmp_path / "b.json", {"x": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json"]
