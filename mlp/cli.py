"""The command line, thin over the library: `python -m mlp COMMAND ...` (also the `mlp` script).

    train      train on MNIST, report per-epoch metrics and the test accuracy, save the model
    evaluate   accuracy, per-class precision/recall and the confusion matrix of a saved model
    predict    recognise your own handwritten digits from PNG/JPEG files
    convert    write MNIST in another format (idx, npz, csv, or the C++ port's binary files)
    download   fetch MNIST (checksum-verified) into the cache or a folder
    info       describe a saved model

Every failure the user can cause ends in one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar

import numpy as np

from . import distributed as _distributed
from ._version import __version__

if TYPE_CHECKING:
    from .distributed import Comm
    from .model import MLP
    from .options import Option

T = TypeVar("T")
Target = tuple[Any, Any] | None  # (xp, device) of --device, None for the CPU


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""

    @property
    def all_ranks(self) -> bool:
        """Under MPI: raised by every rank together (rank 0 prints it, all exit), as the agreements
        of `mlp.distributed` mark what they raise (`mlp.distributed.all_ranks`)."""
        return bool(getattr(self, _distributed.ALL_RANKS, False))

    @all_ranks.setter
    def all_ranks(self, together: bool) -> None:
        setattr(self, _distributed.ALL_RANKS, together)


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that ends with "(default: X)" once: not when the text already says its default, and not
    for a default of None (the text says what happens without the option) or an unset switch."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "(default" in text or action.default is None or action.default is False:
            return text
        if isinstance(action.default, (list, tuple)):  # as typed: --hidden 256,128
            return f"{text} (default: {','.join(map(str, action.default)) or 'none'})"
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message naming the subcommand (exit status 2), and every
    default shown in --help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _DefaultsFormatter)
        kwargs.setdefault("allow_abbrev", False)  # --epoch must not silently mean --epochs
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _widths(text: str) -> list[int] | str:
    """--hidden 128,64 as [128, 64] ('none' or nothing: no hidden layer); text that is no list of
    integers stays text, for the table's check to refuse."""
    if text.strip() in ("", "none", "[]"):
        return []
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        return text


def _number(text: str) -> int | float | str:
    """The text as an int or a float where it is one, else as it is (for the table's check to refuse)."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _count(flag: str, low: int) -> Callable[[str], int]:
    """argparse's type for an integer flag of at least `low`; its message names the flag as the
    table's flags do ("--limit must be >= 1, got 0"), not in argparse's "argument --limit:" form."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentError(None, f"{flag} takes an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentError(None, f"{flag} must be >= {low}, got {value}")
        return value

    return parse


def _yes_no(text: str) -> str | bool:
    """--progress auto|yes|no as fit's 'auto', True, False (other text stays, for the table's check)."""
    values: dict[str, str | bool] = {"auto": "auto", "yes": True, "no": False}
    return values.get(text, text)


def _checked(option: Option, parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """argparse's type for an option of the table: the text parsed (`parse`), then checked by the
    table's check under the flag's name; its message is the one-line error as it stands."""

    def convert(text: str) -> Any:
        try:
            return option.validate_command_line(parse(text))
        except (TypeError, ValueError) as error:
            # an ArgumentError of no argument: printed as it is, not after "argument --lr: "
            raise argparse.ArgumentError(None, str(error)) from None

    return convert


# How the text of each option of the table is read (the rest: a number, or one of the choices as it
# is); every value is then checked by the table, so a message is fit's with the flag for the name.
_CLI_PARSERS: dict[str, Callable[[str], Any]] = {"hidden_sizes": _widths, "progress": _yes_no, "augment": str}
_NOT_FLAGS = ("checkpoint", "resume", "log_gradients", "early_stopping", "shuffle", "deterministic")  # below


def _add_option_flags(parser: argparse.ArgumentParser) -> None:
    """The `train` flags for every option of the table that has one, with the table's help and default."""
    from .options import OPTIONS

    for option in OPTIONS.values():
        if option.flag is None or option.name in _NOT_FLAGS:
            continue
        kwargs: dict[str, Any] = dict(
            dest=option.name, default=option.command_line_default, help=option.command_line_help
        )
        if option.choices:
            kwargs["choices"] = list(option.choices)
        kwargs["type"] = _checked(option, _CLI_PARSERS.get(option.name, str if option.choices else _number))
        if option.metavar:
            kwargs["metavar"] = option.metavar
        if option.name == "progress":
            kwargs["metavar"] = "auto|yes|no"
        parser.add_argument(option.flag, **kwargs)
    parser.add_argument(
        "--shuffle",
        dest="shuffle",
        action=argparse.BooleanOptionalAction,
        default=OPTIONS["shuffle"].default,
        help=OPTIONS["shuffle"].help,
    )
    parser.add_argument(
        "--early-stopping",
        dest="early_stopping",
        action="store_true",
        default=OPTIONS["early_stopping"].default,
        help=OPTIONS["early_stopping"].help,
    )
    parser.add_argument(
        "--log-gradients",
        dest="log_gradients",
        action="store_true",
        help=OPTIONS["log_gradients"].help + " (printed each epoch, plotted with --plot)",
    )
    parser.add_argument(
        "--deterministic",
        dest="deterministic",
        action="store_true",
        default=OPTIONS["deterministic"].default,
        help=OPTIONS["deterministic"].command_line_help,
    )
    parser.add_argument("--checkpoint", metavar="PATH", help=OPTIONS["checkpoint"].help)
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        metavar="PATH",
        help="folder or file holding the data set (default: $MLP_DATA_DIR, then the cache; "
        "fetch it once with `mlp download`)",
    )
    _dataset_argument(parser)


