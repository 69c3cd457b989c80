"""The runs folder as the pages see it: the list of runs with their status and headline
number, one run's record, and its training log from a given line on.

Everything is read, nothing written; what a run's files say is cached by their size and
modification time, so polling every two seconds re-reads only the runs that changed. A folder
that is broken, half-written or deleted while listed gives its entry an ``error`` and the
others are unaffected.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from genlab.errors import GenlabError
from genlab.serve.problems import one_line
from genlab.serve.safety import RUN_NAME

WATCHED = (
    "config.json",
    "run.json",
    "metrics.jsonl",
    "model.safetensors",
    "eval.json",
    "samples",
    ".lock",
)
TAIL_BYTES = 64 * 1024  # of metrics.jsonl read to find the latest epoch and step
MAX_RECORDS = 5000  # metrics records in one answer
MAX_JSON_BYTES = 16 * 1024 * 1024  # a config.json, run.json or eval.json read whole
MAX_HEADER = 100 * 1024 * 1024


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def files_signature(path: Path) -> tuple[Any, ...]:
    return tuple(_stat(path / name) for name in WATCHED)


def weights_signature(path: Path) -> tuple[Any, ...]:
    """What identifies the model a run has now: its config and exported weights files (a
    resume that exports again, or a config rewritten, is another signature)."""
    return (_stat(path / "config.json"), _stat(path / "model.safetensors"))


def read_json(path: Path) -> Any:
    """A JSON file's content, or a GenlabError in one line (missing, too big, not JSON)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        raise GenlabError(f"{path.name} is missing") from None
    except OSError as exc:
        raise GenlabError(f"{path.name} cannot be read ({exc.strerror})") from None
    if len(data) > MAX_JSON_BYTES:
        raise GenlabError(f"{path.name} is larger than {MAX_JSON_BYTES // 2**20} MiB")
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise GenlabError(f"{path.name} is not valid JSON") from None


