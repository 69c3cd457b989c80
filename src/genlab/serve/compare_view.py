"""The comparison report of runs, rendered by :mod:`genlab.reporting` from their existing
eval.json files into a temporary folder outside the runs folder (never evaluating, sampling
or writing a run), and served from there.

Runs without an eval.json (or with one that cannot be read) are listed as not evaluated. The
newest few reports are kept; older ones are deleted with their folders.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

from genlab.errors import GenlabError
from genlab.serve.problems import bad_request, not_found, one_line
from genlab.serve.runs_index import files_signature

KEEP = 8  # reports kept in the temporary folder
REPORT_FILES = (".html", ".png", ".md")
_KEY = re.compile(r"[0-9a-f]{16}")
_RELATIVE_LINK = re.compile(r"""(src|href)=(['"])(?![a-zA-Z][a-zA-Z0-9+.-]*:|/|#)""")


class CompareReports:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="genlab-serve-"))
        self._made: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def key(self, runs: list[tuple[str, Path]]) -> str:
        text = repr([(name, files_signature(path)) for name, path in runs])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def render(self, runs: list[tuple[str, Path]]) -> dict[str, Any]:
        """The report of ``runs`` (name, folder): its URL, its body with links made absolute,
        and which runs it leaves out because they have no evaluation."""
        key = self.key(runs)
        if key in self._made and (self.root / key / "index.html").exists():
            self._made.move_to_end(key)
            return self._made[key]
        from genlab.reporting.report import build_report, summarise
        from genlab.reporting.report_render import write_report
        from genlab.runs import RunDir

        evaluated, left_out = [], {}
        for name, path in runs:
            run = RunDir(path)
            if not run.eval_path.exists():
                left_out[name] = "not evaluated: it has no eval.json (run `genlab eval` on it)"
                continue
            try:
                summarise(run)
            except GenlabError as exc:
                left_out[name] = one_line(f"its evaluation cannot be read: {exc}")
                continue
            evaluated.append(run)
        result: dict[str, Any] = {
            "runs": [r.path.name for r in evaluated],
            "not_evaluated": left_out,
        }
        if not evaluated:
            result.update(url=None, html=_nothing(left_out))
        else:
            folder = self.root / key
            shutil.rmtree(folder, ignore_errors=True)
            try:
                page = write_report(build_report(evaluated, folder))
            except GenlabError as exc:
                shutil.rmtree(folder, ignore_errors=True)
                raise bad_request(f"the comparison cannot be drawn: {exc}") from None
            base = f"/api/compare/{key}/"
            result.update(url=base + "index.html", html=_body(page.read_text("utf-8"), base))
        self._made[key] = result
        while len(self._made) > KEEP:
            old, _ = self._made.popitem(last=False)
            shutil.rmtree(self.root / old, ignore_errors=True)
        return result

    def file(self, key: str, relative: str) -> Path:
        """A file of a rendered report (its page, images, Markdown); else a 404."""
        missing = not_found("no such comparison file (reports are kept while the server runs)")
        parts = relative.split("/")
        if (
            not _KEY.fullmatch(key)
            or any(p in ("", ".", "..") or p.startswith(".") for p in parts)
            or "\\" in relative
            or Path(relative).suffix not in REPORT_FILES
        ):
            raise missing
        base = (self.root / key).resolve()
        target = (base / relative).resolve()
        if not target.is_relative_to(base) or not target.is_file():
            raise missing
        return target


def _body(page: str, base: str) -> str:
    """The report's <body> content with relative links pointing under ``base``."""
    start = page.find("<body>")
    end = page.rfind("</body>")
    inner = page[start + len("<body>") : end] if start >= 0 and end > start else page
    return _RELATIVE_LINK.sub(lambda m: f"{m.group(1)}={m.group(2)}{base}", inner)


def _nothing(left_out: dict[str, str]) -> str:
    import html

    items = "".join(
        f"<li><b>{html.escape(name)}</b>: {html.escape(why)}</li>" for name, why in left_out.items()
    )
    nothing = "<p>None of these runs has been evaluated, so there is nothing to compare.</p>"
    return f"{nothing}<ul>{items}</ul>"
