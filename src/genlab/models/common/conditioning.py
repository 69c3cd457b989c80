"""What every class-conditional family shares: labels for its samplers, and the likelihood of
an image when its class is not given.

A conditional model (``model.conditional: true``) learns p(x | y) for the data set's class
labels y and keeps the training set's class frequencies p(y) (``class_log_prior``). From its
own conditional likelihoods follow

- the likelihood of the image alone, comparable with an unconditional model's:
  log p(x) = log sum_y p(x | y) p(y)  (:func:`marginal_log_likelihood`);
- a generative classifier, by Bayes' rule: log p(y | x) = log p(x | y) + log p(y) - log p(x)
  (:func:`class_posterior`).

Where log p(x | y) is a lower bound L_y (a VAE's importance-weighted bound), log sum_y
exp(L_y) p(y) is a lower bound on log p(x) too, since each term is below its true value.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from genlab.models.base import LogLikelihood


def labels_for(
    model: Any, n: int, y: torch.Tensor | None, generator: torch.Generator | None
) -> torch.Tensor:
    """The n labels a conditional sampler draws for: ``y`` as given (int64 (n,), each a class
    of the model), or n draws from the model's p(y) when None."""
    if y is None:
        return model.draw_classes(n, generator)
    if y.shape != (n,) or y.dtype != torch.int64:
        raise ValueError(f"labels must be int64 of shape ({n},), got {y.dtype} {tuple(y.shape)}")
    if len(y) and not (0 <= int(y.min()) and int(y.max()) < model.num_classes):
        raise ValueError(f"labels must lie in [0, {model.num_classes}), got {y.tolist()}")
    return y


def class_log_likelihoods(
    model: Any, x: torch.Tensor, *, k: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, list[LogLikelihood]]:
    """log p(x | y) for every class y: values (B, num_classes) and each class's result (its
    kind, standard errors and protocol), from ``model.log_likelihood(x, k=k, y=...)``.

    Every class's estimate draws the same random numbers (the generator is rewound before
    each): a Monte-Carlo estimator (an IWAE bound's z, a diffusion bound's timesteps and
    noise) then differs between classes by the label alone, not by independent noise, which
    would make the classifier noisier and bias the log-sum-exp of the marginal upwards."""
    results = []
    start = None if generator is None else generator.get_state()
    for label in range(model.num_classes):
        if generator is not None and start is not None:
            generator.set_state(start)
        y = torch.full((x.shape[0],), label, dtype=torch.int64, device=x.device)
        results.append(model.log_likelihood(x, k=k, generator=generator, y=y))
    return torch.stack([r.values for r in results], dim=1), results


def class_posterior(values: torch.Tensor, class_log_prior: torch.Tensor) -> torch.Tensor:
    """log p(y | x) (B, C) from log p(x | y) (B, C) and log p(y) (C,): Bayes' rule, each row's
    probabilities summing to one."""
    return torch.log_softmax(values + class_log_prior.to(values), dim=1)


def marginal_log_likelihood(
    model: Any, x: torch.Tensor, *, k: int, generator: torch.Generator | None = None
) -> LogLikelihood:
    """log p(x) = log sum_y p(x | y) p(y) of a conditional model, as a :class:`LogLikelihood`
    of the same kind as its conditional ones (see :func:`marginal_of`)."""
    _, results = class_log_likelihoods(model, x, k=k, generator=generator)
    return marginal_of(results, model.get_buffer("class_log_prior"))


def marginal_of(results: list[LogLikelihood], class_log_prior: torch.Tensor) -> LogLikelihood:
    """log p(x) = log sum_y p(x | y) p(y) from every class's result (in class order) and
    log p(y). Its standard error, where they have one, is the delta method's:
    sqrt(sum_y w_y^2 se_y^2) with w = p(y | x)."""
    values = torch.stack([r.values for r in results], dim=1)
    joint = values + class_log_prior.to(values)
    total = torch.logsumexp(joint, dim=1)
    stderr = None
    if all(r.stderr is not None for r in results):
        errors = torch.stack([r.stderr for r in results], dim=1)  # type: ignore[misc]
        weights = torch.softmax(joint, dim=1)
        stderr = (weights.square() * errors.square()).sum(dim=1).sqrt()
    first = results[0]
    summed = f"log p(x) = log sum_y p(x|y) p(y) over the {len(results)} classes"
    return LogLikelihood(
        total,
        first.kind,
        stderr,
        first.of,
        first.levels,
        first.samples,
        first.protocol,
        f"{first.method}; {summed}" if first.method else summed,
    )


def prior_entropy_bits(class_log_prior: torch.Tensor) -> float:
    """H(y) in bits: how much a label can tell about an image at most (log p(x | y) can beat
    log p(x) by at most this much on average, since I(x; y) <= H(y))."""
    p = class_log_prior.double().exp()
    return float(-(p * class_log_prior.double()).sum() / math.log(2.0))


__all__ = [
    "class_log_likelihoods",
    "class_posterior",
    "labels_for",
    "marginal_log_likelihood",
    "marginal_of",
    "prior_entropy_bits",
]
