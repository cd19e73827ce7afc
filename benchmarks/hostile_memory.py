"""What hostile but valid-looking input costs: peak memory and time, side by side with a checkout.

Three measurements, each for this checkout and, with `--before DIR`, for another checkout's
`src/` put first on the path (same interpreter, same libraries, same packaged model):
- `mnist-cnn predict big.png`: a 6000x6000 1-bit PNG (11 KB on disk, under the 40-megapixel
  guard), peak RSS under GNU time (`%M`) and wall time, median of `--rounds`;
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
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).parent))
from machine import provenance  # noqa: E402

SIDE = 6000  # 36 megapixels: under decode.MAX_PIXELS (40 M), so the header guard lets it in
TIMEOUT_S = 120  # every wait on a child or a request is bounded by this
JSON_PAIRS = 3_000_000  # '[0,0],' six bytes each: 18 MB, under the 20 MB default body cap
MNIST_CNN = Path(sys.executable).with_name("mnist-cnn")


def big_png(folder: Path) -> Path:
    """A digit 1 (a black bar) on white, 6000x6000, 1 bit per pixel: 11 KB on disk."""
    image = Image.new("L", (SIDE, SIDE), 255)
    ImageDraw.Draw(image).rectangle((2800, 1000, 3200, 5000), fill=0)
    path = folder / "big.png"
    image.convert("1").save(path)
    return path


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
    if done.returncode != 0:
        raise SystemExit(f"predict failed: {done.stdout}{done.stderr}")
    return int(done.stderr.strip().splitlines()[-1]) / 1024, seconds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmHWM for process {pid}")


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
        ready_mb = vm_hwm_mb(server.pid)
        data = picture.read_bytes()
        with concurrent.futures.ThreadPoolExecutor(uploads) as pool:
            slowest = max(pool.map(lambda _: upload(port, data), range(uploads)))
        peak_mb = vm_hwm_mb(server.pid)
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


def measure(label: str, picture: Path, args: argparse.Namespace, pythonpath: str | None) -> dict:
    rounds = [predict_peak(picture, pythonpath) for _ in range(args.rounds)]
    result = {
        "predict_peak_mb": round(statistics.median(mb for mb, _ in rounds), 1),
        "predict_s": round(statistics.median(seconds for _, seconds in rounds), 3),
        **serve_measures(picture, args.uploads, pythonpath),
    }
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
        picture = big_png(Path(folder))
        results = {}
        if args.before:
            results["before"] = measure("before", picture, args, args.before)
        results["after"] = measure("after", picture, args, None)
    if args.output:
        report = {**provenance(), "before": args.before, "uploads": args.uploads, **results}
        args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