def _dataset_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        default="mnist",
        choices=["mnist", "fashion-mnist"],
        help="which data set of 28x28 images",
    )


def _mirror(text: str) -> str:
    from .datasets.download import check_mirror

    try:
        return check_mirror(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"takes a positive number of seconds such as 600, got {text!r}")
    return value


def _download_arguments(download: argparse.ArgumentParser) -> None:
    """`mlp download`'s --mirror and --deadline (the mirrors= and deadline= of download_mnist)."""
    from .datasets.download import DEFAULT_DEADLINE, DEFAULT_TIMEOUT

    download.add_argument(
        "--mirror",
        metavar="URL",
        action="append",
        type=_mirror,
        help="URL of a folder holding the .gz files (a private mirror, or file:///a/folder/), tried before "
        "the public mirrors; repeat it for more",
    )
    download.add_argument(
        "--deadline",
        metavar="SECONDS",
        type=_seconds,
        default=DEFAULT_DEADLINE,
        help=f"give up the whole download after this many seconds (each network read also gives up after "
        f"{DEFAULT_TIMEOUT:g} s)",
    )


DEFAULT_OUT_FOLDER = "models"
_PRETTY = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def build_parser() -> tuple[_Parser, dict[str, _Parser]]:
    parser = _Parser(prog="mlp", description="Train and use from-scratch multilayer perceptrons.")
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}", help="print the version and exit"
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    _add_train_command(commands)
    _add_model_and_data_commands(commands)
    return parser, commands.choices


def _add_train_command(commands: Any) -> None:
    """`mlp train`: the data, a recipe, every option of the table, and where the model goes."""
    train = commands.add_parser(
        "train",
        help="train on MNIST and report the test accuracy",
        description="Train on MNIST, report the test accuracy and save the model.",
    )
    _data_arguments(train)
    from .recipes import RECIPES

    train.add_argument(
        "--recipe",
        choices=list(RECIPES),
        default=None,
        help="start from a named recipe's settings (mlp.recipes); flags given explicitly override them",
    )
    _add_option_flags(train)
    train.add_argument(
        "--quiet", "-q", action="store_true", help="print only errors and where the model went"
    )
    train.add_argument("--device", default="cpu", help="cpu, gpu or cuda:N (needs CuPy)")
    train.add_argument(
        "--out",
        metavar="PATH",
        help=f"save the trained model here (default: {DEFAULT_OUT_FOLDER}/mlp-DATE-TIME.npz)",
    )
    train.add_argument("--no-save", action="store_true", help="do not save the model")
    train.add_argument("--plot", metavar="DIR", help="write loss curves and other pictures as PNG into DIR")
    train.add_argument(
        "--limit",
        type=_count("--limit", 1),
        metavar="N",
        help="train on the first N images only (quick runs)",
    )
    train.add_argument(
        "--mpi",
        action="store_true",
        help="data-parallel training over the MPI ranks of `mpiexec -n N mlp train ...` (implied "
        "when mpiexec starts more than one rank; needs mlp-from-scratch[mpi])",
    )
    train.add_argument(
        "--mpi-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="over MPI, end the job when a rank waits this long for the others, naming the ranks that "
        f"did not arrive (default: ${_distributed.TIMEOUT_VARIABLE}, else {_distributed.DEFAULT_TIMEOUT:g})",
    )
    train.add_argument(
        "--shard",
        action="store_true",
        help="under mpiexec, each rank reads only its slice of the training rows (rank r of N: rows "
        "[r*n/N, (r+1)*n/N) of the n rows, after --limit) and fit trains with sharded=True: the "
        "model of one process on all rows, in 1/N of the memory per rank",
    )


