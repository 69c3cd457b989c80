import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # shared test helpers (fuzzkit, runkit)

from genlab.models import load_run_config

TINY = [
    "data.name=digits",
    "model.hidden=[32]",
    "model.latent_dim=4",
    "train.epochs=2",
    "train.batch_size=64",
    "train.progress=false",
    "eval.iwae_k=20",
    "eval.num_samples=200",
    "eval.kid_subsets=10",
    "eval.kid_subset_size=100",
]


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Feature networks and downloads cache under a temporary XDG_CACHE_HOME, never ~/.cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    yield
    mp.undo()


@pytest.fixture
def tiny_overrides(tmp_path):
    """Overrides for a seconds-long VAE run on digits, with run folders under tmp_path."""
    return [*TINY, f"runs_dir={tmp_path / 'runs'}"]


@pytest.fixture
def tiny_config(tiny_overrides):
    return load_run_config(None, tiny_overrides)
