"""What preprocessing costs per picture, this code against an earlier one, side by side.

Three kinds of picture, all made or read here: the canvas PNG that `load_serve.py` uploads
(280x280, the first MNIST test digit), pictures of `--corpus` (the first `--per-class` of
each class, digits and non-digits, about 200 px), and the 12-megapixel phone JPEG of
`phone_photo.py`. Each code tree runs in its own process (`--before SRC`: the `src` folder of
a worktree of an earlier commit), in alternating rounds. The report gives the median
milliseconds per picture of each kind, the ratio, and the largest difference between the two
trees' outputs (-1 stands for a refused picture), so a speed-up that changes an answer shows.

    git worktree add /tmp/before COMMIT
    python benchmarks/preprocess_speed.py --before /tmp/before/src --corpus corpus/tune
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import provenance

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def pictures(corpus: Path | None, per_class: int) -> dict[str, list[bytes]]:
    """The pictures of each kind, as encoded files."""
    from phone_photo import phone_photo
    from PIL import Image
    from real_world import read_manifest

    from mnist_cnn.data import load_mnist

    digit = load_mnist().test.images[0]
    canvas = io.BytesIO()  # as load_serve.py's upload: black ink on white, 280x280
    Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BILINEAR).save(canvas, "PNG")
    kinds = {"canvas_png_280": [canvas.getvalue()], "phone_jpeg_12mp": [phone_photo()]}
    if corpus is not None:
        taken: dict[str, int] = {}
        chosen = []
        for row in read_manifest(corpus):
            if taken.get(row["class"], 0) < per_class:
                taken[row["class"]] = taken.get(row["class"], 0) + 1
                chosen.append((corpus / row["file"]).read_bytes())
        kinds["corpus"] = chosen
    return kinds


def store(kinds: dict[str, list[bytes]], folder: Path) -> None:
    """One file per picture, folder/KIND/NNNN, for the workers to read."""
    for kind, files in kinds.items():
        (folder / kind).mkdir(parents=True)
        for number, data in enumerate(files):
            (folder / kind / f"{number:04d}").write_bytes(data)


def time_kinds(folder: Path, repeats: int, output: Path) -> None:
    """Worker: milliseconds per picture of each kind (best pass of `repeats`) to output, and
    the preprocessed pictures beside it (-1 where refused)."""
    from mnist_cnn.preprocess import PreprocessError, preprocess

    def answer(data: bytes) -> np.ndarray:
        try:
            return preprocess(data)
        except PreprocessError:
            return np.full((28, 28), -1.0, dtype=np.float32)

    timings, outputs = {}, {}
    for kind_folder in sorted(folder.iterdir()):
        files = [path.read_bytes() for path in sorted(kind_folder.iterdir())]
        outputs[kind_folder.name] = np.stack([answer(data) for data in files])  # also warms up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for data in files:
                answer(data)
            best = min(best, time.perf_counter() - start)
        timings[kind_folder.name] = 1000 * best / len(files)
    np.savez(output.with_suffix(".npz"), **outputs)
    output.write_text(json.dumps(timings))


def run_worker(src: Path, folder: Path, repeats: int, output: Path) -> dict[str, float]:
    """One round of one code tree, in a process of its own."""
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(src), str(HERE)]))
    command = [sys.executable, __file__, "--worker", str(folder), str(output)]
    subprocess.run([*command, "--repeats", str(repeats)], check=True, env=environment)
    return json.loads(output.read_text())


def report_of(rounds: dict[str, list[dict[str, float]]], outputs: dict) -> dict:
    """Median ms per picture of each tree and kind, the ratio, and the outputs' differences."""
    report: dict = {"ms_per_picture_median": {}, "ratio_before_over_after": {}}
    for name, measured in rounds.items():
        report["ms_per_picture_median"][name] = {
            kind: round(statistics.median(run[kind] for run in measured), 3) for kind in measured[0]
        }
        report[f"ms_per_picture_rounds_{name}"] = measured
    medians = report["ms_per_picture_median"]
    if "before" in medians:
        for kind, after in medians["after"].items():
            report["ratio_before_over_after"][kind] = round(medians["before"][kind] / after, 3)
        report["largest_output_difference"] = {
            kind: float(np.abs(outputs["before"][kind] - outputs["after"][kind]).max())
            for kind in outputs["after"]
        }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="src folder of the earlier code")
    parser.add_argument("--corpus", type=Path, help="a corpus folder (benchmarks/corpus)")
    parser.add_argument("--per-class", type=int, default=10, help="corpus pictures per class")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (median)")
    parser.add_argument("--repeats", type=int, default=3, help="passes per round (best)")
    parser.add_argument("--output", type=Path, help="write the report here as JSON")
    parser.add_argument("--worker", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        folder, output = args.worker
        time_kinds(folder, args.repeats, output)
        return 0
    trees = {"after": ROOT / "src"}
    if args.before:
        if not (args.before / "mnist_cnn" / "preprocess.py").is_file():
            parser.error(f"--before {args.before}: no mnist_cnn/preprocess.py there")
        trees["before"] = args.before
    if args.corpus and not (args.corpus / "manifest.csv").is_file():
        parser.error(f"--corpus {args.corpus}: no manifest.csv there")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "pictures"
        store(pictures(args.corpus, args.per_class), folder)
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, src in trees.items():
                output = Path(scratch) / f"{name}.json"
                rounds[name].append(run_worker(src, folder, args.repeats, output))
        outputs = {}
        for name in trees:
            with np.load(Path(scratch) / f"{name}.npz") as stored:
                outputs[name] = dict(stored)
    report = report_of(rounds, outputs)
    report.update(
        provenance(),
        rounds=args.rounds,
        repeats=args.repeats,
        corpus=str(args.corpus) if args.corpus else None,
    )
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
