"""The latent explorer's computations on a loaded run: the 2-D map of the test set's codes
(PCA, or t-SNE), its sprite of thumbnails, a test image, its reconstruction and nearest
neighbours in code space, decoded interpolations, decoding at a point along the principal
directions, and the manifold of a 2-D latent space.

Families with an encoder (AE, VAE, flows) explore the codes of test images; a GAN explores its
generator's latent space z ~ N(0, I) instead (interpolation between seeds, decoding along the
first coordinates, its manifold), and has no map.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from genlab import noise
from genlab.models.base import SupportsDecode, SupportsEncode, SupportsGenerate, SupportsReconstruct
from genlab.serve.drawing import png, png_of_array
from genlab.serve.loaded import LoadedRun
from genlab.serve.problems import bad_request

ENLARGED = 128  # pixels of a single test image or reconstruction
MANIFOLD_QUANTILES = (0.05, 0.95)  # a Gaussian latent's manifold spans these quantiles


def has_encoder(run: LoadedRun) -> bool:
    return isinstance(run.model, SupportsEncode) and isinstance(run.model, SupportsDecode)


def has_generator(run: LoadedRun) -> bool:
    return not has_encoder(run) and isinstance(run.model, SupportsGenerate)


def require_encoder(run: LoadedRun, what: str) -> None:
    if has_encoder(run):
        return
    family = run.model.family
    if has_generator(run):
        raise bad_request(
            f"the {family} family has no encoder, so no {what}; explore its latent space "
            "through decode.png, interpolate.png (seeds) and manifold.png"
        )
    raise bad_request(f"the {family} family has no latent space (no {what})")


def require_latent(run: LoadedRun) -> None:
    if not (has_encoder(run) or has_generator(run)):
        raise bad_request(f"the {run.model.family} family has no latent space to explore")


def _labels(run: LoadedRun, label: int | None, n: int) -> dict[str, Any]:
    """The ``y`` keyword of a conditional model's decoder/generator: n copies of ``label``."""
    if not run.model.conditional:
        return {}
    return {"y": torch.full((n,), label if label is not None else 0, device=run.device)}


def _decode(run: LoadedRun, codes: torch.Tensor, label: int | None) -> torch.Tensor:
    model: Any = run.model
    codes = codes.to(run.device)
    with torch.no_grad():
        if has_encoder(run):
            images = model.decode(codes, **_labels(run, label, codes.shape[0]))
        else:
            images = model.generate(codes, **_labels(run, label, codes.shape[0]))
    return images.float().cpu()


# -- the map ---------------------------------------------------------------------------------
def latent_map(run: LoadedRun, points: int, method: str, sprite: str) -> dict[str, Any]:
    """The first ``points`` of the pool placed in 2-D, with what the page needs to draw them."""
    require_encoder(run, "map of codes")
    count = min(points, int(run.pool.shape[0]))
    codes = run.pool_codes[:count]
    pca = run.pca
    if method == "tsne":
        xy = _tsne(codes)
    else:
        whole = pca.project(run.pool_codes)
        scale = float(whole.abs().max()) or 1.0
        xy = (whole[:count] / scale).numpy()
    xy = np.nan_to_num(np.clip(xy, -1.0, 1.0))
    indices = run.pool[:count].tolist()
    labels = run.labels_of(run.pool[:count])
    shape = run.test_images.shape
    return {
        "method": method,
        "points": [
            {
                "i": int(i),
                "x": float(xy[k, 0]),
                "y": float(xy[k, 1]) if xy.shape[1] > 1 else 0.0,
                "label": None if labels is None else int(labels[k]),
            }
            for k, i in enumerate(indices)
        ],
        "classes": list(run.classes),
        "sprite": sprite,
        "tile": int(max(shape[2], shape[3])),
        "cols": sprite_columns(count),
        "explained_variance": [float(v) for v in pca.ratio],
        "components": int(pca.ratio.shape[0]),
        "latent_dim": int(codes.shape[1]),
        "test_images": int(shape[0]),
    }


def _tsne(codes: torch.Tensor) -> np.ndarray:
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        raise bad_request(
            "t-SNE needs scikit-learn, which is not installed; use method=pca"
        ) from None
    n = codes.shape[0]
    if n < 5:
        raise bad_request("t-SNE needs at least 5 points; use method=pca")
    perplexity = float(min(30.0, (n - 1) / 3))
    xy = TSNE(2, perplexity=perplexity, init="pca", random_state=0).fit_transform(
        codes.double().numpy()
    )
    xy = xy - xy.mean(0)
    return xy / (float(np.abs(xy).max()) or 1.0)


def sprite_columns(count: int) -> int:
    return max(1, math.ceil(math.sqrt(count)))


