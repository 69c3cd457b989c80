"""How a class label enters a conditional VAE's networks (Sohn, Lee & Yan 2015).

The label y is a one-hot vector e_y of the model's ``num_classes`` classes, concatenated

- to the code at the decoder's input: p(x | z, y) reads [z, e_y] (:func:`append_one_hot`);
- to the encoder's flattened features h(x) before the heads of q(z | x, y). The heads form
  one linear map, and W [h; e_y] + b = (W_h h + b) + W_y e_y, where W_y e_y is column y of
  W_y: a learned vector per class added to the unconditional encoder's output, held as an
  ``nn.Embedding(num_classes, 2 * latent_dim)`` (:class:`LabelShift`). The encoder's own
  layers are built exactly as for an unconditional model.

:func:`given_labels` checks the labels a caller passes where the model cannot draw them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from genlab.models.common.conditioning import labels_for


class LabelShift(nn.Module):
    """W_y e_y: the label's column of a linear head acting on [h; e_y], (B,) -> (B, dim).
    It starts at zero: an untrained encoder's q(z | x, y) is its q(z | x)."""

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.columns = nn.Embedding(num_classes, dim)
        nn.init.zeros_(self.columns.weight)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.columns(y)


def append_one_hot(z: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[z, e_y] along the last dimension: z (B, ..., L) and labels y (B,) -> (B, ..., L + C),
    each label repeated over z's middle dimensions (the k importance samples of an image)."""
    one_hot = F.one_hot(y.to(z.device), num_classes).to(z.dtype)  # (B, C)
    one_hot = one_hot.view(z.shape[0], *([1] * (z.dim() - 2)), num_classes)
    return torch.cat([z, one_hot.expand(*z.shape[:-1], num_classes)], dim=-1)


def given_labels(
    model: Any, y: torch.Tensor | None, n: int, what: str, *, check_range: bool = True
) -> torch.Tensor | None:
    """The labels of n images for ``what`` (a method that cannot draw them): ``y`` checked
    (int64 (n,), each a class of the model) on a conditional model, None on an unconditional
    one; a missing or superfluous ``y`` is a ValueError. ``check_range=False`` leaves out the
    range check (it waits for the device), for the training loss, whose labels come from the
    data set."""
    if not model.conditional:
        if y is not None:
            raise ValueError(f"{what}: this VAE is unconditional and takes no labels; pass y=None")
        return None
    if y is None:
        raise ValueError(
            f"{what}: this VAE is conditional (q(z|x,y), p(x|z,y)) and needs the images' labels "
            f"y, int64 of shape ({n},) in [0, {model.num_classes})"
        )
    if not check_range:
        if y.shape != (n,) or y.dtype != torch.int64:
            raise ValueError(
                f"{what}: labels must be int64 of shape ({n},), got {y.dtype} {tuple(y.shape)}"
            )
        return y
    return labels_for(model, n, y, None)


__all__ = ["LabelShift", "append_one_hot", "given_labels"]
