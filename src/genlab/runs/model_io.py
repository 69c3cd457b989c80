"""A run's exported model: ``model.safetensors`` written once training ends, read by every
command that uses the trained model.

The weights are safetensors (nothing is unpickled); the header is checked against the model
that the run's config builds — names, shapes and dtypes — before any tensor is loaded, so a
damaged or foreign file is a one-line :class:`~genlab.errors.RunError`.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from genlab.config import RunConfig
from genlab.errors import RunError
from genlab.fileio import atomic_path
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


def export_model(run: RunDir, model: GenerativeModel, origin: str) -> None:
    """Write the model's weights (on the CPU) with its family and origin in the metadata."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(run.model_path) as tmp:
        save_file(state, str(tmp), metadata={"family": model.family, "origin": origin})
    run.update_info(exported_from=origin)


def require_model(run: RunDir) -> None:
    """Raise RunError unless the run has exported its model."""
    if not run.model_path.exists():
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
    require_model(run)
    config = config or run.read_config()
    model = build_model(config.model, run.data_info(), ema_decay=config.train.ema_decay)
    check_against(run.model_path, model)
    try:
        model.load_state_dict(load_file(str(run.model_path)))
    except (RuntimeError, OSError, SafetensorError) as exc:
        raise RunError(f"{run.model_path} cannot be loaded ({exc})") from None
    model.use_average()  # a model kept for evaluation computes with its averaged weights
    return model.eval()
