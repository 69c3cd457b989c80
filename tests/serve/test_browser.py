"""`genlab serve` in a real browser: Debian's chromium, headless, driven by Playwright's Python
API against the real server (uvicorn in a thread) over a folder of tiny trained runs.

The module is skipped, with the reason, where playwright, chromium or the serve extra is
missing; CI installs all three. It is part of `make test` (about half a minute on 2 cores,
the tiny runs' training included).
"""

from __future__ import annotations

import io
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="the browser tests need playwright (pip install -e '.[test]'; no browser download: "
    "they drive Debian's chromium)",
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip(
        "the browser tests need Debian's chromium on PATH (apt-get install chromium)",
        allow_module_level=True,
    )
uvicorn = pytest.importorskip(
    "uvicorn", reason="the browser tests need the serve extra: pip install -e '.[serve]'"
)
pytest.importorskip("httpx", reason="the serve tests' fixtures need httpx (the test extra)")

from genlab.runs import RunDir  # noqa: E402
from genlab.runs.guard import training_lock  # noqa: E402
from genlab.serve.app import create_app  # noqa: E402

WAIT_MS = 30_000  # the longest a page may take to show what a test waits for
LIVE = "00090-digits-live"  # a copy of the VAE that a test marks as training
BROKEN = "00091-digits-broken"  # a folder whose config.json is not JSON


# -- the runs folder and the server ------------------------------------------------------------


@pytest.fixture(scope="module")
def runs_dir(trained: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copies of the session's tiny runs (conftest.py: a VAE with a 2-D latent space and an
    evaluation, a conditional VAE, a GAN, an RBM, a diffusion, a flow, a denoising AE), a copy
    of the VAE for the training test and a broken folder: this module adds and changes runs,
    so it works on its own folder."""
    runs = tmp_path_factory.mktemp("browser") / "runs"
    runs.mkdir()
    for path in trained.values():
        shutil.copytree(path, runs / path.name, symlinks=True)
    shutil.copytree(trained["vae"], runs / LIVE, symlinks=True)
    (runs / BROKEN).mkdir()
    (runs / BROKEN / "config.json").write_text("{ not json", encoding="utf-8")
    return runs


@pytest.fixture(scope="module")
def run_names(trained: dict[str, Path]) -> dict[str, str]:
    """family key (conftest.FAMILIES) -> run name."""
    return {key: path.name for key, path in trained.items()}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(runs_dir: Path) -> Iterator[str]:
    """The real app under uvicorn in a thread of this process; yields its base URL."""
    port = _free_port()
    app = create_app(runs_dir, host="127.0.0.1", port=port, cache_bytes=256 << 20, queue=8)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("genlab serve did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=15)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1300, "height": 1000}, base_url=server)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"the page raised: {errors}"


# -- pictures -------------------------------------------------------------------------------


def assert_not_blank(png: bytes, what: str, spread: float = 8.0) -> None:
    """A screenshot holds a picture: its grey levels vary (not one flat colour)."""
    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    assert grey.size > 0 and grey.std() > spread, f"{what} looks blank (std {grey.std():.2f})"


def wait_seq(page: Any, selector: str, above: int) -> int:
    """Wait until the image's data-seq (pictures it has shown) exceeds ``above``."""
    page.wait_for_function(
        "([s, n]) => Number(document.querySelector(s)?.dataset.seq || 0) > n", arg=[selector, above]
    )
    return int(page.locator(selector).get_attribute("data-seq"))


def wait_map(page: Any) -> None:
    page.wait_for_function(
        "() => window.genlab && window.genlab.latent && window.genlab.latent.count() > 0"
    )


def point(page: Any, k: int) -> dict[str, float]:
    """Where point k of the latent map is drawn, relative to the canvas (cx, cy)."""
    return dict(page.evaluate("(k) => window.genlab.latent.screenPoint(k)", k))


def click_point(page: Any, k: int, *, shift: bool = False) -> None:
    at = point(page, k)
    page.locator("#latent-map").click(
        position={"x": at["cx"], "y": at["cy"]}, modifiers=["Shift"] if shift else None
    )


