"""The ``genlab`` command line: train | eval | sample | reconstruct | interpolate | embed |
probe | finetune | compare | zoo | list | demo.

User mistakes (bad config keys or values, bad data files, missing runs) print one line
``genlab: error: ...`` without a traceback and exit with status 2, writing nothing.
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from genlab.errors import GenlabError, TrainingDiverged


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where to look for (and download) the dataset; sets data.path",
    )


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in genlab's one-line form (``--help`` still shows usage)."""

    def error(self, message: str) -> NoReturn:
        command = "" if self.prog == "genlab" else f"{self.prog.removeprefix('genlab ')}: "
        self.exit(2, f"genlab: error: {command}{message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="genlab", description="Train, evaluate and compare generative models of images."
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    p = sub.add_parser("train", help="train a model (a new run, or --resume one)")
    p.add_argument("--config", metavar="YAML", help="run config; defaults: a VAE on digits")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=5 (repeatable)",
    )
    p.add_argument(
        "--resume", metavar="RUN", help="continue this run folder from its latest checkpoint"
    )
    p.add_argument("--runs-dir", metavar="DIR", help="where run folders go (default runs/)")
    p.add_argument("--eval", action="store_true", help="evaluate on the test set after training")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_data_dir(p)

    p = sub.add_parser("eval", help="evaluate a run's model on the test set (writes eval.json)")
    p.add_argument("run", metavar="RUN")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="eval.KEY=VALUE",
        help="override an eval setting, e.g. --set eval.iwae_k=100",
    )
    p.add_argument("--k", type=int, help="importance samples for the IWAE estimate (eval.iwae_k)")
    p.add_argument("--split", default="test", choices=["test", "val"])
    p.add_argument("--no-progress", action="store_true")
    _add_data_dir(p)

    p = sub.add_parser("sample", help="a grid of samples from a run's model")
    p.add_argument("run", metavar="RUN")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="PNG", help="output file (default RUN/samples/...)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--steps",
        "--chain-steps",
        dest="steps",
        type=int,
        metavar="K",
        help="Markov-chain families (rbm, denoising ae): run the chain K steps from noise, and "
        "also draw chains over time (RUN/samples/chain-*.png)",
    )
    p.add_argument(
        "--from",
        dest="start",
        choices=["noise", "test"],
        default="noise",
        help="where the chains over time start (with --steps; default noise)",
    )
    _add_data_dir(p)

    for name, text in (
        ("reconstruct", "test images above their reconstructions"),
        ("interpolate", "decoded latent interpolations between test images"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("run", metavar="RUN")
        if name == "reconstruct":
            p.add_argument("-n", type=int, default=32, help="number of test images (default 32)")
        else:
            p.add_argument("--pairs", type=int, default=8, help="image pairs, one per row")
            p.add_argument("--steps", type=int, default=8, help="decoded points per row")
        p.add_argument("--seed", type=int, default=0, help="which test images (seeded choice)")
        p.add_argument("--out", metavar="PNG")
        _add_data_dir(p)

    p = sub.add_parser("embed", help="codes of a split (AE code, VAE posterior mean) as .npz")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--variance", action="store_true", help="also the posterior variances (VAE)")
    p.add_argument("--out", metavar="NPZ", help="output file (default RUN/embed-<split>.npz)")
    _add_data_dir(p)

    for name, text in (
        ("probe", "logistic-regression and k-NN probes of the frozen codes"),
        ("finetune", "encoder + linear head fine-tuned vs trained from scratch"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("run", metavar="RUN")
        p.add_argument(
            "--labels",
            default="100,1000,all",
            help="labelled training images per setting (default 100,1000,all)",
        )
        p.add_argument("--seeds", type=int, default=3, help="seeds per setting (default 3)")
        if name == "finetune":
            p.add_argument("--steps", type=int, default=1000, help="Adam steps (default 1000)")
        _add_data_dir(p)

    p = sub.add_parser("compare", help="an HTML/Markdown report comparing runs")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--out", default="report", metavar="DIR", help="report folder (default report)")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser(
        "zoo", help="train one model of each family within a time budget, then compare them"
    )
    p.add_argument("--data", default="fashion-mnist", help="dataset (default fashion-mnist)")
    p.add_argument("--budget", default="30m", help="wall-clock budget, e.g. 30m, 1h (default 30m)")
    p.add_argument("--families", help="comma-separated subset of the zoo's families (default: all)")
    p.add_argument("--runs-dir", default="runs", metavar="DIR", help="default runs/")
    p.add_argument("--no-progress", action="store_true")
    _add_data_dir(p)

    p = sub.add_parser("list", help="list registered models, datasets and metrics")
    p.add_argument("what", nargs="?", choices=["models", "datasets", "metrics"])

    p = sub.add_parser("demo", help="train, evaluate and sample a small VAE on digits (~1 min)")
    p.add_argument("--runs-dir", metavar="DIR", help="where the run folder goes (default runs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--no-progress", action="store_true")
    return parser


# the machine failing, not the input: exit status 1 (2 is for what the user can fix)
MACHINE_ERRORS = frozenset({errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.ENOMEM})


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except TrainingDiverged as exc:
        print(f"genlab: {exc}", file=sys.stderr)
        return 1
    except GenlabError as exc:
        print(f"genlab: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the user gave that cannot be used, or a full disk
        where = f" {exc.filename}" if exc.filename else ""
        machine = exc.errno in MACHINE_ERRORS
        verb = "cannot write" if machine else "cannot use"
        print(f"genlab: error: {verb}{where}: {exc.strerror or exc}", file=sys.stderr)
        return 1 if machine else 2
    except KeyboardInterrupt:
        print(
            "genlab: interrupted; a run can be continued with `genlab train --resume RUN`",
            file=sys.stderr,
        )
        return 130


def _train(args: argparse.Namespace) -> int:
    from genlab import api

    overrides = list(args.overrides)
    if args.data_dir:
        overrides.append(f"data.path={args.data_dir}")
    progress = False if args.no_progress else None
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
        _print_eval(api.evaluate(run, progress=not args.no_progress))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from genlab import api

    overrides = list(args.overrides) + ([f"eval.iwae_k={args.k}"] if args.k is not None else [])
    results = api.evaluate(
        args.run,
        overrides,
        split=args.split,
        progress=not args.no_progress,
        data_path=args.data_dir,
    )
    _print_eval(results)
    return 0


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

    progress = not args.no_progress
    print(
        api.sample(
            args.run, n=args.n, seed=args.seed, out=args.out, progress=progress, steps=args.steps
        )
    )
    if args.steps is not None:
        print(
            api.chain(
                args.run,
                steps=args.steps,
                seed=args.seed,
                start=args.start,
                progress=progress,
                data_path=args.data_dir,
            )
        )
    return 0


def _reconstruct(args: argparse.Namespace) -> int:
    from genlab import api

    print(
        api.reconstruct(args.run, n=args.n, seed=args.seed, out=args.out, data_path=args.data_dir)
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
            out=args.out,
            data_path=args.data_dir,
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
        args.run, sizes=_label_sizes(args.labels), seeds=_seeds(args.seeds), data_path=args.data_dir
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
    )
    print(finetune_table(report), end="")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from genlab.compare import compare

    html = compare(args.runs, args.out, progress=not args.no_progress)
    print(f"wrote {html} and {html.with_name('report.md')}")
    return 0


def _zoo(args: argparse.Namespace) -> int:
    from genlab.zoo import run_zoo

    families = [f.strip() for f in args.families.split(",")] if args.families else None
    html = run_zoo(
        args.data,
        args.budget,
        runs_dir=args.runs_dir,
        families=families,
        data_dir=args.data_dir,
        progress=not args.no_progress,
    )
    print(f"wrote {html} and {html.with_name('report.md')}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from genlab.data import DATASETS
    from genlab.evaluation.runner import METRICS  # importing the runner registers every metric
    from genlab.models import MODELS

    sections = {
        "models": [(n, cls.description) for n, cls in MODELS.items()],
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


def _demo(args: argparse.Namespace) -> int:
    from genlab import api

    overrides = ["data.name=digits", *args.overrides]
    if args.runs_dir:
        overrides.append(f"runs_dir={args.runs_dir}")
    config = api.load_config(None, DEMO_OVERRIDES + overrides)
    progress = not args.no_progress
    run = api.train(config, progress=progress)
    opened = api.open_run(run, progress=progress)  # the model and data load once
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
    "demo": _demo,
}


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["main"]
