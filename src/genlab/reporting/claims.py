"""The textbook claims of ../DESIGN.md, checked against the measured numbers of a set of runs.

Each claim gets a verdict — ``holds``, ``does not hold``, ``not decided at this budget`` or
``not measured`` (with what would measure it) — and the evidence: the numbers, their metric
names and the runs they come from. Only runs evaluated on the same data (name, binarisation,
content fingerprint) are compared, under the protocol the claim prefers: likelihood claims on
binarised data, sample-quality claims on grey levels. Runs that differ only in train.seed are
replicas: a claim uses the one with the lowest seed (the report shows their spread). The rule
for "not decided" is in :mod:`genlab.reporting.evidence`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

from genlab.reporting.conditional_claims import (
    conditioning_improves_likelihood,
    guidance_trades_diversity_for_fidelity,
)
from genlab.reporting.diffusion_claims import (
    diffusion_bound,
    diffusion_sampling_slow,
    gan_state_of_the_art,
)
from genlab.reporting.evidence import (
    BINARY,
    GREY,
    MIN_CURVE,
    MOVING_TAIL,
    THRESHOLDED,
    UNDECIDED,
    CurvePoint,
    RunSummary,
    Verdict,
    compare_lower,
    crossing,
    protocol_of,
    still_learning,
    verdict_of,
)
from genlab.reporting.groups import (
    adversarial,
    autoregressive,
    best_of,
    change_of_variables,
    data_groups,
    describe_data,
    first_replicas,
    slowest_one_pass,
    variational,
)
from genlab.reporting.markov_claims import boltzmann_likelihood, chains_mix_slowly

__all__ = [
    "CLAIMS",
    "MIN_CURVE",
    "MOVING_TAIL",
    "UNDECIDED",
    "CurvePoint",
    "RunSummary",
    "Verdict",
    "check_claims",
    "still_learning",
]


def autoencoder_init(runs: list[RunSummary]) -> tuple[str, str]:
    """Encoder-initialised against from-scratch test accuracy for each label count, over every
    classifier seed of every replica (``--seeds``): a label count counts for or against the
    claim only when the difference of the means is beyond 2 s.e.; the claim holds or fails on
    the majority of the label counts that have a spread, and is not decided otherwise."""
    done = [r for r in runs if r.finetune and r.traits.encoder]
    if not done:
        return "not measured", "run `genlab finetune RUN` on a run with an encoder (ae, vae)"
    short = [r.short_of_minimum() for r in done if r.short_of_minimum()]
    lines, votes = [], []
    for run in done:
        results = run.finetune["results"]  # type: ignore[index]
        for size in results["pretrained"]:
            pre, scratch = results["pretrained"][size]["runs"], results["scratch"][size]["runs"]
            gap = statistics.fmean(pre) - statistics.fmean(scratch)
            line = f"{run.name}, {size} labels: {statistics.fmean(pre):.3f} vs "
            line += f"{statistics.fmean(scratch):.3f} from scratch"
            if min(len(pre), len(scratch)) < 2:
                lines.append(line + f" ({len(pre)} run: no spread)")
                continue
            se = math.sqrt(
                statistics.variance(pre) / len(pre) + statistics.variance(scratch) / len(scratch)
            )
            votes.append(0 if abs(gap) <= 2 * se else 1 if gap > 0 else -1)
            lines.append(
                line + f", difference {gap:+.3f} (2 s.e. {2 * se:.3f}, {len(pre)} runs each)"
            )
    text = "; ".join(lines)
    if not votes:
        return UNDECIDED, text + "; no label count has two or more runs to give a spread"
    if sum(v == 1 for v in votes) > len(votes) / 2:
        return "holds", text
    if sum(v == -1 for v in votes) > len(votes) / 2:
        if short:
            return UNDECIDED, text + "; but " + "; ".join(short)
        return "does not hold", text
    return UNDECIDED, text + (
        "; most label counts differ by less than 2 s.e. (more --seeds narrow the spread)"
    )


def _var_of_mean(values: list[float]) -> float:
    return statistics.variance(values) / len(values)


def vae_likelihood(runs: list[RunSummary]) -> tuple[str, str]:
    best = best_of(variational(runs), "nll_iwae")
    if best is None:
        return "not measured", "evaluate a vae run with the nll metric"
    run, name, m = best
    return "holds", (
        f"{run.name}: {name} = {m['value']:.2f} nats ({m['bits_per_dim']:.4f} bits/dim), "
        f"MC s.e. {m.get('stderr_mc', 0):.3f}"
    )


def vae_lower_bound(runs: list[RunSummary]) -> tuple[str, str]:
    for run in variational(runs):
        nll, elbo = run.metric("nll_iwae"), run.metric("elbo")
        if nll and elbo:
            gap = -elbo[1]["value"] - nll[1]["value"]
            return verdict_of(gap > 0), (
                f"{run.name}: -ELBO {-elbo[1]['value']:.2f} vs {nll[0]} {nll[1]['value']:.2f} "
                f"nats: the bound is {gap:.2f} nats looser"
            )
    return "not measured", "evaluate a vae run with the nll and elbo metrics"


def vae_representation(runs: list[RunSummary]) -> tuple[str, str]:
    best = best_of(variational(runs), "probe_logreg_acc", lower_is_better=False)
    if best is None:
        return "not measured", "evaluate a vae run with the probe metric"
    run, name, m = best
    ratio = m["value"] / m["pixel_baseline"]
    return verdict_of(ratio >= 0.9 and m["value"] > 2 * m["chance"]), (
        f"{run.name}: {name} = {m['value']:.3f} on {m['code_dim']} dims vs "
        f"{m['pixel_baseline']:.3f} on raw pixels (chance {m['chance']:.2f}); holds when the "
        "code keeps >= 90% of the pixels' accuracy"
    )


def autoregressive_likelihood(runs: list[RunSummary]) -> tuple[str, str]:
    ar, vae = best_of(autoregressive(runs), "nll_exact"), best_of(variational(runs), "nll_")
    if ar is None or vae is None:
        return "not measured", "evaluate an autoregressive run and a vae run with nll"
    (ar_run, ar_name, ar_m), (vae_run, vae_name, vae_m) = ar, vae
    verdict, why = compare_lower(ar, vae)
    crossed = crossing(ar_run.curve, vae_run.curve)
    if crossed is not None:
        why += (
            f"; the validation curves (exact NLL vs the VAE's -ELBO) cross at {crossed:.0f} s "
            "of training"
        )
    elif ar_run.curve and vae_run.curve:
        why += "; the validation curves do not cross within the budget"
    return verdict, (
        f"{ar_run.name}: {ar_name} = {ar_m['value']:.2f} nats vs {vae_run.name}: {vae_name} = "
        f"{vae_m['value']:.2f} nats (the VAE's figure is an upper bound on its NLL); {why}"
    )


def autoregressive_likelihood_grey(runs: list[RunSummary]) -> tuple[str, str]:
    """The same comparison on 8-bit images (a 256-way softmax against the VAE's discretised
    logistic), with a flow's bound on the same images as context."""
    verdict, text = autoregressive_likelihood(runs)
    flow = best_of(change_of_variables(runs), "nll_")
    if flow is not None and verdict != "not measured":
        run, name, m = flow
        text += (
            f"; context: {run.name}'s flow {name} = {m['value']:.2f} nats "
            f"({m['bits_per_dim']:.3f} bits/dim, a bound from its exact dequantised density)"
        )
    return verdict, text


