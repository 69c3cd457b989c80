"""Every family on the taxonomy's tree, and the claims about change-of-variables models,
decided on 8-bit images only."""

from __future__ import annotations

import dataclasses

from genlab.models import MODELS
from genlab.models.declarations import Traits
from genlab.reporting.claims import UNDECIDED, CurvePoint, RunSummary, check_claims
from genlab.reporting.report_render import first_clause
from genlab.reporting.taxonomy import LEAVES, headline, leaf_of, placements, taxonomy_figure

FLOW_EXACT = "a change-of-variables model gives an exact likelihood and one-pass sampling"
FLOW_PAYS = "flows buy fast sampling with worse likelihood than autoregressive models"
AR_GREY = "PixelRNN/PixelCNN reach better likelihood than a VAE, on 8-bit grey levels"
AR_ANY = "PixelRNN/PixelCNN reach better likelihood than a VAE"


def _curve(*losses: float) -> tuple[CurvePoint, ...]:
    return tuple(CurvePoint(100.0 * (i + 1), 1000.0 * (i + 1), v) for i, v in enumerate(losses))


FLAT = _curve(2000, 1900, 1890, 1889.9, 1889.9)


def _run(name, family, metrics, *, binarize="none", curve=FLAT, traits=None):
    key = f"fashion-mnist / {binarize} / f"
    traits = traits or MODELS.get(family).traits
    return RunSummary(name, family, traits, key, metrics, {}, curve=curve, binarize=binarize)


def _nll(value, kind="exact", stderr=0.5):
    return {
        "value": value,
        "stderr_images": stderr,
        "bits_per_dim": value / 784 / 0.6931,
        "kind": kind,
    }


def _speed(value):
    return {"value": value, "unit": "images/s"}


def _verdicts(*runs):
    return {v.claim: v for v in check_claims(list(runs))}


PIXEL_GREY = _run(
    "pixelcnn-grey",
    "pixelcnn",
    {"nll_exact": _nll(1800.0), "sample_images_per_s": _speed(3.0)},
)
FLOW_GREY = _run(
    "flow-grey",
    "flow",
    {"nll_dequant_k1": _nll(1900.0, "dequantised_bound"), "sample_images_per_s": _speed(900.0)},
)
VAE_GREY = _run("vae-grey", "vae", {"nll_iwae_k100": _nll(1950.0, "iwae_bound")})


def test_a_flow_that_samples_300x_faster_than_the_pixelcnn_with_its_exact_density_holds():
    verdict = _verdicts(PIXEL_GREY, FLOW_GREY)[FLOW_EXACT]
    assert verdict.verdict == "holds", verdict.evidence
    assert "(300.0x)" in verdict.evidence and "dequantisation bound" in verdict.evidence
    assert verdict.protocol == "fashion-mnist, 8-bit grey levels"


def test_flows_pay_in_likelihood_when_the_autoregressive_model_is_lower_beyond_2_se():
    verdict = _verdicts(PIXEL_GREY, FLOW_GREY)[FLOW_PAYS]
    assert verdict.verdict == "holds" and "difference +100.00" in verdict.evidence
    close = dataclasses.replace(FLOW_GREY, metrics={"nll_dequant_k1": _nll(1800.4)})
    assert _verdicts(PIXEL_GREY, close)[FLOW_PAYS].verdict == UNDECIDED


def test_the_likelihood_claim_on_grey_levels_is_decided_there_with_the_flow_as_context():
    verdicts = _verdicts(PIXEL_GREY, FLOW_GREY, VAE_GREY)
    assert verdicts[AR_GREY].verdict == "holds"
    assert "context: flow-grey's flow nll_dequant_k1 = 1900.00" in verdicts[AR_GREY].evidence


def test_grey_only_claims_are_not_decided_on_binarised_data():
    binary = [
        dataclasses.replace(r, binarize="static", data_key="fashion-mnist / static / f")
        for r in (PIXEL_GREY, FLOW_GREY, VAE_GREY)
    ]
    verdicts = _verdicts(*binary)
    assert verdicts[AR_GREY].verdict == "not measured"
    assert verdicts[FLOW_PAYS].verdict == "not measured"
    assert verdicts[AR_ANY].verdict == "holds"  # decided on whichever data measure it


def test_nade_and_made_join_the_fully_visible_group():
    for family in ("nade", "made"):
        if family not in MODELS:
            continue
        nade = _run(family, family, {"nll_exact": _nll(1800.0)}, binarize="static")
        vae = _run("vae", "vae", {"nll_iwae_k1000": _nll(1850.0, "iwae_bound")}, binarize="static")
        assert _verdicts(nade, vae)[AR_ANY].verdict == "holds"
        assert leaf_of(nade) == "fully_visible"


def test_every_registered_family_has_a_leaf_from_its_traits():
    leaves = {leaf.key for leaf in LEAVES} | {"diffusion", "autoencoder"}
    expected = {
        "vae": "variational",
        "gan": "direct",
        "pixelcnn": "fully_visible",
        "gated_pixelcnn": "fully_visible",
        "pixelrnn": "fully_visible",
        "rbm": "boltzmann",
        "flow": "change_of_variables",
        "ae": "autoencoder",
    }
    for family in MODELS.names():
        leaf = leaf_of(_run(family, family, {}))
        assert leaf in leaves
        if family in expected:
            assert leaf == expected[family], family
    dae = _run("dae", "ae", {"chain_fd": {"value": 1.0, "fd": [9.0, 3.5], "steps": [10, 100]}})
    assert leaf_of(dae) == "gsn" and headline(dae) == "chain FD 3.5 after 100 steps"
    diffusion = Traits(density="bound", sampling="iterative")
    assert leaf_of(_run("d", "vae", {}, traits=diffusion)) == "diffusion"


def test_the_figure_puts_each_run_under_its_leaf_with_its_headline(tmp_path):
    runs = [PIXEL_GREY, FLOW_GREY, VAE_GREY]
    placed = placements(runs)
    assert placed["change_of_variables"] == ["flow-grey (8-bit): 3.497 bits/dim (nll_dequant_k1)"]
    assert placed["fully_visible"] == ["pixelcnn-grey (8-bit): 3.313 bits/dim (nll_exact)"]
    path = taxonomy_figure(runs, tmp_path / "taxonomy.png")
    assert path is not None and path.stat().st_size > 10_000
    assert taxonomy_figure([], tmp_path / "none.png") is None


def test_the_claims_table_shows_the_first_clause_outside_parentheses():
    text = "flow: 223.41 nats (5.036 bits/dim; exact density); sampling 3x; holds at 10x"
    assert first_clause(text) == "flow: 223.41 nats (5.036 bits/dim; exact density)"
    assert first_clause("x" * 300).endswith("…") and len(first_clause("x" * 300)) == 220
