"""The textbook claims of ../DESIGN.md, checked against the measured numbers of a set of runs.

Each claim gets a verdict — ``holds``, ``does not hold``, ``not decided at this budget`` or
``not measured`` (with what would measure it) — and the evidence: the numbers, their metric
names and the runs they come from. Only runs evaluated on the same data (name, binarisation,
content fingerprint) are compared.

A comparison is **not decided** when the two numbers' 95 % intervals overlap
(``|a - b| <= 2 sqrt(se_a^2 + se_b^2)``), or when the run that is behind was still learning:
its validation loss fell by more than the metric's standard error over the last 20 % of its
training time (:data:`MOVING_TAIL`). The evidence then says why, and for a curve still moving,
how much more training time a linear extrapolation of that last stretch would need to close
the gap (an optimistic figure: learning curves flatten).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from genlab.models.base import Traits

MOVING_TAIL = 0.2  # the last fifth of a run's training time decides whether it still learns
UNDECIDED = "not decided at this budget"


@dataclass(frozen=True)
class CurvePoint:
    seconds: float  # training seconds so far
    images: float  # training images seen so far
    val_loss: float  # validation loss after this epoch (nats per image for likelihood families)


@dataclass(frozen=True)
class RunSummary:
    """What the report needs from one run folder."""

    name: str
    family: str
    traits: Traits  # the family's, from the model registry: claims select runs by these
    data_key: str  # data name, binarisation and fingerprint: runs compare only within one key
    metrics: dict[str, dict[str, Any]]  # eval.json "metrics"
    not_applicable: dict[str, str]
    finetune: dict[str, Any] | None = None  # finetune.json, if `genlab finetune` ran
    curve: tuple[CurvePoint, ...] = ()  # validation loss by training time (metrics.jsonl)

    def metric(self, prefix: str) -> tuple[str, dict[str, Any]] | None:
        """The first metric whose name starts with ``prefix`` (e.g. 'nll_iwae', 'fd_')."""
        for name, entry in self.metrics.items():
            if name.startswith(prefix):
                return name, entry
        return None


@dataclass(frozen=True)
class Verdict:
    claim: str
    measure: str
    verdict: str  # "holds" | "does not hold" | "not decided at this budget" | "not measured"
    evidence: str


def _variational(runs: list[RunSummary]) -> list[RunSummary]:
    return [r for r in runs if r.traits.variational]


def _autoregressive(runs: list[RunSummary]) -> list[RunSummary]:
    return [r for r in runs if r.traits.autoregressive]


def _adversarial(runs: list[RunSummary]) -> list[RunSummary]:
    return [r for r in runs if r.traits.adversarial]


def _measured(runs: list[RunSummary], prefix: str) -> list[tuple[RunSummary, str, dict[str, Any]]]:
    """(run, metric name, entry) for every run with a metric named ``prefix...``."""
    return [(r, *found) for r in runs if (found := r.metric(prefix)) is not None]


def _best(
    runs: list[RunSummary], prefix: str, lower_is_better: bool = True
) -> tuple[RunSummary, str, dict[str, Any]] | None:
    found = _measured(runs, prefix)
    if not found:
        return None
    sign = 1 if lower_is_better else -1
    return min(found, key=lambda item: sign * item[2]["value"])


def _verdict(ok: bool) -> str:
    return "holds" if ok else "does not hold"


MIN_CURVE = 3  # validation points a run needs before its curve can be called flat


def still_learning(run: RunSummary, stderr: float) -> tuple[float, float] | None:
    """(improvement, seconds) of the validation loss over the last :data:`MOVING_TAIL` of the
    run's training time, when that improvement exceeds ``stderr``; None when the curve had
    flattened. A run with fewer than :data:`MIN_CURVE` validation points cannot be judged:
    (nan, its training seconds)."""
    curve = run.curve
    if len(curve) < MIN_CURVE:
        return float("nan"), curve[-1].seconds if curve else 0.0
    start = curve[-1].seconds * (1 - MOVING_TAIL)
    before = [p for p in curve if p.seconds <= start] or [curve[0]]
    first = before[-1]
    improvement = first.val_loss - curve[-1].val_loss
    took = curve[-1].seconds - first.seconds
    return (improvement, took) if improvement > stderr and took > 0 else None


def crossing(a: tuple[CurvePoint, ...], b: tuple[CurvePoint, ...]) -> float | None:
    """The first training time (s) at which curve ``a`` goes from above ``b`` to at or below
    it, both interpolated linearly between epochs; None if they do not cross where both exist."""
    if len(a) < 2 or len(b) < 2:
        return None
    times = sorted({p.seconds for p in (*a, *b)})
    start, end = max(a[0].seconds, b[0].seconds), min(a[-1].seconds, b[-1].seconds)
    times = [t for t in times if start <= t <= end]
    gaps = [(t, _at(a, t) - _at(b, t)) for t in times]
    for (t0, g0), (t1, g1) in zip(gaps, gaps[1:], strict=False):
        if g0 > 0 >= g1:
            return t0 + (t1 - t0) * g0 / (g0 - g1)
    return None


def _at(curve: tuple[CurvePoint, ...], t: float) -> float:
    for p, q in zip(curve, curve[1:], strict=False):
        if p.seconds <= t <= q.seconds:
            w = (t - p.seconds) / (q.seconds - p.seconds) if q.seconds > p.seconds else 0.0
            return p.val_loss + w * (q.val_loss - p.val_loss)
    return curve[-1].val_loss


def _stderr(entry: dict[str, Any]) -> float:
    return float(entry.get("stderr_images", entry.get("stderr", 0.0)) or 0.0)


def compare_lower(
    a: tuple[RunSummary, str, dict[str, Any]],
    b: tuple[RunSummary, str, dict[str, Any]],
    *,
    curves: bool = True,
) -> tuple[str, str]:
    """Verdict on "a's metric is lower than b's", three-valued: the intervals must not
    overlap, and (``curves``: when the metric is the one the validation loss tracks) the run
    behind must have stopped learning. (verdict, why)."""
    (run_a, _, ma), (run_b, _, mb) = a, b
    se = (_stderr(ma) ** 2 + _stderr(mb) ** 2) ** 0.5
    gap = mb["value"] - ma["value"]  # > 0: a is lower
    if abs(gap) <= 2 * se:
        return UNDECIDED, f"the difference {gap:+.2f} is within 2 s.e. ({2 * se:.2f})"
    behind, metric = (run_b, mb) if gap > 0 else (run_a, ma)
    moving = still_learning(behind, _stderr(metric)) if curves else None
    if moving is not None and math.isnan(moving[0]):
        return UNDECIDED, (
            f"{behind.name} logged {len(behind.curve)} validation point(s) in {moving[1]:.0f} s "
            f"of training: too few (< {MIN_CURVE}) to tell whether it had stopped learning; "
            "give it a budget for several epochs"
        )
    if moving is not None:
        improvement, seconds = moving
        rate = improvement / seconds
        need = abs(gap) / rate if rate > 0 else float("inf")
        return UNDECIDED, (
            f"{behind.name} was still learning: its validation loss fell {improvement:.2f} nats "
            f"in the last {seconds:.0f} s of training (> s.e. {_stderr(metric):.2f}); at that "
            f"rate about {need:.0f} s more would close the gap of {abs(gap):.2f}"
        )
    flat = "; the curve behind had flattened" if curves else ""
    return _verdict(gap > 0), f"difference {gap:+.2f} (2 s.e. {2 * se:.2f}){flat}"


def autoencoder_init(runs: list[RunSummary]) -> tuple[str, str]:
    done = [r for r in runs if r.finetune and r.traits.encoder]
    if not done:
        return "not measured", "run `genlab finetune RUN` on a run with an encoder (ae, vae)"
    lines, gains = [], []
    for run in done:
        results = run.finetune["results"]  # type: ignore[index]
        for size in results["pretrained"]:
            pre, scratch = results["pretrained"][size]["mean"], results["scratch"][size]["mean"]
            gains.append(pre - scratch)
            lines.append(f"{run.name}, {size} labels: {pre:.3f} vs {scratch:.3f} from scratch")
    return _verdict(sum(g > 0 for g in gains) > len(gains) / 2), "; ".join(lines)


def vae_likelihood(runs: list[RunSummary]) -> tuple[str, str]:
    best = _best(_variational(runs), "nll_iwae")
    if best is None:
        return "not measured", "evaluate a vae run with the nll metric"
    run, name, m = best
    return "holds", (
        f"{run.name}: {name} = {m['value']:.2f} nats ({m['bits_per_dim']:.4f} bits/dim), "
        f"MC s.e. {m.get('stderr_mc', 0):.3f}"
    )


def vae_lower_bound(runs: list[RunSummary]) -> tuple[str, str]:
    for run in _variational(runs):
        nll, elbo = run.metric("nll_iwae"), run.metric("elbo")
        if nll and elbo:
            gap = -elbo[1]["value"] - nll[1]["value"]
            return _verdict(gap > 0), (
                f"{run.name}: -ELBO {-elbo[1]['value']:.2f} vs {nll[0]} {nll[1]['value']:.2f} "
                f"nats: the bound is {gap:.2f} nats looser"
            )
    return "not measured", "evaluate a vae run with the nll and elbo metrics"


def vae_representation(runs: list[RunSummary]) -> tuple[str, str]:
    best = _best(_variational(runs), "probe_logreg_acc", lower_is_better=False)
    if best is None:
        return "not measured", "evaluate a vae run with the probe metric"
    run, name, m = best
    ratio = m["value"] / m["pixel_baseline"]
    return _verdict(ratio >= 0.9 and m["value"] > 2 * m["chance"]), (
        f"{run.name}: {name} = {m['value']:.3f} on {m['code_dim']} dims vs "
        f"{m['pixel_baseline']:.3f} on raw pixels (chance {m['chance']:.2f}); holds when the "
        "code keeps >= 90% of the pixels' accuracy"
    )


def autoregressive_likelihood(runs: list[RunSummary]) -> tuple[str, str]:
    ar, vae = _best(_autoregressive(runs), "nll_exact"), _best(_variational(runs), "nll_")
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


def gan_sharper(runs: list[RunSummary]) -> tuple[str, str]:
    sharp_gan = _best(_adversarial(runs), "sharpness", lower_is_better=False)
    sharp_vae = _best(_variational(runs), "sharpness", lower_is_better=False)
    if sharp_gan is not None and sharp_vae is not None:
        verdict, why = compare_lower(sharp_vae, sharp_gan, curves=False)
        (g_run, name, g), (v_run, _, v) = sharp_gan, sharp_vae
        text = (
            f"{name} (1 = as sharp as real data): {g_run.name} {g['value']:.3f} ± "
            f"{g['stderr']:.3f} vs {v_run.name} {v['value']:.3f} ± {v['stderr']:.3f}; {why}"
        )
        fd = _fd_comparison(runs)
        return verdict, text + (f"; {fd[1]}" if fd[0] == "compared" else "")
    state, text = _fd_comparison(runs)
    if state != "compared":
        return state, text
    gan, vae = _best(_adversarial(runs), "fd_"), _best(_variational(runs), "fd_")
    assert gan is not None and vae is not None
    return _verdict(gan[2]["value"] < vae[2]["value"]), text + (
        " (no sharpness metric measured: FD ranks overall sample quality, not sharpness)"
    )


def _fd_comparison(runs: list[RunSummary]) -> tuple[str, str]:
    """("compared", the FD text) or (a verdict that stops the comparison, why)."""
    gan, vae = _best(_adversarial(runs), "fd_"), _best(_variational(runs), "fd_")
    if gan is None or vae is None:
        return "not measured", "evaluate a gan run and a vae run with fd"
    (gan_run, gan_name, gan_m), (vae_run, vae_name, vae_m) = gan, vae
    if gan_name != vae_name:
        return "not measured", f"{gan_name} and {vae_name} use different sample counts"
    text = (
        f"{gan_name}: {gan_run.name} {gan_m['value']:.2f} vs {vae_run.name} "
        f"{vae_m['value']:.2f} (real-vs-real floor {gan_m['floor']:.2f})"
    )
    gan_p, vae_p = gan_run.metric("precision_"), vae_run.metric("precision_")
    if gan_p and vae_p:
        text += f"; precision {gan_p[1]['value']:.3f} vs {vae_p[1]['value']:.3f}"
    return "compared", text


def autoregressive_slow(runs: list[RunSummary]) -> tuple[str, str]:
    ar = _best(_autoregressive(runs), "sample_images_per_s", lower_is_better=False)
    # against samplers that draw an image in one pass: a Markov chain is iterative too
    others = [r for r in runs if not (r.traits.autoregressive or r.traits.markov_chain)]
    fast = _best(others, "sample_images_per_s", lower_is_better=True)
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
    return _verdict(ratio >= 10), text + (
        "; holds at >= 10x slower than the slowest one-pass sampler (Markov chains excluded)"
    )


def boltzmann_likelihood(runs: list[RunSummary]) -> tuple[str, str]:
    found = _measured(runs, "nll_ais")
    if not found:
        return "not measured", "evaluate an rbm run with the nll_ais metric"
    run, name, m = found[0]
    return "holds", (
        f"{run.name}: {name} = {m['value']:.2f} nats ({m['bits_per_dim']:.4f} bits/dim); log Z "
        f"= {m['log_z']:.2f} ± {m['stderr_log_z']:.3f} from {m['runs']} AIS runs of "
        f"{m['betas']} temperatures (sd of their log-weights {m['log_weight_std']:.2f}); Z sums "
        "over 2^D states, so no exact figure exists; AIS tends to under-estimate log Z, so the "
        "NLL may be optimistic"
    )


def chains_mix_slowly(runs: list[RunSummary]) -> tuple[str, str]:
    found = _measured(runs, "chain_fd")
    if not found:
        return "not measured", "evaluate an rbm or denoising ae run with the chain metric"
    lines, slow = [], []
    for run, _, m in found:
        kept, mixed, n = m["class_kept"][-1], m["class_kept_if_mixed"][-1], m["chains"]
        stderr = (max(kept * (1 - kept), 1 / n) / n) ** 0.5
        slow.append(kept - mixed > 3 * stderr)
        fds = ", ".join(f"{s}: {f:.1f}" for s, f in zip(m["steps"], m["fd"], strict=True))
        lines.append(
            f"{run.name}: after {m['steps'][-1]} steps {kept:.0%} of {n} chains started at test "
            f"images keep their class (s.e. {stderr:.1%}; {mixed:.0%} if the chain had mixed); "
            f"FD from noise by steps {fds}"
        )
    return _verdict(sum(slow) > len(slow) / 2), "; ".join(lines) + (
        "; holds when the class is kept more often than a mixed chain would keep it (> 3 s.e.)"
    )


CLAIMS: list[tuple[str, str, Callable[[list[RunSummary]], tuple[str, str]]]] = [
    (
        "an autoencoder's features can initialise a supervised model",
        "finetune: encoder-initialised vs from scratch",
        autoencoder_init,
    ),
    ("a VAE lets you evaluate log-likelihood", "IWAE-k NLL with its s.e.", vae_likelihood),
    ("a VAE only maximises a lower bound", "ELBO vs IWAE-k", vae_lower_bound),
    ("q(z|x) gives a useful representation", "linear probe on posterior means", vae_representation),
    (
        "PixelRNN/PixelCNN reach better likelihood than a VAE",
        "exact NLL vs the VAE's IWAE bound",
        autoregressive_likelihood,
    ),
    (
        "GAN samples are sharper than VAE samples",
        "sharpness relative to real images (and FD, precision)",
        gan_sharper,
    ),
    ("autoregressive sampling is slow", "sampling images/s", autoregressive_slow),
    (
        "a Boltzmann machine's likelihood can only be estimated",
        "AIS NLL with log Z's s.e. and spread over runs",
        boltzmann_likelihood,
    ),
    (
        "Markov-chain sampling mixes slowly",
        "class kept by chains from test images; FD by chain length",
        chains_mix_slowly,
    ),
]


def check_claims(runs: list[RunSummary]) -> list[Verdict]:
    """Every claim's verdict, computed on the runs that share the first run's data."""
    same_data = [r for r in runs if r.data_key == runs[0].data_key] if runs else []
    verdicts = []
    for claim, measure, check in CLAIMS:
        verdict, evidence = check(same_data)
        verdicts.append(Verdict(claim, measure, verdict, evidence))
    return verdicts
