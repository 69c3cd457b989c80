"""A run's exported model: ``model.safetensors`` written once training ends, read by every
command that uses the trained model.

The weights are safetensors (nothing is unpickled); the header is checked against the model
that the run's config builds — names, shapes and dtypes — before any tensor is loaded, so a
damaged or foreign file is a one-line :class:`~genlab.errors.RunError`, and so are weights that
hold NaN or infinities (a diverged model cannot sample or be evaluated).

Every result computed from the weights records which weights they were (:class:`Weights`: the
training step and a SHA-256 of the file), so a reader can tell a result that an export made
since has left stale (:func:`stale_note`).
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from genlab.config import RunConfig
from genlab.errors import RunError
from genlab.fileio import atomic_write_bytes
from genlab.models import GenerativeModel, build_model
from genlab.runs.folder import RunDir

_DTYPES = {
    "F32": torch.float32,
    "F64": torch.float64,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
MAX_HEADER = 100 * 1024 * 1024


@dataclass(frozen=True)
class Weights:
    """Which weights a result was computed from: the training step they are of and the
    SHA-256 of the file they were read from (its first 16 hex digits)."""

    step: int | None
    sha256: str
    file: str = "model.safetensors"

    def record(self) -> dict[str, Any]:
        return {"file": self.file, "step": self.step, "sha256": self.sha256}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def export_model(run: RunDir, model: GenerativeModel, origin: str, step: int) -> None:
    """Write the model's weights (on the CPU) with its family, origin and training step in
    the metadata; run.json records where they come from and their digest."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {"family": model.family, "origin": origin, "step": str(step)}
    data = save(state, metadata=metadata)  # the bytes, hashed as they are written
    atomic_write_bytes(run.model_path, data)
    weights = Weights(step, digest(data))
    run.update_info(exported_from=origin, exported=weights.record())


def current_weights(run: RunDir) -> Weights | None:
    """The identity of the run's exported weights as the file is now (None: no export)."""
    try:
        data = run.model_path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RunError(f"{run.model_path} cannot be read ({exc.strerror})") from None
    return Weights(_step_of(data), digest(data))


def _step_of(data: bytes) -> int | None:
    try:
        (size,) = struct.unpack("<Q", data[:8])
        meta = json.loads(data[8 : 8 + min(size, MAX_HEADER)]).get("__metadata__") or {}
        return int(meta["step"])
    except (struct.error, ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        return None


def stale_note(result: Any, run: RunDir, what: str) -> str | None:
    """Why ``result`` (a JSON object with a ``weights`` record) no longer describes the
    run's exported weights, or None when it does (or cannot tell: results written before
    weights were recorded)."""
    recorded = result.get("weights_used") if isinstance(result, dict) else None
    if not isinstance(recorded, dict) or not isinstance(recorded.get("sha256"), str):
        return None
    now = current_weights(run)
    if now is None or now.sha256 == recorded["sha256"]:
        return None
    return (
        f"{what} of {run.path.name} was computed from older weights (step "
        f"{recorded.get('step')}, now step {now.step}): it is stale"
    )


def require_model(run: RunDir) -> None:
    """Raise RunError unless the run has exported its model."""
    if run.model_path.exists():
        return
    status = run.info().get("status") if run.info_path.exists() else None
    if status == "training":
        raise RunError(
            f"{run.path} has no exported model yet: it is still training (or its training "
            "process was killed); wait for it to finish, or if no genlab process trains it, "
            f"continue it with `genlab train --resume {run.path}`"
        )
    raise RunError(
        f"{run.model_path} is missing: the run has not finished training; "
        f"resume it with `genlab train --resume {run.path}`"
    )


def read_header(path: Path) -> dict[str, dict[str, object]]:
    """The tensor entries of a safetensors header, validated as JSON of the right form."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError("the file is shorter than a safetensors header")
            (size,) = struct.unpack("<Q", head)
            if size > MAX_HEADER:
                raise ValueError(f"its header claims {size} bytes")
            header = json.loads(fh.read(size))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise RunError(f"{path} is not a readable safetensors file ({exc})") from None
    if not isinstance(header, dict):
        raise RunError(f"{path} is not a readable safetensors file (bad header)")
    return {k: v for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}


def check_against(path: Path, model: torch.nn.Module) -> None:
    """The file holds exactly the model's tensors, with their shapes and dtypes."""
    header = read_header(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(header))
    extra = sorted(set(header) - set(expected))
    if missing or extra:
        detail = (f"missing {', '.join(missing[:3])}" if missing else "") + (
            f"{'; ' if missing else ''}unexpected {', '.join(extra[:3])}" if extra else ""
        )
        raise RunError(f"{path} does not match the run's config ({detail})")
    for name, tensor in expected.items():
        entry = header[name]
        shape, dtype = entry.get("shape"), _DTYPES.get(str(entry.get("dtype")))
        if shape != list(tensor.shape) or dtype != tensor.dtype:
            raise RunError(
                f"{path}: tensor {name} is {entry.get('dtype')} {shape}, but the run's config "
                f"makes it {tensor.dtype} {list(tensor.shape)}"
            )


def load_model(run: RunDir, config: RunConfig | None = None) -> GenerativeModel:
    """The exported model, in eval mode, on the CPU (move it where you need it); a run that
    kept an average of its weights (``train.ema_decay``) computes with the average."""
    return load_exported(run, config)[0]


def load_exported(run: RunDir, config: RunConfig | None = None) -> tuple[GenerativeModel, Weights]:
    """:func:`load_model`, and which weights were read (from the very bytes loaded)."""
    require_model(run)
    config = config or run.read_config()
    model = build_model(config.model, run.data_info(), ema_decay=config.train.ema_decay)
    check_against(run.model_path, model)
    try:
        data = run.model_path.read_bytes()
        state = load(data)
    except (OSError, SafetensorError) as exc:
        raise RunError(f"{run.model_path} cannot be loaded ({exc})") from None
    require_finite(state, run.model_path)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise RunError(f"{run.model_path} cannot be loaded ({exc})") from None
    model.use_average()  # a model kept for evaluation computes with its averaged weights
    return model.eval(), Weights(_step_of(data), digest(data))


def require_finite(state: dict[str, torch.Tensor], path: Path) -> None:
    """A one-line error when a floating-point tensor holds NaN or an infinity."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise RunError(
                f"{path}: {name} holds NaN or infinite values, so the model is broken (a "
                "diverged run, or a damaged file); continue training from a good checkpoint "
                "with `genlab train --resume RUN --set train.lr=<lower>`"
            )
