"""Cold start of the command line: fresh processes, wall time and peak RSS, median of N.

Measures, round by round (the commands take turns, so a slow spell hits all of them alike):
- `mnist-cnn predict one.png --run RUN`: from launch to exit;
- `mnist-cnn --help`: from launch to exit;
- `mnist-cnn serve --run RUN --port P`: from launch until `GET /readyz` answers 200 (loopback only,
  polled every 10 ms), then SIGTERM.
One untimed round first brings the files into the page cache, so "cold" means a fresh process,
not a cold disk. `--pythonpath DIR` puts another checkout's `src/` first on the children's path,
to measure that code with the same interpreter and libraries (checkouts from before `--run`
existed took the run directory as the first positional argument instead).

Peak RSS is not the child's `ru_maxrss` from `os.wait4`: Linux folds the RSS of the process that
forked it into that figure at exec (a 300 MB parent gave `/bin/true` 325 MB), so short commands
run under GNU time (`%M`), a 1 MB C program, and the server's is its `VmHWM` once it is ready.

    .venv/bin/python benchmarks/cold_start.py --run RUN --output benchmarks/results/cold_start.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import cpu_model, git_commit, git_dirty  # noqa: E402

TIMEOUT_S = 60  # every wait for a child is bounded by this; past it the run stops with an error
POLL_INTERVAL_S = 0.01  # /readyz polling period: the resolution of the serve figure
GNU_TIME = "/usr/bin/time"  # Debian package `time`
_PROBE = """
import importlib.metadata as m, json, mnist_cnn, platform
def version(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return None
names = ["onnxruntime", "tensorflow", "tensorflow-cpu", "keras", "numpy", "fastapi", "uvicorn",
         "pillow"]
print(json.dumps({"mnist_cnn": mnist_cnn.__file__, "python": platform.python_version(),
                  **{name: version(name) for name in names}}))
"""


def _run_to_exit(command: list[str], environment: dict[str, str]) -> tuple[float, float]:
    """(wall s, peak RSS MB) of a command run to its end under GNU time."""
    with tempfile.NamedTemporaryFile("r") as report:
        started = time.perf_counter()
        completed = subprocess.run(
            [GNU_TIME, "-f", "%M", "-o", report.name, *command],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        wall = time.perf_counter() - started
        if completed.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} exited {completed.returncode}: {completed.stderr[-2000:]}"
            )
        return wall, int(report.read().split()[-1]) / 1024  # GNU time reports KB


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a live process: its peak resident set since exec."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"process {pid}: no VmHWM in /proc")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve_until_ready(
    executable: str, run: str, environment: dict[str, str]
) -> tuple[float, float]:
    """(s from launch to the first 200 of /readyz, peak RSS MB of the server by then)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/readyz"
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        server = subprocess.Popen(
            [executable, "serve", "--run", run, "--port", str(port)],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        ready = peak = None
        try:
            while time.perf_counter() - started < TIMEOUT_S and server.poll() is None:
                try:
                    with urllib.request.urlopen(url, timeout=1) as reply:
                        if reply.status == 200:
                            ready = time.perf_counter() - started
                            peak = peak_rss_mb(server.pid)
                            break
                except OSError:  # refused while starting, 503 while loading
                    time.sleep(POLL_INTERVAL_S)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if ready is None:
            log.seek(0)
            raise RuntimeError(
                f"serve {run}: /readyz not 200 within {TIMEOUT_S} s (exit {server.returncode}): "
                f"{log.read()[-2000:]}"
            )
        return ready, peak


def _summary(samples: list[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


def _code_git(module_file: str, *args: str) -> str | None:
    """git run in the checkout the children import mnist_cnn from."""
    try:
        return subprocess.run(
            ["git", "-C", str(Path(module_file).parent), *args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="run directory to predict with and serve")
    parser.add_argument(
        "--image", help="picture to predict (default: MNIST test digit 0, dark on white PNG)"
    )
    parser.add_argument("--repeats", type=int, default=7, help="fresh processes per command")
    parser.add_argument(
        "--mnist-cnn",
        default=str(Path(sys.executable).parent / "mnist-cnn"),
        help="the mnist-cnn executable (default: the one beside this Python)",
    )
    parser.add_argument("--pythonpath", help="directory put first on the children's PYTHONPATH")
    parser.add_argument("--label", default="", help="name of this measurement in the JSON")
    parser.add_argument("--output", type=Path, help="JSON file to write")
    args = parser.parse_args()

    environment = dict(os.environ)
    if args.pythonpath:
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(Path(args.pythonpath).resolve()), environment.get("PYTHONPATH")])
        )
    code = json.loads(
        subprocess.run(
            [sys.executable, "-c", _PROBE],
            env=environment,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=True,
        ).stdout
    )
    print(f"children import {code['mnist_cnn']}", flush=True)
    commit, code_commit = git_commit(), _code_git(code["mnist_cnn"], "rev-parse", "HEAD")
    code_changes = _code_git(code["mnist_cnn"], "status", "--porcelain", ".")
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        image = args.image
        if image is None:
            from PIL import Image

            from mnist_cnn.data import load_mnist

            image = str(Path(folder) / "one.png")
            Image.fromarray(255 - load_mnist().test.images[0]).save(image)  # dark ink on white
        commands: dict[str, Callable[[], tuple[float, float]]] = {
            "predict": lambda: _run_to_exit(
                [args.mnist_cnn, "predict", image, "--run", args.run], environment
            ),
            "help": lambda: _run_to_exit([args.mnist_cnn, "--help"], environment),
            "serve_ready": lambda: _serve_until_ready(args.mnist_cnn, args.run, environment),
        }
        for measure in commands.values():  # warm-up round, not counted: page cache
            measure()
        samples = {name: {"wall_s": [], "peak_rss_mb": []} for name in commands}
        for _ in range(args.repeats):
            for name, measure in commands.items():
                wall, peak = measure()
                samples[name]["wall_s"].append(wall)
                samples[name]["peak_rss_mb"].append(peak)

    results = {
        "benchmark": "cold_start",
        "label": args.label,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": commit,  # at the start; others may commit while it runs
        "git_commit_at_end": git_commit(),
        "git_uncommitted_changes": git_dirty(),
        "code_measured": code["mnist_cnn"],
        "code_measured_commit": code_commit,
        "code_measured_uncommitted": code_changes,  # `git status` of the package's folder
        "versions": {key: value for key, value in code.items() if key != "mnist_cnn"},
        "cpu": cpu_model(),
        "cpus_available": len(os.sched_getaffinity(0)),
        "load_average_1_5_15_start": load_start,
        "load_average_1_5_15_end": os.getloadavg(),
        "command_line": [sys.executable, *sys.argv],
        "run": str(Path(args.run).resolve()),
        "run_files": sorted(path.name for path in Path(args.run).iterdir()),
        "repeats": args.repeats,
        "commands": {
            name: {
                **{key: _summary(values) for key, values in measured.items()},
                "samples": measured,
            }
            for name, measured in samples.items()
        },
    }
    print(f"{args.repeats} fresh processes per command, after one warm-up round")
    print(f"{'command':<12} {'wall s, median (min-max)':<28} peak RSS MB, median (min-max)")
    for name, measured in results["commands"].items():
        wall, peak = measured["wall_s"], measured["peak_rss_mb"]
        print(
            f"{name:<12} {wall['median']:.3f} ({wall['min']:.3f}-{wall['max']:.3f}){'':<8} "
            f"{peak['median']:.0f} ({peak['min']:.0f}-{peak['max']:.0f})"
        )
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
