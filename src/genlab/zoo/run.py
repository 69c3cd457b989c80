"""``genlab zoo``: one model of each family trained within a time budget, evaluated under the
protocol of the claims it can decide, and compared in one report.

The budget is wall-clock time: :data:`EVAL_SHARE` of it is kept for evaluation and the report,
the rest is training time, shared from a measured pilot (:mod:`genlab.zoo.budget`). Evaluation
is not cut short, so the command can run over the budget; zoo.json records every stage's time.

The zoo's folder is named after its arguments, and zoo.json is rewritten after every stage:
the same command run again after an interruption picks up where it stopped (a run that was
training resumes from its checkpoint with the time it had left).
"""

from __future__ import annotations

import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genlab import api
from genlab.compare import compare
from genlab.data import load_data
from genlab.devices import describe, resolve_device
from genlab.errors import RunError
from genlab.evaluation.feature_net import load_or_train_feature_net
from genlab.fileio import atomic_write_json
from genlab.models import MODELS, run_config_from_dict
from genlab.runs import RunDir, device_overrides, open_run
from genlab.training.checkpoint import latest_checkpoint
from genlab.zoo.budget import PILOT_STEPS, Slot, allocate, epoch_seconds, hand_on
from genlab.zoo.entries import (
    BINARIZE,
    EVAL_SHARE,
    MAX_EPOCHS,
    ZooEntry,
    check_seeds,
    eval_samples,
    parse_budget,
    select,
)
from genlab.zoo.page import budget_table

# how a run that the zoo trained may have ended; anything else is resumed
ENDED = ("finished", "interrupted (max_seconds)", "interrupted (max_steps)", "diverged")


class ZooInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the zoo; its folder holds everything needed to resume."""


def zoo_folder(data: str, seconds: float, families: list[str] | None, seeds: int) -> str:
    """The zoo's folder name: the same arguments, the same folder (so a rerun resumes)."""
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    budget = "".join(f"{v}{u}" for v, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if v)
    name = f"zoo-{data}-{budget or '0s'}"
    if families:
        name += "-" + "+".join(sorted(set(families)))
    return name + (f"-seeds{seeds}" if seeds > 1 else "")


@dataclass(frozen=True)
class Setting:
    """What every run of one zoo shares: its data, device, folder and sample count."""

    data: str
    data_dir: str | None
    device: str | None
    root: Path
    samples: int
    progress: bool

    def config(self, entry: ZooEntry, runs_dir: Path, seed: int = 0, **train: Any) -> Any:
        """The run config of ``entry`` under this setting (``train`` overrides on top)."""
        tree = {
            "data": {
                "name": self.data,
                "binarize": BINARIZE[entry.protocol],
                **({"path": self.data_dir} if self.data_dir else {}),
            },
            "model": {"name": entry.family, **entry.model},
            "train": {
                "epochs": MAX_EPOCHS,
                # model selection by validation: the best epoch's weights are evaluated (a
                # family trained against a discriminator has no one validation objective)
                "keep_best": not MODELS.get(entry.family).traits.adversarial,
                **entry.train,
                "seed": seed,
                **train,
                **({"device": self.device} if self.device is not None else {}),
            },
            "eval": {"num_samples": self.samples, **entry.eval},
            "runs_dir": str(runs_dir),
        }
        return run_config_from_dict(tree)


def _numbers(mapping: Any) -> bool:
    return isinstance(mapping, dict) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in mapping.values()
    )


def _well_formed(record: Any) -> bool:
    """Whether a zoo.json read back has every field the zoo reads, of the right type."""
    if not isinstance(record, dict) or not isinstance(record.get("arguments"), dict):
        return False
    runs, plan = record.get("runs"), record.get("plan", [])
    if not (isinstance(runs, dict) and _numbers(record.get("stages")) and isinstance(plan, list)):
        return False
    for state in runs.values():
        if not isinstance(state, dict) or not isinstance(state.get("path", ""), str):
            return False
        if not _numbers({"used": state.get("used_seconds", 0.0)}):
            return False
    for row in plan:
        if not isinstance(row, dict) or not isinstance(row.get("entry"), str):
            return False
        if not isinstance(row.get("seed"), int) or not _numbers(
            {k: row.get(k) for k in ("epoch_seconds", "seconds")}
        ):
            return False
    pilot = record.get("pilot", {})
    return isinstance(pilot, dict) and all(_numbers(v) for v in pilot.values())


