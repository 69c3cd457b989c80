"""Training-state checkpoints: nested state (tensors + plain values) in ONE safetensors file.

Tensors are stored as safetensors tensors, everything else (dict keys of any JSON type,
numbers, strings, lists) as JSON in the file's metadata, so nothing is ever unpickled.
Files are written through :mod:`genlab.fileio` (temporary file, fsync, ``os.replace``); a
pointer file ``latest`` names the newest complete checkpoint.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from genlab.errors import RunError
from genlab.fileio import atomic_path, atomic_write_text

POINTER = "latest"
_META_KEY = "genlab_state"


def _encode(node: Any, tensors: dict[str, torch.Tensor], path: str) -> Any:
    if isinstance(node, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = node.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(node, dict):
        return {
            "__dict__": [
                [_encode_key(k), _encode(v, tensors, f"{path}.{k}")] for k, v in node.items()
            ]
        }
    if isinstance(node, tuple):
        return {"__tuple__": [_encode(v, tensors, path) for v in node]}
    if isinstance(node, list):
        return [_encode(v, tensors, path) for v in node]
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    raise TypeError(f"cannot checkpoint {type(node).__name__} at {path}")


def _encode_key(key: Any) -> Any:
    if isinstance(key, (str, int)) and not isinstance(key, bool):
        return key
    raise TypeError(f"cannot checkpoint dict key {key!r}")


def _decode(node: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(node, dict):
        if "__tensor__" in node:
            return tensors[node["__tensor__"]]
        if "__tuple__" in node:
            return tuple(_decode(v, tensors) for v in node["__tuple__"])
        return {k: _decode(v, tensors) for k, v in node["__dict__"]}
    if isinstance(node, list):
        return [_decode(v, tensors) for v in node]
    return node


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (temporary file + ``os.replace``)."""
    tensors: dict[str, torch.Tensor] = {}
    structure = _encode(state, tensors, "state")
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={_META_KEY: json.dumps(structure)})


def load_state(path: Path) -> dict[str, Any]:
    try:
        with safe_open(str(path), framework="pt") as fh:
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
            structure = json.loads((fh.metadata() or {})[_META_KEY])
    except (OSError, SafetensorError, KeyError, json.JSONDecodeError, RecursionError) as exc:
        raise RunError(f"{path}: not a readable genlab checkpoint ({_one_line(exc)})") from None
    try:
        state = _decode(structure, tensors)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError):
        raise RunError(f"{path}: not a genlab checkpoint (its structure is damaged)") from None
    if not isinstance(state, dict):
        raise RunError(f"{path}: not a genlab checkpoint (its structure is damaged)")
    return state


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def check_state_matches(state: dict[str, Any], model: nn.Module, path: Path) -> None:
    """A one-line error unless the checkpoint holds training state whose model tensors have
    the names and shapes of ``model``'s (the run's config): checked before loading."""
    try:
        saved = state["model"]
        expected = model.state_dict()
        for key in ("optimizers", "schedulers", "progress", "rng"):
            state[key]  # noqa: B018  (presence)
    except (KeyError, TypeError):
        raise RunError(f"{path}: not a genlab training checkpoint (parts are missing)") from None
    missing = sorted(set(expected) - set(saved))
    extra = sorted(set(saved) - set(expected))
    if missing or extra:
        raise RunError(
            f"{path} does not fit this run's model: missing {missing[:3]}, unexpected "
            f"{extra[:3]}; the checkpoint belongs to another config"
        )
    for key, tensor in expected.items():
        found = saved[key]
        if not isinstance(found, torch.Tensor) or found.shape != tensor.shape:
            shape = list(found.shape) if isinstance(found, torch.Tensor) else type(found).__name__
            raise RunError(
                f"{path}: {key} has shape {shape} but the run's config makes it "
                f"{list(tensor.shape)}; the checkpoint belongs to another config"
            )


def write_checkpoint(folder: Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Save a checkpoint for ``step``, point ``latest`` at it, keep the newest ``keep`` files."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"state-{step:09d}.safetensors"
    save_state(path, state)
    atomic_write_text(folder / POINTER, path.name + "\n")
    for old in sorted(folder.glob("state-*.safetensors"))[:-keep]:
        old.unlink(missing_ok=True)
    return path


def latest_checkpoint(folder: Path) -> Path | None:
    pointer = folder / POINTER
    if not pointer.exists():
        return None
    name = pointer.read_bytes().decode("utf-8", errors="replace").strip()
    if not re.fullmatch(r"state-\d{9}\.safetensors", name):
        raise RunError(f"{pointer} does not name a checkpoint file; the run folder is damaged")
    path = folder / name
    if not path.exists():
        raise RunError(f"{pointer} names {path.name}, which is missing; the run folder is damaged")
    return path


def checkpoint_step(path: Path) -> int:
    return int(path.stem.split("-")[1])


def finite_state(state: Any) -> bool:
    """Every floating-point tensor in a (nested) training state is finite."""
    if isinstance(state, torch.Tensor):
        return not state.is_floating_point() or bool(torch.isfinite(state).all())
    if isinstance(state, dict):
        return all(finite_state(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return all(finite_state(v) for v in state)
    return True


def rewind(folder: Path, last_good_step: int) -> Path | None:
    """After a divergence: make ``latest`` name the newest checkpoint of a step up to
    ``last_good_step`` whose weights and optimiser state are finite, and delete the newer
    ones (they hold the diverging weights). Returns it, or None (no good one is kept; then
    ``latest`` is removed too)."""
    for path in sorted(folder.glob("state-*.safetensors"), reverse=True):
        if checkpoint_step(path) <= last_good_step:
            try:
                good = finite_state(load_state(path))
            except RunError:
                good = False
            if good:
                atomic_write_text(folder / POINTER, path.name + "\n")
                return path
        path.unlink(missing_ok=True)
    (folder / POINTER).unlink(missing_ok=True)
    return None
