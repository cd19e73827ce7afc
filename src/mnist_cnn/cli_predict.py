"""The `predict` and `serve` subcommands of the command line (cli.py): flags and one call each.

Neither imports TensorFlow: they load a run through inference.Predictor, the packaged model
(packaged.py) unless `--run DIR` names another.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from mnist_cnn.dataset_registry import DIGITS
from mnist_cnn.run import CONFIG_FILE
from mnist_cnn.text import one_line

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
MAX_PORT = 65535  # TCP ports are 16-bit
RUN_HELP = (
    "run directory written by 'train' (default: the model packaged with mnist-cnn, trained by "
    "--recipe robust)"
)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def port_number(text: str) -> int:
    """0-65535 (0: any free port). The system took 99999 modulo 65536 and said nothing."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to {MAX_PORT}, got {text}")
    return value


def add_serve_parser(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve", help="serve the draw-a-digit (or photo) page and the HTTP API"
    )
    serve.add_argument("--run", metavar="DIR", dest="run_dir", help=RUN_HELP)
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine)"
    )
    serve.add_argument(
        "--port",
        type=port_number,
        default=8000,
        help="TCP port, 0 for any free one (default 8000)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=positive_int,
        help="larger request bodies get a 413 (default 20000000: phone photos fit)",
    )
    serve.add_argument(
        "--body-timeout",
        type=positive_float,
        metavar="SECONDS",
        help="a request body not received by then gets 408 (default 30)",
    )
    serve.add_argument(
        "--max-in-flight",
        type=positive_int,
        help="more /predict requests at once get 503 + Retry-After (default 64)",
    )
    serve.add_argument(
        "--workers",
        type=positive_int,
        help="server processes sharing the port, each with CPUs/N model threads "
        "(default: one per CPU)",
    )
    serve.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="no line per request on stderr (method, path, status, ms)",
    )


def _run_dir(args: argparse.Namespace) -> Path:
    """`--run DIR`, or the packaged model's directory (ModelLoadError if not installed)."""
    from mnist_cnn.packaged import packaged_run_dir

    return Path(args.run_dir) if args.run_dir is not None else packaged_run_dir()


def run_serve(args: argparse.Namespace) -> int:
    from mnist_cnn.serve_workers import ServeSettings, default_workers, serve

    limits = {
        "max_body_bytes": args.max_body_bytes,
        "max_in_flight": args.max_in_flight,
        "body_timeout": args.body_timeout,
    }
    settings = ServeSettings(
        run_dir=str(_run_dir(args)),
        workers=args.workers or default_workers(),
        access_log=args.access_log,
        limits={name: value for name, value in limits.items() if value is not None},
    )
    return EXIT_OK if serve(settings, args.host, args.port) else EXIT_ERROR


def _top_count(text: str) -> int:
    value = positive_int(text)
    if value > 10:
        raise argparse.ArgumentTypeError(f"expected 1 to 10 (there are 10 digits), got {text}")
    return value


def add_predict_parser(commands: argparse._SubParsersAction) -> None:
    predict = commands.add_parser(
        "predict",
        help="predict the digit in image files",
        description="Predict the digit in each image (PNG, JPEG, GIF, BMP, WebP): photos, scans "
        "and drawings are cropped, centred and inverted the way MNIST digits were made.",
        epilog="exit status: 0 every image answered (a 'not sure' or 'no digit found' answer "
        "included); 1 some file could not be read as an image (its line says why) or the model "
        "cannot be loaded; 2 bad command-line usage",
    )
    predict.add_argument(
        "images",
        metavar="IMAGE",
        nargs="+",
        help="image file, directory (its images, not recursive) or quoted glob pattern",
    )
    predict.add_argument("--run", metavar="DIR", dest="run_dir", help=RUN_HELP)
    predict.add_argument(
        "--top",
        type=_top_count,
        default=1,
        metavar="K",
        help="show the K most likely digits (default 1)",
    )
    predict.add_argument(
        "--json",
        action="store_true",
        help='print a JSON list of {"file", "digit", "confidence", "probabilities"} (digit '
        'null and a "reason" when the model is not sure; all three null when no digit was '
        'found) or {"file", "error"}',
    )
    predict.add_argument(
        "--save-preprocessed",
        metavar="OUT_DIR",
        help="write the 28x28 image fed to the model for each input, as OUT_DIR/NAME.png",
    )


def _ranked_text(ranked: list, class_names: Sequence[str] | None = None) -> str:
    def label(index: int) -> str:
        return f"{index} {class_names[index]}" if class_names else str(index)

    return "  ".join(f"{label(digit)} ({probability:.4f})" for digit, probability in ranked)


def _result_line(result: dict, class_names: Sequence[str] | None = None) -> str:
    """`photo.jpg: 7 (0.9931)`, with --top 3 `photo.jpg: 7 (0.9931)  1 (0.0040)  2 (0.0012)`.

    A result whose digit is None (the model abstained) reads
    `photo.jpg: no answer (0.4123): not sure: <why>` (or `not a digit: <why>`), with
    --top 3 followed by `; most likely 7 (0.4123)  1 (0.3010)  2 (0.1022)`; a picture with
    no digit in it (blank paper) `photo.jpg: no answer: no digit found: <why>`.
    """
    result = {**result, "file": one_line(result["file"])}
    if "error" in result:
        return f"{result['file']}: error: {result['error']}"
    if result["confidence"] is None:  # preprocessing found no digit: the model was not asked
        return f"{result['file']}: no answer: {result['reason']}"
    if result["digit"] is None:
        reason = result.get("reason") or "the model is not sure"
        line = f"{result['file']}: no answer ({result['confidence']:.4f}): {reason}"
        if "top" in result:
            line += f"; most likely {_ranked_text(result['top'], class_names)}"
        return line
    ranked = result.get("top", [[result["digit"], result["confidence"]]])
    return f"{result['file']}: {_ranked_text(ranked, class_names)}"


def _run_directory_among(images: list[str]) -> str | None:
    """The first IMAGE argument that is a run directory (the older `predict DIR IMAGE...`)."""
    return next((image for image in images if _is_run_directory(image)), None)


def _is_run_directory(argument: str) -> bool:
    try:
        return bool(argument) and (Path(argument) / CONFIG_FILE).is_file()
    except OSError:  # a name too long for the file system: predict_files reports it
        return False


def run_predict(args: argparse.Namespace) -> int:
    from mnist_cnn.inference import Predictor
    from mnist_cnn.predict import predict_files

    run_dir = _run_directory_among(args.images)
    if run_dir is not None:
        print(
            f"mnist-cnn: error: {run_dir} is a run directory, not images; "
            f"pass it as --run {run_dir}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    predictor = Predictor.from_dir(_run_dir(args))
    try:
        results = predict_files(
            predictor, args.images, top=args.top, save_preprocessed=args.save_preprocessed
        )
    except ValueError as error:  # the --save-preprocessed folder cannot be made
        print(f"mnist-cnn: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    failed = sum("error" in result for result in results)
    if args.json:
        print(json.dumps(results))
    else:
        names = predictor.run.class_names
        for result in results:
            print(_result_line(result, None if names == DIGITS else names))
    if failed:
        print(f"mnist-cnn: {failed} of {len(results)} images failed", file=sys.stderr)
    return EXIT_ERROR if failed else EXIT_OK