class Ledger:
    """zoo.json: the arguments, the plan, and how far every stage got; saved after each."""

    def __init__(self, path: Path, arguments: dict[str, Any]) -> None:
        self.path = path
        self.record: dict[str, Any] = {"arguments": arguments, "stages": {}, "runs": {}}
        if path.exists():
            old = RunDir(path.parent).read_json(path)
            if not _well_formed(old):
                raise RunError(f"{path} is damaged; remove {path.parent} to start the zoo over")
            if old["arguments"] != arguments:
                raise RunError(
                    f"{path} was written by `genlab zoo` with other arguments "
                    f"({old['arguments']}); remove {path.parent} to start over"
                )
            self.record = old

    def save(self) -> None:
        atomic_write_json(self.path, self.record)

    @contextmanager
    def stage(self, name: str) -> Any:
        start = time.perf_counter()
        yield
        stages = self.record["stages"]
        stages[name] = stages.get(name, 0.0) + time.perf_counter() - start
        self.save()


def run_zoo(
    data: str,
    budget: str,
    *,
    runs_dir: str | Path = "runs",
    families: list[str] | None = None,
    data_dir: str | None = None,
    progress: bool = True,
    device: str | None = None,
    seeds: int = 1,
) -> Path:
    """Train, evaluate and compare; returns the report's index.html. ``device`` is where
    every run trains and is evaluated (default auto); ``seeds`` trains the cheap families
    that many times, with train.seed 0, 1, ..."""
    seconds = parse_budget(budget)
    seeds = check_seeds(seeds)
    chosen = resolve_device(device or "auto", "--device")  # a missing device: an error up front
    entries = select(families, MODELS.names())
    samples = eval_samples(seconds)
    root = Path(runs_dir) / zoo_folder(data, seconds, families, seeds)
    setting = Setting(data, data_dir, device, root, samples, progress)
    for entry in entries:  # validate every config before anything is written
        setting.config(entry, root / "runs")
    ledger = Ledger(
        root / "zoo.json",
        {"data": data, "budget_seconds": seconds, "families": families, "seeds": seeds},
    )
    record = ledger.record
    if record.get("status") == "finished" and (root / "report" / "index.html").exists():
        if progress:
            print(f"zoo: {root} is complete; remove it to run the zoo again")
        return root / "report" / "index.html"
    record.update(
        {
            "data": data,
            "budget_seconds": seconds,
            "eval_share": EVAL_SHARE,
            "eval_num_samples": samples,
            "device": describe(chosen),
            "threads": torch.get_num_threads(),
            "status": "training",
        }
    )
    if progress and record["runs"]:
        print(f"zoo: resuming {root}")
    slots = _plan(ledger, entries, seeds, setting)
    curved = [e for e in entries if e.train.get("fd_every")]
    if curved and "feature network" not in record["stages"]:
        # the FD curves need it: trained (or loaded) here, so no run's time limit pays for it
        with ledger.stage("feature network"):
            config = setting.config(curved[0], root)
            splits = load_data(config.data, progress=progress)
            if all(getattr(splits, s).labels is not None for s in ("train", "test")):
                load_or_train_feature_net(splits, device=chosen, progress=progress)
    runs = [_train(ledger, slots, i, setting) for i in range(len(slots))]
    record["status"] = "evaluating"
    ledger.save()
    opened = []
    for slot, run in zip(slots, runs, strict=True):
        state = record["runs"][slot.label]
        handle = open_run(run, device_overrides(device), progress=progress)
        if not state.get("evaluated"):
            with ledger.stage(f"evaluate {slot.label}"):
                api.evaluate(handle, progress=progress)
                if slot.entry.finetune:
                    # three classifier seeds: the claim compares accuracies on their spread
                    api.finetune(handle, sizes=(1000,), seeds=(0, 1, 2), steps=300)
                state["evaluated"] = True
        opened.append(handle)
    with ledger.stage("report"):
        table = budget_table(record, slots, runs)
        html = compare(opened, root / "report", progress=progress, tables=(table,))
    record["status"] = "finished"
    record["total_seconds"] = sum(record["stages"].values())
    ledger.save()
    return html


def _pilot(config: Any) -> dict[str, float]:
    """Train a configuration for its few pilot steps and time it."""
    run = api.train(config, progress=False)
    info, data = run.info(), run.info().get("data", {})
    rate = float(info.get("train_images_per_s") or 0.0)
    return {
        "images_per_s": rate,
        "steps": int(info.get("steps", 0)),
        "epoch_seconds": epoch_seconds(rate, int(data.get("train", 0)), int(data.get("val", 0))),
    }


