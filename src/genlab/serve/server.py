"""``genlab serve``: the application on uvicorn, bound to one address.

The port is bound here first, so a port in use is one line (exit 2) before anything starts;
the URL is printed once the socket listens; a host that is not a loopback address gets a
warning; Ctrl-C (or SIGTERM) stops the server and ends with status 130 (143) and one line.
"""

from __future__ import annotations

import errno
import socket
import sys
from pathlib import Path

from genlab.errors import ConfigError
from genlab.serve.safety import is_loopback

GRACE_SECONDS = 3  # requests in flight get this long to finish when the server stops
MAX_CONNECTIONS = 128  # more at once are answered 503 by uvicorn


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a one-line error (in use, unknown host)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(
            f"--host {host!r} is not an address of this machine ({exc.strerror})"
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is in use (another server?); choose another with --port"
            ) from None
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    return sock


def url_of(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(
    runs_dir: Path,
    *,
    host: str,
    port: int,
    cache_mb: int,
    queue: int,
    threads: int | None = None,
    device: str = "auto",
) -> int:
    """Serve ``runs_dir`` until interrupted; returns the exit status."""
    import uvicorn

    from genlab.serve.app import create_app

    if device != "auto":  # a device this machine lacks is refused before anything starts
        from genlab.devices import resolve_device

        resolve_device(device, "--device")
    if runs_dir.exists() and not runs_dir.is_dir():
        raise ConfigError(f"--runs-dir {str(runs_dir)!r} is a file, not a folder of runs")
    sock = bind(host, port)
    port = sock.getsockname()[1]  # the port chosen when 0 was asked for
    app = create_app(
        runs_dir,
        host=host,
        port=port,
        cache_bytes=cache_mb * 2**20,
        queue=queue,
        threads=threads,
        device=device,
    )
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        limit_concurrency=MAX_CONNECTIONS,
        timeout_graceful_shutdown=GRACE_SECONDS,
    )
    if not is_loopback(host):
        print(
            f"genlab serve: warning: --host {host} is reachable from other machines: anyone "
            "who can reach it can read the runs folder and make this machine compute",
            file=sys.stderr,
        )
    where = "" if runs_dir.is_dir() else ", which does not exist yet"
    print(f"genlab serve: {url_of(host, port)} (runs: {runs_dir}{where}; Ctrl-C stops)", flush=True)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt as exc:
        name = str(getattr(exc, "signal_name", "sigint"))
        print(f"genlab serve: stopped ({name.upper()})", file=sys.stderr)
        return 143 if name == "sigterm" else 130
    finally:
        sock.close()
    return 0
