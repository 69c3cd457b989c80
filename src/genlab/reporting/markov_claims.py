"""The claims about Markov-chain models: a Boltzmann machine's likelihood can only be
estimated (AIS), and chains mix slowly (the class kept by chains started at test images)."""

from __future__ import annotations

from genlab.reporting.evidence import UNDECIDED, RunSummary
from genlab.reporting.groups import measured_in


def boltzmann_likelihood(runs: list[RunSummary]) -> tuple[str, str]:
    found = measured_in(runs, "nll_ais")
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
    found = measured_in(runs, "chain_fd")
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
    text = "; ".join(lines) + (
        "; holds when the class is kept more often than a mixed chain would keep it (> 3 s.e.)"
    )
    if sum(slow) > len(slow) / 2:
        return "holds", text
    short = [r.short_of_minimum() for r, _, _ in found if r.short_of_minimum()]
    if short:  # a barely trained model's chain mixes at once: that says nothing of the claim
        return UNDECIDED, text + "; but " + "; ".join(short)
    return "does not hold", text


# the protocols a claim is decided on, in order of preference
