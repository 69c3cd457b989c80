"""The bounds of every request (images, steps, points, ...), in one place so that the run
page (which reads them from a run's record) and the checks say the same numbers."""

from __future__ import annotations

MAX_IMAGES = 64  # images drawn by one request
MAX_STEPS = 1000  # chain transitions or sampler steps of one request
CHAIN_ROWS = 8  # rows (chains) of a chain picture; its columns are at most 8 snapshots
CHAIN_DEFAULT_STEPS = 100  # a chain-only sampler (a denoising autoencoder) asked for no steps
MAX_TEMPERATURE = 10.0
MAX_GUIDANCE = 20.0
MIN_POINTS, MAX_POINTS = 10, 2000  # points of a latent map
MAX_NEIGHBOURS = 64
MAX_INTERPOLATION = 16  # decoded points of an interpolation strip
MAX_COORDS = 8  # principal directions (or z coordinates) a decode request may set
COORD_RANGE = 5.0
MANIFOLD_SIZES = (2, 20)
MAX_COMPARE = 16  # runs in one comparison

LIMITS = {
    "n": MAX_IMAGES,
    "steps": MAX_STEPS,
    "chain_rows": CHAIN_ROWS,
    "seed": 2**31 - 1,
    "temperature": MAX_TEMPERATURE,
    "guidance": MAX_GUIDANCE,
    "points": [MIN_POINTS, MAX_POINTS],
    "neighbours": MAX_NEIGHBOURS,
    "interpolation_steps": MAX_INTERPOLATION,
    "coords": MAX_COORDS,
    "coord_range": COORD_RANGE,
    "manifold_size": list(MANIFOLD_SIZES),
    "compare_runs": MAX_COMPARE,
}
