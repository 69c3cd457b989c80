"""Speed and probe metrics through the evaluation entry point."""

import torch

from genlab.config import DataConfig, EvalConfig
from genlab.data import load_data
from genlab.evaluation.runner import evaluate
from genlab.models import DataInfo, build_model


def test_autoregressive_sampling_speed_times_both_samplers_on_the_same_noise():
    torch.manual_seed(0)
    model = build_model({"name": "pixelcnn"}, DataInfo((1, 8, 8), 2))
    data = load_data(DataConfig(name="digits", binarize="static"), progress=False)
    cfg = EvalConfig(metrics=("sample_speed", "train_speed", "probe"), speed_samples=4)
    result = evaluate(model, data, cfg, progress=False)
    speed = result["metrics"]["sample_images_per_s"]
    assert speed["value"] > 0 and speed["images"] == 4
    assert speed["samplers_identical"] is True
    assert speed["naive_images_per_s"] > 0 and speed["cached_speedup"] > 0
    assert "no training record" in result["not_applicable"]["train_speed"]
    assert "encoder" in result["not_applicable"]["probe"]


def test_probe_metric_reports_accuracy_with_its_pixel_baseline():
    torch.manual_seed(0)
    data = load_data(DataConfig(name="digits", binarize="none"), progress=False)
    model = build_model({"name": "ae", "code_dim": 8}, DataInfo(data.shape, 256))
    cfg = EvalConfig(metrics=("probe",), probe_labels=200)
    entry = evaluate(model, data, cfg, progress=False)["metrics"]["probe_logreg_acc_n200"]
    assert 0.0 <= entry["value"] <= 1.0 and entry["code_dim"] == 8
    assert entry["pixel_baseline"] > 0.8 and entry["chance"] == 0.1


def test_probe_on_the_validation_split_scores_against_its_labels():
    torch.manual_seed(0)
    data = load_data(DataConfig(name="digits", binarize="none"), progress=False)
    model = build_model({"name": "ae", "code_dim": 8}, DataInfo(data.shape, 256))
    cfg = EvalConfig(metrics=("probe",), probe_labels=200)
    entry = evaluate(model, data, cfg, split="val", progress=False)["metrics"]
    assert entry["probe_logreg_acc_n200"]["pixel_baseline"] > 0.8  # wrong labels: ~chance
