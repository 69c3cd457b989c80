"""The claims of class-conditional generation on constructed run summaries, each of its
verdicts earned by the zoo's rules; and the guidance curve's picture in the report."""

from __future__ import annotations

import json
import math

from genlab.models import MODELS
from genlab.reporting.claims import UNDECIDED, CurvePoint, RunSummary, check_claims
from genlab.reporting.conditional_claims import is_conditional
from genlab.reporting.plots import guidance_versus_weight
from genlab.reporting.report import Report
from genlab.reporting.report_render import render_html, render_markdown

LIKELIHOOD = "conditioning on the label improves likelihood"
GUIDANCE = "guidance trades diversity for fidelity"
H10 = math.log2(10)  # H(y) of ten balanced classes


def _config(name: str, family: str, conditional: bool) -> str:
    """A run's replica key: its config without seed and budget, as report.summarise makes it
    (runs with one key are replicas, of which the claims keep one)."""
    config = {"model": {"name": family, "conditional": conditional}, "runs_dir": name}
    return json.dumps(config, sort_keys=True)


def _curve(*losses: float) -> tuple[CurvePoint, ...]:
    return tuple(CurvePoint(100.0 * (i + 1), 1000.0 * (i + 1), v) for i, v in enumerate(losses))


FLAT = _curve(130, 101, 100.2, 100.1, 100.0)  # flattened over its last fifth


def _run(name, family, metrics, conditional, binarize="static", **fields):
    fields.setdefault("curve", FLAT)
    return RunSummary(
        name,
        family,
        MODELS.get(family).traits,
        "d",
        metrics,
        {},
        binarize=binarize,
        replica_key=_config(name, family, conditional),
        **fields,
    )


def _nll(value, stderr=0.3):
    return {"value": value, "stderr_images": stderr, "bits_per_dim": value / 64 / math.log(2)}


def _classifier(conditional_nll, information):
    return {
        "value": 0.9,
        "stderr": 0.01,
        "conditional_nll_nats": conditional_nll,
        "label_information_bits": information,
        "prior_entropy_bits": H10,
    }


def _verdict(claim, *runs):
    return {v.claim: v for v in check_claims(list(runs))}[claim]


def test_a_conditional_run_is_told_by_its_config_or_else_by_its_class_metrics():
    plain = RunSummary("u", "vae", MODELS.get("vae").traits, "d", {"nll_exact": _nll(1)}, {})
    assert not is_conditional(plain)
    labelled = RunSummary("c", "vae", plain.traits, "d", {"class_agreement_cnn_n2000": {}}, {})
    assert is_conditional(labelled)
    assert is_conditional(_run("c", "vae", {}, True))
    assert not is_conditional(_run("u", "vae", {"class_agreement_cnn_n2000": {}}, False))


def test_conditioning_improves_likelihood_is_decided_family_by_family():
    metrics = {"nll_iwae_k1000": _nll(95.0), "gen_classifier_acc_iwae_k1000": _classifier(93, 1.8)}
    conditional = _run("cvae", "vae", metrics, True)
    unconditional = _run("vae", "vae", {"nll_iwae_k1000": _nll(97.0)}, False)
    verdict = _verdict(LIKELIHOOD, conditional, unconditional)
    assert verdict.verdict == "holds" and verdict.protocol == "d, binarised (static)"
    text = verdict.evidence
    assert "cvae (conditional) nll_iwae_k1000 = 95.00 nats" in text and "97.00 nats" in text
    assert f"a gain of {2 / math.log(2):.2f} bits per image" in text
    assert "the label tells 1.80 bits" in text and "H(y) = 3.32 bits" in text
    worse = _run("vae", "vae", {"nll_iwae_k1000": _nll(93.0)}, False)
    assert _verdict(LIKELIHOOD, conditional, worse).verdict == "does not hold"
    close = _run("vae", "vae", {"nll_iwae_k1000": _nll(95.5)}, False)
    verdict = _verdict(LIKELIHOOD, conditional, close)
    assert verdict.verdict == UNDECIDED and "within 2 s.e." in verdict.evidence


