"""`mnist-cnn` command line: each subcommand parses flags and calls one library function."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from mnist_cnn import MnistCnnError, __version__, cli_data, cli_ensemble, cli_predict, cli_train
from mnist_cnn.cli_predict import EXIT_ERROR, EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnist-cnn",
        description="Train, evaluate and use the classic Keras MNIST tutorial CNN.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cli_train.add_train_parser(commands)

    evaluate = commands.add_parser("evaluate", help="evaluate a trained run on the test set")
    evaluate.add_argument("run_dir", metavar="DIR", help="run directory written by 'train'")
    evaluate.add_argument(
        "--data-dir", help="directory with the MNIST test files (default: the run's)"
    )
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    cli_predict.add_serve_parser(commands)
    cli_predict.add_predict_parser(commands)
    cli_data.add_data_parsers(commands)
    _add_report_parser(commands)
    _add_export_parser(commands)
    _add_calibrate_parser(commands)
    cli_ensemble.add_ensemble_parser(commands)
    return parser


def run_evaluate(args: argparse.Namespace) -> int:
    from mnist_cnn.evaluate import evaluate_run, format_report

    metrics = evaluate_run(args.run_dir, args.data_dir)
    print(json.dumps(metrics) if args.json else format_report(metrics))
    return EXIT_OK


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


def _add_calibrate_parser(commands: argparse._SubParsersAction) -> None:
    calibrate = commands.add_parser(
        "calibrate",
        help="fit a run's confidence temperature and its 'not a digit' threshold",
        description="Fits, on the training images the run held out (--validation-images), a "
        "temperature that calibrates the confidence and the energy above which predict and "
        "serve answer null ('not a digit'; also below a confidence: 'not sure'). Train runs "
        "it when images are held out.",
    )
    calibrate.add_argument("run_dir", metavar="DIR", help="run directory written by 'train'")
    calibrate.add_argument("--data-dir", help="directory with the MNIST files (default: the run's)")


def run_calibrate(args: argparse.Namespace) -> int:
    from mnist_cnn.fit_confidence import calibrate_run

    cli_train.print_calibration(calibrate_run(args.run_dir, args.data_dir))
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
    "calibrate": run_calibrate,
    "train": cli_train.run_train,
    "evaluate": run_evaluate,
    "serve": cli_predict.run_serve,
    "predict": cli_predict.run_predict,
    "report": run_report,
    "ensemble": cli_ensemble.run_ensemble,
    **cli_data.COMMANDS,
}


class _StderrHandler(logging.Handler):
    """Writes to the `sys.stderr` of the moment (a StreamHandler keeps the one it was made with)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


def _show_warnings() -> None:
    """mnist-cnn's own warnings (e.g. a run without model.onnx) as one line on stderr each."""
    logger = logging.getLogger("mnist_cnn")
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("mnist-cnn: warning: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    _show_warnings()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        args.argv = list(argv if argv is not None else sys.argv[1:])  # for train --workers
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