def _plan(ledger: Ledger, entries: list[ZooEntry], seeds: int, setting: Setting) -> list[Slot]:
    """The slots, from zoo.json when it holds a plan, else from a new pilot."""
    record = ledger.record
    by_name = {e.name: e for e in entries}
    if "plan" in record:
        slots = []
        for row in record["plan"]:
            if row["entry"] not in by_name:
                raise RunError(f"{ledger.path} plans a zoo entry this genlab lacks: {row['entry']}")
            slots.append(
                Slot(by_name[row["entry"]], row["seed"], row["epoch_seconds"], row["seconds"])
            )
        return slots
    pilot_root = setting.root / "pilot"
    shutil.rmtree(pilot_root, ignore_errors=True)
    cap = max(2.0, 0.005 * record["budget_seconds"])
    record["pilot"] = {}
    for entry in entries:
        if setting.progress:
            print(f"zoo: timing {entry.name} ({PILOT_STEPS} steps or {cap:.0f} s)")
        config = setting.config(
            entry, pilot_root, max_steps=PILOT_STEPS, max_seconds=cap, progress=False
        )
        with ledger.stage(f"pilot {entry.name}"):
            record["pilot"][entry.name] = _pilot(config)
    shutil.rmtree(pilot_root, ignore_errors=True)
    pilot_seconds = sum(v for k, v in record["stages"].items() if k.startswith("pilot "))
    training = max(0.0, record["budget_seconds"] * (1 - EVAL_SHARE) - pilot_seconds)
    slots = [
        Slot(e, seed, record["pilot"][e.name]["epoch_seconds"], seeds_of_entry=n)
        for e in entries
        for n in [seeds if e.cheap else 1]
        for seed in range(n)
    ]
    allocate(slots, training)
    record["training_seconds"] = training
    _save_plan(ledger, slots)
    return slots


def _save_plan(ledger: Ledger, slots: list[Slot]) -> None:
    budget = ledger.record["budget_seconds"]
    ledger.record["plan"] = [
        {
            "label": s.label,
            "entry": s.entry.name,
            "family": s.entry.family,
            "protocol": s.entry.protocol,
            "seed": s.seed,
            "epoch_seconds": s.epoch_seconds,
            "min_epochs": s.entry.min_epochs,
            "seconds": s.seconds,
            "share": s.seconds / budget,
            "planned_epochs": s.seconds / s.epoch_seconds if s.epoch_seconds > 0 else None,
        }
        for s in slots
    ]
    ledger.save()


def _unclaimed(root: Path, record: dict[str, Any]) -> list[Path]:
    """Run folders under root that no slot has recorded (a run whose start was cut off)."""
    claimed = {state.get("path") for state in record["runs"].values()}
    folders = sorted(p for p in root.glob("0*") if p.is_dir()) if root.is_dir() else []
    return [p for p in folders if str(p) not in claimed]


def _train(ledger: Ledger, slots: list[Slot], index: int, setting: Setting) -> RunDir:
    """Train slot ``index`` (or resume it, or find it trained); hand on its unused time."""
    slot, record = slots[index], ledger.record
    state = record["runs"].setdefault(slot.label, {"used_seconds": 0.0})
    if state.get("trained"):
        return RunDir(Path(state["path"]))
    runs_root = setting.root / "runs"
    if "path" not in state and state.get("pending") and (stray := _unclaimed(runs_root, record)):
        state["path"] = str(stray[-1])  # the run this slot had started when it was cut off
    run = RunDir(Path(state["path"])) if "path" in state else None
    status = run.info().get("status") if run is not None and run.info_path.exists() else None
    left = max(1.0, slot.seconds - state["used_seconds"])
    resumable = run is not None and status not in ENDED and latest_checkpoint(run.checkpoints)
    with ledger.stage(f"train {slot.label}"):
        if resumable:
            assert run is not None
            if setting.progress:
                print(f"zoo: resuming {slot.label} for up to {left:.0f} s")
            limit = "null" if slot.entry.fixed_epochs else left  # fixed epochs are not cut
            api.resume(run, [f"train.max_seconds={limit}"], progress=setting.progress)
        elif run is None or status not in ENDED:
            if setting.progress:
                print(f"zoo: training {slot.label} for up to {left:.0f} s")
            state["pending"] = True
            ledger.save()
            limit = None if slot.entry.fixed_epochs else left  # fixed epochs are not cut
            config = setting.config(slot.entry, runs_root, slot.seed, max_seconds=limit)
            run = api.train(config, progress=setting.progress)
            state["path"] = str(run.path)
    assert run is not None
    info = run.info()
    state["used_seconds"] += float(info.get("train_seconds", 0.0))
    state.update(status=info.get("status"), epochs=info.get("epochs_completed"))
    if state["status"] not in ENDED:
        ledger.save()
        raise ZooInterrupted(f"{slot.label} stopped ({state['status']})")
    state.update(trained=True, pending=False)
    run.update_info(planned_min_epochs=slot.entry.min_epochs)  # read by the report's verdicts
    hand_on(slot.seconds - state["used_seconds"], slots[index + 1 :])
    _save_plan(ledger, slots)
    return run
