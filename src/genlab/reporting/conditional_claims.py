"""The claims of class-conditional generation: conditioning on the label improves likelihood
(a conditional run's log p(x), through the sum over classes, against an unconditional run of
the same family under the same protocol), and classifier-free guidance trades diversity for
fidelity (precision and class agreement against recall, along the guidance curve).

Both are three-valued by the zoo's rule (:func:`~genlab.reporting.evidence.compare_lower`):
a difference decides only beyond two standard errors, and not against a run that stopped
short of its planned minimum epochs.
"""

from __future__ import annotations

import json
import math
from typing import Any

from genlab.reporting.evidence import (
    MIN_CURVE,
    UNDECIDED,
    RunSummary,
    compare_lower,
    still_learning,
)
from genlab.reporting.groups import measured_in

# the metrics only a conditional run has: what tells one apart when its config is unknown
CLASS_METRICS = ("class_agreement_", "fd_intra_class_", "gen_classifier_acc_", "guidance_curve_")


def is_conditional(run: RunSummary) -> bool:
    """Whether ``run`` was trained with model.conditional=true: read from its config (the
    summary's ``replica_key`` is the config without seed and budget, as JSON); a summary
    without one counts as conditional when it holds a metric only conditional runs have."""
    try:
        config = json.loads(run.replica_key) if run.replica_key else None
    except ValueError:
        config = None
    model = config.get("model") if isinstance(config, dict) else None
    if isinstance(model, dict):
        return model.get("conditional") is True
    return any(run.metric(prefix) for prefix in CLASS_METRICS)


def _best_named(runs: list[RunSummary], name: str) -> tuple[RunSummary, str, dict[str, Any]] | None:
    """The run with the lowest value of the metric named exactly ``name``, or None."""
    found = [item for item in measured_in(runs, name) if item[1] == name]
    return min(found, key=lambda item: item[2]["value"]) if found else None


def _majority(verdicts: list[str], lines: list[str]) -> tuple[str, str]:
    """The verdict most of ``verdicts`` give (more than half), else not decided."""
    text = "; ".join(lines)
    for verdict in ("holds", "does not hold"):
        if sum(v == verdict for v in verdicts) > len(verdicts) / 2:
            return verdict, text
    return UNDECIDED, text


def conditioning_improves_likelihood(runs: list[RunSummary]) -> tuple[str, str]:
    """For each family with a conditional and an unconditional run whose nll metric has the
    same name (the same protocol: nll_exact, nll_iwae_k1000), the conditional run's -log p(x)
    (through the sum over classes) against the unconditional run's, by compare_lower with the
    validation curves (each run's validation loss is the objective it trained: -log p(x | y)
    or -log p(x), or their bounds). Holds when most such families' comparisons hold.

    What the label alone is worth is bounded: log p(x | y) - log p(x) = log p(y | x) -
    log p(y), so a model's conditional NLL is below its own -log p(x) by at most H(y) on
    average (log2 10 = 3.32 bits for ten balanced classes). The gain in log p(x) itself is
    not: it compares two models of x, a mixture over classes against a single density."""
    verdicts, lines = [], []
    for family in dict.fromkeys(r.family for r in runs):
        mine = [r for r in runs if r.family == family]
        given = [r for r in mine if is_conditional(r)]
        plain = [r for r in mine if not is_conditional(r)]
        names = [n for _, n, _ in measured_in(given, "nll_") if not n.startswith("nll_ais")]
        for name in dict.fromkeys(names):
            conditional, unconditional = _best_named(given, name), _best_named(plain, name)
            if conditional is None or unconditional is None:
                continue
            verdict, why = compare_lower(conditional, unconditional)
            verdicts.append(verdict)
            lines.append(_likelihood_line(conditional, unconditional, why))
            break  # one protocol per family: the first the conditional runs measured
    if not verdicts:
        return "not measured", (
            "evaluate a conditional run and an unconditional run of the same family with nll "
            "under the same protocol (e.g. vae with model.conditional=true and =false)"
        )
    return _majority(verdicts, lines)


def _likelihood_line(
    conditional: tuple[RunSummary, str, dict[str, Any]],
    unconditional: tuple[RunSummary, str, dict[str, Any]],
    why: str,
) -> str:
    (c_run, name, c), (u_run, _, u) = conditional, unconditional
    gain = (u["value"] - c["value"]) / math.log(2.0)
    text = (
        f"{c_run.family}: {c_run.name} (conditional) {name} = {c['value']:.2f} nats "
        f"({c.get('bits_per_dim', float('nan')):.4f} bits/dim, log p(x) through the sum over "
        f"classes) vs {u_run.name} (unconditional) {u['value']:.2f} nats "
        f"({u.get('bits_per_dim', float('nan')):.4f} bits/dim), a gain of {gain:.2f} bits per "
        f"image; {why}"
    )
    found = c_run.metric("gen_classifier_acc_")
    bound = _prior_entropy(c_run)
    if found is not None:
        g = found[1]
        text += (
            f"; given the label, -log p(x|y) = {g['conditional_nll_nats']:.2f} nats: the label "
            f"tells {g['label_information_bits']:.2f} bits per image"
        )
    if bound is not None:
        text += (
            f"; a label tells at most H(y) = {bound:.2f} bits about an image on average "
            "(log p(x|y) - log p(x) = log p(y|x) - log p(y))"
        )
        if gain > bound:
            text += ": a gain beyond it is the class mixture's better fit of x, not the label's"
    return text


