"""One folder per run: ``runs/<NNNNN>-<data>-<model>/``.

Layout::

    config.json        the resolved run config (what `--resume` and `eval` read)
    run.json           family, data shape/levels, seeds, status, the exported weights' origin
    metrics.jsonl      append-only training log, one JSON object per line
    checkpoints/       training state (state-<step>.safetensors, pointer file `latest`)
    model.safetensors  exported model weights that eval/sample/reconstruct read
    samples/           images written by training and by `genlab sample` etc.
    eval.json          evaluation results
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from genlab.config import RunConfig, run_config_from_dict, run_config_to_dict
from genlab.errors import RunError
from genlab.models import DataInfo, GenerativeModel, build_model
from genlab.training.checkpoint import atomic_write_bytes

_RUN_NAME = re.compile(r"^(\d{5})-")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    # -- creation and opening -----------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path, data_name: str, model_name: str) -> RunDir:
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        while True:
            numbers = [int(m.group(1)) for p in root.iterdir() if (m := _RUN_NAME.match(p.name))]
            path = (
                root / f"{max(numbers, default=-1) + 1:05d}-{_slug(data_name)}-{_slug(model_name)}"
            )
            try:
                path.mkdir()
            except FileExistsError:
                continue  # another process took this number
            run = cls(path)
            run.checkpoints.mkdir()
            run.samples.mkdir()
            return run

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        run = cls(Path(path))
        if not run.path.is_dir():
            raise RunError(f"run folder {str(path)!r} does not exist; pass a folder under runs/")
        if not run.config_path.exists():
            raise RunError(f"{run.path} is not a genlab run folder: it has no config.json")
        return run

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
        atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=False) + "\n").encode())

    def read_json(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise RunError(f"{path} is missing; the run folder is incomplete") from None
        except json.JSONDecodeError as exc:
            raise RunError(f"{path} is not valid JSON ({exc})") from None

    def write_config(self, config: RunConfig) -> None:
        self.write_json(self.config_path, run_config_to_dict(config))

    def read_config(self) -> RunConfig:
        return run_config_from_dict(self.read_json(self.config_path))

    def info(self) -> dict[str, Any]:
        return self.read_json(self.info_path) if self.info_path.exists() else {}

    def update_info(self, **fields: Any) -> None:
        info = self.info()
        info.update(fields)
        self.write_json(self.info_path, info)

    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        return [json.loads(line) for line in self.metrics_path.read_text().splitlines() if line]

    # -- the exported model ---------------------------------------------------------------
    def data_info(self) -> DataInfo:
        info = self.info().get("data_info")
        if not info:
            raise RunError(f"{self.info_path} lacks data_info; the run folder is incomplete")
        return DataInfo(tuple(info["shape"]), int(info["levels"]))  # type: ignore[arg-type]

    def export_model(self, model: GenerativeModel, origin: str) -> None:
        tmp = self.model_path.with_name(self.model_path.name + ".tmp")
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp), metadata={"family": model.family, "origin": origin})
        tmp.replace(self.model_path)
        self.update_info(exported_from=origin)

    def require_model(self) -> None:
        """Raise RunError unless the run has exported its model."""
        if not self.model_path.exists():
            raise RunError(
                f"{self.model_path} is missing: the run has not finished training; "
                f"resume it with `genlab train --resume {self.path}`"
            )

    def load_model(self) -> GenerativeModel:
        """The exported model, in eval mode, on the CPU."""
        self.require_model()
        config = self.read_config()
        model = build_model(config.model, self.data_info())
        try:
            model.load_state_dict(load_file(str(self.model_path)))
        except (RuntimeError, OSError) as exc:
            raise RunError(f"{self.model_path} does not match the run's config ({exc})") from None
        return model.eval()
