"""The server as a door: only files inside a run are served (traversal in every spelling and
symlinks out are 404), a broken or vanished run leaves the rest working, a full queue is a
503, the model cache keeps to its byte budget, the runs list notices change, and no request
writes anything in the runs folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading

import pytest

pytest.importorskip("starlette", reason="the serve extra is missing: pip install -e '.[serve]'")
pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx: pip install -e '.[test]'")

from httpkit import assert_error, copy_runs, make_client, snapshot  # noqa: E402

import genlab.serve.app as app_module  # noqa: E402
import genlab.serve.drawing as drawing  # noqa: E402
from genlab.runs import RunDir  # noqa: E402
from genlab.runs.guard import training_lock  # noqa: E402

SECRET = b'{"secret": "s3cr3t"}'


@pytest.fixture
def door(trained, tmp_path):
    """A runs folder with copies of the VAE and GAN runs, a file beside it, a secret file
    outside, and symlinks out of and within the VAE run; an app over it."""
    root = copy_runs(trained, ["vae", "gan"], tmp_path / "runs")
    vae = root / trained["vae"].name
    (tmp_path / "secret.json").write_bytes(SECRET)
    (tmp_path / "secret.png").write_bytes(b"\x89PNG" + SECRET)
    (root / "beside.json").write_text("{}")
    os.symlink(tmp_path / "secret.png", vae / "samples" / "out.png")
    os.symlink(tmp_path, vae / "samples" / "outdir")
    os.symlink(vae / "samples" / "train-epoch-0002.png", vae / "samples" / "within.png")
    os.symlink(tmp_path, root / "00050-linked-run")
    with make_client(root) as client:
        yield client, root, vae.name


TRAVERSALS = [
    "files/../../secret.json",
    "files/%2e%2e/%2e%2e/secret.json",
    "files/%2E%2E/%2E%2E/secret.json",
    "files/..%2f..%2fsecret.json",
    "files/..%2F..%2Fsecret.png",
    "files/%2e%2e%2f%2e%2e%2fsecret.json",
    "files/../beside.json",
    "files/..%2fbeside.json",
    "files//etc/passwd",
    "files/%2fetc%2fpasswd",
    "files/%2Fetc/hostname",
    "files/samples/out.png",
    "files/samples/outdir/secret.json",
    "files/samples/%2e/train-epoch-0002.png",
    "files/samples/..%5c..%5csecret.json",
    "files/model.safetensors",
    "files/checkpoints/latest",
    "files/.lock",
    "files/metrics.jsonl",
    "files/samples/%00.png",
    "files/" + "a/" * 300 + "x.png",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_a_path_out_of_the_run_or_not_a_picture_is_404(door, path):
    client, _, run = door
    response = client.get(f"/api/runs/{run}/{path}")
    assert_error(response, 404)
    assert SECRET not in response.content and b"root:" not in response.content


def test_files_inside_the_run_are_served_symlinks_within_too(door):
    client, _, run = door
    grid = client.get(f"/api/runs/{run}/files/samples/train-epoch-0002.png")
    assert grid.status_code == 200 and grid.headers["content-type"] == "image/png"
    assert client.get(f"/api/runs/{run}/files/samples/within.png").content == grid.content
    assert client.get(f"/api/runs/{run}/files/run.json").json()["family"] == "vae"


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs/..",
        "/api/runs/%2e%2e/run.json",
        "/api/runs/..%2f..%2fsecret.json",
        "/api/runs/%2e%2e%2f/metrics",
        "/api/runs/.numbers",
        "/api/runs/00050-linked-run",  # a symlink to a folder outside the runs folder
        "/api/runs/00050-linked-run/files/secret.json",
        "/api/runs/beside.json",
        "/api/runs/%2Fetc",
        "/static/..%2fapp.py",
        "/static/%2e%2e/app.py",
        "/static/../app.py",
        "/static/app.py",
    ],
)
def test_run_names_and_static_files_cannot_leave_their_folders(door, path):
    client, _, _ = door
    response = client.get(path)
    assert response.status_code == 404
    assert SECRET not in response.content and b"import" not in response.content


def test_a_symlinked_run_is_not_listed(door):
    client, _, run = door
    assert [r["name"] for r in client.get("/api/runs").json()["runs"]] == sorted(
        [run, next(n for n in os.listdir(door[1]) if n.endswith("-gan"))]
    )


def test_a_corrupt_model_is_that_runs_error_and_the_others_work(trained, tmp_path):
    root = copy_runs(trained, ["vae", "gan", "rbm"], tmp_path / "runs")
    vae, gan, rbm = (trained[k].name for k in ("vae", "gan", "rbm"))
    (root / vae / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    weights = (root / rbm / "model.safetensors").read_bytes()
    (root / rbm / "model.safetensors").write_bytes(weights[: len(weights) // 2])  # truncated
    (root / "00077-digits-vae").mkdir()  # a training killed as it began
    (root / "00077-digits-vae" / "run.json").write_text('{"status": "training"}')
    (root / "00078-digits-gan").mkdir()
    (root / "00078-digits-gan" / "config.json").write_text("{not json")
    with make_client(root) as client:
        listed = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}
        assert "model.safetensors" in listed[vae]["error"]
        assert "model.safetensors" in listed[rbm]["error"]
        assert "config.json" in listed["00077-digits-vae"]["error"]
        assert listed["00077-digits-vae"]["status"] == "interrupted"  # no trainer alive
        assert "config.json" in listed["00078-digits-gan"]["error"]
        assert listed[gan]["error"] is None
        assert "model.safetensors" in assert_error(client.get(f"/api/runs/{vae}/sample.png"), 409)
        assert "model.safetensors" in assert_error(client.get(f"/api/runs/{rbm}/sample.png"), 409)
        assert client.get(f"/api/runs/{vae}").json()["error"]  # the page shows why
        assert_error(client.get("/api/runs/00078-digits-gan"), 409)
        assert_error(client.get("/api/runs/00077-digits-vae/sample.png"), 409)
        assert client.get(f"/api/runs/{gan}/sample.png").status_code == 200


def test_weights_with_nan_are_an_error_once_loaded(trained, tmp_path):
    from safetensors.torch import load_file, save_file

    root = copy_runs(trained, ["vae"], tmp_path / "runs")
    name = trained["vae"].name
    state = load_file(root / name / "model.safetensors")
    first = next(iter(state))
    state[first] = state[first] * float("nan")
    save_file(state, root / name / "model.safetensors")
    with make_client(root) as client:
        assert "NaN" in assert_error(client.get(f"/api/runs/{name}/sample.png"), 409)
        assert "NaN" in client.get("/api/runs").json()["runs"][0]["error"]


def test_a_run_deleted_while_served_is_404_and_the_list_goes_on(trained, tmp_path):
    root = copy_runs(trained, ["vae", "gan"], tmp_path / "runs")
    vae, gan = trained["vae"].name, trained["gan"].name
    with make_client(root) as client:
        assert client.get(f"/api/runs/{vae}/sample.png").status_code == 200  # loaded, cached
        assert client.get(f"/api/runs/{vae}/latent?points=10").status_code == 200
        shutil.rmtree(root / vae)
        for path in ("sample.png", "latent?points=10", "metrics", "", "test/1.png"):
            assert_error(client.get(f"/api/runs/{vae}/{path}".rstrip("/")), 404)
        response = client.get("/api/runs")
        assert response.status_code == 200
        assert [r["name"] for r in response.json()["runs"]] == [gan]


def test_a_full_queue_answers_503(trained, tmp_path, monkeypatch):
    root = copy_runs(trained, ["gan"], tmp_path / "runs")
    name = trained["gan"].name
    entered, release = threading.Event(), threading.Event()
    real = drawing.samples

    def slow(*args, **kwargs):
        entered.set()
        assert release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(drawing, "samples", slow)
    with make_client(root, queue=1) as client:
        results = {}
        first = threading.Thread(
            target=lambda: results.update(first=client.get(f"/api/runs/{name}/sample.png"))
        )
        first.start()
        try:
            assert entered.wait(30)
            message = assert_error(client.get(f"/api/runs/{name}/sample.png?seed=1"), 503)
            assert message.startswith("busy")
            assert_error(client.get(f"/api/runs/{name}/latent"), 503)
            assert client.get("/api/runs").status_code == 200  # reading needs no queue
        finally:
            release.set()
            first.join(30)
        assert results["first"].status_code == 200
        assert client.get(f"/api/runs/{name}/sample.png?seed=1").status_code == 200


def test_the_model_cache_keeps_to_its_byte_budget(trained, tmp_path):
    root = copy_runs(trained, ["vae", "gan", "rbm"], tmp_path / "runs")
    vae, gan, rbm = (trained[k].name for k in ("vae", "gan", "rbm"))
    with make_client(root, cache_bytes=10**9) as client:
        cache = client.app.state.genlab.cache
        for name in (vae, gan, rbm):
            client.get(f"/api/runs/{name}/sample.png")
        sizes = {run: cache._runs[run].nbytes() for run in cache.names}
    budget = sizes[gan] + sizes[rbm]  # two fit, not three
    assert budget < sum(sizes.values())
    with make_client(root, cache_bytes=budget) as client:
        cache = client.app.state.genlab.cache
        for name in (vae, gan, rbm):
            assert client.get(f"/api/runs/{name}/sample.png").status_code == 200
        assert cache.names == [gan, rbm] and cache.held_bytes <= budget and cache.loads == 3
        client.get(f"/api/runs/{gan}/sample.png")  # held: not loaded again, now the newest
        assert cache.loads == 3 and cache.names == [rbm, gan]
        client.get(f"/api/runs/{vae}/sample.png")  # loaded again; the oldest goes
        assert cache.loads == 4 and cache.names[-1] == vae and rbm not in cache.names
    with make_client(root, cache_bytes=0) as client:
        cache = client.app.state.genlab.cache
        assert client.get(f"/api/runs/{vae}/sample.png").status_code == 200
        assert cache.names == [] and cache.loads == 1


def test_a_new_export_is_loaded_again(trained, tmp_path):
    root = copy_runs(trained, ["vae"], tmp_path / "runs")
    name = trained["vae"].name
    with make_client(root) as client:
        cache = client.app.state.genlab.cache
        before = client.get(f"/api/runs/{name}/sample.png").content
        model = root / name / "model.safetensors"
        data = model.read_bytes()
        model.unlink()
        model.write_bytes(data)  # another file: a resume exported again
        assert client.get(f"/api/runs/{name}/sample.png").content == before
        assert cache.loads == 2


def test_the_version_changes_when_a_run_trains_on(trained, tmp_path):
    root = copy_runs(trained, ["vae"], tmp_path / "runs")
    run = root / trained["vae"].name
    with make_client(root) as client:
        first = client.get("/api/runs").json()
        lines = client.get(f"/api/runs/{run.name}/metrics").json()["next"]
        info = json.loads((run / "run.json").read_text())
        (run / "run.json").write_text(json.dumps({**info, "status": "training"}))
        (run / ".lock").write_text(str(os.getpid()))  # this process, alive, holds it
        second = client.get("/api/runs").json()
        assert second["version"] != first["version"]
        assert second["runs"][0]["status"] == "training"
        with open(run / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps({"kind": "epoch", "epoch": 3, "step": 40, "val/loss": 1.5}) + "\n")
            fh.write('{"kind": "train", "step": 4')  # a line being written
        third = client.get("/api/runs").json()
        assert third["version"] != second["version"]
        assert third["runs"][0]["epochs"] == 3 and third["runs"][0]["step"] == 40
        new = client.get(f"/api/runs/{run.name}/metrics?after={lines}").json()
        assert new == {
            "records": [{"kind": "epoch", "epoch": 3, "step": 40, "val/loss": 1.5}],
            "next": lines + 1,
        }
        assert client.get("/api/runs").json()["version"] == third["version"]
        (run / ".lock").write_text("999999999")  # the trainer is gone
        fourth = client.get("/api/runs").json()
        assert fourth["runs"][0]["status"] == "interrupted"
        assert fourth["version"] != third["version"]
        with training_lock(RunDir(run)):  # a trainer holds the run: its weights will change
            message = assert_error(client.get(f"/api/runs/{run.name}/sample.png"), 409)
            assert "being trained" in message
        assert client.get("/api/runs").json()["runs"][0]["error"] is None  # training is no error


def test_nan_in_the_training_log_is_null(trained, tmp_path):
    root = copy_runs(trained, ["vae"], tmp_path / "runs")
    run = root / trained["vae"].name
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"kind": "train", "step": 99, "train/loss": NaN, "x": Infinity}\n')
    with make_client(root) as client:
        records = client.get(f"/api/runs/{run.name}/metrics").json()["records"]
        assert records[-1] == {"kind": "train", "step": 99, "train/loss": None, "x": None}


def test_no_request_writes_in_the_runs_folder(trained, runs_root, tmp_path):
    names = {key: path.name for key, path in trained.items()}
    before = snapshot(runs_root)
    with make_client(runs_root) as client:
        urls = ["/", "/compare", "/api/runs", f"/api/compare?runs={','.join(names.values())}"]
        for name in names.values():
            urls += [
                f"/runs/{name}",
                f"/api/runs/{name}",
                f"/api/runs/{name}/metrics",
                f"/api/runs/{name}/files/run.json",
                f"/api/runs/{name}/sample.png?n=4",
                f"/api/runs/{name}/sample.png?n=4&steps=2",
                f"/api/runs/{name}/chain.png?n=2&steps=4",
                f"/api/runs/{name}/latent?points=20",
                f"/api/runs/{name}/latent/sprite.png?points=20",
                f"/api/runs/{name}/test/0.png",
                f"/api/runs/{name}/reconstruction/0.png",
                f"/api/runs/{name}/neighbours/0",
                f"/api/runs/{name}/interpolate.png?a=0&b=1",
                f"/api/runs/{name}/decode.png?coords=1",
                f"/api/runs/{name}/manifold.png?size=3",
                f"/api/runs/{name}/files/../x.json",
            ]
        statuses = {client.get(url).status_code for url in urls}
    assert statuses <= {200, 400, 404}
    assert snapshot(runs_root) == before


def test_a_page_missing_from_the_package_is_a_404(client, monkeypatch, tmp_path):
    monkeypatch.setattr(app_module, "STATIC", tmp_path)
    assert "index.html" in assert_error(client.get("/"), 404)
    assert_error(client.get("/static/app.js"), 404)
    (tmp_path / "app.js").write_text("// a script")
    response = client.get("/static/app.js")
    assert response.status_code == 200 and response.text == "// a script"
    assert response.headers["content-type"].startswith("text/javascript")


def test_an_unexpected_failure_is_a_500_in_one_line(client, names, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("something\nwent wrong")

    monkeypatch.setattr(drawing, "samples", broken)
    message = assert_error(client.get(f"/api/runs/{names['gan']}/sample.png?seed=77"), 500)
    assert "ValueError" in message and "went wrong" not in message


def test_the_app_imports_without_torch():
    code = "import sys, genlab.serve.app, genlab.serve.server; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_request_that_goes_away_before_its_turn_frees_its_place():
    import asyncio

    from genlab.serve.queue import ComputeQueue

    async def scenario() -> list[int]:
        work = ComputeQueue(2)
        gate = threading.Event()
        first = asyncio.ensure_future(work.run(lambda: gate.wait(30)))
        second = asyncio.ensure_future(work.run(lambda: "never"))
        await asyncio.sleep(0.05)
        counts = [work.accepted]
        second.cancel()  # its client disconnected while it waited
        await asyncio.sleep(0.05)
        counts.append(work.accepted)
        gate.set()
        assert await first is True
        counts.append(work.accepted)
        work.close()
        return counts

    assert asyncio.run(scenario()) == [2, 1, 0]
