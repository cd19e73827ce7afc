"""The draw-a-digit page in a real browser against a real `mnist-cnn serve` on 127.0.0.1.

Playwright (sync API) drives Debian's Chromium (`apt-get install chromium`); no browser is ever
downloaded. Deselect with `-m "not browser"`. Set MNIST_CNN_SCREENSHOT=path to keep a copy of
the screenshot (docs/serve-page.png was made that way).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

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
IDLE_WITH_ERROR = (
    "document.body.dataset.state === 'idle' && "
    "document.getElementById('message').classList.contains('error')"
)
APP_JS = Path(__file__).parents[1] / "src" / "mnist_cnn" / "static" / "app.js"
# Photos larger than this are re-encoded by the page before upload (app.js says why).
PHOTO_MAX_BYTES = int(re.search(r"PHOTO_MAX_BYTES = ([0-9_]+);", APP_JS.read_text())[1])
PAGE_PHOTO_MAX_BYTES = 1_500_000  # static/*.js PHOTO_MAX_BYTES: larger photos are re-encoded
SEEN_PIXELS = (
    "Array.from(document.getElementById('seen').getContext('2d')"
    ".getImageData(0, 0, 28, 28).data).filter((_, i) => i % 4 === 0)"
)  # the red channel of each pixel: the grey level drawn, 0-255


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
    command = [sys.executable, "-m", "mnist_cnn.cli", "serve", "--run", str(good_run)]
    command += ["--port", str(port)]
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


def post_file(url: str, name: str, data: bytes, mime: str) -> tuple[int, dict]:
    """A multipart upload in field "image", as the page's file input sends it."""
    boundary = "mnist-cnn-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"'
        f"\r\nContent-Type: {mime}\r\n\r\n"
    )
    body = head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (127.0.0.1)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def watch_problems(page, server: str) -> list[str]:
    """Page errors, console errors and requests leaving the server, as they happen."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on(
        "request",
        lambda r: (
            r.url.startswith(server)
            or r.url.startswith("blob:")  # the photo's thumbnail
            or problems.append(f"request off the server: {r.url}")
        ),
    )
    return problems


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
    # A stroke too small to be a digit is answered 200 "no digit found", so any error on the
    # console (Chromium logs every 4xx/5xx there) is a problem.
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
    assert problems == []
    page.close()


@pytest.fixture(scope="module")
def predictor(good_run):
    from mnist_cnn.inference import Predictor

    return Predictor.from_dir(good_run)


def direct_answer(predictor, path: Path) -> dict:
    """What `mnist-cnn predict` says about the file: the answer the page must show."""
    from mnist_cnn.predict import predict_files

    [result] = predict_files(predictor, [path])
    assert "error" not in result, result
    return result


def shown_answer(result: dict) -> str:
    return "not sure" if result["digit"] is None else str(result["digit"])


@pytest.fixture(scope="module")
def photos(tmp_path_factory, mnist) -> list[Path]:
    """A JPEG and a PNG of the realistic test pictures (tinted paper, noise, blur, rotation)."""
    from tests.realistic import realistic_pictures

    folder = tmp_path_factory.mktemp("photos")
    chosen: dict[str, Path] = {}
    for picture in realistic_pictures(16, 5, mnist.test.images, mnist.test.labels):
        suffix = Path(picture.name).suffix
        if suffix in (".jpg", ".png") and suffix not in chosen:
            chosen[suffix] = folder / picture.name
            chosen[suffix].write_bytes(picture.data)
    assert set(chosen) == {".jpg", ".png"}, "picture seed 5 no longer gives both kinds"
    return [chosen[".jpg"], chosen[".png"]]


def test_upload_photos_and_see_them_predicted(browser, server, predictor, photos, tmp_path):
    from mnist_cnn.preprocess import preprocess

    page = browser.new_page(viewport=VIEWPORT)
    problems = watch_problems(page, server)
    page.goto(server)
    assert page.text_content("label[for=photo]") == "Upload a photo"
    assert page.get_attribute("#photo", "capture") == "environment"
    for photo in photos:
        assert photo.stat().st_size <= PHOTO_MAX_BYTES  # sent as it is, byte for byte
        page.set_input_files("#photo", str(photo))
        page.wait_for_function(IDLE_WITH_ANSWER, timeout=20_000)
        expected = direct_answer(predictor, photo)
        assert page.text_content("#digit") == shown_answer(expected), photo.name
        confidence = page.text_content("#confidence")
        assert f"{100 * expected['confidence']:.1f}%" in confidence, (photo.name, confidence)
        seen = np.array(page.evaluate(SEEN_PIXELS)).reshape(28, 28)
        model_saw = np.round(255 * preprocess(photo))
        assert seen.sum() > 0 and np.abs(seen - model_saw).max() <= 1, photo.name
        with Image.open(photo) as picture:
            width = picture.width
        thumb_width = page.evaluate(
            "(() => { const t = document.getElementById('thumb'); "
            "return !t.hidden && t.complete ? t.naturalWidth : 0; })()"
        )
        assert thumb_width == width  # the chosen photo is shown, decoded
        assert page.text_content("#message") == ""
    page.screenshot(path=str(tmp_path / "photo-page.png"))
    page.click("#clear")  # back to drawing: no thumbnail, no answer
    assert page.is_hidden("#thumb") and page.text_content("#digit") == "–"
    assert problems == []
    page.close()


def test_a_large_photo_is_scaled_down_to_fit_the_body_limit(
    browser, server, predictor, mnist, tmp_path
):
    """A phone-sized photo (over the page's 1.5 MB upload size) is re-encoded smaller and gets
    its answer in one upload."""
    rng = np.random.default_rng(0)
    height, width = 1800, 2400  # 4.3 megapixels
    digit = Image.fromarray(255 - mnist.test.images[0], mode="L").resize((900, 900))
    gray = np.full((height, width), 225.0)
    gray[450:1350, 750:1650] = np.asarray(digit, dtype=float) * 225 / 255
    noisy = gray[..., None] + rng.normal(0, 6, (height, width, 3))  # sensor noise, 0-255 units
    photo = tmp_path / "phone-photo.png"
    Image.fromarray(np.uint8(np.clip(noisy, 0, 255)), "RGB").save(photo)
    assert photo.stat().st_size > PAGE_PHOTO_MAX_BYTES

    page = browser.new_page(viewport=VIEWPORT)
    problems = watch_problems(page, server)
    statuses: list[int] = []  # of each /predict answer (Playwright omits blob request bodies)
    page.on("response", lambda r: urlparse(r.url).path == "/predict" and statuses.append(r.status))
    page.goto(server)
    page.set_input_files("#photo", str(photo))
    page.wait_for_function(IDLE_WITH_ANSWER, timeout=30_000)
    assert page.text_content("#message") == ""
    assert page.text_content("#digit") == shown_answer(direct_answer(predictor, photo))
    assert statuses == [200]  # one upload, under the cap
    assert problems == []
    page.close()


def test_an_undecodable_file_shows_the_server_error(browser, server):
    page = browser.new_page(viewport=VIEWPORT)
    problems = watch_problems(page, server)
    page.goto(server)
    data = b"shopping list: milk, eggs\n"
    status, body = post_file(f"{server}/predict", "broken.png", data, "image/png")
    assert status == 400 and body["detail"]
    page.set_input_files(
        "#photo", files=[{"name": "broken.png", "mimeType": "image/png", "buffer": data}]
    )
    page.wait_for_function(IDLE_WITH_ERROR, timeout=20_000)
    assert page.text_content("#message") == body["detail"]
    assert page.text_content("#digit") == "–"
    # Chromium logs the designed 400 on the console; nothing else may go wrong.
    assert [p for p in problems if "status of 400" not in p] == []
    page.close()


def test_not_sure_is_shown_instead_of_a_digit(browser, server):
    """The answer for an abstention (digit null and a reason), faked by intercepting /predict."""
    reason = "not sure: the picture does not look like a digit"
    probabilities = [0.01, 0.02, 0.03, 0.05, 0.02, 0.01, 0.3, 0.4123, 0.1277, 0.02]
    answer = {
        "digit": None,
        "reason": reason,
        "confidence": 0.4123,
        "probabilities": probabilities,
        "preprocessed": [[0.0] * 28 for _ in range(28)],
    }
    answered: list[str] = []

    def fake_predict(route):
        answered.append(route.request.method)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(answer))

    page = browser.new_page(viewport=VIEWPORT)
    problems = watch_problems(page, server)
    page.route("**/predict?*", fake_predict)  # the page asks for ?include=preprocessed
    page.goto(server)
    stroke(page, page.locator("#pad").bounding_box(), SEVEN[0])
    page.wait_for_function(IDLE_WITH_ANSWER, timeout=20_000)
    assert answered and set(answered) == {"POST"}
    assert page.text_content("#digit") == "not sure"
    assert page.text_content("#reason") == reason
    assert page.text_content("#confidence") == "best guess 7, 41.2%"
    top_bar = page.evaluate(
        "[...document.querySelectorAll('#bars li')].findIndex(li => li.classList.contains('top'))"
    )
    assert top_bar == 7

    # The next answer, a digit, replaces the "not sure" and its reason.
    answer.update(
        digit=7, confidence=0.9, probabilities=[0.9 if d == 7 else 0.1 / 9 for d in range(10)]
    )
    del answer["reason"]
    page.click("#clear")
    stroke(page, page.locator("#pad").bounding_box(), SEVEN[0])
    page.wait_for_function(IDLE_WITH_ANSWER, timeout=20_000)
    assert page.text_content("#digit") == "7"
    assert page.text_content("#reason") == ""
    assert page.text_content("#confidence") == "90.0% sure"
    assert problems == []
    page.close()
