"""Codes of a model's encoder for a set of images: the AE's code, or q(z|x)'s mean/variance."""

from __future__ import annotations

import torch

from genlab.errors import RunError
from genlab.models.base import GenerativeModel, SupportsEncode, code_of, device_of
from genlab.models.common.distributions import DiagonalGaussian

# why the codes of a conditional encoder are not features (probe, finetune, embed, views)
CONDITIONAL_CODES = (
    "the codes of a conditional {family} are computed given each image's label, so they carry "
    "the label itself, not what the encoder learnt from the image; embeddings, probes and "
    "latent views are for runs trained with model.conditional=false"
)


@torch.no_grad()
def encode_images(
    model: GenerativeModel, images: torch.Tensor, *, batch_size: int = 1000, variance: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(codes (N, L), variances (N, L) or None) of images (N, C, H, W), in eval mode.

    Runs where the model is: each batch of ``images`` (which may stay on the CPU) is moved to
    the model's device, and the codes are returned there."""
    if not isinstance(model, SupportsEncode):
        raise RunError(f"the {model.family} family has no encoder to take codes from")
    if model.conditional:
        raise RunError(CONDITIONAL_CODES.format(family=model.family))
    model.eval()
    codes, variances = [], []
    device = device_of(model)
    for x in images.split(batch_size):
        encoded = model.encode(x.to(device))
        codes.append(code_of(encoded))
        if variance:
            if not isinstance(encoded, DiagonalGaussian):
                raise RunError(
                    f"the {model.family} family's codes are points: they have no variance"
                )
            variances.append(torch.exp(encoded.logvar))
    return torch.cat(codes), (torch.cat(variances) if variance else None)