def distant_points(page: Any) -> tuple[int, int]:
    """Two points of the map drawn far enough apart to be clicked one by one."""
    count = page.evaluate("() => window.genlab.latent.count()")
    first = point(page, 0)
    for k in range(1, count):
        other = point(page, k)
        if abs(other["cx"] - first["cx"]) + abs(other["cy"] - first["cy"]) > 60:
            return 0, k
    raise AssertionError("every point of the latent map is drawn at one place")


# -- the tests ------------------------------------------------------------------------------


def test_runs_page_lists_the_runs_and_an_error_card(page: Any, run_names: dict[str, str]) -> None:
    page.goto("/")
    for name in [*run_names.values(), LIVE]:
        page.locator(f'tr[data-run="{name}"]').wait_for()
    row = page.locator(f'tr[data-run="{run_names["vae"]}"]')
    assert row.locator('[data-col="family"]').inner_text() == "vae"
    assert row.locator('[data-col="data"]').inner_text() == "digits"
    assert row.locator('[data-col="status"]').inner_text() == "finished"
    assert "bits/dim" in row.locator('[data-col="headline"]').inner_text()  # it is evaluated
    card = page.locator(f'[data-testid="error-card"][data-run="{BROKEN}"]')
    card.wait_for()
    assert card.locator("p").inner_text().strip(), "the broken run's card says nothing"
    assert page.locator(f'tr[data-run="{BROKEN}"]').count() == 0
    assert page.locator("#error").is_hidden()
    assert_not_blank(page.screenshot(full_page=True), "the runs page")


def test_a_new_run_appears_without_a_reload(
    page: Any, runs_dir: Path, run_names: dict[str, str]
) -> None:
    page.goto("/")
    page.locator('tr[data-testid="run-row"]').first.wait_for()
    page.evaluate("() => { window.__same_page = true; }")
    before = page.locator('tr[data-testid="run-row"]').count()
    added = runs_dir / "00092-digits-added"
    shutil.copytree(runs_dir / run_names["gan"], added)
    try:
        page.locator(f'tr[data-run="{added.name}"]').wait_for(timeout=10_000)
        assert page.locator('tr[data-testid="run-row"]').count() == before + 1
        assert page.evaluate("() => window.__same_page === true"), "the page was reloaded"
    finally:
        shutil.rmtree(added)
    page.locator(f'tr[data-run="{added.name}"]').wait_for(state="detached", timeout=10_000)


def test_the_sample_button_draws_a_new_image(page: Any, run_names: dict[str, str]) -> None:
    page.goto(f"/runs/{run_names['vae']}")
    page.locator("#sample-button").click()
    seq = wait_seq(page, "#sample-image", 0)
    first_src = page.locator("#sample-image").get_attribute("src")
    first = page.locator("#sample-image").screenshot()
    assert_not_blank(first, "the sample grid")
    assert "model" in page.locator("#sample-latency").inner_text()
    page.locator("#sample-next").click()  # seed 1
    wait_seq(page, "#sample-image", seq)
    assert page.locator("#sample-image").get_attribute("src") != first_src
    second = page.locator("#sample-image").screenshot()
    assert_not_blank(second, "the second sample grid")
    assert second != first, "another seed drew the same picture"
    assert page.locator("#sample-error").is_hidden()
    assert page.locator("#sample-temperature-field").is_hidden()  # a VAE has no temperature


def test_an_api_error_is_one_line_in_the_page(page: Any, run_names: dict[str, str]) -> None:
    page.goto(f"/runs/{run_names['vae']}")
    page.locator("#sample-seed").fill("-1")
    page.locator("#sample-button").click()
    message = page.locator("#sample-error")
    message.wait_for(state="visible")
    text = message.inner_text()
    assert text.startswith("sample: ") and "seed" in text
    assert "\n" not in text and "Traceback" not in text
    assert page.locator("#sample-image").get_attribute("data-seq") == "0"


