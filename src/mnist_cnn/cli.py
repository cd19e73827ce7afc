"""`mnist-cnn` command line: each subcommand parses flags and calls one library function."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from mnist_cnn import MnistCnnError, __version__, enable_onednn
from mnist_cnn.config import DATA_FORMATS, RECIPES, TrainConfig, recipe_config

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnist-cnn",
        description="Train, evaluate and use the classic Keras MNIST tutorial CNN.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    defaults = TrainConfig()
    train = commands.add_parser("train", help="train a model and evaluate it on the test set")
    train.add_argument("--output", "-o", required=True, help="run directory to write")
    train.add_argument("--overwrite", action="store_true", help="replace a non-empty --output")
    train.add_argument(
        "--epochs", type=_positive_int, help=f"passes over the data (default {defaults.epochs})"
    )
    train.add_argument(
        "--batch-size", type=_positive_int, help=f"images per step (default {defaults.batch_size})"
    )
    train.add_argument(
        "--learning-rate",
        type=_positive_float,
        help=f"Adam learning rate (default {defaults.learning_rate})",
    )
    train.add_argument("--seed", type=int, help=f"random seed (default {defaults.seed})")
    train.add_argument(
        "--recipe",
        choices=list(RECIPES),
        default="tutorial",
        help="preset settings (default tutorial; see config.RECIPES); other flags override it",
    )
    train.add_argument(
        "--data-dir", help="directory with the four MNIST IDX files (default: packaged MNIST)"
    )
    train.add_argument(
        "--data-format",
        choices=DATA_FORMATS,
        help=f"tensor layout (default {defaults.data_format})",
    )
    train.add_argument(
        "--limit", type=_positive_int, help="train on the first N training images only"
    )
    train.add_argument(
        "--fast-kernels",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="TensorFlow's oneDNN kernels and an in-memory input pipeline: faster, but another "
        "floating-point path (on in the fast and best recipes, off in tutorial)",
    )
    train.add_argument(
        "--no-report", action="store_true", help="skip writing DIR/report/ after training"
    )

    evaluate = commands.add_parser("evaluate", help="evaluate a trained run on the test set")
    evaluate.add_argument("run_dir", metavar="DIR", help="run directory written by 'train'")
    evaluate.add_argument(
        "--data-dir", help="directory with the MNIST test files (default: the run's)"
    )
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    _add_serve_parser(commands)
    _add_predict_parser(commands)
    _add_report_parser(commands)
    _add_export_parser(commands)
    return parser


def _train_config(args: argparse.Namespace) -> TrainConfig:
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "data_dir": args.data_dir,
        "data_format": args.data_format,
        "limit": args.limit,
        "fast_kernels": args.fast_kernels,
    }
    return recipe_config(args.recipe, **overrides)


def run_train(args: argparse.Namespace) -> int:
    config = _train_config(args)
    if config.fast_kernels:
        enable_onednn()  # before the import below loads TensorFlow
    from mnist_cnn.train import train

    result = train(config, args.output, overwrite=args.overwrite)
    print(f"test loss: {result.metrics['test_loss']:.4f}")
    print(f"test accuracy: {result.metrics['test_accuracy']:.4f}")
    print(f"train time: {result.metrics['train_seconds']:.1f} s; run saved to {result.output_dir}")
    if not args.no_report:
        _report_after_training(result.output_dir)
    return EXIT_OK


def run_evaluate(args: argparse.Namespace) -> int:
    from mnist_cnn.evaluate import evaluate_run, format_report

    metrics = evaluate_run(args.run_dir, args.data_dir)
    print(json.dumps(metrics) if args.json else format_report(metrics))
    return EXIT_OK


def _add_serve_parser(commands: argparse._SubParsersAction) -> None:
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
        type=_positive_int,
        help="larger request bodies get 413 before being read (default 2000000)",
    )
    serve.add_argument(
        "--max-in-flight",
        type=_positive_int,
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


def _report_after_training(run_dir: str) -> None:
    from mnist_cnn.report import write_report

    try:
        print(f"report: {write_report(run_dir)}")
    except Exception as error:  # the run is saved already; a report can be made later
        print(
            f"mnist-cnn: warning: report not written ({type(error).__name__}: {error}); "
            f"the run is saved, retry with: mnist-cnn report {run_dir}",
            file=sys.stderr,
        )


def _top_count(text: str) -> int:
    value = _positive_int(text)
    if value > 10:
        raise argparse.ArgumentTypeError(f"expected 1 to 10 (there are 10 digits), got {text}")
    return value


def _add_predict_parser(commands: argparse._SubParsersAction) -> None:
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


def _add_report_parser(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report",
        help="write figures and report.md into DIR/report/",
        description="Training curves, confusion matrix, per-digit accuracy and the most "
        "confidently misclassified test digits, as PNGs embedded in DIR/report/report.md.",
    )
    report.add_argument("run_dir", metavar="DIR", help="run directory written by 'train'")
    report.add_argument(
        "--data-dir", help="directory with the MNIST test files (default: the run's)"
    )


def run_report(args: argparse.Namespace) -> int:
    from mnist_cnn.report import write_report

    print(f"report: {write_report(args.run_dir, args.data_dir)}")
    return EXIT_OK


def _add_export_parser(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export", help="export a trained run for ONNX Runtime (checked against Keras)"
    )
    export.add_argument("run_dir", metavar="DIR", help="run directory written by 'train'")
    export.add_argument(
        "--format", choices=["onnx"], default="onnx", help="export format (default onnx)"
    )
    export.add_argument("--output", "-o", help="file to write (default DIR/model.onnx)")


def run_export(args: argparse.Namespace) -> int:
    from mnist_cnn.export import export_onnx

    print(f"exported: {export_onnx(args.run_dir, args.output)}")
    return EXIT_OK


COMMANDS = {
    "export": run_export,
    "train": run_train,
    "evaluate": run_evaluate,
    "serve": run_serve,
    "predict": run_predict,
    "report": run_report,
}


def _show_warnings() -> None:
    """mnist-cnn's own warnings (e.g. a run without model.onnx) as one line on stderr each."""
    logger = logging.getLogger("mnist_cnn")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("mnist-cnn: %(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    _show_warnings()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on usage errors, 0 on --help
        return int(exit_.code or 0)
    try:
        return COMMANDS[args.command](args)
    except MnistCnnError as error:
        print(f"mnist-cnn: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("mnist-cnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
