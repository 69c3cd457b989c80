"""Three-valued verdicts: a claim is decided only when the intervals are apart and the run
that is behind had stopped learning; otherwise it is "not decided at this budget", saying why."""

from __future__ import annotations

import dataclasses

import pytest

from genlab.models import MODELS
from genlab.reporting.claims import UNDECIDED, CurvePoint, RunSummary, check_claims
from genlab.reporting.report import validation_curve
from genlab.reporting.spread import seed_spread

AR_CLAIM = "PixelRNN/PixelCNN reach better likelihood than a VAE"
GAN_CLAIM = "GAN samples are sharper than VAE samples"


def _curve(*losses: float, seconds: float = 100.0) -> tuple[CurvePoint, ...]:
    return tuple(
        CurvePoint(seconds * (i + 1), 1000.0 * (i + 1), loss) for i, loss in enumerate(losses)
    )


def _run(name, family, metrics, curve=()):
    return RunSummary(name, family, MODELS.get(family).traits, "d", metrics, {}, curve=curve)


def _nll(value, stderr=0.5):
    return {"value": value, "stderr_images": stderr, "bits_per_dim": value / 784 / 0.693}


def _verdicts(*runs):
    return {v.claim: v for v in check_claims(list(runs))}


VAE = _run("vae", "vae", {"nll_iwae_k1000": _nll(245.0)}, _curve(260, 250, 247, 246.5, 246.4))


def test_a_curve_still_falling_leaves_the_claim_undecided_with_the_time_it_would_need():
    pixel = _run("pix", "pixelcnn", {"nll_exact": _nll(250.0)}, _curve(300, 280, 265, 257, 250))
    verdict = _verdicts(VAE, pixel)[AR_CLAIM]
    assert verdict.verdict == UNDECIDED
    # last 20% of 500 s: from the point at 400 s (257) to 500 s (250): 7 nats in 100 s
    assert "fell 7.00 nats in the last 100 s" in verdict.evidence
    assert "about 71 s more" in verdict.evidence  # gap 5 nats at 0.07 nats/s


def test_a_flat_curve_behind_decides_against_the_claim():
    pixel = _run("pix", "pixelcnn", {"nll_exact": _nll(250.0)}, _curve(270, 255, 250.2, 250.1, 250))
    verdict = _verdicts(VAE, pixel)[AR_CLAIM]
    assert verdict.verdict == "does not hold" and "flattened" in verdict.evidence


def test_overlapping_intervals_are_undecided_whatever_the_curves():
    pixel = _run("pix", "pixelcnn", {"nll_exact": _nll(245.9)}, _curve(250, 246, 245.9))
    verdict = _verdicts(VAE, pixel)[AR_CLAIM]
    assert verdict.verdict == UNDECIDED and "within 2 s.e." in verdict.evidence
    # the run behind gained 0.1 nats (246 -> 245.9) in its last 20 %, under its s.e. of 0.5
    assert "pix's validation loss had flattened" in verdict.evidence
    assert "more time for these models is unlikely to decide it" in verdict.evidence


def test_overlapping_intervals_say_whether_the_run_behind_still_learns():
    pixel = _run("pix", "pixelcnn", {"nll_exact": _nll(245.9)}, _curve(260, 255, 250, 245.9))
    verdict = _verdicts(VAE, pixel)[AR_CLAIM]
    assert verdict.verdict == UNDECIDED and "within 2 s.e." in verdict.evidence
    # last 20 % of 400 s: from 300 s (250) to 400 s (245.9)
    assert "pix was still learning (4.10 nats in the last 100 s of training)" in verdict.evidence


def test_a_clear_lead_with_the_vae_behind_and_flat_holds():
    pixel = _run("pix", "pixelcnn", {"nll_exact": _nll(238.0)}, _curve(300, 260, 240, 238))
    assert _verdicts(VAE, pixel)[AR_CLAIM].verdict == "holds"


