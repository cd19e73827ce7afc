"""The `train` subcommand of the command line (cli.py): its flags, and one call to train."""

from __future__ import annotations

import argparse
import os
import sys

from mnist_cnn import MnistCnnError, cli_data, enable_onednn
from mnist_cnn.cli_predict import EXIT_OK, positive_float, positive_int
from mnist_cnn.config import DATA_FORMATS, RECIPES, TrainConfig, recipe_config


def add_train_parser(commands: argparse._SubParsersAction) -> None:
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
        type=positive_float,
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
        "--low-resolution",
        type=float,
        metavar="SHARE",
        help="scan this share of the training images on a 7-10 px grid first (capture "
        f"augmentation only; default {defaults.low_resolution}, also in the robust recipe: "
        "0.2 reads 8 px scans better but costs about 0.1 point on MNIST test)",
    )
    train.add_argument(
        "--letter-outliers",
        action=argparse.BooleanOptionalAction,
        help="with outlier exposure, also train on letters drawn with MNIST 1s and halves of "
        "0s as non-digits (default off, also in the robust recipe)",
    )
    train.add_argument(
        "--fast-kernels",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="TensorFlow's oneDNN kernels and an in-memory input pipeline (default on, the "
        "fastest here); --no-fast-kernels: the XLA path of the tutorial's first figures",
    )
    train.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mixed bfloat16 arithmetic while training (default: on where the CPU has AVX-512 "
        "BF16 or AMX; the saved model is float32)",
    )
    train.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="STEPS",
        help="save the training state every STEPS batches and at each epoch end, for --resume "
        f"(default {defaults.checkpoint_every}; 0: epoch ends only)",
    )
    train.add_argument(
        "--images",
        metavar="DIR",
        help="train on your own pictures: DIR/0/ ... DIR/9/, any image format, prepared as "
        "predict prepares them; a fifth of each digit is held out to test on",
    )
    train.add_argument(
        "--init-from",
        metavar="RUN",
        help="start from RUN's trained weights (fine-tuning: e.g. --epochs 3 --learning-rate "
        "1e-5) instead of random ones",
    )
    train.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="data-parallel worker processes on this machine (TensorFlow's "
        "MultiWorkerMirroredStrategy, CPUs shared out; default 1). Across hosts, set "
        "TF_CONFIG on each and run the same command there",
    )
    train.add_argument(
        "--no-report", action="store_true", help="skip writing DIR/report/ after training"
    )


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
        "bf16": args.bf16,
        "validation_images": args.validation_images,
        "low_resolution": args.low_resolution,
        "letter_outliers": args.letter_outliers,
        "checkpoint_every": args.checkpoint_every,
        "images_dir": args.images,
        "init_from": args.init_from,
    }


def _train_config(args: argparse.Namespace) -> TrainConfig:
    return recipe_config(args.recipe, **_train_overrides(args))


def _without_workers(argv: list[str]) -> list[str]:
    """train's own arguments (after `train`) less `--workers N`: what each worker runs."""
    arguments = argv[argv.index("train") + 1 :]
    kept, skip = [], False
    for argument in arguments:
        if skip:
            skip = False
        elif argument == "--workers":
            skip = True
        elif not argument.startswith("--workers="):
            kept.append(argument)
    return kept


def _launch_workers(args: argparse.Namespace) -> int:
    from mnist_cnn.distributed import TF_CONFIG_VARIABLE, launch_local_workers

    if os.environ.get(TF_CONFIG_VARIABLE):
        raise MnistCnnError(
            f"--workers starts its own cluster on this machine, but {TF_CONFIG_VARIABLE} is "
            "set: run the command without --workers on each host of that cluster"
        )
    if args.resume:
        raise MnistCnnError("--resume of a multi-worker run is not supported; resume it alone")
    _train_config(args)  # a bad flag is one error here, not one per worker
    return launch_local_workers(_without_workers(args.argv), args.workers)


def run_train(args: argparse.Namespace) -> int:
    if args.workers > 1:
        return _launch_workers(args)
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
    if result.output_dir is None:
        print(f"worker {result.worker}: trained its share; worker 0 evaluates and saves the run")
        return EXIT_OK
    print(f"test loss: {result.metrics['test_loss']:.4f}")
    print(f"test accuracy: {result.metrics['test_accuracy']:.4f}")
    print(f"train time: {result.metrics['train_seconds']:.1f} s; run saved to {result.output_dir}")
    if result.calibration is not None:
        print_calibration(result.calibration)
    if not args.no_report:
        _report_after_training(result.output_dir)
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


def print_calibration(records: dict) -> None:
    calibration, abstention = records["calibration"], records["abstention"]
    print(
        f"temperature: {calibration['temperature']:.3f}; test ECE "
        f"{calibration['test_ece_before']:.4f} -> {calibration['test_ece_after']:.4f}; "
        f"'not a digit' above energy {abstention['max_energy']:.2f}, 'not sure' below "
        f"confidence {abstention['min_confidence']:.2f} ({abstention['test_null_rate']:.2%} "
        "of test digits unanswered)"
    )
