"""The application: routes, and how each request is checked, queued and answered.

:func:`create_app` builds it for a runs folder. Every answer is JSON, a PNG or a page of
``serve/static``; every failure is ``{"error": "one line"}`` with a 4xx status (503 when the
model queue is full), never a traceback. Torch is imported on first use, not with the module.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from genlab.serve import params
from genlab.serve.limits import (
    CHAIN_ROWS,
    COORD_RANGE,
    LIMITS,
    MANIFOLD_SIZES,
    MAX_COMPARE,
    MAX_COORDS,
    MAX_GUIDANCE,
    MAX_IMAGES,
    MAX_INTERPOLATION,
    MAX_NEIGHBOURS,
    MAX_POINTS,
    MAX_STEPS,
    MAX_TEMPERATURE,
    MIN_POINTS,
)
from genlab.serve.problems import bad_request, not_found, one_line
from genlab.serve.responses import Handler, Json, answer_failure, error, guarded, png_response
from genlab.serve.runs_index import metrics_since, run_record
from genlab.serve.safety import RUN_NAME, Guard, host_checker, run_file
from genlab.serve.state import State

STATIC = Path(__file__).parent / "static"
STATIC_SUFFIXES = (".html", ".js", ".css", ".png", ".svg", ".ico", ".json", ".woff2")
PAGE_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
_IMAGE_NAME = re.compile(r"([0-9]{1,9})\.png")
_INDEX = re.compile(r"[0-9]{1,9}")


# -- requests about the runs folder ----------------------------------------------------------
def _run_name(request: Request) -> str:
    return str(request.path_params["run"])


def routes(state: State) -> list[Route]:
    async def page(name: str) -> Response:
        path = STATIC / name
        if not path.is_file():
            return error(404, f"the page {name} is missing from the installed package")
        return FileResponse(path, media_type="text/html", headers={"Cache-Control": "no-cache"})

    async def index_page(request: Request) -> Response:
        return await page("index.html")

    async def run_page(request: Request) -> Response:
        if not RUN_NAME.fullmatch(_run_name(request)):  # a run that is gone: the page says so
            raise not_found("no such run")
        return await page("run.html")

    async def compare_page(request: Request) -> Response:
        return await page("compare.html")

    async def static_file(request: Request) -> Response:
        relative = str(request.path_params["file"])
        parts = relative.split("/")
        if any(p in ("", ".", "..") or p.startswith(".") for p in parts) or "\\" in relative:
            raise not_found("no such static file")
        suffix = Path(relative).suffix
        path = (STATIC / relative).resolve()
        if (
            suffix not in STATIC_SUFFIXES
            or not path.is_relative_to(STATIC.resolve())
            or not path.is_file()
        ):
            raise not_found("no such static file")
        return FileResponse(
            path, media_type=PAGE_TYPES.get(suffix), headers={"Cache-Control": "no-cache"}
        )

    async def runs(request: Request) -> Response:
        return Json(await run_in_threadpool(state.index.listing))

    async def run_info(request: Request) -> Response:
        name = _run_name(request)
        path = state.folder(name)
        record = await run_in_threadpool(run_record, name, path)
        caps, problem = await run_in_threadpool(state.capabilities, name, path)
        listed = await run_in_threadpool(state.index.listing)
        known = next((r for r in listed["runs"] if r["name"] == name), None)
        errors = [e for e in ((known or record)["error"], problem) if e]
        record.update(
            capabilities=caps,
            limits=LIMITS,
            error=one_line("; ".join(errors)) if errors else None,
        )
        return Json(record)

    async def metrics(request: Request) -> Response:
        path = state.folder(_run_name(request))
        after = params.integer(request.query_params, "after", 0, 0, 10**9)
        return Json(await run_in_threadpool(metrics_since, path, after))

    async def run_files(request: Request) -> Response:
        path = state.folder(_run_name(request))
        target = run_file(path, str(request.path_params["file"]))
        media = "image/png" if target.suffix.lower() == ".png" else "application/json"
        return FileResponse(target, media_type=media, headers={"Cache-Control": "no-cache"})

    # -- drawing -------------------------------------------------------------------------
    async def sample(request: Request) -> Response:
        from genlab.serve import sample_checks

        q = request.query_params
        n = params.integer(q, "n", 16, 1, MAX_IMAGES)
        seed = params.seed(q)
        temperature = params.optional_number(q, "temperature", 0.0, MAX_TEMPERATURE, open_low=True)
        steps = params.optional_integer(q, "steps", 1, MAX_STEPS)
        guidance = params.optional_number(q, "guidance", 0.0, MAX_GUIDANCE)
        label = params.text(q, "class")
        if label is not None and len(label) > 100:
            raise bad_request("class must be a class name or index")

        def work(run: Any) -> bytes:
            from genlab.serve.drawing import png, samples

            request_ = sample_checks.sample_request(
                run.model, n, seed, temperature, steps, label, guidance
            )
            return png(samples(run.model, request_))

        data, seconds = await state.compute(_run_name(request), work)
        return png_response(data, seconds)

    async def chain(request: Request) -> Response:
        from genlab.serve import sample_checks

        q = request.query_params
        n = params.integer(q, "n", 4, 1, CHAIN_ROWS)
        seed = params.seed(q)
        steps = params.optional_integer(q, "steps", 1, MAX_STEPS)
        label = params.text(q, "class")

        def work(run: Any) -> bytes:
            from genlab.serve.drawing import chain, png

            chosen, index = sample_checks.chain_request(run.model, steps, label)
            tiles, columns = chain(run.model, n=n, steps=chosen, seed=seed, label=index)
            return png(tiles, columns)

        data, seconds = await state.compute(_run_name(request), work)
        return png_response(data, seconds)

    # -- the latent explorer -------------------------------------------------------------
    async def latent_map(request: Request) -> Response:
        q = request.query_params
        points = params.integer(q, "points", 500, MIN_POINTS, MAX_POINTS)
        method = params.choice(q, "method", "pca", ("pca", "tsne"))
        name = _run_name(request)
        sprite = f"/api/runs/{quote(name)}/latent/sprite.png?points={points}"

        def work(run: Any) -> dict[str, Any]:
            from genlab.serve import latent

            return latent.latent_map(run, points, method, sprite)

        found, seconds = await state.compute(name, work)
        return Json(found, headers={"X-Genlab-Seconds": f"{seconds:.3f}"})

    async def sprite(request: Request) -> Response:
        points = params.integer(request.query_params, "points", 500, MIN_POINTS, MAX_POINTS)

        def work(run: Any) -> bytes:
            from genlab.serve import latent

            return latent.sprite(run, points)

        data, seconds = await state.compute(_run_name(request), work)
        return png_response(data, seconds)

    def image_index(request: Request) -> int:
        found = _IMAGE_NAME.fullmatch(str(request.path_params["image"]))
        if found is None:
            raise not_found("a test image is named <index>.png")
        return int(found.group(1))

    async def test_image(request: Request) -> Response:
        i = image_index(request)

        def work(run: Any) -> bytes:
            from genlab.serve import latent

            return latent.test_image(run, i)

        data, seconds = await state.compute(_run_name(request), work)
        return png_response(data, seconds)

    async def reconstruction(request: Request) -> Response:
        i = image_index(request)

        def work(run: Any) -> bytes:
            from genlab.serve import latent

            return latent.reconstruction(run, i)

        data, seconds = await state.compute(_run_name(request), work)
        return png_response(data, seconds)

    async def neighbours(request: Request) -> Response:
        raw = str(request.path_params["i"])
        if not _INDEX.fullmatch(raw):
            raise not_found("neighbours/<test index>")
        k = params.integer(request.query_params, "k", 8, 1, MAX_NEIGHBOURS)

        def work(run: Any) -> dict[str, Any]:
            from genlab.serve import latent

            return latent.neighbours(run, int(raw), k)

        found, seconds = await state.compute(_run_name(request), work)
        return Json(found, headers={"X-Genlab-Seconds": f"{seconds:.3f}"})

    async def interpolate(request: Request) -> Response:
        q = request.query_params
        a = params.integer(q, "a", 0, 0, params.MAX_SEED)
        b = params.integer(q, "b", 1, 0, params.MAX_SEED)
        steps = params.integer(q, "steps", 8, 2, MAX_INTERPOLATION)
        label = params.text(q, "class")

        def work(run: Any) -> bytes:
            from genlab.serve import latent, sample_checks

            index = sample_checks.class_of(run.model, label)
            return latent.interpolation(run, a, b, steps, index)

        data, seconds = await state.compute(_run_name(request), work)
        return png_response(data, seconds)

    async def decode(request: Request) -> Response:
        q = request.query_params
        coords = params.numbers(
            params.text(q, "coords"), "coords", MAX_COORDS, -COORD_RANGE, COORD_RANGE
        )
        label = params.text(q, "class")

        def work(run: Any) -> bytes:
            from genlab.serve import latent, sample_checks

            return latent.decode_at(run, coords, sample_checks.class_of(run.model, label))

        data, seconds = await state.compute(_run_name(request), work)
        return png_response(data, seconds)

    async def manifold(request: Request) -> Response:
        q = request.query_params
        size = params.integer(q, "size", 15, *MANIFOLD_SIZES)
        label = params.text(q, "class")

        def work(run: Any) -> bytes:
            from genlab.serve import latent, sample_checks

            return latent.manifold(run, size, sample_checks.class_of(run.model, label))

        data, seconds = await state.compute(_run_name(request), work)
        return png_response(data, seconds)

    # -- comparison ------------------------------------------------------------------------
    async def compare(request: Request) -> Response:
        names = params.names(params.text(request.query_params, "runs"), "runs", MAX_COMPARE)
        runs = [(name, state.folder(name)) for name in names]
        found = await state.queue.run(lambda: state.reports.render(runs))
        return Json(found)

    async def compare_file(request: Request) -> Response:
        path = state.reports.file(str(request.path_params["key"]), str(request.path_params["file"]))
        media = {".html": "text/html", ".png": "image/png", ".md": "text/markdown"}
        return FileResponse(path, media_type=media.get(path.suffix))

    table: list[tuple[str, Handler]] = [
        ("/", index_page),
        ("/runs/{run}", run_page),
        ("/compare", compare_page),
        ("/static/{file:path}", static_file),
        ("/api/runs", runs),
        ("/api/runs/{run}", run_info),
        ("/api/runs/{run}/metrics", metrics),
        ("/api/runs/{run}/files/{file:path}", run_files),
        ("/api/runs/{run}/sample.png", sample),
        ("/api/runs/{run}/chain.png", chain),
        ("/api/runs/{run}/latent", latent_map),
        ("/api/runs/{run}/latent/sprite.png", sprite),
        ("/api/runs/{run}/test/{image}", test_image),
        ("/api/runs/{run}/reconstruction/{image}", reconstruction),
        ("/api/runs/{run}/neighbours/{i}", neighbours),
        ("/api/runs/{run}/interpolate.png", interpolate),
        ("/api/runs/{run}/decode.png", decode),
        ("/api/runs/{run}/manifold.png", manifold),
        ("/api/compare", compare),
        ("/api/compare/{key}/{file:path}", compare_file),
    ]
    return [Route(path, guarded(handler), methods=["GET", "HEAD"]) for path, handler in table]


async def _http_problem(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return error(404, f"no such page or API: {request.url.path[:100]}")
    if status == 405:
        return error(405, "only GET and HEAD are allowed", {"Allow": "GET, HEAD"})
    return error(status, str(getattr(exc, "detail", "error")))


async def _unexpected(request: Request, exc: Exception) -> Response:
    return answer_failure(exc)


def create_app(
    runs_dir: Path,
    *,
    host: str,
    port: int,
    cache_bytes: int,
    queue: int,
    threads: int | None = None,
    device: str = "auto",
) -> Starlette:
    """The application serving ``runs_dir`` to requests addressed to ``host:port``."""
    state = State(runs_dir, cache_bytes=cache_bytes, queue=queue, threads=threads, device=device)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            state.close()

    app = Starlette(
        routes=routes(state),
        exception_handlers={HTTPException: _http_problem, Exception: _unexpected},
        lifespan=lifespan,
    )
    app.state.genlab = state
    app.add_middleware(Guard, check_host=host_checker(host, port))
    return app
