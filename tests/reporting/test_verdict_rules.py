"""What a "does not hold" must earn: a run behind that reached its planned minimum, a curve
that had flattened by its selected checkpoint, a difference beyond two standard errors; and
accuracy comparisons decided on their spread over seeds."""

from __future__ import annotations

import dataclasses

from genlab.models import MODELS
from genlab.reporting.claims import UNDECIDED, CurvePoint, RunSummary, check_claims
from genlab.reporting.report import selection

AR_CLAIM = "PixelRNN/PixelCNN reach better likelihood than a VAE"
AE_CLAIM = "an autoencoder's features can initialise a supervised model"


def _curve(*losses: float) -> tuple[CurvePoint, ...]:
    return tuple(CurvePoint(100.0 * (i + 1), 1000.0 * (i + 1), v) for i, v in enumerate(losses))


def _run(name, family, metrics, curve=(), **fields):
    traits = MODELS.get(family).traits
    return RunSummary(name, family, traits, "d", metrics, {}, curve=curve, **fields)


def _nll(value, stderr=0.5):
    return {"value": value, "stderr_images": stderr, "bits_per_dim": value / 784 / 0.693}


VAE = _run("vae", "vae", {"nll_iwae_k1000": _nll(245.0)}, _curve(260, 250, 247, 246.5, 246.4))
FLAT = _curve(270, 255, 250.2, 250.1, 250.0)


def _verdict(*runs, claim=AR_CLAIM):
    return {v.claim: v for v in check_claims(list(runs))}[claim]


def test_a_run_behind_that_did_not_reach_its_planned_minimum_leaves_it_undecided():
    pixel = _run("pix", "pixelcnn", {"nll_exact": _nll(250.0)}, FLAT, epochs=5, min_epochs=3)
    assert _verdict(VAE, pixel).verdict == "does not hold"  # reached its minimum: earned
    short = dataclasses.replace(pixel, epochs=2)
    verdict = _verdict(VAE, short)
    assert verdict.verdict == UNDECIDED
    assert "pix trained 2 of the 3 epochs planned as its minimum" in verdict.evidence
    assert "difference -5.00 (2 s.e. 1.41)" in verdict.evidence


def test_a_run_ahead_that_was_cut_short_still_decides_for_the_claim():
    """Only the losing side must have had its chance: a winner cut short still won."""
    pixel = _run("pix", "pixelcnn", {"nll_exact": _nll(240.0)}, FLAT, epochs=1, min_epochs=3)
    assert _verdict(VAE, pixel).verdict == "holds"


def test_the_three_conditions_each_turn_a_does_not_hold_into_not_decided():
    pixel = _run("pix", "pixelcnn", {"nll_exact": _nll(250.0)}, FLAT, epochs=5, min_epochs=3)
    assert _verdict(VAE, pixel).verdict == "does not hold"
    within = dataclasses.replace(pixel, metrics={"nll_exact": _nll(245.5)})
    moving = dataclasses.replace(pixel, curve=_curve(300, 280, 265, 257, 250))
    short = dataclasses.replace(pixel, epochs=2)
    for case in (within, moving, short):
        assert _verdict(VAE, case).verdict == UNDECIDED


def _finetune(pre: dict[str, list[float]], scratch: dict[str, list[float]]) -> dict:
    def entries(accs):
        return {size: {"mean": sum(v) / len(v), "runs": v} for size, v in accs.items()}

    return {"results": {"pretrained": entries(pre), "scratch": entries(scratch)}}


def test_accuracies_are_compared_on_their_spread_over_seeds():
    close = _finetune({"1000": [0.81, 0.80, 0.82]}, {"1000": [0.82, 0.81, 0.83]})
    ae = _run("ae", "ae", {}, finetune=close)
    verdict = _verdict(ae, claim=AE_CLAIM)
    assert verdict.verdict == UNDECIDED and "2 s.e." in verdict.evidence
    apart = _finetune({"1000": [0.85, 0.86, 0.85]}, {"1000": [0.80, 0.81, 0.80]})
    assert _verdict(_run("ae", "ae", {}, finetune=apart), claim=AE_CLAIM).verdict == "holds"
    worse = _finetune({"1000": [0.75, 0.76, 0.75]}, {"1000": [0.80, 0.81, 0.80]})
    assert _verdict(_run("ae", "ae", {}, finetune=worse), claim=AE_CLAIM).verdict == "does not hold"


def test_replicas_pool_their_fine_tuning_runs():
    """Two seeds whose own three classifier runs each overlap decide together."""
    a = _finetune({"1000": [0.84, 0.82, 0.83]}, {"1000": [0.81, 0.82, 0.80]})
    b = _finetune({"1000": [0.83, 0.84, 0.85]}, {"1000": [0.80, 0.82, 0.81]})
    runs = [
        _run(f"ae{s}", "ae", {}, finetune=f, seed=s, replica_key="k") for s, f in ((0, a), (1, b))
    ]
    verdict = _verdict(*runs, claim=AE_CLAIM)
    assert "6 runs each" in verdict.evidence and verdict.verdict == "holds"


def test_the_selected_checkpoint_is_read_from_the_run():
    info = {"epochs_completed": 20, "best_epoch": 14, "planned_min_epochs": 3, "train_seconds": 9.5}
    assert selection(info, {}) == {
        "checkpoint": "best validation epoch 14 of 20",
        "epochs": 20,
        "min_epochs": 3,
        "train_seconds": 9.5,
    }
    final = selection({"epochs_completed": 5}, {"weights": "final weights at step 115"})
    assert final["checkpoint"] == "final weights, epoch 5" and final["min_epochs"] == 0
    assert selection({"epochs_completed": "x", "train_seconds": float("nan")}, {}) == {
        "checkpoint": "",
        "epochs": 0,
        "min_epochs": 0,
        "train_seconds": 0.0,
    }


def test_a_sharper_gan_cut_short_still_wins_and_the_vae_behind_must_have_had_its_chance():
    """Where higher is better (sharpness), the run behind is the one with the lower value."""
    sharp = {"sharpness_lap_2k": {"value": 0.93, "stderr": 0.01}}
    blurry = {"sharpness_lap_2k": {"value": 0.38, "stderr": 0.01, "source": "means"}}
    gan = _run("gan", "gan", sharp, epochs=4, min_epochs=5)
    vae = _run("vae", "vae", blurry, epochs=23, min_epochs=20)
    claim = "GAN samples are sharper than VAE samples"
    assert _verdict(gan, vae, claim=claim).verdict == "holds"
    assert _verdict(gan, dataclasses.replace(vae, epochs=3), claim=claim).verdict == UNDECIDED
    dull = {"sharpness_lap_2k": {"value": 0.2, "stderr": 0.01}}
    short_loser = dataclasses.replace(gan, metrics=dull)  # the GAN behind, cut short
    assert _verdict(short_loser, vae, claim=claim).verdict == UNDECIDED
    loser = dataclasses.replace(short_loser, epochs=5)
    assert _verdict(loser, vae, claim=claim).verdict == "does not hold"
