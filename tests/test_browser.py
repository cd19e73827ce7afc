"""The draw-a-digit page in a real browser against a real `mnist-cnn serve` on 127.0.0.1.

Playwright (sync API) drives Debian's Chromium (`apt-get install chromium`); no browser is ever
downloaded. Deselect with `-m "not browser"`. Set MNIST_CNN_SCREENSHOT=path to keep a copy of
the screenshot (docs/serve-page.png was made that way).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} not found (Debian: apt-get install chromium)"
    ),
]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 900, "height": 640}  # CSS px; screenshots at 1 device px per CSS px
IDLE_WITH_ANSWER = (
    "document.body.dataset.state === 'idle' && document.getElementById('digit').textContent !== '–'"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (http://127.0.0.1)
        return response.status, json.loads(response.read())


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(good_run, tmp_path_factory):
    """`mnist-cnn serve` in a subprocess on a free port; its URL once /readyz says ready."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("serve") / "server.log"
    command = [sys.executable, "-m", "mnist_cnn.cli", "serve", str(good_run), "--port", str(port)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited ({process.returncode}):\n{log_path.read_text()}")
            try:
                if get_json(f"{url}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready after 180 s:\n{log_path.read_text()}")
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def stroke(page, box: dict, points: list[tuple[float, float]]) -> None:
    """One mouse stroke through `points`, given as fractions of the canvas."""
    position = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in points]
    page.mouse.move(*position[0])
    page.mouse.down()
    for x, y in position[1:]:
        page.mouse.move(x, y, steps=6)
    page.mouse.up()


SEVEN = [[(0.28, 0.22), (0.72, 0.22), (0.46, 0.82)]]
ZERO = [
    [
        (0.5 + 0.2 * math.sin(a / 24 * 2 * math.pi), 0.5 - 0.3 * math.cos(a / 24 * 2 * math.pi))
        for a in range(26)
    ]
]


def test_draw_digits_and_see_them_predicted(browser, server, tmp_path):
    page = browser.new_page(viewport=VIEWPORT)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    # A stroke too small to be a digit is a designed 422 ("no digit found"), which Chromium
    # also reports on the console; anything else logged as an error is a problem.
    page.on(
        "request",
        lambda r: r.url.startswith(server) or problems.append(f"request off the server: {r.url}"),
    )
    page.goto(server)
    box = page.locator("#pad").bounding_box()

    for expected, strokes in ((7, SEVEN), (0, ZERO)):
        page.click("#clear")
        assert page.text_content("#digit") == "–"
        for points in strokes:
            stroke(page, box, points)
        page.wait_for_function(IDLE_WITH_ANSWER, timeout=20_000)
        shown = int(page.text_content("#digit"))
        canvas = page.evaluate("document.getElementById('pad').toDataURL('image/png')")
        status, api = get_json(f"{server}/predict", {"image": canvas})
        assert status == 200
        assert shown == api["digit"] == expected, api["probabilities"]
        top_bar = page.evaluate(
            "[...document.querySelectorAll('#bars li')].findIndex(li => "
            "li.classList.contains('top'))"
        )
        assert top_bar == expected
        bar_fraction = page.evaluate(
            "(() => { const li = document.querySelector('#bars li.top'); return "
            "li.querySelector('.fill').offsetWidth / li.querySelector('.track').offsetWidth; })()"
        )
        assert bar_fraction == pytest.approx(api["confidence"], abs=0.02)
        assert page.text_content("#confidence") == f"{100 * api['confidence']:.1f}% sure"
        seen_ink = page.evaluate(
            "Array.from(document.getElementById('seen').getContext('2d')"
            ".getImageData(0, 0, 28, 28).data).reduce((a, b) => a + b, 0)"
        )
        assert seen_ink > 255 * 28 * 28  # the model's view is drawn (alpha alone is 255 each)
        if expected == 7:
            screenshot = tmp_path / "serve-page.png"
            page.screenshot(path=str(screenshot))
            with Image.open(screenshot) as shot:
                assert shot.size == (VIEWPORT["width"], VIEWPORT["height"])  # decoded whole
                assert np.asarray(shot.convert("L")).std() > 5  # a page drawn, not blank
            if os.environ.get("MNIST_CNN_SCREENSHOT"):
                shutil.copyfile(screenshot, os.environ["MNIST_CNN_SCREENSHOT"])

    page.click("#clear")
    assert page.text_content("#digit") == "–"
    assert [p for p in problems if "status of 422" not in p] == []
    page.close()
