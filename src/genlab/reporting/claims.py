"""The textbook claims of ../DESIGN.md, checked against the measured numbers of a set of runs.

Each claim gets a verdict — ``holds``, ``does not hold`` or ``not measured`` (with what would
measure it) — and the evidence: the numbers, their metric names and the runs they come from.
Only runs evaluated on the same data (name, binarisation, content fingerprint) are compared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from genlab.models.base import Traits


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
    verdict: str  # "holds" | "does not hold" | "not measured"
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
    return _verdict(ar_m["value"] < vae_m["value"]), (
        f"{ar_run.name}: {ar_name} = {ar_m['value']:.2f} nats vs {vae_run.name}: {vae_name} = "
        f"{vae_m['value']:.2f} nats (the VAE's figure is an upper bound on its NLL)"
    )


def gan_sharper(runs: list[RunSummary]) -> tuple[str, str]:
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
    return _verdict(gan_m["value"] < vae_m["value"]), text


def autoregressive_slow(runs: list[RunSummary]) -> tuple[str, str]:
    ar = _best(_autoregressive(runs), "sample_images_per_s", lower_is_better=False)
    others = [r for r in runs if not r.traits.autoregressive]
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
    return _verdict(ratio >= 10), text + "; holds at >= 10x slower than the slowest other family"


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
    ("GAN samples are sharper than VAE samples", "FD (and precision) on features", gan_sharper),
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