def _add_model_and_data_commands(commands: Any) -> None:
    """`mlp evaluate`, `predict`, `convert`, `download`, `info` and `export`."""
    evaluate = commands.add_parser(
        "evaluate", help="accuracy, per-class report and confusion matrix of a model"
    )
    evaluate.add_argument("model", help="a model file saved by mlp train or MLP.save (.npz)")
    _data_arguments(evaluate)
    evaluate.add_argument("--device", default="cpu", help="cpu, gpu or cuda:N (needs CuPy)")

    predict = commands.add_parser("predict", help="recognise handwritten digits in PNG/JPEG files")
    predict.add_argument("model", help="a model file saved by mlp train or MLP.save (.npz)")
    predict.add_argument("images", nargs="+", help="PNG or JPEG files, one digit each")
    predict.add_argument(
        "--invert",
        choices=["auto", "yes", "no"],
        default="auto",
        help="invert a light background (auto: decide from the border)",
    )

    convert = commands.add_parser("convert", help="write the data set in another format")
    convert.add_argument("source", help="folder or file holding MNIST in any supported layout")
    convert.add_argument("destination", help="output folder (or .npz file for --format npz)")
    convert.add_argument(
        "--format",
        required=True,
        choices=["idx", "npz", "csv", "binary"],
        help="the four IDX files, one .npz, CSV files, or the C++ port's binary files",
    )
    _dataset_argument(convert)

    download = commands.add_parser(
        "download", help="download MNIST (checksum-verified) into the cache or a folder"
    )
    download.add_argument(
        "--to",
        metavar="DIR",
        help="target folder (default: the cache, $XDG_CACHE_HOME/mlp/DATASET or ~/.cache/mlp/DATASET, "
        "where mlp train looks without --data)",
    )
    _dataset_argument(download)
    _download_arguments(download)

    info = commands.add_parser("info", help="describe a saved model")
    info.add_argument("model", help="a model file saved by mlp train or MLP.save (.npz)")

    export = commands.add_parser(
        "export",
        help="write a saved model as ONNX, for onnxruntime and other ONNX runtimes",
        description="Write a saved model as an ONNX file (opset 21, dynamic batch; needs "
        "mlp-from-scratch[onnx]). Input X; outputs label and probabilities (classifiers, multilabel) "
        "or predictions (regression).",
    )
    export.add_argument("model", help="a model file saved by mlp train or MLP.save (.npz)")
    export.add_argument("out", help="the file to write (.onnx)")
    export.add_argument("--format", choices=["onnx"], default="onnx", help="the output format")


# ---- commands -----------------------------------------------------------------------------------
def _load_data(args: argparse.Namespace, split: str = "both") -> Any:
    """The data set for a command: a short error naming --data and `mlp download` when it is missing.
    (X, y) for one split, ((X_train, y_train), (X_test, y_test)) for both."""
    from . import datasets

    try:
        return datasets.load_mnist(args.data, dataset=args.dataset, split=split)
    except datasets.DatasetNotFoundError as error:
        where = (
            "; ".join(error.looked_in[:3])
            if getattr(error, "looked_in", None)
            else (args.data or "the default places")
        )
        raise CommandError(
            f"no {_PRETTY[args.dataset]} data found (looked in: {where}). Pass --data FOLDER (the four IDX files), "
            f"or fetch it once with: mlp download --dataset {args.dataset}"
        ) from None
    except datasets.DownloadError as error:
        reasons = sorted({reason.split(":")[0] for _, reason in getattr(error, "failures", [])})
        why = f" ({'; '.join(reasons)[:80]})" if reasons else ""
        raise CommandError(
            f"no {_PRETTY[args.dataset]} data found and the download failed{why}. Pass --data FOLDER (the four "
            f"IDX files), or fetch them once the network is up with: mlp download --dataset {args.dataset}"
        ) from None
    except (OSError, ValueError, RuntimeError) as error:
        raise CommandError(_one_line(error)) from None


def _resolve_device(device: str) -> Target:
    """(xp, device) for --device, checked before any data is read; None for the CPU."""
    from ._array_api import resolve_namespace

    if device == "cpu":
        return None
    try:
        return resolve_namespace(device)
    except (ImportError, RuntimeError, ValueError) as error:
        raise CommandError(f"--device {device}: {_one_line(error)}") from None


def _to_device(arrays: list[Any], target: Target) -> list[Any]:
    """Move host arrays to the resolved device once, before training."""
    from ._array_api import from_host

    if target is None:
        return arrays
    xp, device = target
    return [from_host(a, xp=xp, device=device) for a in arrays]


def _output_paths(args: argparse.Namespace) -> str | None:
    """Check --out, --plot and --checkpoint before any data is read or any epoch is trained; pick the
    default model file. Returns the model path (None with --no-save)."""
    from ._files import check_writable, make_folder
    from .engines.checkpoints import check_checkpoint_path
    from .model_file import check_replaceable

    out = None
    if not args.no_save:
        out = args.out
        if out is None:
            import os

            try:
                make_folder(DEFAULT_OUT_FOLDER, "")
            except OSError as error:
                raise CommandError(
                    f"cannot make the default model folder {DEFAULT_OUT_FOLDER}/: {_one_line(error)}; "
                    "pass --out PATH or --no-save"
                ) from None
            out = os.path.join(DEFAULT_OUT_FOLDER, time.strftime("mlp-%Y%m%d-%H%M%S.npz"))
        try:
            check_writable(out, "--out")
            check_replaceable(out, "--out")  # an existing file is replaced only when it is a model
        except (OSError, ValueError) as error:
            raise CommandError(_one_line(error)) from None
    elif args.out:
        raise CommandError("--out and --no-save contradict each other; pass one")
    try:
        if args.plot:
            check_writable(args.plot, "--plot", folder=True)
            from .plots import check_folder

            check_folder(args.plot)  # a picture's name taken by a folder, FIFO or a file that is no PNG
        if args.checkpoint:
            check_checkpoint_path(
                args.checkpoint, resume=args.resume, what="--checkpoint", resume_hint="--resume"
            )
    except (OSError, ValueError) as error:
        raise CommandError(_one_line(error)) from None
    return out


def _check_outputs(args: argparse.Namespace) -> str | None:
    if args.plot:
        _require_plotting()
    return _output_paths(args)