def sprite(run: LoadedRun, points: int) -> bytes:
    """Thumbnails of the map's points at their own size, row-major, no gaps: point k at
    column k % cols, row k // cols."""
    require_encoder(run, "map of codes")
    count = min(points, int(run.pool.shape[0]))
    images = run.test_images[run.pool[:count]].clamp(0, 1)
    n, c, h, w = images.shape
    cols = sprite_columns(n)
    rows = math.ceil(n / cols)
    canvas = torch.ones(c, rows * h, cols * w)
    for k in range(n):
        r, col = divmod(k, cols)
        canvas[:, r * h : (r + 1) * h, col * w : (col + 1) * w] = images[k]
    array = (canvas * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    return png_of_array(array)


# -- one test image --------------------------------------------------------------------------
def test_image(run: LoadedRun, i: int) -> bytes:
    index = run.test_index(i)
    return png(run.test_images[index : index + 1], 1, at_least=ENLARGED)


def reconstruction(run: LoadedRun, i: int) -> bytes:
    index = run.test_index(i)
    model: Any = run.model
    if not isinstance(model, SupportsReconstruct):
        raise bad_request(f"the {model.family} family does not reconstruct its input")
    x = run.test_images[index : index + 1].to(run.device)
    given: dict[str, Any] = {}
    labels = run.labels_of(torch.tensor([index]))
    if run.model.conditional and labels is not None:
        given["y"] = labels.to(run.device)
    with torch.no_grad():
        recon = model.reconstruct(x, **given).float().cpu()
    return png(recon, 1, at_least=ENLARGED)


def neighbours(run: LoadedRun, i: int, k: int) -> dict[str, Any]:
    """The k pool images nearest to test image i in code space (Euclidean), nearest first."""
    require_encoder(run, "neighbours in code space")
    index = run.test_index(i)
    code = run.code_of_test(index)
    distances = (run.pool_codes - code).norm(dim=1)
    distances[run.pool == index] = math.inf  # not itself
    k = min(k, int((distances < math.inf).sum()))
    order = torch.argsort(distances)[:k]
    return {
        "i": index,
        "neighbours": [int(run.pool[j]) for j in order],
        "distances": [float(distances[j]) for j in order],
    }


# -- decoding --------------------------------------------------------------------------------
def interpolation(run: LoadedRun, a: int, b: int, steps: int, label: int | None) -> bytes:
    """A strip: test image a, ``steps`` decoded codes on the line to b's, test image b (an
    encoder); or ``steps`` images generated on the line between z of seeds a and b (a GAN)."""
    require_latent(run)
    t = torch.linspace(0, 1, steps).view(steps, 1)
    if has_generator(run):
        za, zb = (_seeded_z(run, s) for s in (a, b))
        if label is None and run.model.conditional:
            label = int(run.model.draw_classes(1, noise.generator(a, run.device))[0])
        return png(_decode(run, za * (1 - t) + zb * t, label), steps)
    ia, ib = run.test_index(a), run.test_index(b)
    if label is None and run.model.conditional:
        own = run.labels_of(torch.tensor([ia]))
        label = int(own[0]) if own is not None else 0
    ca, cb = run.code_of_test(ia), run.code_of_test(ib)
    decoded = _decode(run, ca * (1 - t) + cb * t, label)
    images = run.test_images
    strip = torch.cat([images[ia : ia + 1], decoded, images[ib : ib + 1]])
    return png(strip, steps + 2)


def _z_size(run: LoadedRun) -> int:
    generator: Any = run.model  # a SupportsGenerate
    return int(generator.latent_dim)


def _seeded_z(run: LoadedRun, seed: int) -> torch.Tensor:
    dim = _z_size(run)
    return noise.normal((1, dim), noise.generator(seed, run.device)).cpu()


def decode_at(run: LoadedRun, coords: list[float], label: int | None) -> bytes:
    """The image at the pool's mean code plus coords[k] standard deviations along principal
    direction k (an encoder); at z with its first coordinates set to ``coords`` (a GAN)."""
    require_latent(run)
    if has_generator(run):
        dim = _z_size(run)
        if len(coords) > dim:
            raise bad_request(f"coords sets at most {dim} coordinates of this GAN's z")
        z = torch.zeros(1, dim)
        z[0, : len(coords)] = torch.tensor(coords)
        return png(_decode(run, z, label), 1, at_least=ENLARGED)
    pca = run.pca
    if len(coords) > pca.directions.shape[0]:
        raise bad_request(
            f"coords sets at most {pca.directions.shape[0]} principal directions for this run"
        )
    code = pca.mean.clone()
    for k, value in enumerate(coords):
        code += value * pca.sd[k] * pca.directions[k]
    return png(_decode(run, code.unsqueeze(0), label), 1, at_least=ENLARGED)


def manifold(run: LoadedRun, size: int, label: int | None) -> bytes:
    """A size x size grid decoded over a 2-D latent space: Gaussian quantiles for a prior
    N(0, I) (VAE, GAN), the 1st to 99th percentile of the pool's codes otherwise; z1 grows to
    the right, z2 upwards."""
    require_latent(run)
    if has_generator(run):
        dim = _z_size(run)
        gaussian = True
    else:
        dim = int(run.pool_codes.shape[1])
        gaussian = run.model.traits.variational
    if dim != 2:
        raise bad_request(f"the manifold is drawn for a 2-D latent space; this one has {dim}")
    if gaussian:
        p = torch.linspace(*MANIFOLD_QUANTILES, size)
        axes = [torch.distributions.Normal(0.0, 1.0).icdf(p)] * 2
    else:
        codes = run.pool_codes
        low = torch.quantile(codes, 0.01, dim=0)
        high = torch.quantile(codes, 0.99, dim=0)
        axes = [torch.linspace(float(low[d]), float(high[d]), size) for d in range(2)]
    z2, z1 = torch.meshgrid(axes[1].flip(0), axes[0], indexing="ij")
    grid = torch.stack([z1.flatten(), z2.flatten()], dim=1)
    return png(_decode(run, grid, label), size)