def test_a_click_on_the_latent_map_shows_a_reconstruction(
    page: Any, run_names: dict[str, str]
) -> None:
    page.goto(f"/runs/{run_names['vae']}")
    wait_map(page)
    assert_not_blank(page.locator("#latent-map").screenshot(), "the latent map")
    click_point(page, 0)
    wait_seq(page, "#latent-recon", 0)
    wait_seq(page, "#latent-test", 0)
    assert_not_blank(page.locator("#latent-recon").screenshot(), "the reconstruction")
    assert_not_blank(page.locator("#latent-test").screenshot(), "the test image")
    page.locator('[data-testid="neighbour"]').first.wait_for()
    assert page.locator('[data-testid="neighbour"]').count() > 0
    assert page.locator("#latent-map").get_attribute("data-selected") is not None
    # the 2-D latent's manifold grid, and the sliders decoding as they move
    wait_seq(page, "#manifold-image", 0)
    assert_not_blank(page.locator("#manifold-image").screenshot(), "the manifold grid")
    decoded = wait_seq(page, "#decode-image", 0)
    assert page.locator("#slider-2").count() == 0  # a 2-D latent has two directions
    page.locator("#slider-0").fill("2")
    wait_seq(page, "#decode-image", decoded)
    assert page.locator("#decode-image").get_attribute("data-coords").startswith("2.00,")
    assert page.locator("#latent-error").is_hidden()


def test_picking_two_points_shows_an_interpolation(page: Any, run_names: dict[str, str]) -> None:
    page.goto(f"/runs/{run_names['vae']}")
    wait_map(page)
    a, b = distant_points(page)
    page.locator("#pick-two").click()
    for k in (a, b):
        click_point(page, k)
    wait_seq(page, "#interp-image", 0)
    strip = page.locator("#interp-image")
    assert_not_blank(strip.screenshot(), "the interpolation strip")
    box = strip.bounding_box()
    assert box and box["width"] > 3 * box["height"], "an interpolation is a strip"
    assert page.locator("#interp-caption").inner_text().startswith("test #")
    # shift-click does the same without the mode
    page.locator("#pick-two").click()
    seq = int(strip.get_attribute("data-seq"))
    for k in (b, a):
        click_point(page, k, shift=True)
    wait_seq(page, "#interp-image", seq)


def test_a_training_run_gains_a_curve_point_without_a_reload(page: Any, runs_dir: Path) -> None:
    """The run is marked as training the way a trainer marks it (run.json's status, and the
    lock held by a live process: this one); a record appended to metrics.jsonl shows up."""
    live = RunDir(runs_dir / LIVE)
    with training_lock(live):
        live.update_info(status="training")
        try:
            page.goto(f"/runs/{LIVE}")
            canvas = page.locator("#curves")
            page.wait_for_function(
                "() => Number(document.querySelector('#curves').dataset.records) > 0"
            )
            page.locator('#run-status[data-status="training"]').wait_for()
            page.evaluate("() => { window.__same_page = true; }")
            records = int(canvas.get_attribute("data-records"))
            points = int(canvas.get_attribute("data-points"))
            last = live.read_metrics()[-1]
            live.append_metrics(
                {
                    **last,
                    "epoch": last["epoch"] + 1,
                    "step": last["step"] + 12,
                    "train/loss": last["train/loss"] * 0.9,
                    "val/loss": last["val/loss"] * 0.9,
                }
            )
            page.wait_for_function(
                "(n) => Number(document.querySelector('#curves').dataset.records) > n",
                arg=records,
                timeout=10_000,
            )
            assert int(canvas.get_attribute("data-points")) > points
            assert page.evaluate("() => window.__same_page === true"), "the page was reloaded"
            assert_not_blank(canvas.screenshot(), "the curves")
        finally:
            live.update_info(status="finished")


def test_a_chain_is_drawn_for_an_rbm(page: Any, run_names: dict[str, str]) -> None:
    page.goto(f"/runs/{run_names['rbm']}")
    page.locator("#chain-panel").wait_for(state="visible")
    assert page.locator("#chain-title").inner_text() == "Markov chain"
    page.locator("#chain-steps").fill("20")
    page.locator("#chain-button").click()
    wait_seq(page, "#chain-image", 0)
    assert_not_blank(page.locator("#chain-image").screenshot(), "the chain")
    assert page.locator("#latent-panel").is_hidden()  # an RBM has no codes to map


