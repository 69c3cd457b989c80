"""One folder per run: ``runs/<NNNNN>-<data>-<model>/``.

Layout::

    config.json        the resolved run config without runtime settings (what `--resume`
                       and `eval` read)
    run.json           family, data shape/levels, seeds, status, the exported weights' origin
    metrics.jsonl      append-only training log, one JSON object per line
    checkpoints/       training state (state-<step>.safetensors, pointer file `latest`)
    model.safetensors  exported model weights that eval/sample/reconstruct read
    samples/           images written by training and by `genlab sample` etc.
    eval.json          evaluation results (eval-val.json, eval-final.json, eval-val-final.json)
    probe.json/.md, finetune.json/.md, embed-*.npz, latent-*.png   representation results
    tensorboard/       event files, when train.loggers has tensorboard
    .lock              the training lock

Nothing else stays: temporaries of atomic writes (``.<name>.<pid>.tmp<suffix>``) that a killed
process left are removed by the next command that touches the run (:data:`LAYOUT` is the
list a test checks folders against).

Run numbers are claimed atomically in ``<runs dir>/.numbers/`` whatever the data and model
names, so two processes never get the same number. Every file is written through
:mod:`genlab.fileio`.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from genlab.config import RunConfig
from genlab.errors import RunError
from genlab.fileio import append_line, atomic_write_json, is_temporary, remove_orphans
from genlab.models import DataInfo, run_config_from_dict, run_config_to_dict

_RUN_NAME = re.compile(r"^(\d{5})-")
# results computed from a run's weights (they go when training changes the weights)
RESULT_FILES = (
    "eval.json",
    "eval-val.json",
    "eval-final.json",
    "eval-val-final.json",
    "probe.json",
    "probe.md",
    "finetune.json",
    "finetune.md",
)
RESULT_PATTERNS = ("embed-*.npz", "latent-*.png")
# every file a run folder may hold, as glob patterns relative to it (the documented layout)
LAYOUT = (
    "config.json",
    "run.json",
    "metrics.jsonl",
    "model.safetensors",
    *RESULT_FILES,
    *RESULT_PATTERNS,
    ".lock",
    "checkpoints/latest",
    "checkpoints/state-*.safetensors",
    "checkpoints/best-model.safetensors",
    "samples/*.png",
    "tensorboard/*",
)
NUMBERS = ".numbers"  # one empty folder per claimed run number


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    # -- creation and opening -----------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path, data_name: str, model_name: str) -> RunDir:
        """A new folder ``root/<NNNNN>-<data>-<model>`` with the next free number."""
        root = Path(root)
        claims = root / NUMBERS
        try:
            claims.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise RunError(
                f"the runs folder {str(root)!r} is not a folder; choose another --runs-dir"
            ) from None
        except OSError as exc:
            raise RunError(
                f"cannot create run folders under {str(root)!r} ({exc.strerror})"
            ) from None
        taken = [int(m.group(1)) for p in root.iterdir() if (m := _RUN_NAME.match(p.name))]
        taken += [int(p.name) for p in claims.iterdir() if p.name.isdigit()]
        number = max(taken, default=-1) + 1
        while True:
            try:
                (claims / f"{number:05d}").mkdir()  # atomic: one process wins each number
                break
            except FileExistsError:
                number += 1
        run = cls(root / f"{number:05d}-{_slug(data_name)}-{_slug(model_name)}")
        run.path.mkdir()
        run.checkpoints.mkdir()
        run.samples.mkdir()
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        run = cls(Path(path))
        if not run.path.is_dir():
            raise RunError(f"run folder {str(path)!r} does not exist; pass a folder under runs/")
        if not run.config_path.exists():
            run.remove_orphans()  # a training killed as it began leaves only those
            raise RunError(
                f"{run.path} is not a genlab run folder: it has no config.json (a training "
                "killed as it began leaves such a folder; it holds nothing to keep)"
            )
        return run

    def remove_orphans(self, *, unnamed_too: bool = False) -> list[Path]:
        """Remove the temporaries that killed processes left in the folder (see
        :func:`genlab.fileio.remove_orphans`; ``unnamed_too`` only for the holder of the
        training lock)."""
        return remove_orphans([self.path, self.checkpoints, self.samples], unnamed_too=unnamed_too)

    def undocumented(self) -> list[str]:
        """Files in the folder that are not part of :data:`LAYOUT` (relative paths)."""
        found = []
        for path in sorted(self.path.rglob("*")):
            if path.is_dir():
                continue
            relative = path.relative_to(self.path).as_posix()
            if is_temporary(path) or not any(fnmatchcase(relative, p) for p in LAYOUT):
                found.append(relative)
        return found

    # -- paths ----------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def info_path(self) -> Path:
        return self.path / "run.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def model_path(self) -> Path:
        return self.path / "model.safetensors"

    @property
    def eval_path(self) -> Path:
        return self.path / "eval.json"

    # -- JSON files -----------------------------------------------------------------------
    def write_json(self, path: Path, data: Any) -> None:
        atomic_write_json(path, data)

    def read_json(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"{path} is missing; the run folder is incomplete") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunError(f"{path} is not valid JSON ({exc})") from None
        except OSError as exc:
            raise RunError(f"{path} cannot be read ({exc.strerror})") from None

    def write_config(self, config: RunConfig) -> None:
        self.write_json(self.config_path, run_config_to_dict(config, runtime=False))

    def read_config(self) -> RunConfig:
        return run_config_from_dict(self.read_json(self.config_path))

    def info(self) -> dict[str, Any]:
        if not self.info_path.exists():
            return {}
        info = self.read_json(self.info_path)
        if not isinstance(info, dict):
            raise RunError(f"{self.info_path} must hold a JSON object; the run folder is damaged")
        return info

    def update_info(self, **fields: Any) -> None:
        info = self.info()
        info.update(fields)
        self.write_json(self.info_path, info)

    def append_metrics(self, record: dict[str, Any]) -> None:
        append_line(self.metrics_path, json.dumps(record))

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        try:
            text = self.metrics_path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise RunError(f"{self.metrics_path} is not UTF-8 text (byte {exc.start})") from None
        records = []
        for number, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                raise RunError(f"{self.metrics_path} line {number + 1} is not JSON") from None
            if not isinstance(record, dict) or not isinstance(record.get("step", 0), int):
                raise RunError(
                    f"{self.metrics_path} line {number + 1} is not a genlab metrics record"
                )
            records.append(record)
        return records

    def data_info(self) -> DataInfo:
        info = self.info().get("data_info")
        try:
            shape = tuple(int(v) for v in info["shape"])  # type: ignore[index]
            levels = int(info["levels"])  # type: ignore[index]
        except (TypeError, KeyError, ValueError):
            raise RunError(
                f"{self.info_path} lacks a valid data_info; the run folder is incomplete"
            ) from None
        if len(shape) != 3 or min(shape) < 1 or levels < 2:
            raise RunError(
                f"{self.info_path}: data_info {info} is not an image shape and level count"
            )
        classes, counts = info.get("classes", []), info.get("class_counts", [])  # type: ignore[union-attr]
        if not (
            isinstance(classes, list)
            and all(isinstance(c, str) for c in classes)
            and isinstance(counts, list)
            and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)
            and len(counts) in (0, len(classes))
        ):
            raise RunError(
                f"{self.info_path}: data_info classes/class_counts are not a list of class "
                "names and one count per class"
            )
        return DataInfo((shape[0], shape[1], shape[2]), levels, tuple(classes), tuple(counts))


def data_info_of(data: Any) -> DataInfo:
    """What a model needs to know about loaded data (a DataSplits)."""
    return DataInfo(data.shape, data.levels, data.classes, data.class_counts)


def data_info_record(info: DataInfo) -> dict[str, Any]:
    """``info`` as run.json keeps it (``classes`` and ``class_counts`` only with labels; a run
    written before classes were recorded reads as unlabelled, which it was to its model)."""
    record: dict[str, Any] = {"shape": list(info.shape), "levels": info.levels}
    if info.classes:
        record.update(classes=list(info.classes), class_counts=list(info.class_counts))
    return record