def _device_and_data(args: argparse.Namespace) -> tuple[Target, tuple[Any, Any], tuple[Any, Any]]:
    """The --device target and the data (cut to --limit), their size checked against memory."""
    target = _resolve_device(args.device)
    if getattr(args, "shard", False):
        (X_train, y_train), test = _load_shard(args)
    else:
        (X_train, y_train), test = _load_data(args)
        if args.limit is not None:
            X_train, y_train = X_train[: args.limit], y_train[: args.limit]
    _check_memory(args, X_train, y_train)
    return target, (X_train, y_train), test


def _load_shard(args: argparse.Namespace) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """--shard: this rank's rows of the training split (`mlp.datasets.shard`), prepared as
    load_mnist prepares them; the test split on rank 0 only (the others score nothing)."""
    from . import datasets
    from .datasets.load import _finish
    from .datasets.shard import read_train_rows

    comm = _distributed.running_world()
    rank, size = (0, 1) if comm is None else (comm.Get_rank(), comm.Get_size())

    def select(n: int) -> tuple[int, int]:
        return _distributed.batch_part(0, n if args.limit is None else min(n, args.limit), rank, size)

    try:
        X, y = read_train_rows(args.data, args.dataset, select)
    except datasets.DatasetNotFoundError as error:
        raise CommandError(f"{_one_line(error)}; pass --data FOLDER") from None
    except (OSError, ValueError) as error:
        raise CommandError(_one_line(error)) from None
    train = _finish(X, y, normalize=True, flatten=True, dtype=np.float32)
    if rank == 0:
        return train, _load_data(args, split="test")
    return train, (np.zeros((0, X.shape[1] * X.shape[2]), dtype=np.float32), np.zeros(0, dtype=np.int64))


def cmd_train(args: argparse.Namespace) -> int:
    import mlp

    from . import options

    if args.resume and not args.checkpoint:
        raise CommandError("--resume needs --checkpoint PATH")
    if args.recipe:  # the recipe's settings, then the flags given explicitly
        from . import recipes

        given: set[str] = getattr(args, "given", set())
        for name, value in recipes.get(args.recipe).items():
            if name not in given:
                setattr(args, name, value)
    comm = _mpi_comm(args.mpi)
    root = comm is None or comm.Get_rank() == 0  # over MPI rank 0 alone prints and writes files
    timeout = args.mpi_timeout
    if comm is not None:  # $MLP_MPI_TIMEOUT checked on every rank alike, before the first wait
        try:
            timeout = _distributed.resolve_timeout(timeout)
        except ValueError as error:
            failure = CommandError(str(error))
            failure.all_ranks = True
            raise failure from None
    out = _distributed.agreed(comm, lambda: _check_outputs(args), failure=CommandError, timeout=timeout)
    say = (lambda *a, **k: None) if args.quiet or not root else print
    started = time.perf_counter()
    target, (X_train, y_train), (X_test, y_test) = _distributed.on_every_rank(
        comm, lambda: _device_and_data(args), failure=CommandError, timeout=timeout
    )
    if args.recipe:
        say(_recipe_banner(args, X_train.shape[1], len(np.unique(y_train))))
    say(
        f"data: {X_train.shape[0]} training and {X_test.shape[0]} test images "
        f"{'on rank 0 (--shard) ' if getattr(args, 'shard', False) else ''}"
        f"({time.perf_counter() - started:.1f}s)",
        flush=True,
    )
    if args.seed is None and comm is None:  # drawn here to be told as a flag (fit would say seed=N)
        args.seed = int(np.random.SeedSequence().generate_state(1)[0])
        if args.verbose:
            say(f"seed {args.seed} (pass --seed {args.seed} to repeat this run)", flush=True)
    X_train, y_train, X_test_dev, y_test_dev = _to_device([X_train, y_train, X_test, y_test], target)
    settings = {name: getattr(args, name) for name in options.OPTIONS}
    if getattr(args, "shard", False):  # every rank holds its own rows
        settings["sharded"] = True
    if args.quiet:
        settings.update(verbose=0, progress=False)
    loaded = time.perf_counter()
    try:
        with _trimmed_metadata_in_one_line():  # a checkpoint's history outgrowing the format
            model = mlp.fit(X_train, y_train, **settings, comm=comm, comm_timeout=timeout)
    except (ValueError, TypeError, ImportError, OSError, mlp.TrainingError) as error:
        failure = CommandError(_in_flags(_one_line(error)))
        failure.all_ranks = comm is not None  # fit ends the job itself on an error of one rank only
        raise failure from None
    trained = time.perf_counter()
    if not root:
        return 0
    model.config["preprocessing"] = dict(MNIST_PREPROCESSING)
    say(model)
    if out is not None:  # first: whatever fails after training, the model is kept
        _save_trained(model, out)
    saved = f" (the model is saved in {out})" if out is not None else ""
    try:
        accuracy = _test_accuracy(model, X_test, y_test, X_test_dev, y_test_dev, target, say)
    except Exception as error:  # anything at all: the model is safe, the failure is reported
        raise CommandError(f"cannot score the model on the test images: {_one_line(error)}{saved}") from None
    if accuracy is not None:
        say(
            f"test accuracy {accuracy:.4f}  training time {trained - loaded:.1f}s  seed {model.config['seed']}"
        )
    if args.plot:
        from . import plots

        try:
            paths = plots.write_all(
                model if args.device == "cpu" else _host_copy(model), X_test, y_test, args.plot
            )
        except Exception as error:  # anything at all, as above
            raise CommandError(f"cannot write pictures to {args.plot}: {_one_line(error)}{saved}") from None
        say(f"pictures written to {args.plot}: {', '.join(str(p.name) for p in map(_path, paths))}")
    return 0


