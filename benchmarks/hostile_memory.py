"""What hostile but valid-looking input costs: peak memory and time, side by side with a checkout.

Three measurements, each for this checkout and, with `--before DIR`, for another checkout's
`src/` put first on the path (same interpreter, same libraries, same packaged model):
- `mnist-cnn predict` of each of three pictures, peak RSS under GNU time (`%M`) and wall time,
  median of `--rounds`: `big.png`, a 6000x6000 1-bit PNG (11 KB on disk, under the
  40-megapixel guard); `rgba.png`, the same digit as a 6324x6324 RGBA PNG (just under the
  guard); `scans.jpg`, a 6000x6000 progressive JPEG whose last scan is repeated 300 times;
- `mnist-cnn serve --workers 1`: the same picture uploaded `--uploads` times at once, the
  server's peak RSS (`VmHWM`) and the slowest answer;
- the same server: an 18 MB JSON body of 3 million number pairs (under the 20 MB body cap,
  malformed), the time to its answer and to a `GET /healthz` sent while it is in flight.
Traffic goes to 127.0.0.1 only; every wait is bounded.

    .venv/bin/python benchmarks/hostile_memory.py [--before /tmp/before/src] \
        --output benchmarks/results/hostile_memory.json
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).parent))
from cold_start import peak_rss_mb  # noqa: E402  (benchmarks/cold_start.py)
from load_serve import free_port  # noqa: E402  (benchmarks/load_serve.py)
from machine import provenance  # noqa: E402

SIDE = 6000  # 36 megapixels: under decode.MAX_PIXELS (40 M), so the header guard lets it in
TIMEOUT_S = 120  # every wait on a child or a request is bounded by this
JSON_PAIRS = 3_000_000  # '[0,0],' six bytes each: 18 MB, under the 20 MB default body cap
MNIST_CNN = Path(sys.executable).with_name("mnist-cnn")


RGBA_SIDE = 6324  # 39.99 megapixels: the largest square under the guard
REPEATED_SCANS = 300  # a 382 KB file, 5.6 s to decode before JPEGs' scans were counted


def one(side: int) -> Image.Image:
    """A digit 1 (a black bar) on white paper, side x side."""
    image = Image.new("L", (side, side), 255)
    bar = (side * 28 // 60, side // 6, side * 32 // 60, side * 5 // 6)
    ImageDraw.Draw(image).rectangle(bar, fill=0)
    return image


def pictures(folder: Path) -> dict[str, Path]:
    big, rgba, scans = folder / "big.png", folder / "rgba.png", folder / "scans.jpg"
    one(SIDE).convert("1").save(big)
    one(RGBA_SIDE).convert("RGBA").save(rgba)
    buffer = io.BytesIO()
    one(SIDE).save(buffer, "JPEG", progressive=True)
    data = buffer.getvalue()
    last = data.rindex(b"\xff\xda")  # the last scan, repeated before the end marker
    scans.write_bytes(data[:last] + data[last : data.rindex(b"\xff\xd9")] * REPEATED_SCANS)
    return {"big.png": big, "rgba.png": rgba, "scans.jpg": scans}


def environment(pythonpath: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def predict_peak(picture: Path, pythonpath: str | None) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one `mnist-cnn predict`."""
    command = ["/usr/bin/time", "-f", "%M", str(MNIST_CNN), "predict", str(picture)]
    start = time.perf_counter()
    done = subprocess.run(
        command, env=environment(pythonpath), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: the picture was refused, with its reason
        raise SystemExit(f"predict failed: {done.stdout}{done.stderr}")
    return int(done.stderr.strip().splitlines()[-1]) / 1024, seconds


def upload(port: int, data: bytes) -> float:
    boundary = "hostile-memory"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict",
        data=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        response.read()
    return time.perf_counter() - start


def post_json(port: int, body: bytes) -> float:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict", data=body, headers={"content-type": "application/json"}
    )
    start = time.perf_counter()
    try:
        urllib.request.urlopen(request, timeout=TIMEOUT_S).read()
    except urllib.error.HTTPError as error:  # the expected 422
        error.read()
    return time.perf_counter() - start


def health(port: int) -> float:
    start = time.perf_counter()
    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=TIMEOUT_S).read()
    return time.perf_counter() - start


def serve_measures(picture: Path, uploads: int, pythonpath: str | None) -> dict[str, float]:
    port = free_port()
    command = [str(MNIST_CNN), "serve", "--port", str(port), "--workers", "1", "--no-access-log"]
    server = subprocess.Popen(
        command, env=environment(pythonpath), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not become ready") from None
                time.sleep(0.1)
        ready_mb = peak_rss_mb(server.pid)
        data = picture.read_bytes()
        with concurrent.futures.ThreadPoolExecutor(uploads) as pool:
            slowest = max(pool.map(lambda _: upload(port, data), range(uploads)))
        peak_mb = peak_rss_mb(server.pid)
        body = b'{"pixels":[' + b",".join([b"[0,0]"] * JSON_PAIRS) + b"]}"
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            answer = pool.submit(post_json, port, body)
            time.sleep(0.05)  # the body is on its way: probe the server meanwhile
            probe = pool.submit(health, port)
            json_seconds, health_seconds = answer.result(), probe.result()
    finally:
        server.terminate()
        server.wait(timeout=TIMEOUT_S)
    return {
        "ready_peak_mb": round(ready_mb, 1),
        "uploads_peak_mb": round(peak_mb, 1),
        "slowest_upload_s": round(slowest, 3),
        "huge_json_s": round(json_seconds, 3),
        "healthz_during_json_s": round(health_seconds, 3),
    }


def measure(label: str, files: dict[str, Path], args: argparse.Namespace, pythonpath) -> dict:
    result: dict[str, object] = {}
    for name, picture in files.items():
        rounds = [predict_peak(picture, pythonpath) for _ in range(args.rounds)]
        result[name] = {
            "predict_peak_mb": round(statistics.median(mb for mb, _ in rounds), 1),
            "predict_s": round(statistics.median(seconds for _, seconds in rounds), 3),
        }
    result.update(serve_measures(files["big.png"], args.uploads, pythonpath))
    print(label, json.dumps(result))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="another checkout's src/ directory, measured first")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--uploads", type=int, default=4, help="uploads sent at once")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        files = pictures(Path(folder))
        results = {}
        if args.before:
            results["before"] = measure("before", files, args, args.before)
        results["after"] = measure("after", files, args, None)
    if args.output:
        report = {**provenance(), "before": args.before, "uploads": args.uploads, **results}
        args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
