"""A bounded load test of `genlab serve` on localhost.

Starts `genlab serve` (a child process, on a free port) over a runs folder, sends a fixed
number of requests from concurrent clients (threads, each with its keep-alive connection): a
seeded mix of pages, /api/runs, runs' JSON, sample grids drawn now and latent maps where a run
has an encoder. Before the load each model the mix uses is loaded once (unless --cold), so the
latencies are those of loaded models. It stops by itself and reports per kind of request the
p50/p95 latencies, the counts of status codes and the server's peak resident memory (VmHWM).
A 5xx other than 503 (the model queue is full: the expected answer under saturation) or a
connection failure makes it exit with status 1. After the load, each run's sample grid is
also timed one request at a time on the idle server (the latency a user of the page sees).

    python benchmarks/serve_load.py runs/ [--clients 20] [--requests 500]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import quote

from common import environment, save

# the share of each kind of request in the mix (kinds a runs folder cannot serve drop out)
MIX = {"page": 0.2, "static": 0.05, "runs": 0.15, "run": 0.15, "sample": 0.35, "latent": 0.1}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """`genlab serve` in a child process, started on a free port and stopped on exit."""

    def __init__(self, runs_dir: Path, *, cache_mb: int = 1024, queue: int = 8) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            "-m",
            "genlab",
            "serve",
            "--runs-dir",
            str(runs_dir),
            "--port",
            str(self.port),
            "--cache-mb",
            str(cache_mb),
            "--queue",
            str(queue),
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.wait_ready()

    def wait_ready(self, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                _, err = self.process.communicate()
                raise SystemExit(f"genlab serve exited at start: {err.strip()[-500:]}")
            try:
                status, _, _ = fetch("127.0.0.1", self.port, "/api/runs")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"genlab serve did not answer within {seconds:.0f} s")

    def peak_rss_mib(self) -> float | None:
        """The process's peak resident set (Linux /proc VmHWM), in MiB."""
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def rss_mib(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def fetch(host: str, port: int, path: str, timeout: float = 120.0) -> tuple[int, bytes, float]:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        start = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        return response.status, body, time.perf_counter() - start
    finally:
        connection.close()


def plan(server: Server, total: int, seed: int) -> list[tuple[str, str]]:
    """``total`` (kind, path) requests drawn from MIX over the runs the server lists."""
    status, body, _ = fetch("127.0.0.1", server.port, "/api/runs")
    if status != 200:
        raise SystemExit(f"/api/runs answered {status}")
    names = [r["name"] for r in json.loads(body)["runs"] if not r.get("error")]
    if not names:
        raise SystemExit("the runs folder has no readable run to load-test")
    samplers, encoders = [], []
    for name in names:
        status, body, _ = fetch("127.0.0.1", server.port, f"/api/runs/{quote(name)}")
        if status != 200:
            continue
        caps = json.loads(body).get("capabilities") or {}
        if caps.get("sample"):
            samplers.append(name)
        if caps.get("latent") == "encoder":
            encoders.append(name)
    rng = random.Random(seed)
    kinds = {
        "page": lambda: rng.choice(["/", "/compare", f"/runs/{quote(rng.choice(names))}"]),
        "static": lambda: rng.choice(["/static/app.js", "/static/style.css"]),
        "runs": lambda: "/api/runs",
        "run": lambda: f"/api/runs/{quote(rng.choice(names))}",
        "sample": lambda: (
            f"/api/runs/{quote(rng.choice(samplers))}/sample.png"
            f"?seed={rng.randrange(2**31)}&n={rng.choice([4, 16, 64])}"
        ),
        "latent": lambda: (
            f"/api/runs/{quote(rng.choice(encoders))}/latent"
            f"?points={rng.choice([200, 500])}&method=pca"
        ),
    }
    weights = dict(MIX)
    if not samplers:
        weights.pop("sample")
    if not encoders:
        weights.pop("latent")
    chosen = rng.choices(list(weights), weights=list(weights.values()), k=total)
    return [(kind, kinds[kind]()) for kind in chosen]


def warm_up(server: Server, requests: list[tuple[str, str]]) -> float:
    """Load every model the mix uses once, one request at a time (a cold load is reported
    by the warm-up's time, not inside the latencies); returns its seconds."""
    start = time.perf_counter()
    seen = set()
    for kind, path in requests:
        run = path.split("/")[3] if path.startswith("/api/runs/") else None
        if kind in ("sample", "latent") and (kind, run) not in seen:
            seen.add((kind, run))
            fetch("127.0.0.1", server.port, path, timeout=600)
    return time.perf_counter() - start


def solo_samples(server: Server, repeats: int = 5, n: int = 16) -> dict[str, Any]:
    """Each run's sample.png of ``n`` images asked ``repeats`` times, one request at a time on
    an idle server: the latency a user of the run page sees (the browser's wait and the
    model's compute, from X-Genlab-Seconds), by run."""
    status, body, _ = fetch("127.0.0.1", server.port, "/api/runs")
    found: dict[str, Any] = {}
    for entry in json.loads(body)["runs"] if status == 200 else []:
        if entry.get("error") or entry.get("status") == "training":
            continue
        name = entry["name"]
        status, body, _ = fetch("127.0.0.1", server.port, f"/api/runs/{quote(name)}")
        caps = (json.loads(body).get("capabilities") or {}) if status == 200 else {}
        if not caps.get("sample"):
            continue
        waits, computes = [], []
        for seed in range(repeats + 1):  # the first (the model's load) is not counted
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
            try:
                start = time.perf_counter()
                connection.request("GET", f"/api/runs/{quote(name)}/sample.png?seed={seed}&n={n}")
                response = connection.getresponse()
                response.read()
                wait = time.perf_counter() - start
                compute = response.getheader("X-Genlab-Seconds")
            finally:
                connection.close()
            if response.status != 200:
                break
            if seed:
                waits.append(wait * 1000)
                computes.append(float(compute) * 1000 if compute else float("nan"))
        if waits:
            found[name] = {
                "family": entry.get("family"),
                "sampling": caps.get("sampling"),
                "n": n,
                "p50_ms": round(statistics.median(waits), 1),
                "max_ms": round(max(waits), 1),
                "model_p50_ms": round(statistics.median(computes), 1),
            }
    return found


def load(server: Server, requests: list[tuple[str, str]], clients: int) -> list[dict[str, Any]]:
    """Send ``requests`` from ``clients`` threads, each over its own keep-alive connection."""
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    queue = list(reversed(requests))

    def client() -> None:
        connection: http.client.HTTPConnection | None = None
        while True:
            with lock:
                if not queue:
                    break
                kind, path = queue.pop()
            current = connection or http.client.HTTPConnection(
                "127.0.0.1", server.port, timeout=300
            )
            connection = current
            start = time.perf_counter()
            try:
                current.request("GET", path)
                response = current.getresponse()
                response.read()
                status: int | str = response.status
                if response.getheader("Connection", "").lower() == "close":
                    current.close()
                    connection = None
            except (OSError, http.client.HTTPException) as exc:
                status = f"connection: {type(exc).__name__}"
                current.close()
                connection = None
            seconds = time.perf_counter() - start
            with lock:
                results.append({"kind": kind, "path": path, "status": status, "s": seconds})
        if connection is not None:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(q) - 1]


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        by_kind[r["kind"]].append(r)
    kinds = {}
    for kind, rows in sorted(by_kind.items()):
        ok = [r["s"] * 1000 for r in rows if r["status"] == 200]
        busy = [r["s"] * 1000 for r in rows if r["status"] == 503]
        kinds[kind] = {
            "requests": len(rows),
            "status": dict(Counter(str(r["status"]) for r in rows)),
            "p50_ms": round(percentile(ok, 50), 2) if ok else None,
            "p95_ms": round(percentile(ok, 95), 2) if ok else None,
            "max_ms": round(max(ok), 2) if ok else None,
            "busy_p50_ms": round(percentile(busy, 50), 2) if busy else None,
        }
    return kinds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs_dir", type=Path, help="the runs folder to serve")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=500, help="requests in all")
    parser.add_argument("--cache-mb", type=int, default=1024, help="the server's model cache")
    parser.add_argument("--queue", type=int, default=8, help="the server's model queue bound")
    parser.add_argument("--seed", type=int, default=0, help="seeds the mix of requests")
    parser.add_argument(
        "--no-solo",
        dest="solo",
        action="store_false",
        help="skip the one-at-a-time sample latencies measured after the load",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="no warm-up: the first requests of each run also load its model",
    )
    parser.add_argument("--name", default="serve_load", help="results file name (no .json)")
    args = parser.parse_args()
    if not args.runs_dir.is_dir():
        raise SystemExit(f"serve_load: {str(args.runs_dir)!r} is not a folder")
    if args.clients < 1 or args.requests < 1:
        raise SystemExit("serve_load: --clients and --requests must be positive")

    started = time.perf_counter()
    server = Server(args.runs_dir, cache_mb=args.cache_mb, queue=args.queue)
    try:
        requests = plan(server, args.requests, args.seed)
        warm_s = None if args.cold else warm_up(server, requests)
        rss_before = server.rss_mib()
        load_start = time.perf_counter()
        results = load(server, requests, args.clients)
        wall = time.perf_counter() - load_start
        rss_after = server.rss_mib()
        solo = solo_samples(server) if args.solo else {}
        peak = server.peak_rss_mib()  # over the server's whole life
    finally:
        code = server.stop()
    statuses = Counter(str(r["status"]) for r in results)
    bad: dict[str, Any] = {
        status: count
        for status, count in statuses.items()
        if not status.isdigit() or (int(status) >= 500 and status != "503")
    }
    if code not in (0, 130, -signal.SIGINT):
        bad["server exit"] = code
    result = {
        "environment": environment(),
        "cpus": os.cpu_count(),
        "runs_dir": str(args.runs_dir),
        "clients": args.clients,
        "requests": len(results),
        "cache_mb": args.cache_mb,
        "queue": args.queue,
        "warm_up_s": None if warm_s is None else round(warm_s, 2),
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(results) / wall, 1),
        "status": dict(sorted(statuses.items())),
        "kinds": summary(results),
        "solo_sample": solo,
        "server_rss_mib": {
            "before_load": rss_before,
            "after_load": rss_after,
            "peak": peak,
        },
        "server_exit": code,
        "unexpected": bad,
        "ok": not bad,
        "total_s": round(time.perf_counter() - started, 2),
    }
    save(args.name, result)
    if bad:
        print(f"serve_load: unexpected answers {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