def test_a_gain_beyond_what_a_label_can_tell_is_the_mixtures_fit_not_the_label():
    conditional = _run(
        "cvae",
        "vae",
        {"nll_iwae_k1000": _nll(90.0), "gen_classifier_acc_iwae_k1000": _classifier(89, 2.0)},
        True,
    )
    unconditional = _run("vae", "vae", {"nll_iwae_k1000": _nll(97.0)}, False)
    verdict = _verdict(LIKELIHOOD, conditional, unconditional)
    assert verdict.verdict == "holds"  # 10.1 bits per image, more than H(y)
    assert "a gain beyond it is the class mixture's better fit of x" in verdict.evidence


def test_a_conditional_run_behind_short_of_its_planned_epochs_or_still_learning_decides_nothing():
    unconditional = _run("vae", "vae", {"nll_exact": _nll(95.0)}, False)
    short = _run("cvae", "vae", {"nll_exact": _nll(99.0)}, True, epochs=2, min_epochs=5)
    verdict = _verdict(LIKELIHOOD, short, unconditional)
    assert verdict.verdict == UNDECIDED and "trained 2 of the 5 epochs" in verdict.evidence
    moving = _run("cvae", "vae", {"nll_exact": _nll(99.0)}, True, curve=_curve(130, 120, 110, 100))
    verdict = _verdict(LIKELIHOOD, moving, unconditional)
    assert verdict.verdict == UNDECIDED and "still learning" in verdict.evidence


def test_only_the_same_family_under_the_same_protocol_is_compared():
    conditional = _run("cvae", "vae", {"nll_iwae_k1000": _nll(90.0)}, True)
    other_k = _run("vae", "vae", {"nll_iwae_k100": _nll(97.0)}, False)
    other_family = _run("pix", "pixelcnn", {"nll_iwae_k1000": _nll(97.0)}, False)
    alone = _verdict(LIKELIHOOD, conditional, other_k, other_family)
    assert alone.verdict == "not measured" and "same family" in alone.evidence
    # two families, one for and one against: most do not agree, so nothing is decided
    gated = _run("cg", "gated_pixelcnn", {"nll_exact": _nll(80.0)}, True)
    plain = _run("g", "gated_pixelcnn", {"nll_exact": _nll(70.0)}, False)
    fair = _run("vae", "vae", {"nll_iwae_k1000": _nll(97.0)}, False)
    split = _verdict(LIKELIHOOD, conditional, fair, gated, plain)
    assert split.verdict == UNDECIDED
    assert split.evidence.startswith("vae: cvae") and "gated_pixelcnn: cg" in split.evidence


def _point(w, precision, recall, agreement, fd=10.0, stderr=0.01):
    return {
        "guidance": w,
        "fd": fd,
        "precision": precision,
        "precision_stderr": stderr,
        "recall": recall,
        "recall_stderr": stderr,
        "class_agreement": agreement,
        "class_agreement_stderr": stderr,
    }


def _guided(points, **fields):
    entry = {"value": min(p["fd"] for p in points), "points": points}
    metrics = {"guidance_curve_cnn_n500": entry}
    return _run("ddpm", "diffusion", metrics, True, binarize="none", **fields)


def test_guidance_trades_diversity_for_fidelity_from_w1_to_the_largest_weight():
    trade = [
        _point(0.0, 0.60, 0.70, 0.40, fd=14.0),
        _point(1.0, 0.70, 0.60, 0.80, fd=9.0),
        _point(2.0, 0.78, 0.52, 0.90, fd=10.0),
        _point(4.0, 0.85, 0.40, 0.95, fd=15.0),
    ]
    verdict = _verdict(GUIDANCE, _guided(trade))
    assert verdict.verdict == "holds" and verdict.protocol == "d, 8-bit grey levels"
    assert "precision 0.700 -> 0.850 (+0.150, 2 s.e. 0.028)" in verdict.evidence
    assert "recall 0.600 -> 0.400 (-0.200" in verdict.evidence
    assert "FD 0: 14.00, 1: 9.00, 2: 10.00, 4: 15.00" in verdict.evidence
    # class agreement at its ceiling may stay where it is
    saturated = [_point(1.0, 0.70, 0.60, 0.99), _point(3.0, 0.80, 0.50, 0.99)]
    assert _verdict(GUIDANCE, _guided(saturated)).verdict == "holds"


