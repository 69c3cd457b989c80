"""Helpers of the server's tests, imported once the serve extra is known to be there: tiny
runs of the families the pages treat differently, an app over a runs folder with Starlette's
TestClient, the one-line error check, copies of runs to break and snapshots of a runs
folder."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

from runkit import TINY_MODELS

from genlab import api
from genlab.models import load_run_config

with warnings.catch_warnings():  # Starlette 1.x prefers httpx2 and says so; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

HOST, PORT = "127.0.0.1", 8000
BASE_URL = f"http://{HOST}:{PORT}"

# the families the pages treat differently: an encoder with a 2-D latent space, a conditional
# encoder, a generator of z, a Markov chain, an iterative sampler, a flow (temperature), a
# denoising autoencoder (a chain, no direct sampler)
FAMILIES = {
    "vae": ["model.name=vae", "model.hidden=[16]", "model.latent_dim=2", "train.epochs=2"],
    "cvae": TINY_MODELS["vae_cond"],
    "gan": TINY_MODELS["mlp_gan"],
    "rbm": TINY_MODELS["rbm_pcd"],
    "diffusion": TINY_MODELS["ddpm_eps"],
    "flow": TINY_MODELS["realnvp"],
    "dae": TINY_MODELS["dae_walkback"],
}


def train_tiny(root: Path, overrides: list[str]) -> Path:
    config = load_run_config(
        None,
        [
            "data.name=digits",
            "train.epochs=1",
            "train.progress=false",
            f"runs_dir={root}",
            *overrides,
        ],
    )
    return api.train(config).path


def make_client(root: Path, **options) -> TestClient:
    from genlab.serve.app import create_app

    settings = {"cache_bytes": 256 * 2**20, "queue": 8, "device": "cpu", **options}
    app = create_app(root, host=HOST, port=PORT, **settings)
    return TestClient(app, base_url=BASE_URL, raise_server_exceptions=False)


def assert_error(response, status: int) -> str:
    """The response is ``status`` with one line of JSON ``{"error": ...}`` and no traceback;
    returns the message."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    text = response.text
    assert "\n" not in text and "Traceback" not in text and 'File "' not in text
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str) and body["error"]
    return body["error"]


def copy_runs(trained: dict[str, Path], keys: list[str], to: Path) -> Path:
    """A runs folder at ``to`` holding copies of the given runs (for tests that break them)."""
    to.mkdir(parents=True)
    for key in keys:
        shutil.copytree(trained[key], to / trained[key].name, symlinks=True)
    return to


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root`` with its size and modification time."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            st = path.lstat()
            found[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    found["."] = (0, root.stat().st_mtime_ns)
    return found
