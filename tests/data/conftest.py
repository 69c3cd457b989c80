"""Fixtures for the data-layer tests: an isolated search path and a local HTTP server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from data_helpers import LocalServer

from genlab.data import locate


@pytest.fixture(autouse=True)
def isolated_search_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """No test sees the real cache, $GENLAB_DATA or /usr/share/datasets (nor a proxy)."""
    roots = {
        "genlab_data": tmp_path / "env-data",
        "cache_home": tmp_path / "xdg-cache",
        "system": tmp_path / "system",
    }
    monkeypatch.delenv("GENLAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(roots["cache_home"]))
    monkeypatch.setattr(locate, "SYSTEM_DATA_DIRS", (roots["system"],))
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    return roots


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer()
    yield local
    local.close()
