"""Classifier-free guidance (Ho & Salimans 2022), apart from any sampler and any network.

Training (their algorithm 1): each label is replaced by the null label (written c = ∅ there)
with probability p_uncond, ``label_dropout`` here (:func:`drop_labels`), so that one network
learns the conditional prediction c(x_t, t, y) and the unconditional one u(x_t, t) = c(x_t,
t, ∅) together.

Sampling (their algorithm 2): the sampler sees the guided prediction u + w (c - u)
(:func:`guided`): w = 0 is the unconditional model, w = 1 the conditional one, w > 1 pushes
past it towards the class. Ho & Salimans write it (1 + w') c - w' u (eq. 6), so w = 1 + w'.

The guided quantity may be any of the network's outputs: eps, x_0 or v of a diffusion, or a
flow's velocity. At fixed x_t and t each is an affine function of any other with coefficients
that do not depend on the class (x_t = a_t x_0 + s_t eps, v = a_t eps - s_t x_0; a flow's x_t =
(1 - t) x_0 + t eps, velocity eps - x_0), and the combination (1 - w) u + w c has weights that
sum to one, so it commutes with those maps: guiding x_0 or v is guiding eps (before a
sampler clips x_0). The samplers take the guided prediction as they take a network or an
exact oracle, and know nothing of classes.

At w = 0 and w = 1 the guided prediction is the network's output for one branch only, with no
arithmetic on it: the same numbers, bit for bit, as the unconditional or conditional sampler.
Any other w evaluates both branches in one batched network call (the images twice, with the
labels and with the null label).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from genlab import noise
from genlab.errors import ConfigError

MAX_GUIDANCE = 20.0  # far past any useful weight (Ho & Salimans go to w' = 4, i.e. w = 5)

# the network in any of its roles: x_t (B, ...), times (B,), labels (B,) -> its output (B, ...)
LabelledPrediction = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Prediction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_guidance(weight: float, where: str = "guidance") -> float:
    """``weight`` when it is a finite number in [0, MAX_GUIDANCE]; a one-line ConfigError
    naming ``where`` otherwise."""
    if not (isinstance(weight, (int, float)) and math.isfinite(weight)):
        raise ConfigError(
            f"{where} must be a finite number in [0, {MAX_GUIDANCE:g}] (0 unconditional, 1 "
            f"conditional, above 1 towards the class), got {weight}"
        )
    if not 0.0 <= weight <= MAX_GUIDANCE:
        raise ConfigError(
            f"{where} must be in [0, {MAX_GUIDANCE:g}] (0 unconditional, 1 conditional, above "
            f"1 towards the class), got {weight:g}"
        )
    return float(weight)


def drop_labels(
    labels: torch.Tensor, rate: float, null: int, generator: torch.Generator | None
) -> torch.Tensor:
    """``labels`` (B,) with each replaced by ``null`` with probability ``rate`` (one uniform
    draw per label from ``generator``; none at all when ``rate`` is 0)."""
    if rate == 0.0:
        return labels
    dropped = noise.uniform(labels.shape, generator).to(labels.device) < rate
    return torch.where(dropped, torch.full_like(labels, null), labels)


def guided(
    predict: LabelledPrediction, labels: torch.Tensor, null: int, weight: float
) -> Prediction:
    """The prediction (x_t, t) -> u + w (c - u) of ``predict`` for ``labels`` (B,) with
    ``null`` the unconditional branch's label: exactly c at w = 1, exactly u at w = 0 (and
    then ``labels`` are not read), both branches in one call otherwise."""
    if weight == 1.0:
        return lambda x, t: predict(x, t, labels)
    unconditional = torch.full_like(labels, null)
    if weight == 0.0:
        return lambda x, t: predict(x, t, unconditional)

    def prediction(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        both = predict(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, unconditional]))
        c, u = both.chunk(2)
        return u + weight * (c - u)

    return prediction


__all__ = ["MAX_GUIDANCE", "check_guidance", "drop_labels", "guided"]
