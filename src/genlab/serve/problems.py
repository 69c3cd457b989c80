"""What a request gets when it cannot be answered: an HTTP status and one line of JSON,
``{"error": "..."}``, never a traceback."""

from __future__ import annotations

from typing import Any

MAX_MESSAGE = 400  # characters of an error message sent back


class Problem(Exception):
    """A request that gets ``status`` and the one-line ``message`` (4xx, or 503 when busy)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = one_line(message)


def one_line(text: Any) -> str:
    """``text`` on one line (whitespace runs folded to a space), at most MAX_MESSAGE long."""
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 3] + "..."


def bad_request(message: str) -> Problem:
    return Problem(400, message)


def not_found(message: str = "not found") -> Problem:
    return Problem(404, message)