def trainer_alive(path: Path) -> bool:
    """Whether the process named in the run's lock file is alive (the run is training)."""
    try:
        text = (path / ".lock").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return False
    if not text.isdigit():
        return False
    try:
        os.kill(int(text), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def status_of(raw: Any, path: Path) -> tuple[str, bool]:
    """(status shown: training | finished | failed | interrupted | unknown, whether a
    trainer's liveness decided it)."""
    if not isinstance(raw, str):
        return "unknown", False
    if raw == "training":
        return ("training" if trainer_alive(path) else "interrupted"), True
    if raw == "finished":
        return "finished", False
    if raw.startswith("interrupted"):
        return "interrupted", False
    if raw in ("diverged", "failed"):
        return "failed", False
    return "unknown", False


def model_problem(path: Path) -> str | None:
    """Why model.safetensors cannot be a model file (a header that is not JSON, tensors that
    run past the end of the file, a file longer than its tensors), or None."""
    model = path / "model.safetensors"
    try:
        with open(model, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return "model.safetensors is damaged (shorter than a safetensors header)"
            (size,) = struct.unpack("<Q", head)
            if size > MAX_HEADER:
                return "model.safetensors is damaged (its header claims an impossible size)"
            header = json.loads(fh.read(size))
            total = os.fstat(fh.fileno()).st_size
    except FileNotFoundError:
        return None
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return "model.safetensors is damaged (its header is not valid)"
    if not isinstance(header, dict):
        return "model.safetensors is damaged (its header is not valid)"
    try:
        end = max(
            (int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"),
            default=0,
        )
    except (KeyError, TypeError, ValueError, IndexError):
        return "model.safetensors is damaged (its header is not valid)"
    if 8 + size + end != total:
        return (
            f"model.safetensors is damaged ({total} bytes, but its header describes "
            f"{8 + size + end})"
        )
    return None


def tail_state(path: Path) -> tuple[int | None, int | None]:
    """(latest epoch, latest step) in metrics.jsonl, read from its last TAIL_BYTES."""
    try:
        with open(path / "metrics.jsonl", "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - TAIL_BYTES))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return None, None
    lines = text.split("\n")
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first may be cut
    epoch = step = None
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(record, dict):
            continue
        if step is None and isinstance(record.get("step"), int):
            step = record["step"]
        if epoch is None and record.get("kind") == "epoch" and isinstance(record.get("epoch"), int):
            epoch = record["epoch"]
        if epoch is not None and step is not None:
            break
    return epoch, step


def headline(results: Any) -> dict[str, Any] | None:
    """The one number of a run's eval.json: bits/dim of its likelihood, else the FD of its
    samples or chains, else its reconstruction error."""
    metrics = results.get("metrics") if isinstance(results, dict) else None
    if not isinstance(metrics, dict):
        return None

    def first(prefix: str) -> tuple[str, dict[str, Any]] | None:
        for name, entry in metrics.items():
            if isinstance(name, str) and name.startswith(prefix) and isinstance(entry, dict):
                return name, entry
        return None

    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    for prefix in ("nll_", "elbo"):
        found = first(prefix)
        if found is not None and number(found[1].get("bits_per_dim")):
            return {"name": found[0], "value": found[1]["bits_per_dim"], "unit": "bits/dim"}
    found = first("fd_")
    if found is not None and number(found[1].get("value")):
        return {"name": found[0], "value": found[1]["value"], "unit": "FD"}
    found = first("chain_fd")
    if found is not None and isinstance(found[1].get("fd"), list) and found[1]["fd"]:
        value = found[1]["fd"][-1]
        if number(value):
            return {"name": found[0], "value": value, "unit": "FD"}
    found = first("recon_mse")
    if found is not None and number(found[1].get("value")):
        return {"name": found[0], "value": found[1]["value"], "unit": "MSE"}
    return None


def latest_grid(name: str, path: Path) -> str | None:
    """The URL of the newest sample grid training wrote (else of any picture in samples/)."""
    try:
        pictures = [
            p
            for p in (path / "samples").iterdir()
            if p.suffix == ".png" and not p.name.startswith(".") and p.is_file()
        ]
    except OSError:
        return None
    trained = sorted(p for p in pictures if p.name.startswith("train-"))
    if trained:
        chosen = trained[-1]
    elif pictures:
        chosen = max(pictures, key=lambda p: _stat(p) or (0, 0, 0))
    else:
        return None
    return f"/api/runs/{quote(name)}/files/samples/{quote(chosen.name)}"


def entry(name: str, path: Path) -> dict[str, Any]:
    """One run's line in the list."""
    found: dict[str, Any] = {
        "name": name,
        "family": None,
        "data": None,
        "status": "unknown",
        "status_detail": None,
        "epochs": None,
        "step": None,
        "conditional": False,
        "headline": None,
        "evaluated": False,
        "latest_grid": latest_grid(name, path),
        "updated": max((s[2] / 1e9 for s in files_signature(path) if s), default=0.0),
        "error": None,
    }
    errors: list[str] = []
    try:
        config = read_json(path / "config.json")
        model, data = config.get("model", {}), config.get("data", {})
        found["family"] = model.get("name") if isinstance(model, dict) else None
        found["data"] = data.get("name") if isinstance(data, dict) else None
        found["conditional"] = bool(isinstance(model, dict) and model.get("conditional"))
    except GenlabError as exc:
        errors.append(
            "not a genlab run folder: it has no config.json (a training killed as it began "
            "leaves such a folder)"
            if not (path / "config.json").exists()
            else str(exc)
        )
    except AttributeError:
        errors.append("config.json is not a genlab config")
    info: Any = {}
    if (path / "run.json").exists():
        try:
            info = read_json(path / "run.json")
        except GenlabError as exc:
            errors.append(str(exc))
    info = info if isinstance(info, dict) else {}
    found["status"], _ = status_of(info.get("status"), path)
    found["status_detail"] = info.get("status") if isinstance(info.get("status"), str) else None
    found["family"] = found["family"] or info.get("family")
    epoch, step = tail_state(path)
    epochs = info.get("epochs_completed")
    found["epochs"] = epochs if isinstance(epochs, int) and found["status"] != "training" else epoch
    steps = info.get("steps")
    found["step"] = steps if isinstance(steps, int) and found["status"] != "training" else step
    if (path / "eval.json").exists():
        try:
            found["headline"] = headline(read_json(path / "eval.json"))
            found["evaluated"] = True
        except GenlabError as exc:
            errors.append(str(exc))
    problem = model_problem(path)
    if problem is not None:
        errors.append(problem)
    elif found["status"] in ("finished", "failed") and not (path / "model.safetensors").exists():
        errors.append("model.safetensors is missing: the run has no exported model")
    found["error"] = one_line("; ".join(errors)) if errors else None
    return found


class RunsIndex:
    """The runs under ``root``, re-read only where their files changed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        self.load_errors: dict[str, tuple[tuple[Any, ...], str]] = {}

    def names(self) -> list[str]:
        """Folders directly under the root that may be runs: named as runs are, not hidden."""
        try:
            children = list(os.scandir(self.root))
        except OSError:
            return []
        found = []
        for child in children:
            try:
                if (
                    child.is_dir(follow_symlinks=False)
                    and not child.name.startswith(".")
                    and RUN_NAME.fullmatch(child.name)
                ):
                    found.append(child.name)
            except OSError:
                continue
        return sorted(found)

    def note_load_error(self, name: str, signature: tuple[Any, ...], message: str) -> None:
        """A model that failed to load: its entry shows why until its files change."""
        with self._lock:
            self.load_errors[name] = (signature, one_line(message))

    def listing(self) -> dict[str, Any]:
        runs, parts = [], []
        names = self.names()
        with self._lock:
            for gone in set(self._entries) - set(names):
                del self._entries[gone]
        for name in names:
            path = self.root / name
            signature = files_signature(path)
            with self._lock:
                held = self._entries.get(name)
            if held is not None and held[0] == signature:
                found = dict(held[1])
            else:
                found = entry(name, path)
                with self._lock:
                    self._entries[name] = (signature, dict(found))
            if found["status_detail"] == "training":  # a trainer may have died since
                found["status"], _ = status_of("training", path)
            with self._lock:
                load = self.load_errors.get(name)
            if load is not None and load[0] == weights_signature(path):
                found["error"] = one_line("; ".join(e for e in (found["error"], load[1]) if e))
            runs.append(found)
            parts.append(repr((name, signature, found["status"], found["error"])))
        version = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
        return {"runs": runs, "version": version}


def metrics_since(path: Path, after: int) -> dict[str, Any]:
    """metrics.jsonl records from line ``after`` (0-based) on, at most MAX_RECORDS, and the
    line to ask from next; a torn last line (being written) waits for the next poll."""
    records: list[Any] = []
    line = 0
    try:
        with open(path / "metrics.jsonl", "rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break
                if line < after:
                    line += 1
                    continue
                if len(records) >= MAX_RECORDS:
                    break
                line += 1
                try:
                    record = json.loads(raw)
                except (ValueError, RecursionError):
                    continue
                if isinstance(record, dict):
                    records.append(record)
    except FileNotFoundError:
        return {"records": [], "next": 0}
    except OSError as exc:
        raise GenlabError(f"metrics.jsonl cannot be read ({exc.strerror})") from None
    # next < after: the log was cut (a resume drops what followed its checkpoint)
    return {"records": records, "next": line}


def run_record(name: str, path: Path) -> dict[str, Any]:
    """A run's page: its entry's fields, config.json, run.json and eval.json's metrics as
    they are (capabilities and limits are added by the caller). A config.json or run.json
    that cannot be read is a GenlabError (the run has nothing to show)."""
    config = read_json(path / "config.json")
    info = read_json(path / "run.json") if (path / "run.json").exists() else {}
    if not isinstance(config, dict) or not isinstance(info, dict):
        raise GenlabError("config.json and run.json must hold JSON objects")
    listed = entry(name, path)
    results = None
    if (path / "eval.json").exists():
        try:
            found = read_json(path / "eval.json")
            results = found.get("metrics") if isinstance(found, dict) else None
        except GenlabError:
            results = None  # the entry's error says why
    return {
        **listed,
        "config": config,
        "run": info,
        "eval": results if isinstance(results, dict) else None,
    }
