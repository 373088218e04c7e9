"""The command line, thin over the library: `python -m mlp train ...` (also the `mlp` script).

Every failure the user can cause ends in one line on stderr and a non-zero exit, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
import time

EXIT_USAGE = 2


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def _hidden(text):
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes comma-separated widths like 128,64, got {text!r}") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"--hidden widths must be positive, got {text!r}")
    return sizes


def _batch_size(text):
    if text == "full":
        return "full"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--batch-size takes a positive integer or 'full', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--batch-size must be positive, got {value}")
    return value


def build_parser():
    from .training import DEFAULT_BATCH_SIZE, DEFAULT_DROPOUT, DEFAULT_EPOCHS, DEFAULT_HIDDEN_SIZES, DEFAULT_SCHEDULE

    parser = argparse.ArgumentParser(prog="mlp", description="Train and use from-scratch multilayer perceptrons.")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train on MNIST and report test accuracy")
    train.add_argument("--data", help="folder (or file) holding MNIST; default: $MLP_DATA_DIR, cache, download")
    train.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    train.add_argument("--hidden", type=_hidden, default=list(DEFAULT_HIDDEN_SIZES), help="e.g. 128,64")
    train.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    train.add_argument("--batch-size", type=_batch_size, default=DEFAULT_BATCH_SIZE, help="N or 'full'")
    train.add_argument("--optimizer", default="adam", choices=["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"])
    train.add_argument("--lr", type=float, default=None, help="learning rate (default depends on the optimizer)")
    train.add_argument("--activation", default="relu", choices=["relu", "leaky_relu", "sigmoid", "tanh", "identity"])
    train.add_argument("--loss", default="cross_entropy", choices=["cross_entropy", "mse"])
    train.add_argument("--init", default="auto")
    train.add_argument("--dropout", type=float, default=DEFAULT_DROPOUT)
    train.add_argument("--weight-decay", type=float, default=None)
    train.add_argument("--clip-value", type=float, default=None)
    train.add_argument("--clip-norm", type=float, default=None)
    train.add_argument("--schedule", default=DEFAULT_SCHEDULE, choices=["constant", "step", "exponential", "cosine", "plateau"])
    train.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--log-every", type=int, default=1, help="print a line every N epochs (0: quiet)")
    return parser


def cmd_train(args):
    import mlp

    started = time.perf_counter()
    try:
        (X_train, y_train), (X_test, y_test) = mlp.datasets.load_mnist(args.data, dataset=args.dataset)
    except (OSError, ValueError, RuntimeError) as error:
        raise CommandError(str(error).splitlines()[0] if str(error) else repr(error)) from None
    loaded = time.perf_counter()
    print(f"data: {X_train.shape[0]} training and {X_test.shape[0]} test images ({loaded - started:.1f}s)", flush=True)
    try:
        model = mlp.fit(
            X_train, y_train, hidden_sizes=args.hidden, activation=args.activation, loss=args.loss,
            init=args.init, epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
            learning_rate=args.lr, weight_decay=args.weight_decay, dropout=args.dropout,
            clip_value=args.clip_value, clip_norm=args.clip_norm, schedule=args.schedule, dtype=args.dtype,
            seed=args.seed, verbose=args.log_every, validation_data=(X_test, y_test),
        )
    except (ValueError, TypeError, mlp.TrainingError) as error:
        raise CommandError(str(error)) from None
    trained = time.perf_counter()
    print(model)
    print(f"test accuracy {model.score(X_test, y_test):.4f}  training time {trained - loaded:.1f}s")
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return {"train": cmd_train}[args.command](args)
    except CommandError as error:
        print(f"mlp {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mlp {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
