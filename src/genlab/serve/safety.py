"""The door: which requests get in and which files go out.

- :class:`Guard` (ASGI middleware) refuses a request whose Host header is not the name the
  server is bound to (400: a web page on another site cannot reach the server by rebinding
  its own name to 127.0.0.1) and any method but GET and HEAD (405).
- :func:`run_folder` and :func:`run_file` turn names from a URL into paths that are inside the
  runs folder: a run is a folder directly under it, a file is a .png or .json inside that run
  whose real path (symlinks followed) stays inside it. Anything else is a 404, the same
  whether the path exists or not.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from genlab.serve.problems import not_found, one_line

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = ("127.0.0.1", "localhost")
WILDCARDS = ("0.0.0.0", "::", "")
METHODS = ("GET", "HEAD")
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=-]{0,199}")
FILE_SUFFIXES = (".png", ".json")
MAX_RELATIVE = 512  # characters of a file path inside a run


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server to this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _header_name(host: str) -> str:
    """``host`` as a Host header writes it (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host else host


def host_checker(host: str, port: int) -> Callable[[str], bool]:
    """A test of a request's Host header: the bound name, with or without ``:port`` (for
    127.0.0.1 and localhost either name). A wildcard bind (0.0.0.0, ::) answers to this
    machine's names and to any IP address literal, never to another domain name."""
    names = {host.lower()}
    if host.lower() in LOOPBACK_NAMES:
        names.update(LOOPBACK_NAMES)
    wildcard = host in WILDCARDS
    if wildcard:
        names.update({"localhost", socket.gethostname().lower(), socket.getfqdn().lower()})
    allowed = {_header_name(n) for n in names}
    allowed |= {f"{n}:{port}" for n in allowed}

    def check(header: str) -> bool:
        value = header.strip().lower()
        if value in allowed:
            return True
        if not wildcard:
            return False
        name, _, given = value.rpartition(":") if not value.endswith("]") else (value, "", "")
        if given and given != str(port):
            return False
        try:
            ipaddress.ip_address((name or value).strip("[]"))
        except ValueError:
            return False
        return True

    return check


async def _refuse(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]]
) -> None:
    body = json.dumps({"error": one_line(message)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware: the Host header and the method are checked before anything else."""

    def __init__(self, app: ASGIApp, check_host: Callable[[str], bool]) -> None:
        self.app, self.check_host = app, check_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets: the connection is closed unanswered
        hosts = [v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"]
        if len(hosts) != 1 or not self.check_host(hosts[0]):
            shown = hosts[0][:80] if hosts else "none"
            await _refuse(
                send,
                400,
                f"Host header {shown!r} is not this server's name; open the URL "
                "`genlab serve` printed",
                [],
            )
            return
        if scope["method"] not in METHODS:
            await _refuse(
                send,
                405,
                f"method {scope['method'][:16]} is not allowed: the server only reads (GET, HEAD)",
                [(b"allow", b"GET, HEAD")],
            )
            return
        await self.app(scope, receive, send)


def run_folder(root: Path, name: str) -> Path:
    """The folder of run ``name``: a folder directly under ``root`` (a name without slashes
    or leading dot, whose real path is a child of root's); else a 404."""
    missing = not_found(f"no run named {name[:100]!r} in the runs folder")
    if not RUN_NAME.fullmatch(name):
        raise missing
    try:
        base = root.resolve(strict=True)
        resolved = (root / name).resolve(strict=True)
    except (OSError, RuntimeError):
        raise missing from None
    if resolved.parent != base or not resolved.is_dir():
        raise missing
    return resolved


def run_file(run: Path, relative: str) -> Path:
    """The file at ``relative`` inside the run folder ``run``: a .png or .json, no hidden or
    dot segments, not absolute, its real path inside the run; else a 404."""
    missing = not_found(f"no file {relative[:100]!r} in this run (only .png and .json are served)")
    parts = relative.split("/")
    if (
        not relative
        or len(relative) > MAX_RELATIVE
        or "\\" in relative
        or "\x00" in relative
        or any(p in ("", ".", "..") or p.startswith(".") for p in parts)
        or Path(parts[-1]).suffix.lower() not in FILE_SUFFIXES
    ):
        raise missing
    try:
        base = run.resolve(strict=True)
        resolved = (run / relative).resolve(strict=True)
    except (OSError, RuntimeError):
        raise missing from None
    if (
        not resolved.is_relative_to(base)
        or not resolved.is_file()
        or resolved.suffix.lower() not in FILE_SUFFIXES
    ):
        raise missing
    return resolved