def _save_trained(model: MLP, out: str) -> None:
    """Save the trained model to `out`. Metadata over the format's limit is shortened (a warning line
    says what was left out). When `out` cannot be written, the model goes to a rescue file (beside
    `out`, else in the current folder, else in the temporary folder) and a CommandError says where."""
    import warnings

    from .model_file import MetadataTrimmedWarning

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MetadataTrimmedWarning)
            model.save(out)
    except Exception as error:  # anything at all: the trained model must not be lost
        reason = _one_line(error)
        rescued, tried = _rescue(model, out)
        if rescued is None:
            raise CommandError(
                f"{reason}; no rescue file could be written either (tried {'; '.join(tried)}): "
                f"the model is lost"
            ) from None
        raise CommandError(f"{reason}; the trained model was saved to {rescued} instead") from None
    for warning in caught:
        if issubclass(warning.category, MetadataTrimmedWarning):
            print(f"mlp train: warning: {_one_line(warning.message)}", file=sys.stderr)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    print(f"model saved to {out}")


@contextlib.contextmanager
def _trimmed_metadata_in_one_line() -> Iterator[None]:
    """Show a MetadataTrimmedWarning as one `mlp train: warning:` line, once per file (a checkpoint
    would repeat it after every epoch); other warnings as usual."""
    import warnings

    from .model_file import MetadataTrimmedWarning

    def file_named(message: str) -> str:
        return message.split(": the metadata", 1)[0]

    with warnings.catch_warnings():
        warnings.simplefilter("always", MetadataTrimmedWarning)
        with _warnings_in_one_line(
            "train", lambda category: issubclass(category, MetadataTrimmedWarning), file_named
        ):
            yield


def _rescue(model: MLP, out: str) -> tuple[Path | None, list[str]]:
    """Save `model` under a new name beside `out`, else in the current folder, else in the temporary
    folder (without history and config when they are what failed): (the path written, or None; what
    was tried, one phrase each). Never raises: the caller still has its one line to print."""
    import os
    import tempfile
    from pathlib import Path

    beside = Path(out)
    name = f"{beside.stem or 'mlp'}.rescued-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.npz"
    tried: list[str] = []
    bare: list[MLP | None] = []  # the copy without history and config: built once, on first need
    failed_copy = ""
    for folder in dict.fromkeys((beside.parent, Path.cwd(), Path(tempfile.gettempdir()))):
        path = folder / name
        if path.exists():
            tried.append(f"{path} (exists)")
            continue
        if _saved(model, path):
            return path, tried
        if not bare:
            try:
                bare.append(_host_copy(model, history={}, config={}))
            except Exception as error:  # anything at all: the error line must still come out
                bare.append(None)
                failed_copy = f"a copy without history and config failed: {_one_line(error)}"
        if bare[0] is not None and _saved(bare[0], path):
            return path, tried
        tried.append(str(path))
    return None, [*tried, failed_copy] if failed_copy else tried


def _saved(model: MLP, path: Path) -> bool:
    """True when `model` was written to `path`; False on any failure (the caller tries elsewhere)."""
    try:
        model.save(path)
    except Exception:
        return False
    return True


def _test_accuracy(
    model: MLP,
    X_test: np.ndarray,
    y_test: np.ndarray,
    X_test_dev: Any,
    y_test_dev: Any,
    target: Target,
    say: Callable[..., None],
) -> float | None:
    """The test accuracy, or None after a line saying why there is none. Test images whose label the
    training data never held (a short --limit) are left out, and the line says so."""
    from ._array_api import to_numpy

    if model.classes_ is None:
        return model.score(X_test_dev, y_test_dev)
    classes = to_numpy(model.classes_)
    known = np.isin(y_test, classes)
    if known.all():
        return model.score(X_test_dev, y_test_dev)
    missing = sorted(set(np.unique(y_test[~known]).tolist()))
    if not known.any():
        say(
            f"test accuracy: none; no test image has a label the training data held (it held only "
            f"{classes.tolist()}; train on more images)"
        )
        return None
    X_known, y_known = _to_device([X_test[known], y_test[known]], target)
    accuracy = model.score(X_known, y_known)
    say(
        f"test accuracy {accuracy:.4f} on the {int(known.sum())} of {len(y_test)} test images whose labels "
        f"the training data held (labels {missing} never appeared in it; train on more images)"
    )
    return None