def flow_exact_and_one_pass(runs: list[RunSummary]) -> tuple[str, str]:
    """Holds when a flow's likelihood was computed from its exact density (its 8-bit figure
    is the dequantisation bound) and its one-pass sampler is at least twice as fast as the
    fastest autoregressive sampler on the same data (which takes a step per pixel)."""
    flow = best_of(change_of_variables(runs), "nll_")
    ar = best_of(autoregressive(runs), "sample_images_per_s", lower_is_better=False)
    if flow is None or ar is None:
        return (
            "not measured",
            "evaluate a flow run and an autoregressive run with nll and sample_speed",
        )
    run, name, m = flow
    speed = run.metric("sample_images_per_s")
    if speed is None:
        return "not measured", f"evaluate {run.name} with the sample_speed metric"
    (ar_run, _, ar_m), flow_speed = ar, speed[1]["value"]
    ratio = flow_speed / ar_m["value"]
    exact = m.get("kind") in ("exact", "dequantised_bound")
    kind = (
        "its density is exact, the 8-bit figure its dequantisation bound" if exact else "not exact"
    )
    return verdict_of(exact and ratio >= 2), (
        f"{run.name}: {name} = {m['value']:.2f} nats ({m['bits_per_dim']:.3f} bits/dim; {kind}); "
        f"sampling {flow_speed:.1f} images/s vs {ar_run.name} {ar_m['value']:.1f} images/s "
        f"({ratio:.1f}x); holds at an exact density and >= 2x the autoregressive speed"
    )


