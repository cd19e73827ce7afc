"""Inference speed of the tutorial CNN: Keras predict, a compiled call, XLA and ONNX Runtime.

For each path, side by side in one process and interleaved round by round (so drift hits all
paths alike): single-image latency (p50/p99 over many calls after warm-up) and batch
throughput at several batch sizes (median of `--repeats` timed rounds). Throughput is also
given as a share of the fp32 inference bound: the numpy 4096x4096 float32 matmul peak measured
in the same run (best of samples before, during and after) divided by 27.77 MFLOP per image.
Each path's probabilities are compared with Keras's on 1,000 test images first; an fp32 path
off by more than 1e-5 is flagged (`matches_keras`).

Cold start (a fresh process: import, load the run, build the fast path, first prediction) is
timed per Predictor backend in subprocesses. `--int8` adds ONNX Runtime int8 quantization
(dynamic and static) with its accuracy on the 10,000 test images; opt-in, never the default.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/inference.py RUN_DIR
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from machine import cpu_model, git_commit, git_dirty, matmul_peak_gflops  # benchmarks/machine.py

from mnist_cnn import export, inference, onnx_backend, runtime
from mnist_cnn.data import load_mnist, to_model_input
from mnist_cnn.inference import Predictor, load_keras_model
from mnist_cnn.run import CONFIG_FILE, MODEL_FILE, ONNX_FILE, read_run

# Multiply-adds of one forward pass: conv1 28*28*32*25 + conv2 14*14*64*32*25
# + dense 3136*1024 + output 1024*10; two FLOPs per multiply-add.
MULTIPLY_ADDS = 28 * 28 * 32 * 25 + 14 * 14 * 64 * 32 * 25 + 3136 * 1024 + 1024 * 10
FLOP_PER_IMAGE = 2 * MULTIPLY_ADDS  # 27,767,808
BATCH_SIZES = (1, 32, 256, 1000)
MAX_DIFFERENCE = 1e-5  # a path must match Keras's probabilities this closely to count
CHECK_IMAGES = 1000

Call = Callable[[np.ndarray], np.ndarray]


def versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import tf2onnx

    return {
        **runtime.library_versions(),
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "tf2onnx": tf2onnx.__version__,
        "python": platform.python_version(),
    }


def build_paths(model, onnx_model: bytes, threads: int, data_format: str) -> dict[str, Call]:
    """Every fp32 path under test; the name says what it is."""
    paths: dict[str, Call] = {}
    if data_format == "channels_last":  # TensorFlow's CPU kernels can't run channels_first
        paths["keras_predict"] = lambda x: model.predict(x, batch_size=len(x), verbose=0)
        paths["compiled"] = runtime.compiled_call(model)
    paths["compiled_xla"] = runtime.compiled_call(model, jit_compile=True)
    session, call = onnx_backend.onnx_session, onnx_backend.session_call
    paths["onnxruntime"] = call(session(onnx_model, threads))
    if threads > 1:
        paths["onnxruntime_1thread"] = call(session(onnx_model, 1))
    paths["onnxruntime_defaults"] = onnx_backend.session_call(default_session(onnx_model))
    return paths


def session_settings(session) -> dict[str, object]:
    """The options an ONNX Runtime session really runs with (set by onnx_backend.onnx_session)."""
    options = session.get_session_options()
    try:
        spinning = options.get_session_config_entry("session.intra_op.allow_spinning")
    except RuntimeError:  # not set: ONNX Runtime's default lets idle threads spin
        spinning = "1 (default)"
    return {
        "intra_op_num_threads": options.intra_op_num_threads,
        "inter_op_num_threads": options.inter_op_num_threads,
        "execution_mode": str(options.execution_mode),
        "graph_optimization_level": str(options.graph_optimization_level),
        "intra_op_allow_spinning": spinning,
    }


def default_session(onnx_model: bytes):
    import onnxruntime

    return onnxruntime.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])


def latencies_ms(call: Call, images: np.ndarray, calls: int) -> list[float]:
    """Milliseconds per call of one image, cycling through `images`."""
    times = []
    for index in range(calls):
        image = images[index % len(images)][None]
        start = time.perf_counter_ns()
        call(image)
        times.append((time.perf_counter_ns() - start) / 1e6)
    return times


def throughput(call: Call, images: np.ndarray, batch: int, min_seconds: float) -> float:
    """Images per second over whole batches, for at least `min_seconds` and 3 calls."""
    batches = [images[start : start + batch] for start in range(0, len(images) - batch + 1, batch)]
    done, calls, start = 0, 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < min_seconds:
        done += len(call(batches[calls % len(batches)]))
        calls += 1
    return done / (time.perf_counter() - start)


def cpu_seconds() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, CPU seconds of this process and its children).

    Their difference over a round is what other processes used: other jobs on the machine
    slow every path, so each round's share is recorded beside its figures.
    """
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return float("nan"), 0.0
    idle = fields[3] + fields[4]  # idle + iowait
    machine = (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")
    own = os.times()  # children: the cold-start subprocesses, once they have exited
    return machine, own.user + own.system + own.children_user + own.children_system


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
        "samples": values,
    }


