"""Fixtures of the server's tests: tiny trained runs of several families on digits under one
runs folder (trained once per session) and an app over them. The helpers are in httpkit.py,
which each module that needs the serve extra imports after skipping where it is missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from genlab import api


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict[str, Path]:
    """family key (httpkit.FAMILIES) -> its run folder, all under one runs folder; the VAE is
    evaluated (its likelihood bound only), so the comparison has something to show."""
    from httpkit import FAMILIES, train_tiny

    root = tmp_path_factory.mktemp("serve") / "runs"
    runs = {key: train_tiny(root, overrides) for key, overrides in FAMILIES.items()}
    api.evaluate(runs["vae"], ["eval.metrics=[elbo]"], progress=False)
    return runs


@pytest.fixture(scope="session")
def runs_root(trained) -> Path:
    return next(iter(trained.values())).parent


@pytest.fixture(scope="module")
def client(runs_root) -> Iterator[Any]:
    """A TestClient of an app over the session's runs (tests with it only read)."""
    from httpkit import make_client

    with make_client(runs_root) as c:
        yield c


@pytest.fixture
def names(trained) -> dict[str, str]:
    """family key -> run name."""
    return {key: path.name for key, path in trained.items()}