def flows_pay_in_likelihood(runs: list[RunSummary]) -> tuple[str, str]:
    """An autoregressive model's exact NLL against a flow's bound on the same 8-bit images:
    holds when the autoregressive one is lower (the three-valued rule of compare_lower)."""
    ar = best_of(autoregressive(runs), "nll_exact")
    flow = best_of(change_of_variables(runs), "nll_")
    if ar is None or flow is None:
        return (
            "not measured",
            "evaluate an autoregressive run and a flow run on 8-bit images with nll",
        )
    verdict, why = compare_lower(ar, flow)
    (ar_run, ar_name, ar_m), (f_run, f_name, f_m) = ar, flow
    return verdict, (
        f"{ar_run.name}: {ar_name} = {ar_m['value']:.2f} nats ({ar_m['bits_per_dim']:.3f} "
        f"bits/dim) vs {f_run.name}: {f_name} = {f_m['value']:.2f} nats "
        f"({f_m['bits_per_dim']:.3f} bits/dim, a bound); {why}"
    )


def gan_sharper(runs: list[RunSummary]) -> tuple[str, str]:
    """Decided on sharpness, GAN samples against the VAE's decoder means (the images a VAE is
    shown by, which the textbook calls blurry) where they were measured, else its samples;
    the VAE's other image kind and FD (with precision) are context."""
    gan = best_of(adversarial(runs), "sharpness", lower_is_better=False)
    means = best_of(variational(runs), "sharpness", lower_is_better=False, source="means")
    samples = best_of(variational(runs), "sharpness", lower_is_better=False)
    vae = means or samples
    if gan is None or vae is None:
        state, text = _fd_comparison(runs)
        if state != "compared":
            return state, text
        fd_gan, fd_vae = best_of(adversarial(runs), "fd_"), best_of(variational(runs), "fd_")
        assert fd_gan is not None and fd_vae is not None
        return verdict_of(fd_gan[2]["value"] < fd_vae[2]["value"]), text + (
            " (no sharpness metric measured: FD ranks overall sample quality, not sharpness)"
        )
    verdict, why = compare_lower(vae, gan, curves=False, lower_is_better=False)
    (g_run, name, g), (v_run, _, v) = gan, vae
    kind = "decoder means" if vae is means else "samples"
    text = (
        f"{name} (1 = as sharp as real data): {g_run.name} {g['value']:.3f} ± "
        f"{g['stderr']:.3f} vs {v_run.name}'s {kind} {v['value']:.3f} ± {v['stderr']:.3f}; {why}"
    )
    if means is not None and samples is not None:
        s = samples[2]
        text += (
            f"; its samples x ~ p(x|z) {s['value']:.3f} ± {s['stderr']:.3f} (pixel-level noise "
            "raises this figure: it is not detail)"
        )
    state, fd = _fd_comparison(runs)
    return verdict, text + (f"; {fd}" if state == "compared" else "") + _fd_curves(g_run, v_run)


