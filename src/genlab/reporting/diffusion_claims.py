"""The claims that check the 2017 textbook against what replaced its state of the art:
denoising diffusion and flow matching (``Traits.sampling == "iterative"``) against GANs on
sample quality at equal training compute, the price of their many sampling steps, and the
likelihood bound a DDPM gives against a VAE's."""

from __future__ import annotations

from genlab.reporting.evidence import UNDECIDED, CurvePoint, RunSummary, compare_lower, verdict_of
from genlab.reporting.groups import (
    adversarial,
    best_of,
    iterative,
    slowest_one_pass,
    variational,
)

FD_MARGIN = 0.10  # FD has no standard error here: a difference under 10% decides nothing
SLOW = 10.0  # "slow": at least this many times fewer images/s than a one-pass sampler


def fd_at(curve: tuple[CurvePoint, ...], seconds: float) -> float | None:
    """The FD of the last point measured by ``seconds`` of training (None: none yet)."""
    before = [p for p in curve if p.seconds <= seconds * (1 + 1e-9)]
    return before[-1].val_loss if before else None


def gan_state_of_the_art(runs: list[RunSummary]) -> tuple[str, str]:
    """The GAN's FD against the best iterative sampler's at equal training seconds, read off
    both FD-during-training curves (``train.fd_every``) at the shorter run's last point;
    without both curves, the final FDs when the training times are within 1.5x. Holds when
    the GAN's FD is lower by more than FD_MARGIN; precision, recall and sharpness are
    context."""
    gan, new = best_of(adversarial(runs), "fd_"), best_of(iterative(runs), "fd_")
    if gan is None or new is None:
        return "not measured", "evaluate a gan run and a diffusion run with fd on 8-bit images"
    (g_run, g_name, g), (d_run, d_name, d) = gan, new
    if g_name != d_name:
        return "not measured", f"{g_name} and {d_name} use different sample counts"
    if g_run.sample_curve and d_run.sample_curve:
        seconds = min(g_run.sample_curve[-1].seconds, d_run.sample_curve[-1].seconds)
        fd_g, fd_d = fd_at(g_run.sample_curve, seconds), fd_at(d_run.sample_curve, seconds)
        where = f"FD during training at {seconds:.0f} s of training each"
    else:
        fd_g, fd_d, where = g["value"], d["value"], f"{g_name} at the end of training"
        t_g, t_d = g_run.train_seconds, d_run.train_seconds
        if not (t_g and t_d) or max(t_g, t_d) > 1.5 * min(t_g, t_d):
            return UNDECIDED, (
                f"{g_name}: {g_run.name} {g['value']:.2f} vs {d_run.name} {d['value']:.2f}, but "
                f"trained {t_g:.0f} s vs {t_d:.0f} s: not equal compute, and no FD curves to "
                "compare at equal seconds (train both with train.fd_every)"
            )
    if fd_g is None or fd_d is None:
        return UNDECIDED, "the FD curves have no point at a common training time"
    text = (
        f"{where}: {g_run.name} (GAN) {fd_g:.2f} vs {d_run.name} ({d_run.family}) {fd_d:.2f}; "
        f"final {g_name} {g['value']:.2f} vs {d['value']:.2f}"
    )
    text += _context(g_run, d_run)
    gap = abs(fd_g - fd_d) / max(fd_g, fd_d)
    if gap < FD_MARGIN:
        return UNDECIDED, text + (
            f"; the FDs differ by {100 * gap:.0f}% (< {100 * FD_MARGIN:.0f}%, the margin an FD "
            "without a standard error needs): a longer budget for both would decide"
        )
    behind = d_run if fd_g < fd_d else g_run
    short = behind.short_of_minimum()
    if short:  # the run that lost had not had the epochs it was planned
        return UNDECIDED, text + f"; the FDs differ by {100 * gap:.0f}%, but {short}"
    return verdict_of(fd_g < fd_d), text + (
        f"; holds when the GAN's FD is lower by more than {100 * FD_MARGIN:.0f}%"
    )


def _context(gan: RunSummary, new: RunSummary) -> str:
    parts = []
    for prefix, label in (
        ("precision_", "precision"),
        ("recall_", "recall"),
        ("sharpness", "sharpness"),
    ):
        a, b = gan.metric(prefix), new.metric(prefix)
        if a and b:
            parts.append(f"{label} {a[1]['value']:.3f} vs {b[1]['value']:.3f}")
    return f"; {', '.join(parts)}" if parts else ""


def diffusion_sampling_slow(runs: list[RunSummary]) -> tuple[str, str]:
    """An iterative sampler's images/s at its configured steps against the slowest one-pass
    sampler's; holds at SLOW times fewer. Its FD against the number of steps is the curve
    that says what the steps buy."""
    new = best_of(iterative(runs), "sample_images_per_s", lower_is_better=False)
    fast = slowest_one_pass(runs)
    if new is None or fast is None:
        return "not measured", "evaluate a diffusion run and a one-pass sampler with sample_speed"
    (d_run, _, d), (o_run, _, o) = new, fast
    ratio = o["value"] / d["value"]
    text = (
        f"sampling: {d_run.name} {d['value']:.1f} images/s vs {o_run.name} {o['value']:.1f} "
        f"images/s ({ratio:.0f}x)"
    )
    curve = d_run.metric("fd_vs_steps")
    if curve is not None:
        points = ", ".join(
            f"{p['steps']} steps: FD {p['fd']:.1f} at {p['images_per_s']:.1f}/s"
            for p in curve[1]["points"]
        )
        text += f"; {curve[0]}: {points}"
    return verdict_of(ratio >= SLOW), text + (
        f"; holds at >= {SLOW:.0f}x slower than the slowest one-pass sampler"
    )


def diffusion_bound(runs: list[RunSummary]) -> tuple[str, str]:
    """A DDPM's variational bound against a VAE's IWAE bound on the same 8-bit images: both
    are upper bounds on the NLL; holds when the diffusion's is lower (the three-valued rule,
    without the validation curve: a diffusion's validation loss is not its bound)."""
    new = best_of(iterative(runs), "nll_diffusion_bound")
    vae = best_of(variational(runs), "nll_iwae")
    if new is None or vae is None:
        return (
            "not measured",
            "evaluate a ddpm diffusion run and a vae run with nll on the same 8-bit images",
        )
    verdict, why = compare_lower(new, vae, curves=False)
    (d_run, d_name, d), (v_run, v_name, v) = new, vae
    return verdict, (
        f"{d_run.name}: {d_name} = {d['value']:.2f} nats ({d['bits_per_dim']:.3f} bits/dim, "
        f"{d.get('images', '?')} test images) vs {v_run.name}: {v_name} = {v['value']:.2f} nats "
        f"({v['bits_per_dim']:.3f} bits/dim, {v.get('images', '?')} images); both upper bounds "
        f"on -log P(x); {why}"
    )
