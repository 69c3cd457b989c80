"""Checks a family makes of its data when it is built, each a one-line error naming the
setting that would work."""

from __future__ import annotations

from genlab.errors import ConfigError
from genlab.models.base import DataInfo


def require_binary(family: str, data_info: DataInfo) -> None:
    """Refuse grey-level data, in one line that names the setting to change."""
    if data_info.levels != 2:
        raise ConfigError(
            f"the {family} family models binary pixels; set data.binarize to dynamic, static "
            f"or threshold (the data have {data_info.levels} levels)"
        )
