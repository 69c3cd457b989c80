"""``genlab compare RUN...``: a set of runs turned into ``report/index.html`` and
``report/report.md``, with every image next to them so the page works offline.

Each run is opened once (its model and data load at most once): runs without an eval.json are
evaluated first, then its sample grid, reconstructions, interpolations, latent view and Markov
chains are drawn where the family has them; :mod:`genlab.reporting` then reads the folders
and renders.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from genlab import api
from genlab.errors import ConfigError, GenlabError
from genlab.reporting.report import Table, build_report, summarise
from genlab.reporting.report_render import write_report
from genlab.runs import OpenRun, RunDir, device_overrides, open_run, require_model
from genlab.runs.model_io import stale_note

Run = OpenRun | RunDir | str | Path
CHAIN_STEPS = 1000  # the length of the chains drawn for Markov-chain families


def draw_images(opened: OpenRun, folder: Path, *, progress: bool) -> dict[str, str]:
    """The pictures this run's family can make, as paths relative to the report folder."""
    name = opened.path.name
    makers: dict[str, Callable[[Path], Path]] = {
        "samples": lambda p: api.sample(opened, n=64, seed=0, out=p, progress=progress),
        "means": lambda p: api.sample(opened, n=64, seed=0, out=p, means=True),
        "reconstructions": lambda p: api.reconstruct(opened, n=16, seed=0, out=p),
        "interpolations": lambda p: api.interpolate(opened, pairs=4, steps=8, seed=0, out=p),
        "latent": lambda p: api.latent_view(opened, p),
        "chains": lambda p: api.chain(
            opened, steps=CHAIN_STEPS, start="test", out=p, progress=progress
        ),
    }
    drawn = {}
    for kind, make in makers.items():
        try:
            make(folder / f"{name}-{kind}.png")
        except GenlabError:
            continue  # the family cannot do this: the report says "not available"
        drawn[kind] = f"images/{name}-{kind}.png"
    return drawn


def _stale(run: RunDir) -> str | None:
    """Why the run's eval.json no longer describes its exported weights, if it does not."""
    if not run.eval_path.exists():
        return None
    return stale_note(run.read_json(run.eval_path), run, "eval.json")


def check_writable(out: Path) -> None:
    """A one-line error unless ``out`` is, or can be made, a folder this process writes in."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"the report folder {str(out)!r} is a file; choose another --out")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"cannot make the report folder {str(out)!r}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"cannot write the report folder {str(out)!r}: {existing} is not writable; "
            "choose another --out"
        )


def compare(
    runs: Sequence[Run],
    out: str | Path = "report",
    *,
    progress: bool = True,
    device: str | None = None,
    tables: tuple[Table, ...] = (),
) -> Path:
    """Evaluate the runs that lack eval.json, draw their images and write the report;
    returns the HTML file's path. Evaluation and pictures run on ``device`` when one is given
    (else each OpenRun's own, ``eval.device``); ``tables`` go on the page after the runs."""
    if not runs:
        raise ConfigError("compare needs at least one run folder")
    opened = [open_run(r, device_overrides(device), progress=progress) for r in runs]
    names = [o.path.name for o in opened]
    if len(set(names)) != len(names):
        raise ConfigError(f"the same run is named twice: {', '.join(names)}")
    for run in opened:  # every run must be usable before anything is written
        require_model(run.run)
        run.run.read_metrics()  # the training curves are drawn from it
        if run.run.eval_path.exists():
            summarise(run.run)
    out = Path(out)
    check_writable(out)  # before any run gains an eval.json
    images = {}
    for run in opened:
        stale = _stale(run.run)
        if stale is not None:
            print(f"note: {stale}; evaluating it again")
        if not run.run.eval_path.exists() or stale is not None:
            if progress and stale is None:
                print(f"evaluating {run.path} (it has no eval.json yet)")
            api.evaluate(run, progress=progress)
        images[run.path.name] = draw_images(run, out / "images", progress=progress)
    return write_report(build_report([o.run for o in opened], out, images, tables))
