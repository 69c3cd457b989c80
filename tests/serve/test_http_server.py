"""`genlab serve` as a user starts it: a subprocess on a free port that prints its URL,
answers, refuses a path out of a run on a raw socket, and stops on Ctrl-C without a
traceback; a host other than loopback is warned about; a port in use and a missing extra are
one line and exit status 2."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("starlette", reason="the serve extra is missing: pip install -e '.[serve]'")
httpx = pytest.importorskip(
    "httpx", reason="Starlette's TestClient needs httpx: pip install -e '.[test]'"
)

from httpkit import copy_runs  # noqa: E402

from genlab import cli  # noqa: E402

URL_LINE = "genlab serve: http://"


def start(runs: object, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "genlab", "serve", "--runs-dir", str(runs), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def first_line(process: subprocess.Popen, timeout: float = 60) -> str:
    """The first line the server prints on stdout (its URL), waiting at most ``timeout``."""
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if selector.select(timeout=0.5):
            return process.stdout.readline()
        if process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"no URL printed; stderr: {process.stderr.read()[-2000:]}")


def stop(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, err


def raw_get(port: int, path: str, host: str = "127.0.0.1") -> bytes:
    """A GET with ``path`` sent exactly as written (no client normalises it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_serve_prints_its_url_answers_and_stops_on_ctrl_c(trained, tmp_path):
    root = copy_runs(trained, ["vae"], tmp_path / "runs")
    (tmp_path / "outside.json").write_text('{"outside": "s3cr3t"}')
    name = trained["vae"].name
    process = start(root, "--port", "0", "--threads", "1")
    try:
        line = first_line(process)
        assert line.startswith(URL_LINE) and f"(runs: {root}; Ctrl-C stops)" in line
        url = line.split()[2]
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        with httpx.Client(base_url=url, trust_env=False, timeout=60) as http:
            listed = http.get("/api/runs")
            assert listed.status_code == 200
            assert [r["name"] for r in listed.json()["runs"]] == [name]
            drawn = http.get(f"/api/runs/{name}/sample.png?n=4")
            assert drawn.status_code == 200 and drawn.content.startswith(b"\x89PNG")
            assert http.get("/api/runs", headers={"host": "evil.example"}).status_code == 400
        for path in (
            f"/api/runs/{name}/files/../../outside.json",
            f"/api/runs/{name}/files/%2e%2e/%2e%2e/outside.json",
            f"/api/runs/{name}/files/..%2f..%2foutside.json",
            "/api/runs/../outside.json",
            "/static/../app.py",
        ):
            answer = raw_get(port, path)
            assert answer.startswith(b"HTTP/1.1 404"), (path, answer[:200])
            assert b"s3cr3t" not in answer
    finally:
        status, err = stop(process)
    assert status in (0, 130)
    assert "Traceback" not in err
    assert err.strip() in ("", "genlab serve: stopped (SIGINT)")


def test_a_host_beyond_loopback_is_warned_about(runs_root):
    process = start(runs_root, "--host", "0.0.0.0", "--port", "0")
    try:
        line = first_line(process)
        port = int(line.split()[2].rstrip("/").rsplit(":", 1)[1])
        ok = raw_get(port, "/api/runs", host="127.0.0.1")
        assert ok.startswith(b"HTTP/1.1 200")
        assert raw_get(port, "/api/runs", host="rebound.example").startswith(b"HTTP/1.1 400")
    finally:
        status, err = stop(process)
    assert status in (0, 130)
    warnings = [e for e in err.splitlines() if "warning" in e]
    assert len(warnings) == 1 and "0.0.0.0" in warnings[0] and "Traceback" not in err


def test_a_port_in_use_is_one_line_and_status_2(runs_root):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        process = start(runs_root, "--port", str(port))
        out, err = process.communicate(timeout=60)
    assert process.returncode == 2 and out == ""
    assert err.count("\n") == 1 and f"port {port}" in err and "in use" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "70000"],
        ["--port", "-1"],
        ["--queue", "0"],
        ["--cache-mb", "x"],
        ["--threads", "0"],
    ],
)
def test_bad_options_are_one_line(argv, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["serve", *argv])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("genlab: error: serve: ") and err.count("\n") == 1


def test_a_missing_extra_is_one_line_naming_the_install(monkeypatch, capsys, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a, **k: None if name == "uvicorn" else real(name, *a, **k),
    )
    assert cli.main(["serve", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == "genlab: error: genlab serve needs the serve extra: pip install -e '.[serve]'\n"
