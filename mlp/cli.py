"""The command line, thin over the library: `python -m mlp COMMAND ...` (also the `mlp` script).

    train      train on MNIST, report per-epoch metrics and the test accuracy, save the model
    evaluate   accuracy, per-class precision/recall and the confusion matrix of a saved model
    predict    recognise your own handwritten digits from PNG/JPEG files
    convert    write MNIST in another format (idx, npz, csv, or the C++ port's binary files)
    info       describe a saved model

Every failure the user can cause ends in one line on stderr and a non-zero exit, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _hidden(text):
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes comma-separated widths like 128,64, got {text!r}") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"widths must be positive, got {text!r}")
    return sizes


def _batch_size(text):
    if text == "full":
        return "full"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes a positive integer or 'full', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _data_arguments(parser):
    parser.add_argument("--data", help="folder or file holding the data set; default: $MLP_DATA_DIR, the cache, a download")
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])


def build_parser():
    from .training import DEFAULT_BATCH_SIZE, DEFAULT_DROPOUT, DEFAULT_EPOCHS, DEFAULT_HIDDEN_SIZES, DEFAULT_SCHEDULE

    parser = _Parser(prog="mlp", description="Train and use from-scratch multilayer perceptrons.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train on MNIST and report the test accuracy")
    _data_arguments(train)
    train.add_argument("--hidden", type=_hidden, default=list(DEFAULT_HIDDEN_SIZES), help="widths, e.g. 128,64")
    train.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    train.add_argument("--batch-size", type=_batch_size, default=DEFAULT_BATCH_SIZE, help="N, or 'full'")
    train.add_argument("--optimizer", default="adam", choices=["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"])
    train.add_argument("--lr", type=float, default=None, help="learning rate (default depends on the optimizer)")
    train.add_argument("--momentum", type=float, default=None)
    train.add_argument("--activation", default="relu", choices=["relu", "leaky_relu", "sigmoid", "tanh", "identity"])
    train.add_argument("--loss", default="cross_entropy", choices=["cross_entropy", "mse"])
    train.add_argument("--init", default="auto", choices=["auto", "he_normal", "he_uniform", "glorot_normal", "glorot_uniform",
                                                            "lecun_normal", "lecun_uniform", "normal"])
    train.add_argument("--dropout", type=float, default=DEFAULT_DROPOUT)
    train.add_argument("--weight-decay", type=float, default=None)
    train.add_argument("--clip-value", type=float, default=None)
    train.add_argument("--clip-norm", type=float, default=None)
    train.add_argument("--schedule", default=DEFAULT_SCHEDULE, choices=["constant", "step", "exponential", "cosine", "plateau"])
    train.add_argument("--validation-split", type=float, default=0.0, help="fraction of the training data held out")
    train.add_argument("--early-stopping", action="store_true", help="stop when the validation loss stops improving")
    train.add_argument("--patience", type=int, default=5)
    train.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    train.add_argument("--device", default="cpu", help="cpu, gpu or cuda:N (needs CuPy)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", help="save the trained model to this .npz file")
    train.add_argument("--plot", metavar="DIR", help="write loss curves and other pictures as PNG into DIR")
    train.add_argument("--log-every", type=int, default=1, help="print a line every N epochs (0: none)")
    train.add_argument("--log-gradients", action="store_true", help="record per-layer gradient norms")
    train.add_argument("--checkpoint", help="save a checkpoint here after every epoch")
    train.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
    train.add_argument("--limit", type=int, default=None, help="train on the first N images only (quick runs)")

    evaluate = commands.add_parser("evaluate", help="accuracy, per-class report and confusion matrix of a model")
    evaluate.add_argument("model")
    _data_arguments(evaluate)
    evaluate.add_argument("--device", default="cpu")

    predict = commands.add_parser("predict", help="recognise handwritten digits in PNG/JPEG files")
    predict.add_argument("model")
    predict.add_argument("images", nargs="+")
    predict.add_argument("--invert", choices=["auto", "yes", "no"], default="auto",
                         help="invert a light background (auto: decide from the border)")

    convert = commands.add_parser("convert", help="write the data set in another format")
    convert.add_argument("source", help="folder or file holding MNIST in any supported layout")
    convert.add_argument("destination", help="output folder (or .npz file for --format npz)")
    convert.add_argument("--format", required=True, choices=["idx", "npz", "csv", "binary"])
    convert.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])

    info = commands.add_parser("info", help="describe a saved model")
    info.add_argument("model")
    return parser


# ---- commands -----------------------------------------------------------------------------------
def _load_data(args):
    import mlp

    try:
        return mlp.datasets.load_mnist(args.data, dataset=args.dataset)
    except (OSError, ValueError, RuntimeError) as error:
        raise CommandError(_one_line(error)) from None


def _resolve_device(device):
    """(xp, device) for --device, checked before any data is read; None for the CPU."""
    from .saving import resolve_namespace

    if device == "cpu":
        return None
    try:
        return resolve_namespace(device)
    except (ImportError, RuntimeError, ValueError) as error:
        raise CommandError(f"--device {device}: {_one_line(error)}") from None


def _to_device(arrays, target):
    """Move host arrays to the resolved device once, before training."""
    from ._array_api import from_host

    if target is None:
        return arrays
    xp, device = target
    return [from_host(a, xp=xp, device=device) for a in arrays]


def cmd_train(args):
    import mlp

    if args.resume and not args.checkpoint:
        raise CommandError("--resume needs --checkpoint PATH")
    if args.epochs < 0:
        raise CommandError(f"--epochs must be >= 0, got {args.epochs}")
    if args.log_every < 0:
        raise CommandError(f"--log-every must be >= 0, got {args.log_every}")
    if args.plot:
        _require_plotting()
    target = _resolve_device(args.device)
    started = time.perf_counter()
    (X_train, y_train), (X_test, y_test) = _load_data(args)
    if args.limit is not None:
        if args.limit < 1:
            raise CommandError(f"--limit must be positive, got {args.limit}")
        X_train, y_train = X_train[: args.limit], y_train[: args.limit]
    print(f"data: {X_train.shape[0]} training and {X_test.shape[0]} test images "
          f"({time.perf_counter() - started:.1f}s)", flush=True)
    X_train, y_train, X_test_dev, y_test_dev = _to_device([X_train, y_train, X_test, y_test], target)
    loaded = time.perf_counter()
    try:
        model = mlp.fit(
            X_train, y_train, hidden_sizes=args.hidden, activation=args.activation, loss=args.loss,
            init=args.init, epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
            learning_rate=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
            dropout=args.dropout, clip_value=args.clip_value, clip_norm=args.clip_norm,
            schedule=args.schedule, validation_split=args.validation_split,
            early_stopping=args.early_stopping, patience=args.patience, dtype=args.dtype, seed=args.seed,
            verbose=args.log_every, checkpoint=args.checkpoint, resume=args.resume,
            log_gradients=args.log_gradients, progress="auto",
        )
    except (ValueError, TypeError, ImportError, OSError, mlp.TrainingError) as error:
        raise CommandError(_one_line(error)) from None
    trained = time.perf_counter()
    print(model)
    accuracy = model.score(X_test_dev, y_test_dev)
    print(f"test accuracy {accuracy:.4f}  training time {trained - loaded:.1f}s")
    if args.out:
        try:
            model.save(args.out)
        except OSError as error:
            raise CommandError(f"cannot write {args.out}: {_one_line(error)}") from None
        print(f"model saved to {args.out}")
    if args.plot:
        from . import plots

        try:
            paths = plots.write_all(model if args.device == "cpu" else _host_copy(model), X_test, y_test, args.plot)
        except OSError as error:
            raise CommandError(f"cannot write pictures to {args.plot}: {_one_line(error)}") from None
        print(f"pictures written to {args.plot}: {', '.join(str(p.name) for p in map(_path, paths))}")
    return 0


def _host_copy(model):
    """The same model with NumPy parameters (pictures are drawn on the host)."""
    from .model import MLP
    from ._array_api import to_numpy

    return MLP(model.get_weights(), activation=model.activation, loss=model.loss,
               classes=to_numpy(model.classes_), l2=model.l2, history=model.history, config=model.config)


def _load_model(path, device="cpu"):
    import mlp

    try:
        return mlp.load(path, device=device)
    except (OSError, ValueError, ImportError, RuntimeError) as error:
        raise CommandError(_one_line(error)) from None


def cmd_evaluate(args):
    from ._array_api import to_numpy
    from .metrics import classification_report, confusion_matrix

    target = _resolve_device(args.device)
    model = _load_model(args.model, args.device)
    _, (X_test, y_test) = _load_data(args)
    if X_test.shape[1] != model.n_features_in_:
        raise CommandError(f"the data have {X_test.shape[1]} features but the model was trained on {model.n_features_in_}")
    X_dev, = _to_device([X_test], target)
    predicted = to_numpy(model.predict(X_dev))
    labels = to_numpy(model.classes_)
    unknown = sorted(set(np.unique(y_test).tolist()) - set(labels.tolist()))
    if unknown:
        raise CommandError(f"the data hold labels {unknown} that the model does not know")
    report, table = classification_report(y_test, predicted, labels)
    print(model)
    print(f"accuracy {report['accuracy']:.4f} on {len(y_test)} test images\n")
    print(table)
    print("\nconfusion matrix (rows: true, columns: predicted)")
    matrix = confusion_matrix(y_test, predicted, labels)
    width = max(len(str(matrix.max())), max(len(str(label)) for label in labels.tolist())) + 1
    print(" " * 6 + "".join(f"{label!s:>{width}}" for label in labels.tolist()))
    for label, row in zip(labels.tolist(), matrix):
        print(f"{label!s:>5} " + "".join(f"{count:>{width}d}" for count in row))
    return 0


def cmd_predict(args):
    from ._array_api import to_numpy

    _require_plotting(what="reading images")
    from .images import load_digit

    model = _load_model(args.model)
    if model.n_features_in_ != 784:
        raise CommandError(f"the model takes {model.n_features_in_} features, not 28x28 images")
    invert = {"auto": "auto", "yes": True, "no": False}[args.invert]
    for path in args.images:
        try:
            x = load_digit(path, invert=invert)
        except (OSError, ValueError) as error:
            raise CommandError(_one_line(error)) from None
        proba = to_numpy(model.predict_proba(x.reshape(1, -1).astype(model.dtype)))[0]
        classes = to_numpy(model.classes_).tolist()
        best = int(np.argmax(proba))
        ranked = ", ".join(f"{classes[i]}: {proba[i]:.3f}" for i in np.argsort(proba)[::-1][:3])
        print(f"{path}: {classes[best]}  (probability {proba[best]:.3f}; top: {ranked})")
    return 0


def cmd_convert(args):
    from . import datasets

    try:
        paths = datasets.convert(args.source, args.destination, args.format, dataset=args.dataset)
    except (OSError, ValueError, RuntimeError) as error:
        raise CommandError(_one_line(error)) from None
    for path in paths:
        print(f"wrote {path}")
    return 0


def cmd_info(args):
    model = _load_model(args.model)
    history = model.history or {}
    print(model)
    print(f"classes: {model.classes_.tolist()}")
    print(f"layer sizes: {model.layer_sizes}; activation {model.activation}; loss {model.loss}; dtype {model.dtype}")
    config = model.config or {}
    optimizer = config.get("optimizer", {})
    if config:
        print(f"trained with: optimizer {optimizer.get('name', '?')}, learning rate {config.get('learning_rate')}, "
              f"batch size {config.get('batch_size') or 'full'}, schedule {config.get('schedule')}, "
              f"dropout {config.get('dropout')}, weight decay {config.get('weight_decay')}, seed {config.get('seed')}")
    losses = history.get("loss") or []
    if losses:
        print(f"epochs trained: {len(losses)}; final training loss {losses[-1]:.4f}, "
              f"accuracy {history['accuracy'][-1]:.4f}")
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "convert": cmd_convert, "info": cmd_info}


def _require_plotting(what="--plot"):
    try:
        import matplotlib  # noqa: F401
        import PIL  # noqa: F401
    except ImportError:
        raise CommandError(f'{what} needs matplotlib and Pillow: pip install "mlp[plot]"') from None


def _path(p):
    from pathlib import Path

    return Path(p)


def _one_line(error):
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except CommandError as error:
        print(f"mlp {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mlp {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
