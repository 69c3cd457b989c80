"""Which classes a user asks a conditional model for: ``--class sneaker`` (a name or an index)
and ``--per-class K`` (K images of every class, one row each), checked against the run."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genlab.errors import ConfigError


def class_index(classes: tuple[str, ...], asked: str | int, what: str = "--class") -> int:
    """The index of the class ``asked`` (its name, any case, or its index) among ``classes``;
    a ConfigError naming the classes (and ``what`` was asked) otherwise."""
    text = str(asked).strip()
    lowered = [name.lower() for name in classes]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    if text.isdecimal() and len(text) < 10 and int(text) < len(classes):
        return int(text)
    shown = ", ".join(f"{i} {name}" for i, name in enumerate(classes))
    raise ConfigError(
        f"{what} {text[:40]!r}: no such class; the run's classes are {shown} (give a name or "
        "an index)"
    )


@dataclass(frozen=True)
class ClassRequest:
    """The labels of n images to draw (None: the model's own p(y), or an unconditional run)
    and, for a per-class grid, the row names."""

    labels: torch.Tensor | None
    rows: tuple[str, ...] = ()
    tag: str = ""  # what the file name says about the classes ("-class7-sneaker", "-per-class8")


def class_request(
    model: object, n: int, label: str | int | None, per_class: int | None
) -> tuple[int, ClassRequest]:
    """(number of images, their labels) for ``--class`` / ``--per-class`` on ``model``."""
    if label is None and per_class is None:
        return n, ClassRequest(None)
    asked = "--class" if label is not None else "--per-class"
    if label is not None and per_class is not None:
        raise ConfigError("--class and --per-class do not go together: choose one")
    classes: tuple[str, ...] = getattr(model, "classes", ())
    if not classes:
        family = getattr(model, "family", "this")
        raise ConfigError(
            f"{asked} needs a conditional run (trained with model.conditional=true); this "
            f"{family} run is unconditional"
        )
    if per_class is not None:
        if per_class < 1:
            raise ConfigError(f"--per-class must be a positive integer, got {per_class}")
        labels = torch.arange(len(classes)).repeat_interleave(per_class)
        return len(labels), ClassRequest(labels, classes, f"-per-class{per_class}")
    index = class_index(classes, label)  # type: ignore[arg-type]
    slug = "".join(c if c.isalnum() else "-" for c in classes[index].lower()).strip("-")
    return n, ClassRequest(torch.full((n,), index), (), f"-class{index}-{slug}")


__all__ = ["ClassRequest", "class_index", "class_request"]
