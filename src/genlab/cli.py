"""The ``genlab`` command line: train | eval | sample | reconstruct | interpolate | embed |
probe | finetune | compare | zoo | list | serve | demo.

User mistakes (bad config keys or values, bad data files, missing runs) print one line
``genlab: error: ...`` without a traceback and exit with status 2, writing nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from genlab.cli_args import build_parser
from genlab.cli_failures import exit_status, sigterm_as_interrupt
from genlab.errors import GenlabError


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    with sigterm_as_interrupt():
        return exit_status(lambda: COMMANDS[args.command](args))


def _launch_torchrun(args: argparse.Namespace, overrides: list[str]) -> int:
    """``genlab train --nproc N ...``: check the config here (one-line errors), then run
    ``torchrun --standalone --nproc-per-node N -m genlab train ...`` and pass on its status."""
    from genlab import api
    from genlab.devices import resolve_device
    from genlab.training.distributed import check_batch

    if args.resume:
        config = api.open_run(args.resume, overrides, allow=api.RESUME_OVERRIDABLE).config
    else:
        config = api.load_config(args.config, overrides)
    resolve_device(config.train.device, "train.device")
    check_batch(config.train.batch_size, args.nproc)
    rest, skip = [], False
    for token in args.argv:
        if skip:
            skip = False
        elif token == "--nproc":
            skip = True
        elif not token.startswith("--nproc="):
            rest.append(token)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", str(args.nproc), "-m", "genlab", *rest]
    return subprocess.call(command)


def _train(args: argparse.Namespace) -> int:
    from genlab import api

    overrides = list(args.overrides)
    if args.data_dir:
        overrides.append(f"data.path={args.data_dir}")
    if args.device:
        overrides.append(f"train.device={args.device}")
    from genlab.training.distributed import launched_by_torchrun

    progress = False if args.no_progress else None
    if args.nproc is not None and args.nproc > 1 and not launched_by_torchrun():
        return _launch_torchrun(args, overrides)
    if args.resume:
        if args.config or args.runs_dir or args.data_dir:
            raise GenlabError(
                "--resume takes its config from the run folder; drop --config/"
                "--runs-dir/--data-dir (use --set train.epochs=N to train longer)"
            )
        run = api.resume(args.resume, overrides, progress=progress)
    else:
        if args.runs_dir:
            overrides.append(f"runs_dir={args.runs_dir}")
        run = api.train(api.load_config(args.config, overrides), progress=progress)
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun rank 0 reports, evaluates and sets the exit status
    print(f"run: {run.path}")
    status = str(run.info().get("status", ""))
    for name, code in (("sigint", 130), ("sigterm", 143)):
        if status == f"interrupted ({name})":
            print(
                f"genlab: stopped by {name.upper()} with a checkpoint; continue with "
                f"`genlab train --resume {run.path}`",
                file=sys.stderr,
            )
            return code
    if args.eval:
        _print_eval(api.evaluate(run, _eval_device(args), progress=not args.no_progress))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from genlab import api

    overrides = list(args.overrides) + ([f"eval.iwae_k={args.k}"] if args.k is not None else [])
    overrides += _eval_device(args)
    results = api.evaluate(
        args.run,
        overrides,
        split=args.split,
        progress=not args.no_progress,
        data_path=args.data_dir,
        final=args.final,
    )
    _print_eval(results)
    return 0


def _eval_device(args: argparse.Namespace) -> list[str]:
    """``--device`` as the override of the device evaluation runs on (none when not given)."""
    return [f"eval.device={args.device}"] if args.device else []


def _print_eval(results: dict) -> None:
    from genlab.evaluation.runner import METRICS  # importing the runner registers every metric

    for name, entry in results["metrics"].items():
        base = entry.get("metric", "")
        text = METRICS.get(base).format(entry) if base in METRICS else f"{entry['value']:.4g}"
        print(f"{name:>22}: {text}")
    for name, reason in results["not_applicable"].items():
        print(f"{name:>22}: not applicable ({reason})")


def _sample(args: argparse.Namespace) -> int:
    from genlab import api
    from genlab.models.base import SupportsStepSampling
    from genlab.runs import device_overrides

    progress = not args.no_progress
    opened = api.open_run(args.run, device_overrides(args.device))
    print(
        api.sample(
            opened,
            n=args.n,
            seed=args.seed,
            out=args.out,
            progress=progress,
            steps=args.steps,
            means=args.means,
            temperature=args.temperature,
            sampler=args.sampler,
            eta=args.eta,
            label=args.label,
            per_class=args.per_class,
            guidance=args.guidance,
        )
    )
    if args.steps is not None and not isinstance(opened.model, SupportsStepSampling):
        print(
            api.chain(
                args.run,
                steps=args.steps,
                seed=args.seed,
                start=args.start,
                progress=progress,
                data_path=args.data_dir,
                device=args.device,
            )
        )
    return 0


def _reconstruct(args: argparse.Namespace) -> int:
    from genlab import api

    print(
        api.reconstruct(
            args.run,
            n=args.n,
            seed=args.seed,
            out=args.out,
            data_path=args.data_dir,
            device=args.device,
        )
    )
    return 0


def _interpolate(args: argparse.Namespace) -> int:
    from genlab import api

    print(
        api.interpolate(
            args.run,
            pairs=args.pairs,
            steps=args.steps,
            seed=args.seed,
            label=args.label,
            out=args.out,
            data_path=args.data_dir,
            device=args.device,
        )
    )
    return 0


def _embed(args: argparse.Namespace) -> int:
    from genlab import api

    print(
        api.embed(
            args.run,
            split=args.split,
            variance=args.variance,
            out=args.out,
            data_path=args.data_dir,
            device=args.device,
        )
    )
    return 0


def _label_sizes(text: str) -> list[int | None]:
    sizes: list[int | None] = []
    for part in text.split(","):
        part = part.strip()
        if part == "all":
            sizes.append(None)
        elif part.isdigit():
            sizes.append(int(part))
        else:
            raise GenlabError(f"--labels takes numbers or 'all' separated by commas, got {text!r}")
    return sizes


def _seeds(count: int) -> list[int]:
    if count < 1:
        raise GenlabError(f"--seeds must be at least 1, got {count}")
    return list(range(count))


def _probe(args: argparse.Namespace) -> int:
    from genlab import api
    from genlab.representation import probe_table

    report = api.probe(
        args.run,
        sizes=_label_sizes(args.labels),
        seeds=_seeds(args.seeds),
        data_path=args.data_dir,
        device=args.device,
    )
    print(probe_table(report), end="")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from genlab import api
    from genlab.representation import finetune_table

    report = api.finetune(
        args.run,
        sizes=_label_sizes(args.labels),
        seeds=_seeds(args.seeds),
        steps=args.steps,
        data_path=args.data_dir,
        device=args.device,
    )
    print(finetune_table(report), end="")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from genlab.compare import compare

    html = compare(args.runs, args.out, progress=not args.no_progress, device=args.device)
    print(f"wrote {html} and {html.with_name('report.md')}")
    return 0


def _zoo(args: argparse.Namespace) -> int:
    from genlab.zoo import ZooInterrupted, run_zoo

    families = [f.strip() for f in args.families.split(",")] if args.families else None
    try:
        html = run_zoo(
            args.data,
            args.budget,
            runs_dir=args.runs_dir,
            families=families,
            data_dir=args.data_dir,
            progress=not args.no_progress,
            device=args.device,
            seeds=args.seeds,
        )
    except KeyboardInterrupt as exc:
        stopped = f" ({exc})" if isinstance(exc, ZooInterrupted) else ""
        print(
            f"genlab: zoo interrupted{stopped}; run the same command again to resume it",
            file=sys.stderr,
        )
        return 143 if "sigterm" in str(exc) else 130
    print(f"wrote {html} and {html.with_name('report.md')}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from genlab.data import DATASETS
    from genlab.evaluation.runner import METRICS  # importing the runner registers every metric
    from genlab.models import MODELS

    sections = {
        "models": [
            (n, cls.description + ("; conditional" if cls.traits.conditional else ""))
            for n, cls in MODELS.items()
        ],
        "datasets": [(n, src.description) for n, src in DATASETS.items()],
        "metrics": [(n, _metric_line(m)) for n, m in METRICS.items()],
    }
    for what, rows in sections.items():
        if args.what and args.what != what:
            continue
        print(f"{what}:")
        for name, text in rows:
            print(f"  {name:<14} {text}")
    return 0


def _metric_line(metric: Any) -> str:
    extra = "" if metric.by_default else "; not run by default"
    return f"{metric.description} ({metric.direction} is better{extra})"


SERVE_EXTRA = "genlab serve needs the serve extra: pip install -e '.[serve]'"


def _serve(args: argparse.Namespace) -> int:
    import importlib.util
    from pathlib import Path

    if any(importlib.util.find_spec(name) is None for name in ("starlette", "uvicorn")):
        raise GenlabError(SERVE_EXTRA)
    from genlab.serve.server import serve

    return serve(
        Path(args.runs_dir),
        host=args.host,
        port=args.port,
        cache_mb=args.cache_mb,
        queue=args.queue,
        threads=args.threads,
        device=args.device or "auto",
    )


def _demo(args: argparse.Namespace) -> int:
    from genlab import api

    overrides = ["data.name=digits", *args.overrides]
    if args.runs_dir:
        overrides.append(f"runs_dir={args.runs_dir}")
    if args.device:
        overrides.append(f"train.device={args.device}")
    config = api.load_config(None, DEMO_OVERRIDES + overrides)
    progress = not args.no_progress
    run = api.train(config, progress=progress)
    opened = api.open_run(run, _eval_device(args), progress=progress)  # model, data load once
    results = api.evaluate(opened, progress=progress)
    outputs = [api.sample(opened), api.reconstruct(opened), api.interpolate(opened)]
    print(f"run: {run.path}")
    _print_eval(results)
    for path in [run.eval_path, *outputs]:
        print(f"wrote {path}")
    return 0


# The demo: an MLP VAE on scikit-learn's 8x8 digits, under a minute on 2 CPU cores.
DEMO_OVERRIDES = [
    "model.name=vae",
    "model.hidden=[256]",
    "model.latent_dim=8",
    "train.epochs=150",
    "train.batch_size=64",
    "train.lr=2e-3",
    "eval.iwae_k=500",
]

COMMANDS = {
    "train": _train,
    "eval": _eval,
    "sample": _sample,
    "reconstruct": _reconstruct,
    "interpolate": _interpolate,
    "embed": _embed,
    "probe": _probe,
    "finetune": _finetune,
    "compare": _compare,
    "zoo": _zoo,
    "list": _list,
    "serve": _serve,
    "demo": _demo,
}


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["main"]
