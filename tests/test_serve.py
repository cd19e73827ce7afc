"""The HTTP API in-process (`with TestClient(app)`): every success and every error class."""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import re
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from mnist_cnn.abstain import Answer
from mnist_cnn.cli import main
from mnist_cnn.inference import Predictor
from mnist_cnn.preprocess import preprocess
from mnist_cnn.request_guard import DEFAULT_MAX_BODY_BYTES
from mnist_cnn.run import ModelLoadError
from mnist_cnn.serve import STATIC_DIR, create_app


@pytest.fixture(scope="module")
def client(tiny_run):
    with TestClient(create_app(tiny_run)) as client:
        yield client


@pytest.fixture(scope="module")
def digit(mnist) -> np.ndarray:
    """An MNIST test digit as float32 in [0, 1] (white ink on black)."""
    return mnist.test.images[0].astype(np.float32) / 255


def png_bytes(image: np.ndarray, size: int = 140, fmt: str = "PNG") -> bytes:
    """A canvas-like picture: black ink on white, scaled up."""
    pixels = Image.fromarray(np.uint8(255 - 255 * image)).resize((size, size))
    buffer = io.BytesIO()
    pixels.save(buffer, fmt)
    return buffer.getvalue()


def check_prediction(body: dict, *, preprocessed: bool = False) -> None:
    """An answer's fields; `preprocessed` only when asked for (`?include=preprocessed`)."""
    fields = {"digit", "confidence", "probabilities"}
    assert set(body) == (fields | {"preprocessed"} if preprocessed else fields)
    probabilities = np.array(body["probabilities"])
    assert probabilities.shape == (10,) and abs(probabilities.sum() - 1) < 1e-4
    assert body["digit"] == int(np.argmax(probabilities))
    assert body["confidence"] == pytest.approx(probabilities.max())
    if not preprocessed:
        return
    preprocessed = np.array(body["preprocessed"])
    assert preprocessed.shape == (28, 28) and preprocessed.min() >= 0 and preprocessed.max() <= 1