def _fd_curves(gan: RunSummary, vae: RunSummary) -> str:
    """Where the FD-during-training curves (train.fd_every) of the two runs cross, if both
    have one."""
    if not (gan.sample_curve and vae.sample_curve):
        return ""
    crossed = crossing(gan.sample_curve, vae.sample_curve)
    if crossed is None:
        return "; their FD curves during training do not cross within the budget"
    return f"; the GAN's FD during training falls below the VAE's at {crossed:.0f} s of training"


def _fd_comparison(runs: list[RunSummary]) -> tuple[str, str]:
    """("compared", the FD text) or (a verdict that stops the comparison, why)."""
    gan, vae = best_of(adversarial(runs), "fd_"), best_of(variational(runs), "fd_")
    if gan is None or vae is None:
        return "not measured", "evaluate a gan run and a vae run with fd"
    (gan_run, gan_name, gan_m), (vae_run, vae_name, vae_m) = gan, vae
    if gan_name != vae_name:
        return "not measured", f"{gan_name} and {vae_name} use different sample counts"
    text = f"{gan_name}: {gan_run.name} {gan_m['value']:.2f} vs {vae_run.name} {vae_m['value']:.2f}"
    means = vae_run.metric("fd_", source="means")
    if means is not None:
        text += f" (its decoder means {means[1]['value']:.2f})"
    text += f", real-vs-real floor {gan_m['floor']:.2f}"
    gan_p, vae_p = gan_run.metric("precision_"), vae_run.metric("precision_")
    if gan_p and vae_p:
        text += f"; precision {gan_p[1]['value']:.3f} vs {vae_p[1]['value']:.3f}"
    return "compared", text


def autoregressive_slow(runs: list[RunSummary]) -> tuple[str, str]:
    ar = best_of(autoregressive(runs), "sample_images_per_s", lower_is_better=False)
    fast = slowest_one_pass(runs)
    if ar is None or fast is None:
        return "not measured", "evaluate an autoregressive run and another sampler"
    (ar_run, _, ar_m), (other, _, other_m) = ar, fast
    ratio = other_m["value"] / ar_m["value"]
    text = (
        f"sampling: {ar_run.name} {ar_m['value']:.1f} images/s vs {other.name} "
        f"{other_m['value']:.1f} images/s ({ratio:.0f}x)"
    )
    if "naive_images_per_s" in ar_m:
        text += (
            f"; its naive sampler {ar_m['naive_images_per_s']:.2f} images/s, the cached one "
            f"{ar_m['cached_speedup']:.0f}x faster on the same {ar_m['speedup_batch']} images"
        )
    return verdict_of(ratio >= 10), text + (
        "; holds at >= 10x slower than the slowest one-pass sampler (chains and iterative "
        "samplers excluded)"
    )


EITHER, GREY_FIRST = (BINARY, THRESHOLDED, GREY), (GREY, BINARY, THRESHOLDED)
BINARY_ONLY, THRESHOLDED_ONLY, GREY_ONLY = (BINARY,), (THRESHOLDED,), (GREY,)
Check = Callable[[list[RunSummary]], tuple[str, str]]

