"""Screenshots of `genlab serve`'s pages for the README, taken in headless chromium.

Starts `genlab serve` over a runs folder and writes into docs/serve/:

- ``runs.png``     the runs page;
- ``run.png``      a run's page (curves, latest grid) after a click on "Sample";
- ``latent.png``   its latent explorer with a point clicked and an interpolation drawn;
- ``chain.png``    a Markov chain's (or a diffusion sampler's) steps, where a run has them;
- ``compare.png``  the compare page with the runs that have an evaluation.

    python benchmarks/serve_screenshots.py runs/ [--run NAME] [--out docs/serve]

Needs the serve extra, playwright (the Python package) and Debian's chromium.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from serve_load import Server, fetch

ROOT = Path(__file__).resolve().parent.parent
WAIT_MS = 120_000
# the point of the latent map drawn farthest from point 0
FARTHEST = """() => {
  const map = window.genlab.latent;
  const a = map.screenPoint(0);
  let best = 0;
  let far = -1;
  for (let k = 0; k < map.count(); k += 1) {
    const p = map.screenPoint(k);
    const d = Math.abs(p.x - a.x) + Math.abs(p.y - a.y);
    if (d > far) { far = d; best = k; }
  }
  return best;
}"""


def runs_with_capabilities(server: Server) -> list[dict[str, Any]]:
    status, body, _ = fetch("127.0.0.1", server.port, "/api/runs")
    if status != 200:
        raise SystemExit(f"serve_screenshots: /api/runs answered {status}")
    found = []
    for entry in json.loads(body)["runs"]:
        if entry.get("error"):
            continue
        status, body, _ = fetch("127.0.0.1", server.port, f"/api/runs/{quote(entry['name'])}")
        if status == 200:
            found.append({**entry, "capabilities": json.loads(body).get("capabilities") or {}})
    return found


def pick(runs: list[dict[str, Any]], wanted: str | None) -> dict[str, Any]:
    """The run to show: the one asked for, else an evaluated encoder with a sample grid (a
    VAE first), else any encoder, else any run that samples."""
    if wanted:
        for run in runs:
            if run["name"] == wanted:
                return run
        raise SystemExit(f"serve_screenshots: no readable run {wanted!r} in the folder")

    def score(run: dict[str, Any]) -> tuple[int, ...]:
        caps = run["capabilities"]
        return (
            caps.get("latent") == "encoder",
            bool(run.get("headline")),
            bool(run.get("latest_grid")),
            run.get("family") == "vae",
            caps.get("latent_dim") == 2,
            bool(caps.get("sample")),
        )

    if not runs:
        raise SystemExit("serve_screenshots: the runs folder has no readable run")
    return max(runs, key=score)


def wait_seq(page: Any, selector: str, above: int = 0) -> None:
    page.wait_for_function(
        "([s, n]) => Number(document.querySelector(s)?.dataset.seq || 0) > n",
        arg=[selector, above],
        timeout=WAIT_MS,
    )


def shoot(base: str, runs: list[dict[str, Any]], run: dict[str, Any], out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("serve_screenshots: needs Debian's chromium on PATH")
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        context = browser.new_context(
            viewport={"width": 1400, "height": 900}, device_scale_factor=1, base_url=base
        )
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)

        page.goto("/")
        page.locator('tr[data-testid="run-row"]').first.wait_for()
        page.wait_for_timeout(300)
        written.append(out / "runs.png")
        page.screenshot(path=written[-1], full_page=True)

        name = run["name"]
        caps = run["capabilities"]
        page.goto(f"/runs/{quote(name)}")
        page.wait_for_function(
            "() => Number(document.querySelector('#curves').dataset.records) > 0"
        )
        if caps.get("latent"):  # let the explorer's first pictures come before sampling
            wait_seq(page, "#decode-image")
        if caps.get("sample"):
            page.locator("#sample-button").click()
            wait_seq(page, "#sample-image")
        page.mouse.move(0, 0)
        # the summary and the first row of panels (curves, latest grid, sample)
        row = page.locator("#sample-panel").bounding_box()
        assert row is not None
        written.append(out / "run.png")
        page.screenshot(
            path=written[-1],
            full_page=True,
            clip={
                "x": 0,
                "y": 0,
                "width": 1400,
                "height": row["y"] + row["height"] + 16,
            },
        )
        if caps.get("latent") == "encoder":
            page.wait_for_function("() => window.genlab?.latent?.count() > 0", timeout=WAIT_MS)
            at = page.evaluate("(k) => window.genlab.latent.screenPoint(k)", 0)
            page.locator("#latent-map").click(position={"x": at["cx"], "y": at["cy"]})
            wait_seq(page, "#latent-recon")
            page.locator('[data-testid="neighbour"]').first.wait_for()
            far = page.evaluate(FARTHEST)
            end = page.evaluate("(k) => window.genlab.latent.screenPoint(k)", far)
            # shift-click: the line from the selected point to this one
            page.locator("#latent-map").click(
                position={"x": end["cx"], "y": end["cy"]}, modifiers=["Shift"]
            )
            wait_seq(page, "#interp-image")
            if caps.get("manifold"):
                wait_seq(page, "#manifold-image")
        if caps.get("latent"):
            wait_seq(page, "#decode-image")
            page.mouse.move(0, 0)
            written.append(out / "latent.png")
            page.locator("#latent-panel").screenshot(path=written[-1])

        # a diffusion's sampler steps, else an RBM's chain, else any chain
        chains = [r for r in runs if r["capabilities"].get("steps")]
        chained = max(
            chains,
            key=lambda r: (r["capabilities"]["steps"] == "iterative", r.get("family") == "rbm"),
            default=None,
        )
        if chained is not None:
            page.goto(f"/runs/{quote(chained['name'])}")
            page.locator("#chain-panel").wait_for(state="visible")
            page.locator("#chain-button").click()
            wait_seq(page, "#chain-image")
            written.append(out / "chain.png")
            page.locator("#chain-panel").screenshot(path=written[-1])

        # one evaluated run per family (at most 8), else any runs
        chosen: dict[str, str] = {}
        for r in runs:
            if r.get("headline") and len(chosen) < 8:
                chosen.setdefault(str(r.get("family")), r["name"])
        names = list(chosen.values()) or [r["name"] for r in runs[:8]]
        page.set_viewport_size({"width": 1400, "height": 1100})
        page.goto(f"/compare?runs={','.join(quote(n) for n in names)}")
        page.wait_for_function(
            "() => Number(document.querySelector('#compare-frame').dataset.loaded || 0) > 0",
            timeout=WAIT_MS,
        )
        page.wait_for_timeout(500)
        written.append(out / "compare.png")
        page.screenshot(path=written[-1], full_page=False)
        browser.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs_dir", type=Path, help="the runs folder to serve")
    parser.add_argument("--run", help="the run whose page is shown (default: chosen)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "serve", help="folder")
    args = parser.parse_args()
    if not args.runs_dir.is_dir():
        raise SystemExit(f"serve_screenshots: {str(args.runs_dir)!r} is not a folder")
    try:
        import playwright  # noqa: F401
    except ImportError:
        raise SystemExit("serve_screenshots: needs playwright: pip install playwright") from None
    args.out.mkdir(parents=True, exist_ok=True)
    server = Server(args.runs_dir)
    try:
        runs = runs_with_capabilities(server)
        run = pick(runs, args.run)
        written = shoot(server.base, runs, run, args.out)
    finally:
        server.stop()
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