def _recipe_banner(args: argparse.Namespace, n_features: int, n_classes: int) -> str:
    """The recipe's settings as this run uses them: the recipe's, or the flags that override them."""
    from .options import DEFAULT_LEARNING_RATES, OPTIONS
    from .recipes import RECIPE_OPTIONS

    rate = args.learning_rate if args.learning_rate is not None else DEFAULT_LEARNING_RATES[args.optimizer]
    parts = [
        f"{'-'.join(map(str, [n_features, *args.hidden_sizes, n_classes]))} {args.activation}",
        f"loss {args.loss}",
        f"{args.optimizer} {rate:g} with the {args.schedule} schedule",
        "full batch" if args.batch_size in ("full", None) else f"batch {args.batch_size}",
        f"dropout {args.dropout:g}",
    ]
    if args.augment is not None:
        parts.append("augmented")
    if args.max_norm is not None:
        parts.append(f"max-norm {args.max_norm:g}")
    if args.label_smoothing:
        parts.append(f"label smoothing {args.label_smoothing:g}")
    parts.append(f"{args.epochs} epoch{'' if args.epochs == 1 else 's'}")
    overridden = sorted(
        str(OPTIONS[name].flag) for name in set(getattr(args, "given", ())) & set(RECIPE_OPTIONS)
    )  # (every recipe option has a flag)
    by_flags = f" with {', '.join(overridden)}" if overridden else ""
    return f"recipe {args.recipe}{by_flags}: {', '.join(parts)}"


def _mpi_comm(requested: bool) -> Comm | None:
    """MPI.COMM_WORLD for `--mpi` or an mpiexec launch of more than one rank; None otherwise (or with
    a single rank)."""
    if not (requested or _distributed.launched_as_ranks()):
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        raise CommandError(
            'training over MPI ranks needs mpi4py and an MPI library: pip install "mlp-from-scratch[mpi]"'
        ) from None
    comm = MPI.COMM_WORLD
    return comm if comm.Get_size() > 1 else None


def _check_memory(args: argparse.Namespace, X: np.ndarray, y: np.ndarray) -> None:
    """fit checks this too; here the way out is worded in flags."""
    from ._memory import check_training_memory

    sizes = [X.shape[1], *args.hidden_sizes, len(np.unique(y))]
    batch = None if args.batch_size == "full" else args.batch_size
    try:
        check_training_memory(
            sizes,
            batch,
            X.shape[0],
            args.dtype,
            args.optimizer,
            args.dropout,
            hint="use a smaller --hidden or --batch-size",
        )
    except ValueError as error:
        raise CommandError(_one_line(error)) from None


def _host_copy(
    model: MLP, *, history: dict[str, Any] | None = None, config: dict[str, Any] | None = None
) -> MLP:
    """The same model with NumPy parameters (pictures are drawn on the host); `history` and `config`
    replace the model's when given."""
    from ._array_api import to_numpy
    from .model import MLP

    return MLP(
        model.get_weights(),
        activation=model.activation,
        loss=model.loss,
        classes=to_numpy(model.classes_),
        l2=model.l2,
        history=model.history if history is None else history,
        config=model.config if config is None else config,
        batch_norm=model.batch_norm,
        norms=model.get_norms() if model.batch_norm else None,
    )


def _load_model(path: str, device: str = "cpu", *, classifier: bool = False) -> MLP:
    import mlp

    try:
        model = mlp.load(path, device=device)
    except (OSError, ValueError, ImportError, RuntimeError) as error:
        raise CommandError(_one_line(error)) from None
    if classifier and model.classes_ is None:
        raise CommandError(
            f"{path} holds a {model.loss} model with {model.n_outputs} outputs, not a classifier"
        )
    return model


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ._array_api import to_numpy
    from .metrics import classification_report, confusion_matrix

    target = _resolve_device(args.device)
    model = _load_model(args.model, args.device, classifier=True)
    X_test, y_test = _load_data(args, split="test")
    if X_test.shape[1] != model.n_features_in_:
        raise CommandError(
            f"the data have {X_test.shape[1]} features but the model was trained on {model.n_features_in_}"
        )
    (X_dev,) = _to_device([X_test], target)
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
    for label, row in zip(labels.tolist(), matrix, strict=True):
        print(f"{label!s:>5} " + "".join(f"{count:>{width}d}" for count in row))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ._array_api import to_numpy

    _require_plotting(what="reading images")
    from .images import load_digit

    model = _load_model(args.model, classifier=True)
    if model.n_features_in_ != 784:
        raise CommandError(f"the model takes {model.n_features_in_} features, not 28x28 images")
    inverts: dict[str, str | bool] = {"auto": "auto", "yes": True, "no": False}
    invert = inverts[args.invert]
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