CLAIMS: list[tuple[str, str, tuple[str, ...], Check]] = [
    # (claim, measured by, the protocols it is decided on in order of preference, the check)
    (
        "an autoencoder's features can initialise a supervised model",
        "finetune: encoder-initialised vs from scratch",
        EITHER,
        autoencoder_init,
    ),
    ("a VAE lets you evaluate log-likelihood", "IWAE-k NLL with its s.e.", EITHER, vae_likelihood),
    ("a VAE only maximises a lower bound", "ELBO vs IWAE-k", EITHER, vae_lower_bound),
    (
        "q(z|x) gives a useful representation",
        "linear probe on posterior means",
        EITHER,
        vae_representation,
    ),
    (
        "PixelRNN/PixelCNN reach better likelihood than a VAE",
        "exact NLL vs the VAE's IWAE bound (fully visible belief nets: NADE, MADE, PixelRNN/CNN)",
        BINARY_ONLY,
        autoregressive_likelihood,
    ),
    (
        "PixelRNN/PixelCNN reach better likelihood than a VAE, on thresholded images",
        "exact NLL vs the VAE's IWAE bound, pixels > 0.5 (no added pixel noise)",
        THRESHOLDED_ONLY,
        autoregressive_likelihood,
    ),
    (
        "PixelRNN/PixelCNN reach better likelihood than a VAE, on 8-bit grey levels",
        "exact NLL (256-way softmax) vs the VAE's discretised-logistic IWAE bound; a flow's bound",
        GREY_ONLY,
        autoregressive_likelihood_grey,
    ),
    (
        "a change-of-variables model gives an exact likelihood and one-pass sampling",
        "a flow's exact density (its 8-bit bound) and sampling images/s vs autoregressive models",
        GREY_FIRST,
        flow_exact_and_one_pass,
    ),
    (
        "flows buy fast sampling with worse likelihood than autoregressive models",
        "bits/dim of a flow (a bound) vs an autoregressive model's exact NLL, same 8-bit images",
        GREY_ONLY,
        flows_pay_in_likelihood,
    ),
    (
        "GAN samples are sharper than VAE samples",
        "sharpness relative to real images (and FD, precision)",
        GREY_FIRST,
        gan_sharper,
    ),
    (
        "GAN samples are the state of the art (against diffusion and flow matching)",
        "FD at equal training seconds (the FD-during-training curves); precision, recall, "
        "sharpness",
        GREY_ONLY,
        gan_state_of_the_art,
    ),
    ("autoregressive sampling is slow", "sampling images/s", EITHER, autoregressive_slow),
    (
        "diffusion sampling is slow",
        "sampling images/s vs one-pass samplers; FD against the number of steps",
        GREY_FIRST,
        diffusion_sampling_slow,
    ),
    (
        "diffusion gives a likelihood bound (as tight as a VAE's)",
        "a DDPM's variational bound vs the VAE's IWAE bound, bits/dim of the same 8-bit images",
        GREY_ONLY,
        diffusion_bound,
    ),
    (
        "a Boltzmann machine's likelihood can only be estimated",
        "AIS NLL with log Z's s.e. and spread over runs",
        EITHER,
        boltzmann_likelihood,
    ),
    (
        "Markov-chain sampling mixes slowly",
        "class kept by chains from test images; FD by chain length",
        EITHER,
        chains_mix_slowly,
    ),
    (
        "conditioning on the label improves likelihood",
        "log p(x) through the sum over classes vs the unconditional run of the same family, "
        "same protocol",
        EITHER,
        conditioning_improves_likelihood,
    ),
    (
        "guidance trades diversity for fidelity",
        "precision, recall and class agreement from guidance weight 1 to the largest measured",
        GREY_FIRST,
        guidance_trades_diversity_for_fidelity,
    ),
]


def check_claims(runs: list[RunSummary]) -> list[Verdict]:
    """Every claim's verdict, computed within one data group: the first group, in the order of
    the protocols the claim is decided on (likelihood claims on binarised data first, sample
    quality and flows on grey levels first, some on grey levels only) and then in run order,
    that measures it."""
    groups = data_groups(first_replicas(runs))
    verdicts = []
    for claim, measure, protocols, check in CLAIMS:
        ordered = [g for p in protocols for g in groups if protocol_of(g[0].binarize) == p]
        results = [(check(group), group) for group in ordered]
        measured = [r for r in results if r[0][0] != "not measured"]
        (verdict, evidence), group = (measured or results or [(check([]), [])])[0]
        where = describe_data(group[0]) if group and measured else ""
        verdicts.append(Verdict(claim, measure, verdict, evidence, where))
    return verdicts
