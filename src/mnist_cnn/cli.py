"""`mnist-cnn` command line: each subcommand parses flags and calls one library function."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from mnist_cnn import MnistCnnError, __version__, cli_data, cli_ensemble, cli_predict, enable_onednn
from mnist_cnn.cli_predict import EXIT_ERROR, EXIT_OK, positive_int
from mnist_cnn.config import DATA_FORMATS, RECIPES, TrainConfig, recipe_config


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
    where = train.add_mutually_exclusive_group(required=True)
    where.add_argument("--output", "-o", help="run directory to write")
    where.add_argument(
        "--resume", metavar="DIR", help="finish the interrupted run in DIR, as it was started"
    )
    train.add_argument("--overwrite", action="store_true", help="replace a non-empty --output")
    train.add_argument(
        "--epochs", type=positive_int, help=f"passes over the data (default {defaults.epochs})"
    )
    train.add_argument(
        "--batch-size", type=positive_int, help=f"images per step (default {defaults.batch_size})"
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
        "--data-dir", help="directory of IDX files, identified by hash (default: packaged MNIST)"
    )
    cli_data.add_dataset_arguments(train)
    train.add_argument(
        "--data-format",
        choices=DATA_FORMATS,
        help=f"tensor layout (default {defaults.data_format})",
    )
    train.add_argument(
        "--limit", type=positive_int, help="train on the first N training images only"
    )
    train.add_argument(
        "--validation-images",
        type=int,
        metavar="N",
        help="hold out the last N training images to calibrate the confidence and fit 'not "
        "a digit' after training (default 0; 5000 in the robust recipe)",
    )
    train.add_argument(
        "--fast-kernels",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="TensorFlow's oneDNN kernels and an in-memory input pipeline: faster, but another "
        "floating-point path (on in the fast and best recipes, off in tutorial)",
    )
    train.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="STEPS",
        help="save the training state every STEPS batches and at each epoch end, for --resume "
        f"(default {defaults.checkpoint_every}; 0: epoch ends only)",
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
    cli_predict.add_serve_parser(commands)
    cli_predict.add_predict_parser(commands)
    cli_data.add_data_parsers(commands)
    _add_report_parser(commands)
    _add_export_parser(commands)
    _add_calibrate_parser(commands)
    cli_ensemble.add_ensemble_parser(commands)
    return parser


def _train_overrides(args: argparse.Namespace) -> dict:
    return {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "data_dir": cli_data.resolve_data_dir(args),
        "data_format": args.data_format,
        "limit": args.limit,
        "fast_kernels": args.fast_kernels,
        "validation_images": args.validation_images,
        "checkpoint_every": args.checkpoint_every,
    }


def _train_config(args: argparse.Namespace) -> TrainConfig:
    return recipe_config(args.recipe, **_train_overrides(args))


def run_train(args: argparse.Namespace) -> int:
    if args.resume:  # the settings DIR was started with: training flags would contradict them
        from mnist_cnn.run import read_started_run

        overrides = _train_overrides(args).items()
        given = [f"--{key.replace('_', '-')}" for key, value in overrides if value is not None]
        if given:
            raise MnistCnnError(f"--resume continues {args.resume} as started: drop {given[0]}")
        config = read_started_run(args.resume)[0]
    else:
        config = _train_config(args)
    if config.fast_kernels:
        enable_onednn()  # before the import below loads TensorFlow
    from mnist_cnn.train import resume_run, train

    if args.resume:
        result = resume_run(args.resume)
    else:
        result = train(config, args.output, overwrite=args.overwrite)
    print(f"test loss: {result.metrics['test_loss']:.4f}")
    print(f"test accuracy: {result.metrics['test_accuracy']:.4f}")
    print(f"train time: {result.metrics['train_seconds']:.1f} s; run saved to {result.output_dir}")
    if result.calibration is not None:
        _print_calibration(result.calibration)
    if not args.no_report:
        _report_after_training(result.output_dir)
    return EXIT_OK


def run_evaluate(args: argparse.Namespace) -> int:
    from mnist_cnn.evaluate import evaluate_run, format_report

    metrics = evaluate_run(args.run_dir, args.data_dir)
    print(json.dumps(metrics) if args.json else format_report(metrics))
    return EXIT_OK


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


def _print_calibration(records: dict) -> None:
    calibration, abstention = records["calibration"], records["abstention"]
    print(
        f"temperature: {calibration['temperature']:.3f}; test ECE "
        f"{calibration['test_ece_before']:.4f} -> {calibration['test_ece_after']:.4f}; "
        f"'not a digit' above energy {abstention['max_energy']:.2f}, 'not sure' below "
        f"confidence {abstention['min_confidence']:.2f} ({abstention['test_null_rate']:.2%} "
        "of test digits unanswered)"
    )


def run_calibrate(args: argparse.Namespace) -> int:
    from mnist_cnn.fit_confidence import calibrate_run

    _print_calibration(calibrate_run(args.run_dir, args.data_dir))
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
    "train": run_train,
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
