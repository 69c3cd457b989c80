"""An epoch's running sums of logged terms: what the Trainer averages into the epoch record,
kept in checkpoints so that an epoch interrupted and resumed logs the means over all its steps."""

from __future__ import annotations

from typing import Any

import torch


class EpochSums:
    """Running sums of an epoch's logged terms (on the training device) and its steps, which
    checkpoints hold, and the images and seconds of this process's part of the epoch (an
    interrupted epoch's speed is that of its resumed part)."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.total: torch.Tensor | None = None
        self.batches = self.images = 0
        self.seconds = 0.0

    def add(self, terms: dict[str, torch.Tensor], images: int) -> None:
        stacked = torch.stack(list(terms.values()))
        if self.total is None:
            self.keys, self.total = list(terms), stacked
        else:
            self.total += stacked
        self.batches += 1
        self.images += images

    def means(self) -> dict[str, float]:
        """``train/<term>`` means, ``images_per_s`` and ``seconds`` of the epoch so far."""
        values = (self.total / max(self.batches, 1)).tolist() if self.total is not None else []
        record = {f"train/{k}": v for k, v in zip(self.keys, values, strict=True)}
        record["images_per_s"] = self.images / self.seconds if self.seconds else 0.0
        record["seconds"] = self.seconds
        return record

    def state_dict(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "total": self.total, "batches": self.batches}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.keys = [str(k) for k in state["keys"]]
        total = state["total"]
        self.total = total.to(device) if isinstance(total, torch.Tensor) else None
        self.batches = int(state["batches"])
