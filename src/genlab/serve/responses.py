"""What a request gets back: JSON (NaN written as null), PNG bytes with the seconds they took,
and for any failure one line of JSON with its status: 400 for a request the run cannot answer,
404 for what is not there, 409 for a run that is broken or training, 503 when busy or out of
memory, 500 (logged, never a traceback in the body) for anything unforeseen."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from genlab.errors import ConfigError, GenlabError
from genlab.serve.problems import Problem, one_line

log = logging.getLogger("genlab.serve")


class Json(JSONResponse):
    """JSON with NaN and infinities written as null (a training log may hold them)."""

    def render(self, content: Any) -> bytes:
        return super().render(_finite(content))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Json({"error": one_line(message)}, status_code=status, headers=headers)


def _allocation_failed(exc: BaseException) -> bool:
    text = str(exc)
    return type(exc).__name__ == "OutOfMemoryError" or any(
        marker in text for marker in ("can't allocate memory", "out of memory")
    )


def answer_failure(exc: BaseException) -> Response:
    """The response for what a handler raised: user errors and broken runs in one line."""
    if isinstance(exc, Problem):
        return error(exc.status, exc.message)
    if isinstance(exc, ConfigError):
        return error(400, str(exc))
    if isinstance(exc, GenlabError):  # a run folder broken, incomplete, training or gone
        return error(409, str(exc))
    if isinstance(exc, FileNotFoundError):
        return error(404, "the run's files are gone (deleted while the server runs)")
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and _allocation_failed(exc)):
        return error(503, "busy: out of memory for this request; ask for fewer images")
    if isinstance(exc, OSError):
        return error(409, f"the run's files cannot be read ({exc.strerror or exc})")
    log.error("unexpected failure", exc_info=exc)
    return error(500, f"internal error ({type(exc).__name__}); the server's log has details")


Handler = Callable[[Request], Awaitable[Response]]


def guarded(handler: Handler) -> Handler:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:  # noqa: BLE001  every failure becomes one line of JSON
            return answer_failure(exc)

    wrapped.__name__ = handler.__name__
    return wrapped


def png_response(data: bytes, seconds: float) -> Response:
    return Response(
        data,
        media_type="image/png",
        headers={"X-Genlab-Seconds": f"{seconds:.3f}", "Cache-Control": "no-store"},
    )