COLD_START = """
import json, sys, time
start = time.perf_counter()
import numpy as np
from mnist_cnn.inference import Predictor
imported = time.perf_counter()
predictor = Predictor.from_dir(sys.argv[1], backend=sys.argv[2])
loaded = time.perf_counter()
predictor.probabilities(np.zeros((1, 28, 28), np.float32))
first = time.perf_counter()
print(json.dumps({"backend": predictor.backend, "import_s": imported - start,
                  "load_s": loaded - imported, "first_call_s": first - loaded}))
"""


def cold_start(run_dir: Path, variants: dict[str, str], repeats: int) -> dict[str, dict]:
    """Per variant (name -> Predictor backend) in fresh processes, alternating variants."""
    samples: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, backend in variants.items():
            output = subprocess.run(
                [sys.executable, "-c", COLD_START, str(run_dir), backend],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            samples[name].append(json.loads(output.strip().splitlines()[-1]))
    result = {}
    for name, rows in samples.items():
        result[name] = {
            "backend": rows[0]["backend"],
            **{
                key: summary([row[key] for row in rows])
                for key in ("import_s", "load_s", "first_call_s")
            },
        }
    return result


def quantized(onnx_model: bytes, calibration: np.ndarray) -> dict[str, bytes]:
    """int8 variants of the ONNX model: dynamic (weights only) and static (QDQ, calibrated)."""
    from onnxruntime import quantization

    class Reader(quantization.CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{export.INPUT_NAME: batch[None]} for batch in calibration])

        def get_next(self):
            return next(self.batches, None)

    models = {}
    with tempfile.TemporaryDirectory() as directory:
        source = Path(directory) / "fp32.onnx"
        prepared = Path(directory) / "prepared.onnx"
        source.write_bytes(onnx_model)
        quantization.quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        dynamic = Path(directory) / "dynamic.onnx"
        quantization.quantize_dynamic(prepared, dynamic, weight_type=quantization.QuantType.QInt8)
        models["onnxruntime_int8_dynamic"] = dynamic.read_bytes()
        static = Path(directory) / "static.onnx"
        quantization.quantize_static(
            prepared,
            static,
            Reader(),
            quant_format=quantization.QuantFormat.QDQ,
            activation_type=quantization.QuantType.QUInt8,
            weight_type=quantization.QuantType.QInt8,
            per_channel=True,
        )
        models["onnxruntime_int8_static"] = static.read_bytes()
    return models


def accuracy(call: Call, images: np.ndarray, labels: np.ndarray, batch: int = 1000) -> float:
    predicted = np.concatenate(
        [
            call(images[start : start + batch]).argmax(axis=1)
            for start in range(0, len(images), batch)
        ]
    )
    return float(np.mean(predicted == labels))