def _prior_entropy(run: RunSummary) -> float | None:
    """H(y) in bits of a conditional run's classes, as its class metrics recorded it."""
    for prefix in ("gen_classifier_acc_", "class_agreement_"):
        found = run.metric(prefix)
        if found is not None and "prior_entropy_bits" in found[1]:
            return float(found[1]["prior_entropy_bits"])
    return None


def guidance_trades_diversity_for_fidelity(runs: list[RunSummary]) -> tuple[str, str]:
    """Along each guided run's guidance curve, from w = 1 (the conditional model) to the
    largest weight measured: holds when precision rises and recall falls, each beyond two
    standard errors (binomial, per point), and class agreement does not fall beyond two;
    does not hold when precision or class agreement falls, or recall rises, beyond them; not
    decided otherwise, without points at w = 1 and above it, or for a run cut short (short of
    its planned epochs, or its validation loss still falling: :func:`_unfinished`). Holds
    when most guided runs' curves say so."""
    found = measured_in(runs, "guidance_curve_")
    if not found:
        return "not measured", (
            "evaluate a conditional diffusion run trained with label dropout with the "
            "guidance_curve metric"
        )
    verdicts, lines = [], []
    for run, name, entry in found:
        verdict, text = _guidance_verdict(run, entry["points"])
        verdicts.append(verdict)
        lines.append(f"{run.name}: {name} {text}")
    return _majority(verdicts, lines)


STILL_LEARNING_SHARE = 0.01  # of the validation loss: a smaller gain counts as flat


def _unfinished(run: RunSummary) -> str:
    """Why a guided run's curve cannot carry a verdict ("" when it can): a model cut short
    (before its planned minimum epochs, too few validation points to tell, or its validation
    loss still falling by more than 1 % over the last fifth of its training) says how an
    unfinished model responds to guidance, not how the trained one trades diversity for
    fidelity."""
    short = run.short_of_minimum()
    if short:
        return short
    # the curve's validation loss (a diffusion's denoising error) has no standard error of
    # its own: it counts as still falling when its last part gained more than 1 % of it
    tolerance = STILL_LEARNING_SHARE * abs(run.curve[-1].val_loss) if run.curve else 0.0
    moving = still_learning(run, tolerance)
    if moving is None:
        return ""
    improvement, seconds = moving
    if math.isnan(improvement):
        return (
            f"{run.name} logged {len(run.curve)} validation point(s): too few (< {MIN_CURVE}) "
            "to tell whether it had finished learning; give it a budget for several epochs"
        )
    return (
        f"{run.name} was still learning (its validation loss fell {improvement:.4g} in the "
        f"last {seconds:.0f} s of training): a curve of a model that has stopped learning "
        "would decide it"
    )


def _guidance_verdict(run: RunSummary, points: list[dict[str, Any]]) -> tuple[str, str]:
    at = {float(p["guidance"]): p for p in points}
    top = max(at, default=0.0)
    if 1.0 not in at or top <= 1.0:
        weights = ", ".join(f"{w:g}" for w in sorted(at))
        return UNDECIDED, (
            f"has points at w = {weights}: none at w = 1 and above it to compare (set "
            "eval.guidance_curve, e.g. [0, 1, 2, 4])"
        )
    base, far = at[1.0], at[top]

    def change(key: str, rises: bool) -> tuple[str, str]:
        """compare_lower on the point at w = 1 against the one at the top weight."""
        one = (run, key, {"value": base[key], "stderr": base.get(f"{key}_stderr", 0.0)})
        most = (run, key, {"value": far[key], "stderr": far.get(f"{key}_stderr", 0.0)})
        verdict, _ = (
            compare_lower(one, most, curves=False)
            if rises
            else compare_lower(most, one, curves=False)
        )
        se = math.hypot(one[2]["stderr"], most[2]["stderr"])
        label = key.replace("_", " ")
        return verdict, (
            f"{label} {base[key]:.3f} -> {far[key]:.3f} ({far[key] - base[key]:+.3f}, "
            f"2 s.e. {2 * se:.3f})"
        )

    (precision, p_text), (recall, r_text) = change("precision", True), change("recall", False)
    agreement, a_text = change("class_agreement", True)
    text = f"from w = 1 to w = {top:g}: {p_text}, {r_text}, {a_text}; FD "
    text += ", ".join(f"{w:g}: {at[w]['fd']:.2f}" for w in sorted(at))
    decided = precision == recall == "holds" and agreement != "does not hold"
    against = "does not hold" in (precision, recall, agreement)
    unfinished = _unfinished(run)
    if unfinished:
        return UNDECIDED, f"{text}; but {unfinished}"
    if decided or against:
        return ("holds" if decided else "does not hold"), text
    return UNDECIDED, text + (
        "; precision and recall do not both move beyond 2 s.e. (more samples per weight "
        "narrow the intervals)"
    )
