"""The zoo's own table on the report page: how its budget was spent, run by run."""

from __future__ import annotations

from typing import Any

from genlab.reporting.report import Table
from genlab.runs import RunDir
from genlab.zoo.budget import Slot, planned_epochs


def budget_table(record: dict[str, Any], slots: list[Slot], runs: list[RunDir]) -> Table:
    """Each run's protocol, the pilot's speed, its planned time and share of the budget, its
    minimum and planned epochs, and the epochs and seconds it reached."""
    budget = record["budget_seconds"]
    rows = []
    for slot, run in zip(slots, runs, strict=True):
        state, pilot = record["runs"][slot.label], record["pilot"][slot.entry.name]
        rows.append(
            (
                slot.label,
                run.path.name,
                slot.entry.protocol,
                f"{pilot['images_per_s']:,.0f}",
                f"{slot.seconds:.0f}",
                f"{slot.seconds / budget:.1%}",
                str(slot.entry.min_epochs),
                f"{planned_epochs(slot):.1f}",
                str(state.get("epochs", "?")),
                f"{state.get('used_seconds', 0.0):.0f}",
            )
        )
    pilot_seconds = sum(v for k, v in record["stages"].items() if k.startswith("pilot "))
    note = (
        f"Budget {budget:.0f} s on {record['device']} ({record['threads']} threads): "
        f"{record['eval_share']:.0%} kept for evaluation and the report; a pilot of "
        f"{pilot_seconds:.0f} s timed every entry; {record['training_seconds']:.0f} s of "
        "training shared as planned here: runs with a fixed epoch count first (never cut by "
        "the time limit), then each other run's minimum epochs (at the pilot's speed, max-min "
        "fairly when they do not all fit) and the rest by weight; time a run left unused went "
        "to the runs after it. Every run but the GAN is evaluated at its best validation "
        "epoch (train.keep_best). Each claim is decided on the runs of one protocol: the "
        "likelihood claim on each of the three, the sample-quality claims on grey levels."
    )
    header = (
        "entry",
        "run",
        "data",
        "pilot images/s",
        "planned s",
        "share of budget",
        "minimum epochs",
        "planned epochs",
        "epochs reached",
        "trained s",
    )
    return Table("How the budget was spent", note, header, tuple(rows))
