"""Pictures of what a trained run does: sample grids, reconstructions, latent interpolations
and a 2-D view of the codes. Each takes a run (folder or :class:`~genlab.runs.OpenRun`) and
returns the PNG file it wrote; the model and data come from the run, loaded once.

Each computes where the model is: on ``device`` (``auto``, ``cpu``, ``cuda``, ...) when one is
given, else on the OpenRun's device (``eval.device``). Noise that feeds the model is drawn
there; which test images are shown is chosen on the CPU, the same on every device; pictures
come back to the CPU to be written.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from genlab import noise
from genlab.class_choice import class_request
from genlab.drawing import check_guidance, check_sampler, draw, positive
from genlab.errors import ConfigError, RunError
from genlab.evaluation.features import encode_images
from genlab.imagegrid import grid_bytes, save_grid
from genlab.models.base import (
    SupportsDecode,
    SupportsEncode,
    SupportsGenerate,
    SupportsReconstruct,
    SupportsStepSampling,
    code_of,
    device_of,
)
from genlab.models.markov.chain import require_chain, run_chain, snapshot_steps
from genlab.reporting.plots import latent_scatter
from genlab.resources import require_fits
from genlab.runs import OpenRun, RunDir, device_overrides, open_run

Run = OpenRun | RunDir | str | Path
LATENT_POINTS = 2000  # test images shown in the latent-space view
IMAGE_COPIES = 8  # float32 copies of a batch of images a sampler and the grid may hold at once


def sample(
    run: Run,
    *,
    n: int = 64,
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = True,
    steps: int | None = None,
    device: str | None = None,
    means: bool = False,
    temperature: float | None = None,
    sampler: str | None = None,
    eta: float | None = None,
    label: str | int | None = None,
    per_class: int | None = None,
    guidance: float | None = None,
) -> Path:
    """A grid of n samples from the model; returns the PNG's path. Slow samplers
    (autoregressive models, long chains, diffusion) show a progress bar unless ``progress``
    is False. ``steps`` runs the model's Markov chain (RBM, denoising autoencoder) that many
    steps from noise instead of its default sampler, or an iterative sampler (diffusion) in
    that many steps, with ``sampler`` and ``eta`` (DDIM's noise) where given. ``means`` draws
    the mean images E[x|z] (a VAE's decoder means, from the same z as its samples) instead of
    samples x ~ p(x|z).
    ``temperature`` T draws a flow's latents from N(0, T^2 I) (Kingma & Dhariwal 2018).

    A conditional run (``model.conditional: true``) draws its classes from the training set's
    frequencies unless ``label`` names one (a class name or index: n images of it) or
    ``per_class`` asks for that many of every class (a grid with one labelled row per
    class). ``guidance`` w samples a conditional diffusion with classifier-free guidance:
    0 unconditional, 1 conditional, above 1 further towards the class (Ho & Salimans 2022)."""
    positive(n, "n")
    if means and steps is not None:
        raise ConfigError("--means and --steps do not go together: a chain draws samples")
    if temperature is not None:
        if not (temperature > 0 and math.isfinite(temperature)):
            raise ConfigError(f"--temperature must be a positive number, got {temperature}")
        if means or steps is not None:
            raise ConfigError("--temperature goes with plain samples, not --means or --steps")
    if guidance is not None and (means or temperature is not None):
        raise ConfigError(
            "--guidance goes with a diffusion's samples, not --means or --temperature"
        )
    opened = open_run(run, device_overrides(device))
    model = opened.model
    n, request = class_request(model, n, label, per_class)
    ncol = per_class if request.rows else None
    require_fits(
        IMAGE_COPIES * 4 * n * model.data_info.num_dims
        + grid_bytes(n, model.data_info.shape, ncol),
        f"drawing {n:,} samples",
        "ask for fewer with -n or --per-class (a grid of 64 is the default)",
    )
    generator = noise.generator(seed, device_of(model))
    labels = None if request.labels is None else request.labels.to(device_of(model))

    def save(images: torch.Tensor, name: str) -> Path:
        path = out or opened.run.samples / f"{name}{request.tag}.png"
        return save_grid(images.cpu(), path, ncol, text=opened.provenance(), rows=request.rows)

    if guidance is not None:
        check_guidance(model, guidance, steps)
        name = f"sample-seed{seed}-w{guidance:g}"
        name += f"-steps{steps}" if steps is not None else ""
        name += (f"-{sampler}" if sampler else "") + (f"-eta{eta:g}" if eta is not None else "")
    elif (sampler is not None or eta is not None) and not isinstance(model, SupportsStepSampling):
        raise ConfigError(
            f"the {model.family} family has no choice of sampler; drop --sampler and --eta "
            "(they are for diffusion runs)"
        )
    elif isinstance(model, SupportsStepSampling) and not (means or temperature is not None):
        if steps is not None:
            positive(steps, "--steps")
        name = f"sample-seed{seed}" + (f"-steps{steps}" if steps is not None else "")
        name += (f"-{sampler}" if sampler else "") + (f"-eta{eta:g}" if eta is not None else "")
    elif steps is not None:
        positive(steps, "--steps")
        require_chain(model)
        name = f"sample-seed{seed}-steps{steps}"
    else:
        check_sampler(model, means, temperature)
        name = f"means-seed{seed}" if means else f"sample-seed{seed}"
        name += f"-t{temperature:g}" if temperature is not None else ""
    images = draw(
        model,
        n,
        generator,
        steps=steps,
        sampler=sampler,
        eta=eta,
        temperature=temperature,
        means=means,
        labels=labels,
        guidance=guidance,
        progress=progress,
    )
    return save(images, name)


def chain(
    run: Run,
    *,
    steps: int,
    n: int = 8,
    seed: int = 0,
    start: str = "noise",
    out: str | Path | None = None,
    progress: bool = True,
    data_path: str | None = None,
    device: str | None = None,
) -> Path:
    """n Markov chains over time, one per row, from noise or from test images (``start``);
    columns are the states after 0, 1, 3, ... ``steps`` transitions. Returns the PNG's path."""
    positive(n, "n")
    positive(steps, "--steps")
    if start not in ("noise", "test"):
        raise ConfigError(f"a chain starts from noise or test, not {start!r}")
    opened = open_run(run, device_overrides(device), data_path=data_path)
    model = opened.model
    generator = noise.generator(seed, device_of(model))
    first = (
        require_chain(model).chain_start(n, generator=generator)
        if start == "noise"
        else test_images(opened, n, seed).to(device_of(model))
    )
    record = snapshot_steps(steps)
    _, states = run_chain(
        model, first, steps, generator=generator, record=record, progress=progress
    )
    tiles = torch.stack([states[s] for s in record], dim=1).flatten(0, 1).cpu()  # chain-major
    path = out or opened.run.samples / f"chain-{start}-seed{seed}-steps{steps}.png"
    return save_grid(tiles, path, ncol=len(record), text=opened.provenance())


def test_images(opened: OpenRun, n: int, seed: int, label: int | None = None) -> torch.Tensor:
    """n test images (as the model sees them) chosen with ``seed``, on the CPU: the same
    images whatever the device; with ``label``, images of that class only."""
    return test_choice(opened, n, seed, label)[0]


def test_choice(
    opened: OpenRun, n: int, seed: int, label: int | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`test_images` and their labels (None where the data have none)."""
    positive(n, "the number of images")
    test = opened.data.tensor("test")
    labels = opened.data.split("test").labels
    if label is not None and labels is not None:
        test, labels = test[labels == label], labels[labels == label]
    if n > test.shape[0]:
        which = "" if label is None else f" of class {opened.model.classes[label]!r}"
        raise ConfigError(
            f"asked for {n} test images{which} but the test split has {test.shape[0]}"
        )
    index = torch.randperm(test.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
    return test[index], None if labels is None else labels[index]


def reconstruct(
    run: Run,
    *,
    n: int = 32,
    seed: int = 0,
    out: str | Path | None = None,
    data_path: str | None = None,
    device: str | None = None,
) -> Path:
    """Test images (odd rows) above their reconstructions (even rows); returns the PNG's path."""
    opened = open_run(run, device_overrides(device), data_path=data_path)
    model = opened.model
    if not isinstance(model, SupportsReconstruct):
        raise RunError(f"the {model.family} family does not reconstruct its input")
    images, labels = test_choice(opened, n, seed)
    given = {}
    if model.conditional and labels is not None:  # given each test image's own class
        given = {"y": labels.to(device_of(model))}
    with torch.no_grad():
        recon = model.reconstruct(images.to(device_of(model)), **given).cpu()
    ncol = min(8, n)
    rows = []
    for start in range(0, n, ncol):
        rows += [images[start : start + ncol], recon[start : start + ncol]]
    out = out or opened.run.samples / f"reconstruct-seed{seed}.png"
    return save_grid(torch.cat(rows), out, ncol=ncol, text=opened.provenance())


def interpolate(
    run: Run,
    *,
    pairs: int = 8,
    steps: int = 8,
    seed: int = 0,
    out: str | Path | None = None,
    data_path: str | None = None,
    device: str | None = None,
    label: str | int | None = None,
) -> Path:
    """Decode straight lines between the codes of test-image pairs: one row per pair, the two
    real images at the ends; returns the PNG's path.

    A model without an encoder but with a generator of latents (a GAN) interpolates instead
    between pairs of latents z ~ N(0, I) drawn with ``seed``: one row per pair, ``steps``
    generated images from one end to the other; no data is loaded.

    A conditional run interpolates within one class: ``label`` (a name or index) holds the
    class fixed along every row (a conditional encoder needs it: its pairs are test images of
    that class); without it a conditional generator draws one class per row from p(y)."""
    positive(steps, "steps")
    positive(pairs, "pairs")
    opened = open_run(run, device_overrides(device), data_path=data_path)
    model = opened.model
    require_fits(
        IMAGE_COPIES * 4 * pairs * steps * model.data_info.num_dims
        + grid_bytes(pairs * (steps + 2), model.data_info.shape, steps + 2),
        f"{pairs:,} interpolations of {steps:,} steps",
        "ask for fewer --pairs or --steps",
    )
    _, request = class_request(model, pairs, label, None)
    out = out or opened.run.samples / f"interpolate-seed{seed}{request.tag}.png"
    where = device_of(model)
    t = torch.linspace(0, 1, steps, device=where).view(1, steps, 1)
    given: dict[str, torch.Tensor] = {}
    if not isinstance(model, SupportsEncode) and isinstance(model, SupportsGenerate):
        generator = noise.generator(seed, where)
        z = noise.normal((2 * pairs, model.latent_dim), generator)
        path = z[0::2].unsqueeze(1) * (1 - t) + z[1::2].unsqueeze(1) * t  # (P, S, L)
        if model.conditional:
            rows = request.labels
            rows = model.draw_classes(pairs, generator) if rows is None else rows.to(where)
            given = {"y": rows.repeat_interleave(steps)}
        with torch.no_grad():
            generated = model.generate(path.flatten(0, 1), **given)
        return save_grid(generated.cpu(), out, ncol=steps, text=opened.provenance())
    if not (isinstance(model, SupportsEncode) and isinstance(model, SupportsDecode)):
        raise RunError(f"the {model.family} family has no latent space to interpolate in")
    index = None
    if model.conditional:
        if request.labels is None:
            raise ConfigError(
                f"a conditional {model.family} interpolates within one class: give --class "
                f"(one of {', '.join(model.classes)})"
            )
        index = int(request.labels[0])
        given = {"y": torch.full((2 * pairs,), index, device=where)}
    images = test_images(opened, 2 * pairs, seed, index)
    with torch.no_grad():
        # (2P, L): posterior mean, or AE code
        codes = code_of(model.encode(images.to(where), **given))
        path = codes[0::2].unsqueeze(1) * (1 - t) + codes[1::2].unsqueeze(1) * t  # (P, S, L)
        if given:
            given = {"y": torch.full((pairs * steps,), index, device=where)}  # type: ignore[arg-type]
        decoded = model.decode(path.flatten(0, 1), **given)
        decoded = decoded.view(pairs, steps, *images.shape[1:]).cpu()
    grid = torch.cat([images[0::2].unsqueeze(1), decoded, images[1::2].unsqueeze(1)], dim=1)
    return save_grid(grid.flatten(0, 1), out, ncol=steps + 2, text=opened.provenance())


def latent_view(
    run: Run, out: str | Path, *, points: int = LATENT_POINTS, device: str | None = None
) -> Path:
    """A 2-D PCA view of the codes of the first ``points`` test images, coloured by label."""
    opened = open_run(run, device_overrides(device))
    model = opened.model
    labels = opened.data.split("test").labels
    if not isinstance(model, SupportsEncode):
        raise RunError(f"the {model.family} family has no encoder to view codes of")
    if labels is None:
        raise RunError(f"dataset {opened.data.name!r} has no labels to colour the codes by")
    codes, _ = encode_images(model, opened.data.tensor("test")[:points])
    kind = "posterior means" if model.traits.variational else "codes"
    title = f"{opened.path.name}: {kind}"
    return latent_scatter(codes.cpu().numpy(), labels[:points].numpy(), title, Path(out))