def test_a_vae_behind_and_still_learning_leaves_it_undecided():
    vae = _run("vae", "vae", {"nll_iwae_k1000": _nll(245.0)}, _curve(280, 265, 255, 249, 245))
    pixel = _run("pix", "pixelcnn", {"nll_exact": _nll(238.0)}, _curve(300, 260, 240, 238))
    assert _verdicts(vae, pixel)[AR_CLAIM].verdict == UNDECIDED


@pytest.mark.parametrize(
    "gan, vae, expected",
    [((0.97, 0.02), (0.55, 0.01), "holds"), ((0.56, 0.02), (0.55, 0.01), UNDECIDED)],
)
def test_sharpness_decides_the_gan_claim(gan, vae, expected):
    def sharp(value, se):
        return {"sharpness_lap_10k": {"value": value, "stderr": se}}

    verdict = _verdicts(_run("g", "gan", sharp(*gan)), _run("v", "vae", sharp(*vae)))[GAN_CLAIM]
    assert verdict.verdict == expected and "sharpness_lap_10k" in verdict.evidence


def test_the_validation_curve_accumulates_time_and_images():
    records = [
        {"kind": "train", "step": 5},
        {"kind": "epoch", "step": 10, "seconds": 2.0, "images_per_s": 50.0, "val/loss": 9.0},
        {"kind": "epoch", "step": 20, "seconds": 3.0, "images_per_s": 100.0, "val/loss": 7.0},
        {"kind": "epoch", "step": 30, "seconds": 1.0, "images_per_s": 10.0},  # no validation
        {"kind": "epoch", "step": 40, "seconds": "x", "images_per_s": 1.0, "val/loss": 1.0},
    ]
    assert validation_curve(records) == (CurvePoint(2.0, 100.0, 9.0), CurvePoint(5.0, 400.0, 7.0))


def test_crossing_of_two_curves_is_interpolated():
    from genlab.reporting.claims import crossing

    falling = _curve(300, 260, 240, 230)  # at 100, 200, 300, 400 s
    flat = _curve(250, 250, 250, 250)
    assert crossing(falling, flat) == pytest.approx(250.0)  # 260 -> 240 passes 250 halfway
    assert crossing(flat, falling) is None  # flat never goes from above to below
    assert crossing(falling, _curve(100, 100)) is None


def test_the_ar_claim_names_where_the_curves_cross():
    pixel = _run("pix", "pixelcnn", {"nll_exact": _nll(238.0)}, _curve(300, 260, 240, 238, 238))
    vae = _run("vae", "vae", {"nll_iwae_k1000": _nll(245.0)}, _curve(250, 248, 246, 245.5, 245.5))
    verdict = _verdicts(vae, pixel)[AR_CLAIM]
    assert verdict.verdict == "holds" and "cross at 267 s" in verdict.evidence  # gaps 12 then -6


def test_quality_vs_compute_draws_shared_axes(tmp_path):
    from genlab.reporting.plots import quality_vs_compute

    path = quality_vs_compute(
        {"a": [(1.0, 10.0, 5.0), (2.0, 20.0, 4.0)], "b": [(1.0, 5.0, 6.0)]}, tmp_path / "c.png"
    )
    assert path is not None and path.stat().st_size > 1000
    assert quality_vs_compute({"b": []}, tmp_path / "d.png") is None


def test_a_run_with_too_few_validation_points_cannot_decide_against_the_claim():
    pixel = _run("pix", "pixelcnn", {"nll_exact": _nll(250.0)}, _curve(262, 250))
    verdict = _verdicts(VAE, pixel)[AR_CLAIM]
    assert verdict.verdict == UNDECIDED and "too few" in verdict.evidence


def test_autoregressive_sampling_is_compared_with_one_pass_samplers_not_chains():
    def speed(value):
        return {"sample_images_per_s": {"value": value}}

    runs = [
        _run("pix", "pixelcnn", speed(300.0)),
        _run("gan", "gan", speed(6000.0)),
        _run("rbm", "rbm", speed(90.0)),  # a 1000-step Gibbs chain: slower, and not one pass
    ]
    verdict = _verdicts(*runs)["autoregressive sampling is slow"]
    assert verdict.verdict == "holds" and "gan 6000.0 images/s (20x)" in verdict.evidence