def test_guidance_that_loses_fidelity_or_gains_diversity_does_not_hold():
    diverse = [_point(1.0, 0.70, 0.60, 0.80), _point(4.0, 0.80, 0.70, 0.90)]
    assert _verdict(GUIDANCE, _guided(diverse)).verdict == "does not hold"
    off_class = [_point(1.0, 0.70, 0.60, 0.80), _point(4.0, 0.80, 0.50, 0.60)]
    assert _verdict(GUIDANCE, _guided(off_class)).verdict == "does not hold"


def test_guidance_is_not_decided_within_the_intervals_without_w1_or_short_of_epochs():
    noisy = [_point(1.0, 0.70, 0.60, 0.80, stderr=0.1), _point(4.0, 0.75, 0.55, 0.85, stderr=0.1)]
    verdict = _verdict(GUIDANCE, _guided(noisy))
    assert verdict.verdict == UNDECIDED and "do not both move beyond 2 s.e." in verdict.evidence
    no_one = [_point(0.0, 0.70, 0.60, 0.80), _point(4.0, 0.90, 0.40, 0.95)]
    verdict = _verdict(GUIDANCE, _guided(no_one))
    assert verdict.verdict == UNDECIDED and "none at w = 1" in verdict.evidence
    turned = [_point(1.0, 0.70, 0.60, 0.80), _point(4.0, 0.50, 0.70, 0.60)]
    verdict = _verdict(GUIDANCE, _guided(turned, epochs=1, min_epochs=4))
    assert verdict.verdict == UNDECIDED and "trained 1 of the 4 epochs" in verdict.evidence
    nothing = _verdict(GUIDANCE, _run("vae", "vae", {}, False))
    assert nothing.verdict == "not measured" and "guidance_curve" in nothing.evidence


def test_the_guidance_curve_is_drawn_and_shown_in_the_report(tmp_path):
    points = [_point(w, 0.6 + w / 10, 0.7 - w / 10, 0.5 + w / 10) for w in (0.0, 1.0, 2.0)]
    path = guidance_versus_weight({"ddpm": points, "empty": []}, tmp_path / "g.png")
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert guidance_versus_weight({"empty": []}, tmp_path / "none.png") is None
    report = Report([], [], [], None, tmp_path, guidance_curve="images/guidance.png")
    assert "## Classifier-free guidance" in render_markdown(report)
    assert "(images/guidance.png)" in render_markdown(report)
    assert "src='images/guidance.png'" in render_html(report)


def test_guidance_of_a_model_still_learning_is_not_decided():
    """A curve of a model cut short (validation loss still falling by more than 1 % over its
    last fifth, or too few validation points to tell) decides neither way."""
    against = [_point(1.0, 0.74, 0.52, 0.43), _point(4.0, 0.63, 0.57, 0.83)]  # as measured
    assert _verdict(GUIDANCE, _guided(against)).verdict == "does not hold"  # a flat curve
    falling = _verdict(GUIDANCE, _guided(against, curve=_curve(0.05, 0.04, 0.035, 0.03)))
    assert falling.verdict == UNDECIDED and "was still learning" in falling.evidence
    short = _verdict(GUIDANCE, _guided(against, curve=_curve(0.05, 0.04)))
    assert short.verdict == UNDECIDED and "too few (< 3)" in short.evidence
    trade = [_point(1.0, 0.70, 0.60, 0.80), _point(4.0, 0.85, 0.40, 0.95)]
    held = _verdict(GUIDANCE, _guided(trade, curve=_curve(0.05, 0.04, 0.035, 0.03)))
    assert held.verdict == UNDECIDED
