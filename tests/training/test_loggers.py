"""TensorBoard and MLflow loggers, checked with the libraries' own readers."""

import json
import sys

import pytest

from genlab import api
from genlab.cli import main
from genlab.models import load_run_config


def test_tensorboard_events_read_back_with_tensorboards_reader(tiny_overrides):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = api.train(load_run_config(None, [*tiny_overrides, "train.loggers=[jsonl,tensorboard]"]))
    events = EventAccumulator(str(run.path / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "val/loss", "val/elbo", "lr", "samples/pairwise_rms"} <= set(
        tags["scalars"]
    )
    epochs = [r for r in run.read_metrics() if r["kind"] == "epoch"]
    logged = events.Scalars("val/loss")
    assert [e.step for e in logged] == [r["step"] for r in epochs]
    assert [e.value for e in logged] == pytest.approx([r["val/loss"] for r in epochs], rel=1e-6)
    images = events.Images("samples")
    assert len(images) == 2 and images[-1].width > 0
    assert "config/text_summary" in tags["tensors"]


@pytest.mark.parametrize("store", ["sqlite", "file"])
def test_mlflow_run_queried_through_mlflows_client(tiny_overrides, tmp_path, monkeypatch, store):
    mlflow = pytest.importorskip("mlflow")
    if store == "file":
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    else:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    loggers = "train.loggers=[jsonl,tensorboard,mlflow]"
    run = api.train(load_run_config(None, [*tiny_overrides, loggers, "train.checkpoint_every=1"]))
    assert (run.path / "tensorboard").is_dir() and (run.path / "checkpoints").is_dir()
    uri = (
        (tmp_path / "mlruns").as_uri()
        if store == "file"
        else f"sqlite:///{run.path.parent.resolve()}/mlflow.db"
    )
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("genlab")
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.run_name == run.path.name and found.info.status == "FINISHED"
    assert found.data.params["model.latent_dim"] == "4"
    assert found.data.params["train.epochs"] == "2"
    history = client.get_metric_history(found.info.run_id, "val/loss")
    epochs = [r for r in run.read_metrics() if r["kind"] == "epoch"]
    assert [m.value for m in history] == pytest.approx([r["val/loss"] for r in epochs], rel=1e-6)
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"config.json", "run.json", "metrics.jsonl", "model.safetensors", "samples"} <= artifacts
    assert not artifacts & {"checkpoints", "tensorboard"}  # state, and TB would show it twice


def test_a_missing_extra_is_one_line_naming_the_pip_command(
    tmp_path, tiny_overrides, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    sets = [x for o in tiny_overrides for x in ("--set", o)]
    code = main(["train", *sets, "--set", "train.loggers=[tensorboard]"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert 'pip install "genlab[tensorboard]"' in err
    assert not list((tmp_path / "runs").glob("0*"))


def test_jsonl_can_be_switched_off(tiny_overrides):
    run = api.train(load_run_config(None, [*tiny_overrides, "train.loggers=[]"]))
    assert not run.metrics_path.exists()
    assert json.loads(run.config_path.read_text())["train"]["loggers"] == []
