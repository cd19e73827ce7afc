"""The `predict` and `serve` subcommands of the command line (cli.py): flags and one call each.

Neither imports TensorFlow: they load a run through inference.Predictor.
"""

from __future__ import annotations

import argparse
import json
import sys

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def add_serve_parser(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="serve the draw-a-digit page and the HTTP API")
    serve.add_argument("run_dir", metavar="DIR", help="run directory written by 'train'")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine)"
    )
    serve.add_argument(
        "--port", type=int, default=8000, help="TCP port, 0 for any free one (default 8000)"
    )
    serve.add_argument(
        "--max-body-bytes",
        type=positive_int,
        help="larger request bodies get 413 before being read (default 2000000)",
    )
    serve.add_argument(
        "--max-in-flight",
        type=positive_int,
        help="more /predict requests at once get 503 + Retry-After (default 64)",
    )
    serve.add_argument(
        "--access-log", action="store_true", help="log every request (costs throughput)"
    )


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from mnist_cnn.inference import Predictor
    from mnist_cnn.serve import create_app

    # Load the model before the server starts: a broken run directory is then one error line
    # (ModelLoadError, caught in main), not a traceback in the server's startup log.
    predictor = Predictor.from_dir(args.run_dir)
    limits = {"max_body_bytes": args.max_body_bytes, "max_in_flight": args.max_in_flight}
    limits = {k: v for k, v in limits.items() if v is not None}
    app = create_app(args.run_dir, predictor=predictor, **limits)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, access_log=args.access_log, server_header=False
    )
    server = uvicorn.Server(config)
    server.run()
    return EXIT_OK if server.started else EXIT_ERROR


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
        epilog="exit status: 0 every image predicted; 1 some image failed (its line says why) "
        "or the run directory cannot be loaded; 2 bad command-line usage",
    )
    predict.add_argument("run_dir", metavar="DIR", help="run directory written by 'train'")
    predict.add_argument(
        "images",
        metavar="IMAGE",
        nargs="+",
        help="image file, directory (its images, not recursive) or quoted glob pattern",
    )
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
        help='print a JSON list of {"file", "digit", "confidence", "probabilities"} or '
        '{"file", "error"}',
    )
    predict.add_argument(
        "--save-preprocessed",
        metavar="OUT_DIR",
        help="write the 28x28 image fed to the model for each input, as OUT_DIR/NAME.png",
    )


def _result_line(result: dict) -> str:
    """`photo.jpg: 7 (0.9931)`, with --top 3 `photo.jpg: 7 (0.9931)  1 (0.0040)  2 (0.0012)`."""
    if "error" in result:
        return f"{result['file']}: error: {result['error']}"
    ranked = result.get("top", [[result["digit"], result["confidence"]]])
    return f"{result['file']}: " + "  ".join(f"{digit} ({p:.4f})" for digit, p in ranked)


def run_predict(args: argparse.Namespace) -> int:
    from mnist_cnn.inference import Predictor
    from mnist_cnn.predict import predict_files

    predictor = Predictor.from_dir(args.run_dir)
    results = predict_files(
        predictor, args.images, top=args.top, save_preprocessed=args.save_preprocessed
    )
    failed = sum("error" in result for result in results)
    if args.json:
        print(json.dumps(results))
    else:
        for result in results:
            print(_result_line(result))
    if failed:
        print(f"mnist-cnn: {failed} of {len(results)} images failed", file=sys.stderr)
    return EXIT_ERROR if failed else EXIT_OK