def cmd_convert(args: argparse.Namespace) -> int:
    from . import datasets

    try:
        paths = datasets.convert(args.source, args.destination, args.format, dataset=args.dataset)
    except (OSError, ValueError, RuntimeError) as error:
        raise CommandError(_one_line(error)) from None
    for path in paths:
        print(f"wrote {path}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from . import datasets
    from ._files import check_writable

    try:
        if args.to is not None:  # before any download: a file, device or FIFO there is refused
            check_writable(args.to, "--to", folder=True)
        folder = datasets.download_mnist(
            args.to, dataset=args.dataset, mirrors=args.mirror, deadline=args.deadline
        )
    except (OSError, ValueError, RuntimeError) as error:
        raise CommandError(_one_line(error)) from None
    print(f"{args.dataset} is in {folder}; train with: mlp train --data {folder}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    model = _load_model(args.model)
    history = model.history or {}
    print(model)
    print(
        f"classes: {model.classes_.tolist()}" if model.classes_ is not None else f"outputs: {model.n_outputs}"
    )
    print(
        f"layer sizes: {model.layer_sizes}; activation {model.activation}; loss {model.loss}; dtype {model.dtype}"
        + (f"; batch normalisation {model.batch_norm} the activation" if model.batch_norm else "")
    )
    config = model.config or {}
    optimizer = config.get("optimizer", {})
    if config:
        print(
            f"trained with: optimizer {optimizer.get('name', '?')}, learning rate {config.get('learning_rate')}, "
            f"batch size {config.get('batch_size') or 'full'}, schedule {config.get('schedule')}, "
            f"dropout {config.get('dropout')}, weight decay {config.get('weight_decay')}, seed {config.get('seed')}"
        )
    losses = history.get("loss") or []
    if losses:
        accuracy = history.get("accuracy") or []
        print(
            f"epochs trained: {len(losses)}; final training loss {losses[-1]:.4f}"
            + (f", accuracy {accuracy[-1]:.4f}" if accuracy else "")
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ._files import check_writable
    from .onnx import OPSET, output_names, require

    try:
        require()  # before the model is read: the install command comes first
        check_writable(args.out, "output file")
    except (OSError, ValueError, ImportError) as error:
        raise CommandError(_one_line(error)) from None
    model = _load_model(args.model)
    try:
        model.to_onnx(args.out)
    except (OSError, ValueError, ImportError, RuntimeError) as error:
        raise CommandError(_one_line(error)) from None
    print(f"wrote {args.out}: ONNX opset {OPSET}, input X, outputs {', '.join(output_names(model.loss))}")
    return 0


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "convert": cmd_convert,
    "download": cmd_download,
    "info": cmd_info,
    "export": cmd_export,
}
MNIST_PREPROCESSING = {"input": "pixels / 255", "range": [0.0, 1.0], "image_shape": [28, 28]}


def _require_plotting(what: str = "--plot") -> None:
    try:
        import matplotlib  # noqa: F401
        import PIL  # noqa: F401
    except ImportError:
        raise CommandError(
            f'{what} needs matplotlib and Pillow: pip install "mlp-from-scratch[plot]"'
        ) from None


def _path(p: str | os.PathLike[str]) -> Path:
    return Path(p)


def _in_flags(message: str) -> str:
    """fit's message with its keywords spelled as the `mlp train` flags: "label_smoothing works with
    loss='cross_entropy' only" becomes "--label-smoothing works with --loss cross_entropy only". Only
    `name=value`, a resume's "name: checkpoint A, now B" and the names with an underscore are
    changed, never a plain word such as "loss"."""
    import re

    from .options import OPTIONS

    for name, option in OPTIONS.items():
        if option.flag is None:
            continue
        message = re.sub(rf"(?<![\w.-]){name}=(['\"]?)([^\s,;'\"]*)\1", rf"{option.flag} \2", message)
        # a resume's differences: "name: checkpoint A, now B"
        message = re.sub(rf"(?<![\w.-]){name}(?=: checkpoint )", option.flag, message)
        if "_" in name:
            message = re.sub(rf"(?<![\w.'\"-]){name}\b(?!['\"])", option.flag, message)
    return message


def _one_line(error: object) -> str:
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    parser, subcommands = build_parser()
    try:
        args = _parse_guarded(parser, subcommands, argv)
    except (BrokenPipeError, _OutputError) as error:  # --help or --version, into a full disk or a pipe
        words = sys.argv[1:] if argv is None else list(argv)
        name = " ".join(["mlp", *[word for word in words if word in COMMANDS][:1]])
        return _output_failed(name, sys.stdout, error)
    if args.command == "train":
        args.given = _given_flags(argv)
    problem = _environment_problem(getattr(args, "dataset", "mnist"))
    if problem is not None:
        print(f"mlp {args.command}: error: {problem}", file=sys.stderr)
        return 2
    stdout = sys.stdout
    sys.stdout = _GuardedOutput(stdout)
    try:
        with _library_notes_in_one_line(args.command):
            code = COMMANDS[args.command](args)
        sys.stdout.flush()  # here, not at exit: a full disk or a closed pipe is reported below
        return code
    except CommandError as error:
        return _fail(args.command, error)
    except KeyboardInterrupt:
        print(f"mlp {args.command}: interrupted", file=sys.stderr)
        return 130
    except (BrokenPipeError, _OutputError) as error:
        return _output_failed(f"mlp {args.command}", stdout, error)
    finally:
        sys.stdout = stdout


def _parse_guarded(
    parser: _Parser, subcommands: dict[str, _Parser], argv: Sequence[str] | None
) -> argparse.Namespace:
    """Parse the command line with standard output guarded, as a command's: --help and --version
    print there, and a failed write or flush raises _OutputError (argparse would drop it silently)."""
    stdout = sys.stdout
    sys.stdout = _GuardedOutput(stdout)
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # name the subcommand in the error, as `mlp train: error: ...`
            subcommands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
        return args
    except SystemExit as done:
        if not done.code:  # help or version printed: it must reach its destination
            sys.stdout.flush()
        raise
    finally:
        sys.stdout = stdout


def _output_failed(name: str, stdout: IO[str], error: BaseException) -> int:
    """Writing to standard output failed: quietly 141 for a closed pipe, else one line and 1."""
    _discard_output(stdout)
    cause = error.error if isinstance(error, _OutputError) else error
    if isinstance(cause, BrokenPipeError):
        return 141  # output piped into `head` and the like: stop quietly, as other tools do
    reason = getattr(cause, "strerror", None) or _one_line(cause)
    print(f"{name}: error: cannot write to standard output: {reason}", file=sys.stderr)
    return 1


@contextlib.contextmanager
def _library_notes_in_one_line(command: str) -> Iterator[None]:
    """Show the notes the data layer gives as warnings (a corrupt cached file being replaced) as
    one `mlp COMMAND: warning:` line each, without Python's source line; other warnings as usual."""

    def is_cache_note(category: type[Warning]) -> bool:
        from .datasets.download import CacheWarning

        return issubclass(category, CacheWarning)

    with _warnings_in_one_line(command, is_cache_note):
        yield


@contextlib.contextmanager
def _warnings_in_one_line(
    command: str, shown: Callable[[type[Warning]], bool], once_per: Callable[[str], str] | None = None
) -> Iterator[None]:
    """Show each warning whose category `shown` accepts as one `mlp COMMAND: warning:` line on
    standard error (with `once_per`: once per key it gives the message); other warnings as usual."""
    import warnings

    show_others = warnings.showwarning
    said: set[str] = set()

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if not shown(category):
            show_others(message, category, filename, lineno, file, line)
            return
        if once_per is not None:
            key = once_per(str(message))
            if key in said:
                return
            said.add(key)
        print(f"mlp {command}: warning: {_one_line(message)}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


class _OutputError(Exception):
    """Writing to standard output failed (`error`: the OSError). Not an OSError itself, so that no
    command's `except OSError` (meant for its files) reports it as a file's failure."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _escape_unencodable(error: UnicodeError) -> tuple[str | bytes, int]:
    """Codec error handler "mlp-escape" for standard output: a path's undecodable bytes (lone
    surrogates) go out as the bytes they were, as "surrogateescape" does, anything else the stream's
    encoding lacks as a backslash escape, so that printing a path never fails."""
    import codecs

    if not isinstance(error, UnicodeEncodeError):
        raise error
    start = error.start
    char = error.object[start]
    if "\udc80" <= char <= "\udcff":
        return bytes([ord(char) - 0xDC00]), start + 1
    return codecs.backslashreplace_errors(
        UnicodeEncodeError(error.encoding, error.object, start, start + 1, error.reason)
    )


class _GuardedOutput:
    """Standard output for a command: a failed write or flush raises _OutputError, and text the
    stream cannot encode (a non-ASCII path where the locale is ASCII) is written escaped."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        errors = getattr(stream, "errors", None)
        if errors in ("strict", "surrogateescape") and hasattr(stream, "reconfigure"):
            import codecs

            codecs.register_error("mlp-escape", _escape_unencodable)
            stream.reconfigure(errors="mlp-escape")

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as error:
            raise _OutputError(error) from None

    def flush(self) -> None:
        try:
            return self._stream.flush()
        except OSError as error:
            raise _OutputError(error) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _discard_output(stream: IO[str]) -> None:
    """Point standard output at the null device, so that what is still buffered cannot fail again
    when the interpreter exits."""
    import contextlib
    import os

    with contextlib.suppress(OSError, ValueError, AttributeError):  # not a real file (captured in tests)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)


def _environment_problem(dataset: str) -> str | None:
    """One line naming the first environment variable the library reads whose value it cannot use
    (MLP_MEMORY_LIMIT, MLP_DATA_DIR, NUMBA_NUM_THREADS), or None when all are usable."""
    from ._memory import available_bytes
    from .datasets.discovery import data_dir_from_environment
    from .engines import numba_trainer

    try:
        available_bytes()
        data_dir_from_environment(dataset)
    except ValueError as error:
        return _one_line(error)
    numba_error = numba_trainer.import_error()
    if isinstance(numba_error, ValueError):  # Numba is installed but refused its environment
        return _one_line(numba_error)
    return None


def _given_flags(argv: Sequence[str] | None) -> set[str]:
    """The `mlp train` options set explicitly on the command line (their dests), so that they
    override a --recipe: the same parse with every default suppressed."""
    parser, subcommands = build_parser()
    for action in subcommands["train"]._actions:
        action.default = argparse.SUPPRESS
    namespace, _ = parser.parse_known_args(argv)
    return set(vars(namespace)) - {"command"}


def _fail(command: str, error: CommandError) -> int:
    """Print a CommandError and return exit status 1. Under MPI an error of this rank alone ends every
    rank (the others would wait for it forever); one that all ranks raised is printed by rank 0."""
    comm = _distributed.running_world()
    if comm is None or comm.Get_size() == 1:
        print(f"mlp {command}: error: {error}", file=sys.stderr)
        return 1
    rank, size = comm.Get_rank(), comm.Get_size()
    if error.all_ranks:
        if rank == 0:
            print(f"mlp {command}: error: {error}", file=sys.stderr)
        return 1
    print(f"mlp {command}: error on rank {rank} of {size}: {error}", file=sys.stderr, flush=True)
    _distributed.end_job(comm, 1)


if __name__ == "__main__":
    sys.exit(main())
