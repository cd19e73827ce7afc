"""The `ensemble` subcommand of the command line (cli.py): several runs averaged into one."""

from __future__ import annotations

import argparse

from mnist_cnn.cli_predict import EXIT_OK


def add_ensemble_parser(commands: argparse._SubParsersAction) -> None:
    ensemble = commands.add_parser(
        "ensemble",
        help="average the probabilities of trained runs into one run (evaluated on MNIST test)",
    )
    ensemble.add_argument("runs", nargs="+", metavar="RUN", help="run directories (2 or more)")
    ensemble.add_argument("--output", "-o", required=True, help="run directory to write")
    ensemble.add_argument("--overwrite", action="store_true", help="replace a non-empty --output")


def run_ensemble(args: argparse.Namespace) -> int:
    from mnist_cnn import enable_onednn

    enable_onednn()  # before TensorFlow loads: the members are evaluated through Keras
    from mnist_cnn.ensemble import ensemble

    metrics = ensemble(args.runs, args.output, overwrite=args.overwrite)
    members = ", ".join(
        "?" if value is None else f"{value:.4f}" for value in metrics["member_test_accuracy"]
    )
    print(f"members' test accuracy: {members}")
    print(f"test loss: {metrics['test_loss']:.4f}")
    print(f"test accuracy: {metrics['test_accuracy']:.4f}")
    print(f"run saved to {args.output}")
    return EXIT_OK