def _grouped(name, family, metrics, binarize, **fields):
    key = f"fashion-mnist / {binarize} / f0"
    traits = MODELS.get(family).traits
    return RunSummary(name, family, traits, key, metrics, {}, binarize=binarize, **fields)


def _sharp(value, source="samples"):
    return {"value": value, "stderr": 0.01, "source": source}


def test_each_claim_is_decided_on_the_data_of_its_protocol():
    vae_b = _grouped("vae-b", "vae", {"nll_iwae_k1000": _nll(245.0)}, "static", curve=VAE.curve)
    pixel = _grouped("pix", "pixelcnn", {"nll_exact": _nll(230.0)}, "static")
    gan_b = _grouped("gan-b", "gan", {"sharpness_lap_2k": _sharp(0.1)}, "static")
    gan = _grouped("gan", "gan", {"sharpness_lap_2k": _sharp(0.9)}, "none")
    vae_g = _grouped(
        "vae-g",
        "vae",
        {"sharpness_lap_2k": _sharp(1.3), "sharpness_lap_2k_means": _sharp(0.3, "means")},
        "none",
    )
    verdicts = _verdicts(vae_b, pixel, gan_b, gan, vae_g)
    ar = verdicts[AR_CLAIM]
    assert ar.protocol == "fashion-mnist, binarised (static)" and "pix" in ar.evidence
    sharp = verdicts[GAN_CLAIM]
    # on grey levels, against the VAE's decoder means (its noisy samples are context)
    assert sharp.protocol == "fashion-mnist, 8-bit grey levels" and sharp.verdict == "holds"
    assert "vae-g's decoder means 0.300" in sharp.evidence and "x ~ p(x|z) 1.300" in sharp.evidence
    assert "gan-b" not in sharp.evidence
    # with only binarised runs the claim falls back to the data that measure it, and says so
    vae_b = dataclasses.replace(vae_b, metrics={"sharpness_lap_2k": _sharp(0.5)})
    alone = _verdicts(vae_b, gan_b)[GAN_CLAIM]
    assert alone.protocol == "fashion-mnist, binarised (static)" and alone.verdict != "holds"
    assert _verdicts(vae_b)[GAN_CLAIM].protocol == ""  # not measured: no data named


def test_replicas_count_once_in_claims_and_show_their_spread():
    seeds = [
        _grouped(f"vae-{s}", "vae", {"nll_iwae_k1000": _nll(v)}, "static", seed=s, replica_key="k")
        for s, v in ((1, 230.0), (0, 240.0), (2, 250.0))
    ]
    pixel = _grouped("pix", "pixelcnn", {"nll_exact": _nll(235.0)}, "static")
    likelihood = _verdicts(*seeds, pixel)["a VAE lets you evaluate log-likelihood"]
    assert "vae-0" in likelihood.evidence  # the lowest seed, not the best of three
    (row,) = seed_spread([*seeds, pixel])
    assert row.runs == ("vae-0", "vae-1", "vae-2") and row.metric == "nll_iwae_k1000"
    assert (row.mean, row.sd, row.low, row.high) == (240.0, pytest.approx(10.0), 230.0, 250.0)


def test_the_sharpness_claim_names_where_the_fd_curves_cross():
    gan = _grouped("gan", "gan", {"sharpness_lap_2k": _sharp(0.9)}, "none")
    gan = dataclasses.replace(gan, sample_curve=_curve(200, 90, 40, 20))
    vae = _grouped("vae", "vae", {"sharpness_lap_2k_means": _sharp(0.3, "means")}, "none")
    vae = dataclasses.replace(vae, sample_curve=_curve(100, 60, 50, 45))
    # the gap falls from +30 (at 200 s) to -10 (at 300 s): zero at 275 s
    assert "falls below the VAE's at 275 s" in _verdicts(gan, vae)[GAN_CLAIM].evidence
