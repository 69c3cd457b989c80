"""genlab compare and genlab zoo: the report, its claims, and its rendering in a browser."""

import dataclasses
import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from genlab.cli import main
from genlab.errors import ConfigError
from genlab.models import MODELS
from genlab.reporting.claims import CurvePoint, RunSummary, check_claims
from genlab.zoo import parse_budget

ZOO_FAMILIES = "vae,ae,gan,rbm"


@pytest.fixture(scope="module")
def zoo_report(tmp_path_factory):
    """A tiny zoo on digits (four families, a 20 s training budget) and its report."""
    root = tmp_path_factory.mktemp("zoo")
    code = main(
        [
            "zoo",
            "--data",
            "digits",
            "--budget",
            "20s",
            "--families",
            ZOO_FAMILIES,
            "--runs-dir",
            str(root),
            "--no-progress",
        ]
    )
    assert code == 0
    (zoo,) = root.iterdir()
    return zoo


def test_zoo_report_holds_every_run_metric_and_image(zoo_report):
    report = (zoo_report / "report" / "report.md").read_text()
    html = (zoo_report / "report" / "index.html").read_text()
    runs = sorted(p.name for p in (zoo_report / "runs").glob("0*"))
    assert len(runs) == 7  # vae, ae, dae, rbm; vae-threshold; gan-grey, vae-grey on grey levels
    for name in runs:
        assert name in report and name in html
        assert (zoo_report / "report" / "images" / f"{name}-samples.png").exists() or "ae" in name
    n = (
        500
        if "fd_cnn_500" in report
        else json.loads(next((zoo_report / "runs").glob("*-vae/eval.json")).read_text())["images"]
    )  # digits has fewer test images than 500: the sets shrink to its size
    for metric in ("nll_iwae_k1000", f"fd_cnn_{n}", f"kid_cnn_{n}", f"precision_cnn_k3_{n}"):
        assert metric in report
    assert "| a VAE only maximises a lower bound |" in report
    rbm = next(name for name in runs if name.endswith("-rbm"))
    assert (zoo_report / "report" / "images" / f"{rbm}-chains.png").exists()
    assert f"images/{rbm}-chains.png" in html
    for claim in ("a Boltzmann machine's likelihood can only be estimated", "mixes slowly"):
        line = next(x for x in report.splitlines() if claim in x)
        assert "not measured" not in line
    assert (zoo_report / "report" / "images" / "curves.png").exists()
    assert (zoo_report / "zoo.json").exists()
    for src in ("images/curves.png", "-latent.png", "-interpolations.png"):
        assert src in html


def test_report_numbers_are_the_runs_own(zoo_report):
    report = (zoo_report / "report" / "report.md").read_text()
    for run in (zoo_report / "runs").glob("0*"):
        metrics = json.loads((run / "eval.json").read_text())["metrics"]
        for name, entry in metrics.items():
            if name.startswith("fd_"):
                assert f"{entry['value']:.2f} (floor {entry['floor']:.2f})" in report


def _screenshot(url: str, shot, height: int) -> np.ndarray:
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--virtual-time-budget=5000",  # let every image load before the shot
            f"--screenshot={shot}",
            f"--window-size=1400,{height}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_report_renders_in_headless_chromium(zoo_report, tmp_path):
    page = (zoo_report / "report" / "index.html").resolve().as_uri()
    pixels = _screenshot(page, tmp_path / "top.png", 1200).mean(axis=2)
    assert pixels.shape == (1200, 1400)
    assert pixels.std() > 20  # not blank: text, table borders and images
    dark_rows = (pixels < 128).mean(axis=1)
    assert (dark_rows > 0.02).sum() > 50  # many rows hold text: the table is visible
    # the whole page: the figures' curves show in colour (the claims table holds text and
    # pastel verdicts; links are blue)
    rgb = _screenshot(page, tmp_path / "page.png", 12000)
    coloured = rgb.max(axis=2) - rgb.min(axis=2) > 80
    assert coloured.sum() > 5000


def test_claims_without_runs_of_a_family_are_not_measured():
    vae = RunSummary(
        "v",
        "vae",
        MODELS.get("vae").traits,
        "d",
        {"nll_iwae_k10": {"metric": "nll", "value": 90.0, "bits_per_dim": 0.1}},
        {},
    )
    verdicts = {v.claim: v for v in check_claims([vae])}
    assert verdicts["a VAE lets you evaluate log-likelihood"].verdict == "holds"
    ar = verdicts["PixelRNN/PixelCNN reach better likelihood than a VAE"]
    assert ar.verdict == "not measured" and "autoregressive" in ar.evidence
    ar = MODELS.get("pixelcnn").traits
    pixel = RunSummary("p", "pixelcnn", ar, "d", {"nll_exact": {"value": 80.0}}, {})
    other_data = RunSummary("q", "pixelcnn", ar, "other", {"nll_exact": {"value": 10.0}}, {})
    flat = tuple(CurvePoint(10.0 * i, 100.0 * i, 90.0) for i in range(1, 5))
    vae = dataclasses.replace(vae, curve=flat)  # behind, and done learning: the claim decides
    verdicts = {v.claim: v for v in check_claims([vae, pixel, other_data])}
    ar = verdicts["PixelRNN/PixelCNN reach better likelihood than a VAE"]
    assert ar.verdict == "holds" and "80.00" in ar.evidence  # the run on other data is ignored


@pytest.mark.parametrize(
    "text, seconds", [("30m", 1800), ("1h", 3600), ("1h30m", 5400), ("90s", 90), ("45", 45)]
)
def test_budget_parsing(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "0m", "-5m", "3d"])
def test_bad_budget_is_a_config_error(text):
    with pytest.raises(ConfigError, match="budget"):
        parse_budget(text)


def test_zoo_claims_name_their_protocol(zoo_report):
    report = (zoo_report / "report" / "report.md").read_text()
    gan = next(x for x in report.splitlines() if "GAN samples are sharper" in x)
    assert "| digits, 8-bit grey levels |" in gan and "decoder means" in gan
    lower_bound = next(x for x in report.splitlines() if "only maximises a lower bound" in x)
    assert "| digits, binarised (static) |" in lower_bound
    record = json.loads((zoo_report / "zoo.json").read_text())
    assert record["status"] == "finished" and set(record["pilot"]) == {
        "vae",
        "ae",
        "dae",
        "rbm",
        "vae-threshold",
        "gan-grey",
        "vae-grey",
    }
    assert all(row["seconds"] > 0 for row in record["plan"])
    # the page says how the budget was spent: shares, epochs reached, device
    assert "## How the budget was spent" in report and f"on {record['device']}" in report
    for state in record["runs"].values():
        name = state["path"].rsplit("/", 1)[-1]
        row = next(x for x in report.splitlines() if x.startswith("| ") and f" {name} |" in x)
        assert row.split(" | ")[-2] == str(state["epochs"])
    assert all(state["trained"] and state["evaluated"] for state in record["runs"].values())


def test_compare_of_a_missing_run_exits_2(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    assert "genlab: error:" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_compare_with_an_unfinished_run_exits_2_and_writes_nothing(zoo_report, tmp_path, capsys):
    finished = sorted((zoo_report / "runs").glob("0*"))[0]
    unfinished = tmp_path / "runs" / "00009-digits-vae"
    unfinished.mkdir(parents=True)
    for name in ("config.json", "run.json"):
        (unfinished / name).write_text((finished / name).read_text())
    out = tmp_path / "report"
    assert main(["compare", str(finished), str(unfinished), "--out", str(out)]) == 2
    assert "has not finished training" in capsys.readouterr().err
    assert not out.exists()
