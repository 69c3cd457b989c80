"""Class labels in the autoregressive families: a class-dependent bias, and the check of the
labels a likelihood or a loss is given.

Conditioning on a class y adds V^T h (h the one-hot of y) to a layer's pre-activations, as in
van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders", eq. 4. The bias
does not depend on the pixels, so it keeps every autoregressive mask intact: p(x | y) is still
prod_i p(x_i | x_<i, y), exactly normalised for each y.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from genlab.models.common.conditioning import labels_for


def class_bias(num_classes: int, dim: int, std: float | None = None) -> nn.Embedding:
    """V^T h for one-hot h as a lookup, (B,) labels -> (B, dim). Initialised as a linear layer
    of the one-hot vector would be, U(-1/sqrt(C), 1/sqrt(C)), or N(0, std^2) when ``std`` is
    given."""
    table = nn.Embedding(num_classes, dim)
    if std is None:
        bound = 1.0 / math.sqrt(num_classes)
        nn.init.uniform_(table.weight, -bound, bound)
    else:
        nn.init.normal_(table.weight, std=std)
    return table


def checked_labels(model: Any, n: int, y: torch.Tensor | None, what: str) -> torch.Tensor | None:
    """The labels ``y`` (int64 (n,)) that ``what`` (a loss, a likelihood) of ``model`` is
    computed with: required by a conditional model, refused by an unconditional one."""
    if model.conditional:
        if y is None:
            raise ValueError(
                f"the {what} of a conditional {model.family} needs the labels y (int64 ({n},))"
            )
        return labels_for(model, n, y, None)
    if y is not None:
        raise ValueError(
            f"this {model.family} is unconditional (model.conditional=false): its {what} takes "
            "no labels y"
        )
    return None


__all__ = ["checked_labels", "class_bias"]