def markdown(results: dict) -> str:
    bound = results["fp32_inference_bound_images_per_s"]
    header = (
        "| path | max abs diff vs Keras | p50 ms (1 image) | p99 ms | "
        + " | ".join(f"img/s @ {batch}" for batch in BATCH_SIZES)
        + " | min-max @ 1000 | % of fp32 bound @ 1000 |"
    )
    lines = [header, "|" + " --- |" * (6 + len(BATCH_SIZES))]
    for name, path in results["paths"].items():
        rates = [path["throughput"][str(batch)]["median"] for batch in BATCH_SIZES]
        spread = path["throughput"][str(BATCH_SIZES[-1])]
        lines.append(
            f"| {name} | {path['max_abs_diff']:.1e} | {path['latency_ms']['p50']:.3f} | "
            f"{path['latency_ms']['p99']:.3f} | "
            + " | ".join(f"{rate:,.0f}" for rate in rates)
            + f" | {spread['min']:,.0f}-{spread['max']:,.0f} | {100 * rates[-1] / bound:.0f}% |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="run directory written by 'mnist-cnn train'")
    parser.add_argument("--calls", type=int, default=2000, help="single-image calls per path")
    parser.add_argument(
        "--predict-calls", type=int, default=200, help="single-image calls for keras_predict"
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds per batch size")
    parser.add_argument(
        "--min-seconds", type=float, default=0.5, help="minimum duration of one timed round"
    )
    parser.add_argument(
        "--cold-repeats", type=int, default=3, help="fresh processes per Predictor backend"
    )
    parser.add_argument(
        "--max-other-share",
        type=float,
        default=0.1,
        help="measure a round again when other processes used more of the CPUs (default 0.1)",
    )
    parser.add_argument("--int8", action="store_true", help="also measure int8 ONNX Runtime")
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).parent / "results" / "inference.json",
        help="JSON file for every figure",
    )
    args = parser.parse_args(argv)

    runtime.configure()
    threads = runtime.cpu_count()
    run = read_run(args.run_dir)
    model = load_keras_model(run)
    mnist = load_mnist()
    test_images = to_model_input(mnist.test.images, run.config.data_format)
    check = test_images[:CHECK_IMAGES]
    peak_before = matmul_peak_gflops()

    start = time.perf_counter()
    onnx_model = export.onnx_bytes(model)
    convert_seconds = time.perf_counter() - start
    paths = build_paths(model, onnx_model, threads, run.config.data_format)
    int8_models = {}
    if args.int8:
        int8_models = quantized(onnx_model, to_model_input(mnist.train.images[:200]))
        for name, data in int8_models.items():
            paths[name] = onnx_backend.session_call(onnx_backend.onnx_session(data, threads))

    reference = inference.keras_call(model, run.config.data_format)(check)
    differences = {}
    for name, call in paths.items():
        for batch in BATCH_SIZES:  # warm-up: traces, XLA compilations, thread pools
            call(test_images[:batch])
        found = np.concatenate([call(check[i : i + 250]) for i in range(0, CHECK_IMAGES, 250)])
        differences[name] = float(np.max(np.abs(found.astype(np.float64) - reference)))
        flag = "" if differences[name] <= MAX_DIFFERENCE or "int8" in name else " (MISMATCH)"
        print(f"{name}: max abs diff {differences[name]:.2e}{flag}", flush=True)

    # A round during which other processes used more than --max-other-share of the CPUs is
    # measured again (up to 3x --repeats rounds in all): other jobs slow every path.
    rounds = []
    peaks = [peak_before]
    while sum(r["kept"] for r in rounds) < args.repeats and len(rounds) < 3 * args.repeats:
        machine_start, own_start, wall_start = *cpu_seconds(), time.perf_counter()
        latency = {name: [] for name in paths}
        rates = {name: {batch: [] for batch in BATCH_SIZES} for name in paths}
        # Paths take turns within each measurement: a slow spell of the machine (other
        # virtual machines on the host) then hits neighbouring paths alike.
        for name, call in paths.items():
            calls = args.predict_calls if name == "keras_predict" else args.calls
            latency[name] = latencies_ms(call, test_images, calls // args.repeats)
        for batch in BATCH_SIZES:
            for name, call in paths.items():
                rates[name][batch] = throughput(call, test_images, batch, args.min_seconds)
        peaks.append(matmul_peak_gflops(repeats=3))
        machine_end, own_end = cpu_seconds()
        wall = time.perf_counter() - wall_start
        share = max(((machine_end - machine_start) - (own_end - own_start)) / (wall * threads), 0)
        kept = share <= args.max_other_share
        rounds.append({"other_cpu_share": share, "kept": kept, "latency": latency, "rates": rates})
        print(
            f"round {len(rounds)}: other processes used {100 * share:.0f}% of the CPUs "
            f"({'kept' if kept else 'measured again'})",
            flush=True,
        )
    kept_rounds = [r for r in rounds if r["kept"]] or rounds  # none clean: report all, flagged
    clean = any(r["kept"] for r in rounds)
    if not clean:
        print("WARNING: no round ran without other processes; figures are pessimistic")
    latency = {name: [t for r in kept_rounds for t in r["latency"][name]] for name in paths}
    rates = {
        name: {batch: [r["rates"][name][batch] for r in kept_rounds] for batch in BATCH_SIZES}
        for name in paths
    }
    peaks.append(matmul_peak_gflops())
    peak = max(peaks)  # other jobs only ever lower it: the best measurement is the peak
    bound = peak * 1e9 / FLOP_PER_IMAGE

    path_results = {}
    for name in paths:
        times = latency[name]
        path_results[name] = {
            "max_abs_diff": differences[name],
            "fp32": "int8" not in name,
            "matches_keras": differences[name] <= MAX_DIFFERENCE,
            "latency_ms": {
                "p50": percentile(times, 50),
                "p99": percentile(times, 99),
                "mean": statistics.fmean(times),
                "calls": len(times),
                "p50_per_round": [
                    percentile(r["latency"][name], 50) for r in kept_rounds if r["latency"][name]
                ],
            },
            "throughput": {str(batch): summary(rates[name][batch]) for batch in BATCH_SIZES},
            "percent_of_fp32_bound": {
                str(batch): 100 * statistics.median(rates[name][batch]) / bound
                for batch in BATCH_SIZES
            },
        }
    if args.int8:
        labels = mnist.test.labels
        fp32_accuracy = accuracy(paths["onnxruntime"], test_images, labels)
        for name in int8_models:
            int8_accuracy = accuracy(paths[name], test_images, labels)
            path_results[name]["test_accuracy"] = int8_accuracy
            path_results[name]["test_accuracy_fp32"] = fp32_accuracy
            path_results[name]["accuracy_drop"] = fp32_accuracy - int8_accuracy

    variants = {"keras (compiled call)": "keras"}
    machine_start, own_start, wall_start = *cpu_seconds(), time.perf_counter()
    cold = cold_start(args.run_dir, variants, args.cold_repeats)
    onnx_file = args.run_dir / ONNX_FILE
    saved = {"onnxruntime (model.onnx)": "onnxruntime"}
    if not onnx_file.exists():
        with tempfile.TemporaryDirectory() as directory:  # run dir with a fresh model.onnx
            copy = Path(directory) / "run"
            copy.mkdir()
            for name in (MODEL_FILE, CONFIG_FILE):
                (copy / name).write_bytes((args.run_dir / name).read_bytes())
            export.export_onnx(copy)
            cold.update(cold_start(copy, saved, args.cold_repeats))
    else:
        cold.update(cold_start(args.run_dir, saved, args.cold_repeats))
    machine_end, own_end = cpu_seconds()
    cold_others = ((machine_end - machine_start) - (own_end - own_start)) / (
        (time.perf_counter() - wall_start) * threads
    )

    results = {
        "benchmark": "inference",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "git_uncommitted_changes": git_dirty(),
        "cpu": cpu_model(),
        "cpus_available": threads,
        "versions": versions(),
        "run_dir": str(args.run_dir),
        "data_format": run.config.data_format,
        "settings": {
            "single_image_calls": args.calls,
            "keras_predict_single_image_calls": args.predict_calls,
            "repeats": args.repeats,
            "max_other_cpu_share": args.max_other_share,
            "min_seconds_per_round": args.min_seconds,
            "batch_sizes": list(BATCH_SIZES),
            "onnxruntime": session_settings(onnx_backend.onnx_session(onnx_model, threads)),
            "onnxruntime_defaults": session_settings(default_session(onnx_model)),
            "tensorflow_threads": threads,
            "check_images": CHECK_IMAGES,
            "int8": args.int8,
        },
        "flop_per_image": FLOP_PER_IMAGE,
        "fp32_matmul_peak_gflops": peak,
        "fp32_matmul_peak_gflops_samples": peaks,
        "fp32_inference_bound_images_per_s": bound,
        "onnx_convert_seconds": convert_seconds,
        "rounds": [
            {"other_processes_cpu_share": r["other_cpu_share"], "kept": r["kept"]} for r in rounds
        ],
        "clean": clean,
        "paths": path_results,
        "cold_start_s": cold,
        "cold_start_other_processes_cpu_share": max(cold_others, 0.0),
        "predictor_backend_default": Predictor(run).backend,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")

    print()
    print(
        f"{results['cpu']}, {threads} CPUs; fp32 matmul peak {peak:.0f} GFLOP/s -> bound "
        f"{bound:,.0f} images/s at {FLOP_PER_IMAGE / 1e6:.2f} MFLOP per image"
    )
    print(markdown(results))
    print()
    for name, row in cold.items():
        print(
            f"cold start {name}: import {row['import_s']['median']:.2f} s, load "
            f"{row['load_s']['median']:.2f} s, first call {row['first_call_s']['median']:.3f} s"
        )
    if args.int8:
        for name in int8_models:
            row = path_results[name]
            print(
                f"{name}: test accuracy {row['test_accuracy']:.4f} "
                f"(fp32 {row['test_accuracy_fp32']:.4f}, drop {row['accuracy_drop']:+.4f})"
            )
    print(f"\nresults -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