def test_a_diffusion_shows_its_sampler_steps(page: Any, run_names: dict[str, str]) -> None:
    page.goto(f"/runs/{run_names['diffusion']}")
    page.locator("#chain-panel").wait_for(state="visible")
    assert page.locator("#chain-title").inner_text() == "Sampler steps"
    assert page.locator("#sample-steps-field").is_visible()
    page.locator("#chain-button").click()
    wait_seq(page, "#chain-image", 0)
    assert_not_blank(page.locator("#chain-image").screenshot(), "the sampler's steps")
    assert page.locator("#chain-error").is_hidden()


def test_a_flow_samples_at_a_temperature(page: Any, run_names: dict[str, str]) -> None:
    page.goto(f"/runs/{run_names['flow']}")
    page.locator("#sample-temperature-field").wait_for(state="visible")
    page.locator("#sample-temperature").fill("0.7")
    page.locator("#sample-button").click()
    wait_seq(page, "#sample-image", 0)
    assert "temperature=0.7" in page.locator("#sample-image").get_attribute("data-url")
    assert_not_blank(page.locator("#sample-image").screenshot(), "the flow's samples")


def test_a_conditional_run_samples_a_chosen_class(page: Any, run_names: dict[str, str]) -> None:
    page.goto(f"/runs/{run_names['cvae']}")
    page.locator("#sample-class-field").wait_for(state="visible")
    page.locator("#sample-class").select_option("3")
    page.locator("#sample-button").click()
    wait_seq(page, "#sample-image", 0)
    assert "class=3" in page.locator("#sample-image").get_attribute("data-url")
    assert page.locator("#sample-error").is_hidden()
    # the latent explorer decodes for the class chosen there
    page.locator("#latent-class-field").wait_for(state="visible")
    seq = wait_seq(page, "#decode-image", 0)
    page.locator("#latent-class").select_option("5")
    wait_seq(page, "#decode-image", seq)
    assert "class=5" in page.locator("#decode-image").get_attribute("data-url")
    assert page.locator("#latent-error").is_hidden()


def test_a_gan_interpolates_between_seeds(page: Any, run_names: dict[str, str]) -> None:
    page.goto(f"/runs/{run_names['gan']}")
    page.locator("#latent-panel").wait_for(state="visible")
    assert page.locator("#latent-map-side").is_hidden()  # no encoder: no map
    page.locator("#interp-button").click()
    wait_seq(page, "#interp-image", 0)
    assert_not_blank(page.locator("#interp-image").screenshot(), "the GAN's interpolation")
    wait_seq(page, "#decode-image", 0)
    assert page.locator("#latent-error").is_hidden()


def test_a_broken_run_page_shows_its_error(page: Any) -> None:
    page.goto(f"/runs/{BROKEN}")
    page.locator("#run-error").wait_for(state="visible")
    assert page.locator("#run-error-text").inner_text().strip()
    assert page.locator("#panels").is_hidden()


def test_compare_selected_shows_the_report(page: Any, run_names: dict[str, str]) -> None:
    """Runs ticked on the runs page, "Compare selected": the comparison of the evaluated one,
    the other listed as not evaluated."""
    names = [run_names["vae"], run_names["gan"]]  # the GAN is not evaluated
    page.goto("/")
    for name in names:
        page.locator(f'tr[data-run="{name}"] input[type="checkbox"]').check()
    page.locator("#compare-selected").click()
    page.wait_for_url("**/compare?runs=*")
    assert all(name in page.url for name in names)
    page.wait_for_function(
        "() => Number(document.querySelector('#compare-frame').dataset.loaded || 0) > 0",
        timeout=120_000,
    )
    report = page.frame_locator("#compare-frame").locator("body")
    assert names[0] in report.inner_text()
    assert "not evaluated" in page.locator("#compare-status").inner_text()
    assert page.locator("#error").is_hidden()
    assert_not_blank(page.screenshot(full_page=True), "the compare page")


def test_the_pages_fetch_nothing_from_elsewhere(
    page: Any, server: str, run_names: dict[str, str]
) -> None:
    """Every request a page makes goes to this server (no CDN, no web fonts)."""
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    for path in ("/", f"/runs/{run_names['vae']}", "/compare"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
    elsewhere = [url for url in seen if not url.startswith((server, "blob:", "data:"))]
    assert seen and not elsewhere, elsewhere
