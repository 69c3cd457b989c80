"""Run folders: creating them, the exported model, and :func:`open_run`, the one way in.

Above training and evaluation, below reporting and the API: the runs layer turns a folder on
disk into a validated config, a model and data, and wires a Trainer's callbacks to a folder.
"""

from genlab.runs.callbacks import RunRecorder, check_loggers, run_callbacks
from genlab.runs.folder import RunDir
from genlab.runs.model_io import export_model, load_model, require_model
from genlab.runs.open import (
    DEVICE_OVERRIDE,
    EVAL_OVERRIDES,
    OpenRun,
    device_overrides,
    open_run,
)

__all__ = [
    "DEVICE_OVERRIDE",
    "EVAL_OVERRIDES",
    "OpenRun",
    "RunDir",
    "RunRecorder",
    "check_loggers",
    "device_overrides",
    "export_model",
    "load_model",
    "open_run",
    "require_model",
    "run_callbacks",
]
