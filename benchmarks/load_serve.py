"""Load test of `mnist-cnn serve`: a real server on 127.0.0.1, `wrk` as the load generator.

For each body (28x28 JSON pixels, PNG upload) and concurrency (1, 16, 64): a warm-up, then a
fixed-duration run; records req/s, p50/p99/max latency, errors, and the server's CPU time per
request (the figure least disturbed by other work on a shared machine).

    python benchmarks/load_serve.py RUN_DIR [--duration 10] [--output benchmarks/results/serve.json]

Needs `wrk` (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_cnn.data import load_mnist

ROOT = Path(__file__).resolve().parent
CONCURRENCY = (1, 16, 64)
# wrk runs this: posts BODY_FILE as Content-Type CONTENT_TYPE, prints one JSON summary line.
WRK_SCRIPT = """
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE")
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"seconds":%.3f,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,'
    .. '"mean_ms":%.3f,"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,'
    .. '"non_2xx":%d}}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3, latency.mean / 1e3,
    e.connect, e.read, e.write, e.timeout, e.status))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server not ready after {timeout:.0f} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and of its live descendants, the server's worker
    processes (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:  # exited meanwhile
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(int(child)) for child in children)


def wait_idle(pid: int, timeout: float = 30.0) -> None:
    """Until the server has finished what an earlier run left in flight (CPU stops rising)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - before < 0.05:
            return


def bodies(directory: Path) -> dict[str, tuple[Path, str]]:
    """The two request bodies, made from the first MNIST test digit."""
    digit = load_mnist().test.images[0]
    pixels = directory / "pixels.json"
    pixels.write_text(json.dumps({"pixels": np.round(digit / 255.0, 4).tolist()}))
    png = io.BytesIO()  # a canvas-like picture: black ink on white, 280x280
    Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BILINEAR).save(png, "PNG")
    boundary = "mnist-cnn-benchmark-boundary"
    multipart = directory / "upload.multipart"
    multipart.write_bytes(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="digit.png"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + png.getvalue()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return {
        "json_pixels_28x28": (pixels, "application/json"),
        "png_upload_280x280": (multipart, f"multipart/form-data; boundary={boundary}"),
    }


def connection_split(server_pid: int, port: int) -> list[int]:
    """Established connections to `port` held by each process of the server (the serve
    process and its workers), busiest first; Linux /proc, empty elsewhere."""
    try:
        table = Path("/proc/net/tcp").read_text().splitlines()[1:]
        children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    except OSError:
        return []
    inodes = set()
    for line in table:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":  # ESTABLISHED
            inodes.add(fields[9])
    split = []
    for pid in [server_pid, *map(int, children)]:
        try:
            links = [os.readlink(entry) for entry in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:  # exited meanwhile
            continue
        held = sum(link.removeprefix("socket:[").removesuffix("]") in inodes for link in links)
        if held:
            split.append(held)
    return sorted(split, reverse=True)


def run_wrk(
    url: str,
    script: Path,
    body: Path,
    content_type: str,
    connections: int,
    seconds: int,
    server_pid: int | None = None,
):
    """One wrk run; with `server_pid`, also how its connections were split over the server's
    processes, read halfway through."""
    env = {**os.environ, "BODY_FILE": str(body), "CONTENT_TYPE": content_type}
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    load = subprocess.Popen(
        [*command, "-s", str(script), f"{url}/predict"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    split = []
    if server_pid is not None:
        time.sleep(seconds / 2)
        split = connection_split(server_pid, int(url.rsplit(":", 1)[1]))
    output, errors = load.communicate()
    if load.returncode:
        raise RuntimeError(f"wrk failed ({load.returncode}): {errors}")
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT ")) | {"connections_per_process": split}


def machine() -> dict[str, object]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in cpuinfo.splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    import fastapi
    import onnxruntime
    import starlette
    import uvicorn

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "git_commit": commit or None,
        "onnxruntime": onnxruntime.__version__,
        "cpu": model,
        "cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "fastapi": fastapi.__version__,
        "starlette": starlette.__version__,
        "uvicorn": uvicorn.__version__,
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", help="run directory to serve (written by 'mnist-cnn train')")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per run")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=CONCURRENCY, help="open connections"
    )
    parser.add_argument(
        "--output", default=str(ROOT / "results" / "serve.json"), help="JSON results file"
    )
    parser.add_argument(
        "--bodies", nargs="+", default=None, help="only these bodies (default: all)"
    )
    parser.add_argument("--note", default="", help="free text stored with the results")
    parser.add_argument(
        "--server-args",
        nargs=argparse.REMAINDER,
        default=[],
        help="the rest is passed to 'mnist-cnn serve' (e.g. --no-access-log)",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk not found (Debian: apt-get install wrk)", file=sys.stderr)
        return 1

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "mnist_cnn.cli", "serve", "--run", args.run_dir]
    command += ["--port", str(port)]
    command += args.server_args
    # The server's log (one access line per request by default) goes to a file: a pipe nobody
    # reads fills up and stalls the server.
    server_log = tempfile.TemporaryFile()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=server_log)
    results = []
    try:
        wait_ready(url, server)
        with tempfile.TemporaryDirectory() as scratch:
            script = Path(scratch) / "post.lua"
            script.write_text(WRK_SCRIPT)
            for body_name, (body, content_type) in bodies(Path(scratch)).items():
                if args.bodies and body_name not in args.bodies:
                    continue
                for connections in args.concurrency:
                    run_wrk(url, script, body, content_type, connections, args.warmup)
                    wait_idle(server.pid)
                    load_before, cpu_before = os.getloadavg()[0], cpu_seconds(server.pid)
                    result = run_wrk(
                        url, script, body, content_type, connections, args.duration, server.pid
                    )
                    cpu = cpu_seconds(server.pid) - cpu_before
                    result.update(
                        body=body_name,
                        concurrency=connections,
                        requests_per_second=round(result["requests"] / result["seconds"], 1),
                        server_cpu_ms_per_request=round(1e3 * cpu / max(result["requests"], 1), 3),
                        load_average_1min=[load_before, os.getloadavg()[0]],
                    )
                    results.append(result)
                    errors = sum(result["errors"].values())
                    print(
                        f"{body_name:20} c={connections:<3} {result['requests_per_second']:8.1f} "
                        f"req/s  p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms  "
                        f"errors {errors}  server CPU {result['server_cpu_ms_per_request']} "
                        f"ms/req  connections {result['connections_per_process']}",
                        flush=True,
                    )
    finally:
        server.terminate()
        server.wait(timeout=30)
    document = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "note": args.note,
        "machine": machine(),
        "duration_s": args.duration,
        "results": results,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(document, indent=2) + "\n")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
