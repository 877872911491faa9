"""The draw-a-digit page in a real browser: headless Chromium, driven by Playwright, against the running
service. Three MNIST test digits are traced as pen strokes on the canvas, and the page must show the digit."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lit_mnist.data.reader import parse_digits
from tests.conftest import REPO, SHARED_MNIST, require, run_env, served, shared_file

pytestmark = [pytest.mark.slow, pytest.mark.browser]
sync_api = require("playwright.sync_api", "dev")

CHROMIUM = os.environ.get("LIT_MNIST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# as root, in a sandbox of its own, on a machine whose only network is loopback
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
SCREENSHOT = os.environ.get("LIT_MNIST_SCREENSHOT")  # where to keep the page's picture (docs/service.md's)


@pytest.fixture(scope="module")
def service(trained_checkpoint):
    with served(trained_checkpoint) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        why = f"no Chromium at {CHROMIUM} (apt-get install chromium, as .ci/run does)"
        if os.environ.get("CI"):  # CI installs it: missing there is a failure
            pytest.fail(why)
        pytest.skip(why)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


def strokes(row: np.ndarray, scale: float) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """The digit's ink as pen strokes: one horizontal stroke per run of dark-enough pixels in a row."""
    ink = row.reshape(28, 28) > 128
    out = []
    for y in range(28):
        x = 0
        while x < 28:
            if ink[y, x]:
                start = x
                while x < 28 and ink[y, x]:
                    x += 1
                out.append((((start + 0.5) * scale, (y + 0.5) * scale), ((x - 0.5) * scale, (y + 0.5) * scale)))
            x += 1
    return out


def draw(page, row: np.ndarray) -> int:
    box = page.locator("#pad").bounding_box()
    for (x0, y0), (x1, y1) in strokes(row, box["width"] / 28):
        page.mouse.move(box["x"] + x0, box["y"] + y0)
        page.mouse.down()
        page.mouse.move(box["x"] + x1, box["y"] + y1, steps=2)
        page.mouse.up()
    page.wait_for_function("window.litMnist.idle()", timeout=20_000)
    return int(page.locator("#label").get_attribute("data-label"))


def test_digits_drawn_on_the_page_are_recognised(service, browser, tmp_path):
    digits = parse_digits(shared_file("mnist_test.csv.gz"))
    chosen = [0, 1, 2]  # the first three test digits: a 7, a 2 and a 1
    page = browser.new_page(viewport={"width": 900, "height": 520})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(r.url))
    page.goto(service)
    shown = []
    for index in chosen:
        page.click("#clear")
        assert page.locator("#label").get_attribute("data-label") == ""
        shown.append(draw(page, digits.pixels[index]))
        bars = page.locator("#bars .bar")
        assert bars.count() == 10
        seen = page.evaluate("Array.from(document.getElementById('seen').getContext('2d')"
                             ".getImageData(0, 0, 28, 28).data).filter((v, i) => i % 4 == 0)")
        assert max(seen) == 255 and seen[0] == 0  # the prepared 28x28 digit, light on black, is shown
    path = Path(SCREENSHOT) if SCREENSHOT else tmp_path / "page.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 5_000
    assert shown == [int(digits.labels[i]) for i in chosen] and not errors


@pytest.mark.parametrize("body", [["--body", "png"], ["--body", "json", "--batch", "64"], ["--body", "v2", "--batch", "64"]],
                         ids=["png", "json-64", "v2-64"])
def test_a_bounded_load_on_loopback_is_served_without_a_failure(service, body):
    """scripts/loadtest.py against the running service (docs/performance.md's figures: 2,000 requests, 8 clients)."""
    import json

    done = subprocess.run([sys.executable, "scripts/loadtest.py", "--url", service, "--requests", "200",
                           "--concurrency", "4", *body], cwd=REPO, capture_output=True, check=False, text=True,
                          env=run_env(LIT_MNIST_MIRROR=SHARED_MNIST.as_uri()))
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["answered"] == 200 and summary["failed"] == 0 and summary["lost"] == 0
    assert summary["rows_per_second"] == pytest.approx(summary["requests_per_second"] * summary["batch"], rel=0.01)
    assert summary["p99_ms"] >= summary["p50_ms"] > 0 and summary["accuracy"] > 0.8
