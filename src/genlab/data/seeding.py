"""Deterministic seeds derived from tuples of integers (splits, binarisation, batch noise)."""

from __future__ import annotations

import numpy as np
import torch

# Purpose tags keep the seed streams of different uses apart even for equal user seeds.
TEST_SPLIT, VAL_SPLIT, SHUFFLE, NOISE, STATIC_BINARIZE = 1, 2, 3, 4, 5
SPLIT_TAGS = {"train": 0, "val": 1, "test": 2}

_MASK64 = (1 << 64) - 1


def derive_seed(*values: int) -> int:
    """A 64-bit seed that depends on every value (negative ones too), via numpy's SeedSequence."""
    entropy = [int(v) & _MASK64 for v in values]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])


def torch_generator(*values: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed` of ``values``."""
    return torch.Generator().manual_seed(derive_seed(*values))
