"""The ``genlab`` command line's arguments: one parser, its subcommands and their options.
Argument errors are printed in genlab's one-line form."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where to look for (and download) the dataset; sets data.path",
    )


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        type=device,
        metavar="DEVICE",
        help="auto (CUDA if available), cpu, cuda, cuda:N or mps; default auto",
    )


def device(text: str) -> str:
    """A device name as ``--device`` takes it (whether this machine has it is checked later,
    before anything is loaded or written)."""
    from genlab.devices import DEVICE_CHOICES, check_device_name  # imports torch: only if asked
    from genlab.errors import ConfigError

    try:
        return check_device_name(text)
    except ConfigError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a device; use {DEVICE_CHOICES}"
        ) from None


MAX_SEED = 2**63 - 1


def seed(text: str) -> int:
    """A random seed: an integer in [0, 2^63 - 1] (what torch.Generator accepts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}; give an integer") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed {value} is outside [0, 2^63 - 1]")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in genlab's one-line form (``--help`` still shows usage)."""

    def error(self, message: str) -> NoReturn:
        command = "" if self.prog == "genlab" else f"{self.prog.removeprefix('genlab ')}: "
        self.exit(2, f"genlab: error: {command}{message}\n")


def _process_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 1024:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of processes, 1 to 1024: {text!r}"
        )
    return value


def _bounded(name: str, low: int, high: int) -> Callable[[str], int]:
    """An argument type: a whole number in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} takes a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be in [{low}, {high}], got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
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
    p.add_argument(
        "--nproc",
        type=_process_count,
        metavar="N",
        help="train on N processes of this machine (starts torchrun; train.batch_size stays "
        "the global batch)",
    )
    _add_data_dir(p)
    _add_device(p)

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
    p.add_argument(
        "--final",
        action="store_true",
        help="the final weights (last checkpoint) instead of the exported ones, which are the "
        "best validation epoch's under train.keep_best (writes eval-final.json)",
    )
    p.add_argument("--no-progress", action="store_true")
    _add_data_dir(p)
    _add_device(p)

    p = sub.add_parser("sample", help="a grid of samples from a run's model")
    p.add_argument("run", metavar="RUN")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--out", metavar="PNG", help="output file (default RUN/samples/...)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--means",
        action="store_true",
        help="a vae's decoder means E[x|z] instead of samples x ~ p(x|z) (RUN/samples/means-*)",
    )
    p.add_argument(
        "--temperature",
        type=float,
        metavar="T",
        help="a flow's latents drawn from N(0, T^2 I): T < 1 trades diversity for fidelity",
    )
    p.add_argument(
        "--steps",
        "--chain-steps",
        dest="steps",
        type=int,
        metavar="K",
        help="Markov-chain families (rbm, denoising ae): run the chain K steps from noise, and "
        "also draw chains over time (RUN/samples/chain-*.png); diffusion: sample in K steps "
        "(default model.sample_steps)",
    )
    p.add_argument(
        "--sampler",
        choices=["ddpm", "ddim", "euler", "heun"],
        help="diffusion: ddpm or ddim (objective ddpm), euler or heun (flow matching); "
        "default model.sampler",
    )
    p.add_argument(
        "--eta",
        type=float,
        metavar="E",
        help="diffusion, ddim sampler: 0 deterministic, 1 as noisy as ddpm (default model.eta)",
    )
    p.add_argument(
        "--class",
        dest="label",
        metavar="CLASS",
        help="conditional runs: n images of this class (its name, e.g. sneaker, or index)",
    )
    p.add_argument(
        "--per-class",
        type=int,
        metavar="K",
        help="conditional runs: K images of every class, one labelled row per class",
    )
    p.add_argument(
        "--guidance",
        type=float,
        metavar="W",
        help="conditional diffusion: classifier-free guidance weight (0 unconditional, "
        "1 conditional, >1 stronger; default model.guidance)",
    )
    p.add_argument(
        "--from",
        dest="start",
        choices=["noise", "test"],
        default="noise",
        help="where the chains over time start (with --steps; default noise)",
    )
    _add_data_dir(p)
    _add_device(p)

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
            p.add_argument(
                "--class",
                dest="label",
                metavar="CLASS",
                help="conditional runs: interpolate within this class (name or index)",
            )
        p.add_argument("--seed", type=seed, default=0, help="which test images (seeded choice)")
        p.add_argument("--out", metavar="PNG")
        _add_data_dir(p)
        _add_device(p)

    p = sub.add_parser("embed", help="codes of a split (AE code, VAE posterior mean) as .npz")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--variance", action="store_true", help="also the posterior variances (VAE)")
    p.add_argument("--out", metavar="NPZ", help="output file (default RUN/embed-<split>.npz)")
    _add_data_dir(p)
    _add_device(p)

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
        _add_device(p)

    p = sub.add_parser("compare", help="an HTML/Markdown report comparing runs")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--out", default="report", metavar="DIR", help="report folder (default report)")
    p.add_argument("--no-progress", action="store_true")
    _add_device(p)

    p = sub.add_parser(
        "zoo", help="train one model of each family within a time budget, then compare them"
    )
    p.add_argument("--data", default="fashion-mnist", help="dataset (default fashion-mnist)")
    p.add_argument("--budget", default="30m", help="wall-clock budget, e.g. 30m, 1h (default 30m)")
    p.add_argument("--families", help="comma-separated subset of the zoo's families (default: all)")
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="train the cheap families (vae, ae, rbm) N times, train.seed 0..N-1, and show the "
        "spread (default 1)",
    )
    p.add_argument("--runs-dir", default="runs", metavar="DIR", help="default runs/")
    p.add_argument("--no-progress", action="store_true")
    _add_data_dir(p)
    _add_device(p)

    p = sub.add_parser("list", help="list registered models, datasets and metrics")
    p.add_argument("what", nargs="?", choices=["models", "datasets", "metrics"])

    p = sub.add_parser(
        "serve", help="a local web app: runs, live curves, sampling, latent explorer, compare"
    )
    p.add_argument("--runs-dir", default="runs", metavar="DIR", help="default runs/")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; any other is warned "
        "about)",
    )
    p.add_argument(
        "--port",
        type=_bounded("--port", 0, 65535),
        default=8000,
        help="default 8000 (0: any free port)",
    )
    p.add_argument(
        "--cache-mb",
        type=_bounded("--cache-mb", 0, 1_000_000),
        default=1024,
        metavar="MB",
        help="memory for loaded models, their test images and codes (default 1024)",
    )
    p.add_argument(
        "--queue",
        type=_bounded("--queue", 1, 1000),
        default=8,
        metavar="N",
        help="model computations accepted at once; more get 503 busy (default 8)",
    )
    p.add_argument(
        "--threads",
        type=_bounded("--threads", 1, 1024),
        metavar="N",
        help="torch threads of the computations (default: torch's)",
    )
    _add_device(p)

    p = sub.add_parser("demo", help="train, evaluate and sample a small VAE on digits (~1 min)")
    p.add_argument("--runs-dir", metavar="DIR", help="where the run folder goes (default runs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--no-progress", action="store_true")
    _add_device(p)
    return parser