def test_health_and_ready(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json() == {"status": "ready"}


def test_pixels_pass_through_unchanged(client, digit):
    response = client.post("/predict?include=preprocessed", json={"pixels": digit.tolist()})
    assert response.status_code == 200
    body = response.json()
    check_prediction(body, preprocessed=True)
    np.testing.assert_allclose(body["preprocessed"], digit, atol=5e-5)  # rounded to 4 places
    plain = client.post("/predict", json={"pixels": digit.tolist()}).json()
    check_prediction(plain)  # without asking, the 784 numbers are left out
    assert plain == {key: value for key, value in body.items() if key != "preprocessed"}


def test_upload_data_url_and_base64_agree(client, digit):
    data = png_bytes(digit)
    upload = client.post("/predict", files={"image": ("digit.png", data, "image/png")})
    assert upload.status_code == 200
    check_prediction(upload.json())
    encoded = base64.b64encode(data).decode()
    for image in (f"data:image/png;base64,{encoded}", encoded):
        response = client.post("/predict", json={"image": image})
        assert response.status_code == 200
        assert response.json() == upload.json()


def test_jpeg_upload(client, digit):
    data = png_bytes(digit, fmt="JPEG")
    response = client.post("/predict", files={"image": ("d.jpg", data, "application/octet-stream")})
    assert response.status_code == 200
    check_prediction(response.json())


class RecordingPredictor:
    """The real predictor, slowed so that concurrent requests pile up; records batch sizes."""

    def __init__(self, predictor: Predictor, seconds_per_call: float = 0.2) -> None:
        self.predictor = predictor
        self.seconds_per_call = seconds_per_call
        self.batch_sizes: list[int] = []

    @property
    def backend(self) -> str:
        return self.predictor.backend

    def answers(self, images: np.ndarray) -> list:
        self.batch_sizes.append(len(images))
        time.sleep(self.seconds_per_call)  # requests arriving meanwhile queue for the next call
        return self.predictor.answers(images)


def test_concurrent_requests_are_batched_and_answered_each(tiny_run, mnist):
    images = mnist.test.images[:12].astype(np.float32) / 255
    # Even requests send pixels, odd ones a PNG upload: both go through preprocess.
    sources = [image if index % 2 == 0 else png_bytes(image) for index, image in enumerate(images)]
    predictor = Predictor.from_dir(tiny_run)
    expected = [predictor.probabilities(preprocess(source)[None])[0] for source in sources]
    differences = [np.abs(a - b).max() for a, b in itertools.combinations(expected, 2)]
    assert min(differences) > 1e-3  # else a response swapped between requests goes unnoticed

    recording = RecordingPredictor(predictor)
    results: list = [None] * len(sources)

    def post(index: int) -> None:
        if index % 2 == 0:
            request = {"json": {"pixels": sources[index].tolist()}}
        else:
            request = {"files": {"image": (f"{index}.png", sources[index], "image/png")}}
        results[index] = client.post("/predict?include=preprocessed", **request)

    with TestClient(create_app(tiny_run, predictor=recording)) as client:
        recording.batch_sizes.clear()  # the warm-up call
        threads = [threading.Thread(target=post, args=(i,)) for i in range(len(sources))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert sum(recording.batch_sizes) == len(sources), recording.batch_sizes
    assert max(recording.batch_sizes) > 1, recording.batch_sizes  # a batch formed
    for index, response in enumerate(results):
        assert response.status_code == 200, response.text
        body = response.json()
        check_prediction(body, preprocessed=True)
        # Rounded to 6 places in the response; batched and single calls differ by ~1e-7.
        np.testing.assert_allclose(body["probabilities"], expected[index], atol=2e-6)
        np.testing.assert_allclose(body["preprocessed"], preprocess(sources[index]), atol=5e-5)


def test_body_over_cap_by_content_length_is_413_before_parsing(client):
    body = b"{" * (DEFAULT_MAX_BODY_BYTES + 1)  # also invalid JSON: a 400 would mean parsing
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert f"over {DEFAULT_MAX_BODY_BYTES} bytes" in response.json()["detail"]
    assert response.headers["connection"] == "close"


def test_chunked_body_over_cap_is_413(client):
    def chunks():
        for _ in range(DEFAULT_MAX_BODY_BYTES // 1_000_000 + 1):
            yield b" " * 1_000_000

    response = client.post("/predict", content=chunks(), headers={"content-type": "text/plain"})
    assert response.status_code == 413


def test_invalid_content_length_is_400(tiny_run):
    app = create_app(tiny_run)
    response = TestClient(app).post("/predict", content=b"{}", headers={"content-length": "x"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"content": b"digits", "headers": {"content-type": "text/plain"}}, 415, "Content-Type"),
        ({"content": b"{}"}, 415, "(none)"),
        (
            {
                "content": b"\x1f\x8b",
                "headers": {"content-type": "application/json", "content-encoding": "gzip"},
            },
            415,
            "Content-Encoding gzip",
        ),
        ({"content": b"{", "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
        ({"json": {"image": "not base64!"}}, 400, "not valid base64"),
        ({"json": {"image": "data:image/png,abc"}}, 400, "base64 data URL"),
        ({"json": {"image": base64.b64encode(b"garbage").decode()}}, 400, "not an image"),
        ({"files": {"image": ("x.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40)}}, 400, "x.png"),
        ({"files": {"image": ("empty.png", b"")}}, 400, "empty"),
        ({"files": {"other": ("x.png", b"data")}}, 422, 'field "image"'),
        ({"json": [1, 2]}, 422, "JSON object"),
        ({"json": {"pixels": [], "image": ""}}, 422, "found fields 'image', 'pixels'"),
        ({"json": {"pixels": [[0.0] * 28] * 28, "extra": 1}}, 422, "one field"),
        ({"json": {}}, 422, "found fields none"),
        ({"json": {"image": 5}}, 422, "base64 string"),
        ({"json": {"pixels": [[0.0] * 28] * 27}}, 422, "28x28, found 27x28"),
        ({"json": {"pixels": [[0.0] * 28] * 27 + [[0.0] * 27]}}, 422, "28 rows of 28"),
        ({"json": {"pixels": [["0"] * 28] * 28}}, 422, "28 rows of 28"),
        ({"json": {"pixels": 0.5}}, 422, "found a scalar"),
        ({"json": {"pixels": [[2.0] * 28] * 28}}, 422, "in [0, 1]"),
        ({"json": {"pixels": [[-0.1] * 28] * 28}}, 422, "in [0, 1]"),
        ({"json": {"pixels": [[0, 0]] * 2000}}, 422, "commas, more than any request holds"),
    ],
)
def test_bad_input_gets_its_4xx_with_a_message(client, kwargs, status, message):
    response = client.post("/predict", **kwargs)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_nan_and_infinity_are_400_not_json(client):
    # None of the three is a JSON number (RFC 8259): the body is refused as undecodable.
    for literal in ("NaN", "Infinity", "1e999"):
        rows = ",".join(["[" + ",".join(["0"] * 27 + [literal]) + "]"] * 28)
        response = client.post(
            "/predict",
            content=f'{{"pixels": [{rows}]}}',
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 400
        assert "not valid JSON" in response.json()["detail"]


def test_pictures_without_a_digit_are_answered_no_digit_found(client):
    """A blank picture is a valid request: 200, digit null, nothing classified (no
    probabilities), and the reason. Only malformed requests are 4xx."""
    white = np.zeros((28, 28), np.float32)  # png_bytes inverts: all white paper
    for request in (
        {"files": {"image": ("white.png", png_bytes(white), "image/png")}},
        {"files": {"image": ("clear.png", _transparent_png(), "image/png")}},
        {"json": {"pixels": [[0.0] * 28] * 28}},
        {"json": {"pixels": [[0.7] * 28] * 28}},
    ):
        response = client.post("/predict", **request)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["digit"] is None and body["probabilities"] is None
        assert body["confidence"] is None
        assert body["reason"].startswith("no digit found: "), body


def test_unknown_include_is_422(client, digit):
    response = client.post("/predict?include=everything", json={"pixels": digit.tolist()})
    assert response.status_code == 422
    assert "include: unknown value 'everything'" in response.json()["detail"]


def _transparent_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(buffer, "PNG")
    return buffer.getvalue()


def test_unsupported_image_formats_are_415(client, digit):
    tiff = png_bytes(digit, fmt="TIFF")
    response = client.post("/predict", files={"image": ("d.tiff", tiff, "image/tiff")})
    assert response.status_code == 415
    assert "TIFF" in response.json()["detail"] and "PNG" in response.json()["detail"]
    svg = base64.b64encode(b'<svg width="28" height="28"></svg>').decode()
    response = client.post("/predict", json={"image": f"data:image/svg+xml;base64,{svg}"})
    assert response.status_code == 415
    assert "image/svg+xml" in response.json()["detail"]


def test_not_ready_without_lifespan(tiny_run, digit):
    client = TestClient(create_app(tiny_run))  # no `with`: the model is never loaded
    assert client.get("/healthz").status_code == 200
    for response in (client.get("/readyz"), client.post("/predict", json={"pixels": []})):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"


def test_overload_is_503_with_retry_after(tiny_run):
    client = TestClient(create_app(tiny_run, max_in_flight=0))
    response = client.post("/predict", json={"pixels": [[0.0] * 28] * 28})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "busy" in response.json()["detail"]


def test_request_over_the_in_flight_bound_is_503_while_one_is_held(tiny_run, digit):
    app = create_app(tiny_run, max_in_flight=1)
    entered, release = threading.Event(), threading.Event()

    class HeldBatcher:  # stands in for the model: holds the first request until released
        async def answer(self, image):
            entered.set()
            await asyncio.get_running_loop().run_in_executor(None, release.wait, 10)
            return Answer(digit=0, confidence=0.1, probabilities=np.full(10, 0.1))

    app.state.ready, app.state.batcher = True, HeldBatcher()
    client = TestClient(app)
    first = {}
    holder = threading.Thread(
        target=lambda: first.update(r=client.post("/predict", json={"pixels": digit.tolist()}))
    )
    holder.start()
    try:
        assert entered.wait(10)
        response = client.post("/predict", json={"pixels": digit.tolist()})
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
    finally:
        release.set()
        holder.join(10)
    assert first["r"].status_code == 200
    assert client.post("/predict", json={"pixels": digit.tolist()}).status_code == 200


def test_page_and_assets_are_local(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<canvas id="pad"' in page.text
    for name in ("index.html", "app.js", "style.css"):
        text = (STATIC_DIR / name).read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), name
    for asset in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        if asset == "data:,":  # the empty favicon: no request at all
            continue
        assert asset.startswith("/"), asset
        assert client.get(asset).status_code == 200, asset


def test_docs_load_swagger_ui_from_the_package_not_a_cdn(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    assets = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert {"/static/swagger-ui/swagger-ui-bundle.js", "/openapi.json"} <= set(assets), assets
    for asset in assets:
        assert asset.startswith("/"), asset  # nothing off this server
        assert client.get(asset).status_code == 200, asset
    assert client.get("/redoc").status_code == 404  # ReDoc would need a CDN


def test_openapi_documents_predict(client):
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(body)
    assert client.get("/docs").status_code == 200


def test_create_app_checks_the_run_directory(tmp_path):
    with pytest.raises(ModelLoadError, match="config.json: missing"):
        create_app(tmp_path)


@pytest.mark.parametrize("damage", ["missing_dir", "corrupt_onnx", "bad_config"])
def test_cli_serve_reports_a_broken_run_in_one_line(tmp_path, tiny_run, capsys, damage):
    import shutil

    run = tmp_path / "run"
    if damage != "missing_dir":
        shutil.copytree(tiny_run, run)
    if damage == "corrupt_onnx":  # refused by the SHA-256 recorded in config.json
        (run / "model.onnx").write_bytes(b"\x08\x07 not really ONNX")
    elif damage == "bad_config":
        (run / "config.json").write_text("[]")
    assert main(["serve", "--run", str(run), "--port", "1"]) == 1  # fails before binding any port
    err = capsys.readouterr().err
    assert err.startswith("mnist-cnn: error: ") and err.count("\n") == 1, err
    assert str(run) in err and "Traceback" not in err


def test_cli_serve_reports_a_missing_model(tmp_path, tiny_run, capsys):
    import shutil

    run = shutil.copytree(tiny_run, tmp_path / "run")
    (run / "model.onnx").unlink()
    (run / "model.keras").unlink()
    assert main(["serve", "--run", str(run), "--port", "1"]) == 1
    assert "holds neither model.onnx nor model.keras" in capsys.readouterr().err
    assert main(["serve", "--help"]) == 0
    assert "--max-in-flight" in capsys.readouterr().out


def test_metrics_count_requests_latency_and_batches(client, digit):
    client.post("/predict", json={"pixels": digit.tolist()})
    client.post("/predict", json={"pixels": "not pixels"})
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    ok = 'mnist_cnn_requests_total{method="POST",path="/predict",status="200"}'
    refused = 'mnist_cnn_requests_total{method="POST",path="/predict",status="422"}'
    assert ok in text and refused in text
    assert 'mnist_cnn_request_duration_seconds_bucket{le="0.001",path="/predict"}' in text
    assert "mnist_cnn_batch_size_count" in text and "mnist_cnn_model_info{" in text
    client.get("/random-path-" + "x" * 20)
    assert "/random-path" not in client.get("/metrics").text  # counted as "other"
    client.request("MINTED-METHOD-1", "/healthz")  # h11 and TestClient pass any token
    text = client.get("/metrics").text
    assert "MINTED" not in text and 'method="other",path="/healthz"' in text


def test_access_log_is_one_line_per_request(tiny_run, digit, caplog):
    with TestClient(create_app(tiny_run, access_log=True)) as logged:
        with caplog.at_level("INFO", logger="mnist_cnn.access"):
            logged.post("/predict", json={"pixels": digit.tolist()})
            logged.get("/healthz")
            logged.get("/x%0aGET%20/healthz%20200%201.0%20ms")  # a forged line, decoded
            logged.get("/" + "y" * 5000)
    lines = [record.getMessage() for record in caplog.records if record.name == "mnist_cnn.access"]
    assert len(lines) == 4
    assert re.fullmatch(r"POST /predict 200 \d+\.\d ms", lines[0]), lines
    assert re.fullmatch(r"GET /healthz 200 \d+\.\d ms", lines[1]), lines
    assert re.fullmatch(r"GET /x\\nGET /healthz 200 1\.0 ms 404 \d+\.\d ms", lines[2]), lines
    assert "\n" not in lines[2] and len(lines[3]) < 300 and "y..." in lines[3]


@pytest.mark.parametrize(
    ("document", "status"),
    [
        ({"pixels": [[[0.5]] * 28] * 28}, 400),  # 4 levels: deeper than any request
        ({"pixels": [[0.5] * 27] * 28}, 422),  # 3 levels, wrong shape
        ({"image": {"a": 1}}, 422),  # 2 levels, wrong type
        ({"image": {"a": [[1]]}}, 400),
        ([[[[1]]]], 400),
        ([[[1]]], 422),
    ],
)
def test_json_deeper_than_a_request_is_400_shallower_mistakes_422(client, document, status):
    response = client.post("/predict", json=document)
    assert response.status_code == status, response.text


def test_a_huge_json_body_is_refused_without_parsing_it(client, monkeypatch):
    """Millions of numbers (18 MB, under the body cap) are refused by counting commas; the
    parse that took seconds of the event loop never runs."""
    import mnist_cnn.request_body as request_body

    def no_parse(_body: bytes) -> None:
        raise AssertionError("the body was parsed")

    monkeypatch.setattr(request_body.orjson, "loads", no_parse)
    body = b'{"pixels":[' + b",".join([b"[0,0]"] * 3_000_000) + b"]}"
    assert len(body) < DEFAULT_MAX_BODY_BYTES
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422 and "commas" in response.json()["detail"]


def test_a_truncated_multipart_upload_is_400_not_a_missing_field(client, digit):
    boundary = "XyZ123"
    data = png_bytes(digit)
    whole = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="d.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    assert client.post("/predict", content=whole, headers=headers).status_code == 200
    response = client.post("/predict", content=whole[: len(whole) // 2], headers=headers)
    assert response.status_code == 400
    assert "truncated" in response.json()["detail"]


def test_head_is_answered_wherever_get_is(client):
    for path in ("/healthz", "/readyz", "/", "/metrics"):
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"]
    assert client.head("/healthz").headers["content-length"] == str(
        len(client.get("/healthz").content)
    )
    refused = client.head("/predict")  # POST only: HEAD is refused as GET is
    assert refused.status_code == 405 and "POST" in refused.headers["allow"]


def test_preprocessing_runs_at_most_threads_pictures_at_once(tiny_run, digit, monkeypatch):
    """Each decoded picture may hold a few hundred MB: uploads beyond the model's threads
    wait for a turn instead of all decoding at once."""
    import mnist_cnn.request_body as request_body

    running, most = 0, 0
    lock = threading.Lock()
    original = request_body._preprocess

    def counted(*args):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.2)
        try:
            return original(*args)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(request_body, "_preprocess", counted)
    data = png_bytes(digit)
    with TestClient(create_app(tiny_run, threads=2)) as client:

        def upload() -> int:
            files = {"image": ("d.png", data, "image/png")}
            return client.post("/predict", files=files).status_code

        threads = [threading.Thread(target=upload) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert most == 2
