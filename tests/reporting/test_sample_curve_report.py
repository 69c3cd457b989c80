"""The sample-quality curve in the comparison report: read from metrics.jsonl against training
compute only, and drawn with its protocol next to the validation-loss curves."""

import json
import math

import numpy as np
import pytest
from PIL import Image
from runkit import use_quick_feature_net

from genlab import api
from genlab.models import load_run_config
from genlab.reporting.claims import CurvePoint
from genlab.reporting.report import build_report, sample_curve, validation_curve
from genlab.reporting.report_render import render_html, render_markdown, write_report

KEY = "test/fd_cnn_1k"


def test_the_fd_curve_counts_training_compute_only():
    records = [
        {"kind": "train", "step": 5, KEY: 99.0},  # not an epoch record
        {
            "kind": "epoch",
            "step": 10,
            "seconds": 2.0,
            "images_per_s": 50.0,
            KEY: 40.0,
            "fd_seconds": 30.0,  # the measurement's own time is not training time
            "val/loss": 9.0,
        },
        # not measured this epoch, but its training counts
        {"kind": "epoch", "step": 20, "seconds": 3.0, "images_per_s": 100.0, "val/loss": 8.0},
        {"kind": "epoch", "step": 30, "seconds": 1.0, "images_per_s": 10.0, KEY: 20.0},
        {"kind": "epoch", "step": 40, "seconds": "x", "images_per_s": 1.0, KEY: 1.0},  # unreadable
        {"kind": "epoch", "step": 50, "seconds": 0.5, "images_per_s": 20.0, KEY: math.nan},
        {"kind": "epoch", "step": 60, "seconds": 0.5, "images_per_s": 20.0, KEY: 10.0},
    ]
    assert sample_curve(records) == (
        CurvePoint(2.0, 100.0, 40.0),
        CurvePoint(6.0, 410.0, 20.0),
        CurvePoint(7.0, 430.0, 10.0),
    )
    # the shared accumulation: the validation curve on the same records
    assert validation_curve(records) == (CurvePoint(2.0, 100.0, 9.0), CurvePoint(5.0, 400.0, 8.0))
    assert sample_curve([r for r in records if KEY not in r]) == ()


@pytest.fixture
def fd_runs(tmp_path, monkeypatch):
    """A tiny GAN and VAE on digits, trained with an FD curve and evaluated."""
    use_quick_feature_net(monkeypatch)
    runs = []
    for model in (
        ["model.name=gan", "model.architecture=mlp", "model.hidden=[16]", "data.binarize=none"],
        ["model.hidden=[8]"],
    ):
        overrides = [
            "data.name=digits",
            *model,
            "model.latent_dim=2",
            "train.epochs=2",
            "train.progress=false",
            "train.fd_every=1",
            "train.fd_samples=40",
            f"runs_dir={tmp_path / 'runs'}",
        ]
        run = api.train(load_run_config(None, overrides))
        api.evaluate(run, ["eval.metrics=[fd]", "eval.num_samples=40"], progress=False)
        runs.append(run)
    return runs


def test_the_report_draws_fd_against_compute_with_its_protocol(fd_runs, tmp_path):
    report = build_report(fd_runs, tmp_path / "report")
    for entry in report.entries:
        values = [r["test/fd_cnn_40"] for r in entry.run.read_metrics() if r["kind"] == "epoch"]
        assert [p.val_loss for p in entry.summary.sample_curve] == values
        assert len(values) == 2
    assert report.sample_compute == "images/sample-compute.png"
    assert "N = 40 model samples and the first N test images" in report.sample_protocol
    assert "measurement time excluded" in report.sample_protocol
    pixels = np.asarray(Image.open(tmp_path / "report" / report.sample_compute).convert("L"))
    assert pixels.std() > 10  # axes, lines and labels, not a blank canvas
    markdown = render_markdown(report)
    section = markdown.split("## Quality vs compute")[1]
    assert "![sample quality vs compute](images/sample-compute.png)" in section
    assert f"*{report.sample_protocol}*" in section
    assert report.compute == "images/compute.png"  # the VAE's validation loss is still drawn
    html = render_html(report)
    assert "<img src='images/sample-compute.png' alt='sample quality vs compute'>" in html
    assert "<figcaption>Fréchet distance in the feature network" in html
    write_report(report)
    assert "sample-compute.png" in (tmp_path / "report" / "report.md").read_text()


def test_a_report_without_fd_curves_has_no_fd_figure(fd_runs, tmp_path):
    for run in fd_runs:  # as if trained without train.fd_every
        records = [
            {k: v for k, v in r.items() if not k.startswith("test/fd")} for r in run.read_metrics()
        ]
        run.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in records))
    report = build_report(fd_runs, tmp_path / "report")
    assert report.sample_compute is None and report.sample_protocol == ""
    assert "sample quality vs compute" not in render_markdown(report)
    assert not (tmp_path / "report" / "images" / "sample-compute.png").exists()
    assert report.compute == "images/compute.png"  # the rest of the section stays
