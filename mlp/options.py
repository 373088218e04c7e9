"""The training options, once: name, default, allowed values, help, and how each surface spells them.

Each option is checked here and nowhere else, a message naming the option as the caller spells it:
`mlp.fit` validates its keywords into one `TrainingOptions` (`resolve`), the command line builds its `train`
flags from it (help shows every default) and checks their values with it under the flag's name
(`Option.validate_command_line`), `mlp.MLPClassifier` and `mlp.MLPRegressor` take the names, defaults
and checks of its `estimator` columns (scikit-learn's names: hidden_layer_sizes, max_iter, solver,
alpha, learning_rate_init, ...; `validate_estimator`; `REGRESSOR_DEFAULTS` and `REGRESSOR_CHECKS` say
where the regressor differs; the few solver settings with no fit keyword, listed in
tests/test_options.py, are checked by the helpers of `mlp._validation` the checks here use), and the
C++ port's `cpp/src/train_defaults.hpp` is generated from it, its TrainConfig fields named by the
`cpp` column:

    python -m mlp.options --cpp-header > cpp/src/train_defaults.hpp

tests/test_options.py fails when any of them drifts from this table.
"""

from __future__ import annotations

import numbers
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from ._order import BLOCK_WINDOW
from ._threads import check_n_threads
from ._validation import ParameterError, check_flag, check_positive_int, check_rate
from .activations import ACTIVATIONS
from .augment import check_augment
from .initializers import INITIALIZERS
from .layers import BATCH_NORM_EPS, BATCH_NORM_MOMENTUM, BATCH_NORM_PLACEMENTS
from .losses import LOSSES
from .optimizers import OPTIMIZERS
from .schedules import SCHEDULES

if TYPE_CHECKING:
    import os

    from .augment import Augment
    from .optimizers import Optimizer
    from .schedules import Schedule

SAME: Any = object()  # "as fit's default" in the per-surface columns
Check = Callable[[str, Any], Any]  # check(name, value) -> the normalised value, or a ValueError/TypeError
ENGINES = ("auto", "numba", "xp")
DTYPES = ("float32", "float64")
# What the estimators take beyond fit's values (their `estimator_check`s): scikit-learn's solvers
# ("sgd" is its momentum SGD), schedules and activations ("logistic" is "sigmoid").
SOLVERS = ("lbfgs", "sgd", "adam", "adamw", "rmsprop", "momentum", "nesterov")
SKLEARN_SCHEDULES = ("constant", "invscaling", "adaptive")
SKLEARN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
CLASSIFIER_LOSSES = ("cross_entropy", "mse")  # MLPClassifier's; MLPRegressor's in REGRESSOR_CHECKS

# Base learning rate of each optimizer when learning_rate is None (the C++ port reads the same).
DEFAULT_LEARNING_RATES = {
    "sgd": 0.1,
    "momentum": 0.05,
    "nesterov": 0.05,
    "rmsprop": 1e-3,
    "adam": 1e-3,
    "adamw": 1e-3,
}
DEFAULT_MOMENTUM = 0.9  # momentum / nesterov when momentum is None
ADAMW_WEIGHT_DECAY = 0.01  # adamw's decoupled decay when weight_decay is None (0 for the others)

# What a model file may hold: fit, mlp train and mlp-cpp refuse a network past these before training,
# and every reader (Python's and the C++ port's) accepts anything within them, so whatever is written
# can be read back. The C++ port gets them through the generated train_defaults.hpp.
MAX_WIDTH = 10**8  # n_features, each hidden width, the number of outputs
MAX_HIDDEN_LAYERS = 1000
MAX_METADATA_BYTES = 16 << 20  # the JSON metadata entry of a model file or checkpoint


# ---- checks: each returns the normalised value or raises a ValueError/TypeError saying the fix ----
def _positive_int(name: str, value: Any, *, allow_zero: bool = False) -> int:
    return check_positive_int(value, name, allow_zero=allow_zero)


def _patience_or_inf(name: str, value: Any) -> float:
    """scikit-learn's n_iter_no_change: an int of at least 1, or infinity (training never stops early)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and value == np.inf:
        return float(value)
    return check_positive_int(value, name)


def _number(
    name: str,
    value: Any,
    *,
    low: float = 0.0,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = False,
    none_ok: bool = False,
) -> float | None:
    if value is None and none_ok:
        return None
    return check_rate(
        value, name, low=low, high=high, low_inclusive=low_inclusive, high_inclusive=high_inclusive
    )


def _flag(name: str, value: Any) -> bool:
    return check_flag(value, name)


def _shuffle_block(name: str, value: Any) -> int | None:
    return None if value is None else check_positive_int(value, name)


def check_hidden_sizes(value: Any, name: str = "hidden_sizes") -> list[int]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, (str, bytes)):
        raise ValueError(
            f"{name} must hold positive integers (layer widths such as [128, 64]), got {value!r}"
        )
    try:
        sizes = list(value)
    except TypeError:
        raise TypeError(f"{name} must be a list of layer widths such as [128, 64], got {value!r}") from None
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError(f"{name} must hold positive integers, got {value!r}")
    # what a model file can hold, refused before training rather than when the trained model is saved
    if len(sizes) > MAX_HIDDEN_LAYERS:
        raise ValueError(
            f"{name} has {len(sizes)} layers; a model file holds at most {MAX_HIDDEN_LAYERS} hidden layers"
        )
    widest = max(sizes, default=0)
    if widest > MAX_WIDTH:
        raise ValueError(
            f"{name} holds a width of {int(widest):,}; a model file holds layer widths at most {MAX_WIDTH:,}"
        )
    return [int(size) for size in sizes]


def check_batch_size(value: Any, name: str = "batch_size", *, auto: bool = False) -> int | str | None:
    """A positive integer, None or 'full' (full batch: None); with `auto`, also the estimators' 'auto'."""
    if value is None or (isinstance(value, str) and value == "full"):
        return None
    if auto and isinstance(value, str) and value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        if name.startswith("--"):  # a flag cannot be None: say what can be typed
            raise ValueError(f"{name} must be a positive integer or full, got {value!r}")
        either = "None, 'full' or 'auto'" if auto else "None or 'full'"
        raise ValueError(f"{name} must be a positive integer, {either}, got {value!r}")
    return int(value)


def check_seed(value: Any, name: str = "seed", *, random_state: bool = False) -> Any:
    """None or a non-negative integer; with `random_state`, also a numpy.random.RandomState (the
    estimators' random_state, as scikit-learn's)."""
    if value is None or (random_state and isinstance(value, np.random.RandomState)):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        also = ", None or a numpy.random.RandomState" if random_state else " or None"
        raise ParameterError(f"{name} must be a non-negative integer{also}, got {value!r}")
    return int(value)


def _choice(choices: Sequence[str], *, instance_of: type | None = None, none_ok: bool = False) -> Check:
    """A check accepting one of `choices` (or an instance of the `instance_of` class, for optimizers
    and schedules passed as objects; or None with `none_ok`)."""

    def check(name: str, value: Any) -> Any:
        if (instance_of is not None and isinstance(value, instance_of)) or (none_ok and value is None):
            return value
        if isinstance(value, str) and value in choices:
            return value
        listed = ["None"] * none_ok + [repr(c) for c in choices]
        either = listed[0] if len(listed) == 1 else f"one of {', '.join(listed[:-1])} or {listed[-1]}"
        instance = f" or pass an {instance_of.__module__} instance" if instance_of is not None else ""
        raise ValueError(f"unknown {name} {value!r}; choose {either}{instance}")

    return check


def _progress(name: str, value: Any) -> bool | str:
    if value == "auto" or isinstance(value, (bool, np.bool_)):
        return value if value == "auto" else bool(value)
    if name.startswith("--"):  # the flag's words, not fit's
        raise ValueError(f"{name} takes auto, yes or no, got {value!r}")
    raise ValueError(f"{name} must be True, False or 'auto', got {value!r}")


def _verbose(name: str, value: Any) -> int:
    return _positive_int(name, int(value) if isinstance(value, (bool, np.bool_)) else value, allow_zero=True)


def _n_threads(name: str, value: Any) -> int | None:
    return check_n_threads(value, name)


@dataclass(frozen=True)
class Option:
    """One training option.

    name/default/help: as `mlp.fit` takes it. check(name, value) -> normalised value.
    choices: the allowed strings, where there is a fixed list (shown by --help).

    cli: the `mlp train` flag (None: not on the command line); cli_default: its default when it
        deliberately differs from fit's (with the reason in cli_note); cli_help: its --help text where
        fit's speaks Python (None, True, instances), saying "(default: ...)" for a default of None.

    estimator/estimator_default: the scikit-learn estimators' parameter name and default (None: not a
        parameter); estimator_note: how the estimator's value becomes fit's, where it is not the same;
        estimator_check: the estimators' check where scikit-learn allows other values than fit (None:
        `check`); messages name the scikit-learn parameter.

    cpp: the C++ TrainConfig field (None: not in the port; tests/test_options.py holds the port to it).
    """

    name: str
    default: Any
    help: str
    check: Check | None = None
    choices: tuple[str, ...] = ()
    cli: str | None = SAME
    cli_default: object = SAME
    cli_note: str = ""
    cli_help: str | None = None
    estimator: str | None = None
    estimator_default: object = SAME
    estimator_note: str = ""
    estimator_check: Check | None = None
    cpp: str | None = None
    metavar: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def flag(self) -> str | None:
        if self.cli is SAME:
            return "--" + self.name.replace("_", "-")
        return self.cli

    @property
    def command_line_help(self) -> str:
        return self.help if self.cli_help is None else self.cli_help

    @property
    def command_line_default(self) -> object:
        return self.default if self.cli_default is SAME else self.cli_default

    @property
    def estimator_value(self) -> object:
        return self.default if self.estimator_default is SAME else self.estimator_default

    def validate(self, value: Any, name: str | None = None) -> Any:
        """`value` checked and normalised; a message names `name` (fit's name when not given)."""
        return value if self.check is None else self.check(name or self.name, value)

    def validate_command_line(self, value: Any) -> Any:
        """The value of the `mlp train` flag checked and normalised, a message naming the flag: one of
        `choices` where the option has them (strings only; for loss fewer than fit takes), else `check`."""
        name = self.flag or self.name
        return _choice(self.choices)(name, value) if self.choices else self.validate(value, name)


def _model_options() -> list[Option]:
    """The network and its loss: layer widths, activation, loss, initialiser."""
    activations = tuple(ACTIVATIONS)
    inits = ("auto", *INITIALIZERS)
    return [
        Option(
            "hidden_sizes",
            (256, 128),
            "widths of the hidden layers ([] gives a linear softmax model)",
            lambda n, v: check_hidden_sizes(v, n),
            cli="--hidden",
            cli_help="widths of the hidden layers (none gives a linear softmax model)",
            metavar="W1,W2,...",
            estimator="hidden_layer_sizes",
            estimator_default=(100,),
            cpp="hidden",
        ),
        Option(
            "activation",
            "relu",
            "activation of every hidden layer",
            _choice(activations),
            activations,
            estimator="activation",
            estimator_note="scikit-learn's 'logistic' is 'sigmoid'",
            estimator_check=_choice(
                (*SKLEARN_ACTIVATIONS, *(a for a in activations if a not in SKLEARN_ACTIVATIONS))
            ),
            cpp="activation",
        ),
        Option(
            "loss",
            "cross_entropy",
            "cross_entropy (softmax output), mse (sigmoid outputs), squared_error "
            "(identity outputs: regression), binary_cross_entropy (sigmoid outputs: multilabel) or "
            "poisson (exp outputs: counts)",
            # fit takes every loss; `mlp train` (image classification) and the C++ port the class losses
            _choice(tuple(LOSSES)),
            ("cross_entropy", "mse"),
            cli_note="the command line trains classifiers: cross_entropy or mse",
            cli_help="cross_entropy (softmax output) or mse (sigmoid outputs with squared error); the "
            "regression and multilabel losses are fit's and the estimators'",
            estimator="loss",
            estimator_note="the classifier picks binary_cross_entropy itself for two classes and for "
            "multilabel targets; the regressor takes squared_error (its default) or poisson",
            estimator_check=_choice(CLASSIFIER_LOSSES),
            cpp="loss",
        ),
        Option(
            "init",
            "auto",
            "weight initialiser (auto: He for the ReLU family, else Glorot)",
            _choice(inits),
            inits,
            estimator="init",
            estimator_note="the estimators' 'auto' is scikit-learn's initialisation (Glorot uniform, biases too)",
            cpp="init",
        ),
        Option(
            "batch_norm",
            None,
            "batch normalisation of every hidden layer, 'before' or 'after' its activation (None: off)",
            _choice(BATCH_NORM_PLACEMENTS, none_ok=True),
            BATCH_NORM_PLACEMENTS,
            cli_help="batch normalisation of every hidden layer, before or after its activation "
            "(default: off)",
            estimator="batch_norm",
            cpp="batch_norm",
        ),
        Option(
            "batch_norm_momentum",
            BATCH_NORM_MOMENTUM,
            "momentum of batch normalisation's running statistics: running = (1 - m) running + m batch",
            lambda n, v: _number(n, v, high=1.0, low_inclusive=False, high_inclusive=True),
            metavar="M",
            estimator="batch_norm_momentum",
            cpp="batch_norm_momentum",
        ),
    ]


def _training_options() -> list[Option]:
    """How the weights are updated: epochs, batches, optimizer, regularisation, schedule."""
    from .optimizers import Optimizer
    from .schedules import Schedule

    return [
        Option(
            "epochs",
            25,
            "passes over the training data",
            lambda n, v: _positive_int(n, v, allow_zero=True),
            estimator="max_iter",
            estimator_default=200,
            estimator_note="lbfgs: its most iterations",
            estimator_check=_positive_int,  # at least 1, as scikit-learn
            cpp="epochs",
        ),
        Option(
            "batch_size",
            128,
            "rows per step, or 'full' for full-batch gradient descent",
            lambda n, v: check_batch_size(v, n),
            metavar="N|full",
            estimator="batch_size",
            estimator_default="auto",
            estimator_note="'auto' is min(200, n_samples); larger is clipped",
            estimator_check=lambda n, v: check_batch_size(v, n, auto=True),
            cpp="batch_size",
        ),
        Option(
            "optimizer",
            "adam",
            "optimizer (or an mlp.optimizers instance in Python)",
            _choice(tuple(OPTIMIZERS), instance_of=Optimizer),
            tuple(OPTIMIZERS),
            cli_help="the optimizer",
            estimator="solver",
            estimator_note="'sgd' is scikit-learn's: momentum (nesterov with nesterovs_momentum); 'adam' "
            "takes beta_1, beta_2, epsilon; 'lbfgs' runs SciPy's L-BFGS-B on the whole set",
            estimator_check=_choice(SOLVERS, instance_of=Optimizer),
            cpp="optimizer",
        ),
        Option(
            "learning_rate",
            None,
            "base learning rate (None: the optimizer's default, "
            + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LEARNING_RATES.items())
            + ")",
            lambda n, v: _number(n, v, low_inclusive=False, none_ok=True),
            cli="--lr",
            cli_help="base learning rate (default: the optimizer's, "
            + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LEARNING_RATES.items())
            + ")",
            metavar="LR",
            estimator="learning_rate_init",
            estimator_default=0.001,
            estimator_check=lambda n, v: _number(n, v, low_inclusive=False),
            cpp="lr",
        ),
        Option(
            "momentum",
            None,
            f"momentum of momentum/nesterov (None: {DEFAULT_MOMENTUM})",
            lambda n, v: _number(n, v, high=1.0, none_ok=True),
            cli_help=f"momentum of momentum/nesterov (default: {DEFAULT_MOMENTUM})",
            estimator="momentum",
            estimator_default=DEFAULT_MOMENTUM,
            estimator_check=lambda n, v: _number(n, v, high=1.0),
            cpp="momentum",
        ),
        Option(
            "weight_decay",
            None,
            f"L2 penalty (lambda/2)||W||^2; decoupled for adamw (None: "
            f"{ADAMW_WEIGHT_DECAY} for adamw, else 0)",
            lambda n, v: _number(n, v, none_ok=True),
            cli_help=f"L2 penalty (lambda/2)||W||^2; decoupled for adamw (default: {ADAMW_WEIGHT_DECAY} "
            "for adamw, else 0)",
            estimator="alpha",
            estimator_default=0.0001,
            estimator_note="scaled as scikit-learn does: weight_decay = alpha / rows per step "
            "(alpha / n_samples for lbfgs); adamw: the decoupled decay itself",
            estimator_check=_number,
            cpp="weight_decay",
        ),
        Option(
            "dropout",
            0.1,
            "probability of dropping a hidden unit while training",
            lambda n, v: _number(n, v, high=1.0),
            estimator="dropout",
            estimator_default=0.0,
            cpp="dropout",
        ),
        Option(
            "clip_value",
            None,
            "clip each gradient element to [-v, v] (None: off)",
            lambda n, v: _number(n, v, low_inclusive=False, none_ok=True),
            cli_help="clip each gradient element to [-v, v] (default: off)",
            estimator="clip_value",
            cpp="clip_value",
        ),
        Option(
            "clip_norm",
            None,
            "clip the global gradient norm (None: off)",
            lambda n, v: _number(n, v, low_inclusive=False, none_ok=True),
            cli_help="clip the global gradient norm (default: off)",
            estimator="clip_norm",
            cpp="clip_norm",
        ),
        Option(
            "augment",
            None,
            "distort every training batch afresh (images only): 'default', or fields such as "
            "shift=2,rotation=10,scale=0.1,shear=10,elastic_alpha=34,elastic_sigma=4 (pixels, degrees, relative "
            "size; image_shape=28x28), or a dict or mlp.augment.Augment in Python; None: off",
            lambda n, v: check_augment(v, n),
            cli_help="distort every training batch afresh: 'default', or fields such as "
            "shift=2,rotation=10,scale=0.1,shear=10,elastic_alpha=34,elastic_sigma=4 (pixels, degrees, relative "
            "size; image_shape=28x28) (default: off)",
            metavar="SPEC",
        ),
        Option(
            "max_norm",
            None,
            "largest norm of each hidden unit's incoming weights, enforced after every step (None: off)",
            lambda n, v: _number(n, v, low_inclusive=False, none_ok=True),
            cli_help="largest norm of each hidden unit's incoming weights, enforced after every step "
            "(default: off)",
            metavar="C",
        ),
        Option(
            "label_smoothing",
            0.0,
            "cross_entropy's targets become (1 - e) onehot + e / classes",
            lambda n, v: _number(n, v, high=1.0),
            metavar="E",
        ),
        Option(
            "schedule",
            "cosine",
            "learning-rate schedule (or an mlp.schedules instance in Python)",
            _choice(tuple(SCHEDULES), instance_of=Schedule),
            tuple(SCHEDULES),
            cli_help="learning-rate schedule",
            estimator="learning_rate",
            estimator_default="constant",
            estimator_note="also scikit-learn's 'invscaling' and 'adaptive' "
            "(used with solver='sgd' only, as there)",
            estimator_check=_choice(
                (*SKLEARN_SCHEDULES, *(s for s in SCHEDULES if s not in SKLEARN_SCHEDULES)),
                instance_of=Schedule,
            ),
            cpp="schedule",
        ),
    ]


def _loop_options() -> list[Option]:
    """Validation, early stopping, output, reproducibility and the engine."""
    return [
        Option(
            "validation_split",
            0.0,
            "fraction of the training data held out for validation",
            lambda n, v: _number(n, v, high=1.0),
            estimator="validation_fraction",
            estimator_default=0.1,
            estimator_note="held out only with early_stopping",
        ),
        Option(
            "early_stopping",
            False,
            "stop when the monitored loss stops improving; keep the best weights",
            _flag,
            estimator="early_stopping",
            estimator_note="the estimators monitor the validation "
            "score (accuracy or R^2) as scikit-learn does",
        ),
        Option(
            "patience",
            5,
            "epochs without improvement before early stopping",
            lambda n, v: _positive_int(n, v, allow_zero=True),
            estimator="n_iter_no_change",
            estimator_default=10,
            estimator_note="the estimators always stop on it (scikit-learn's rule: more "
            "than n_iter_no_change epochs without an improvement of tol; np.inf: never)",
            estimator_check=_patience_or_inf,  # at least 1, or np.inf (never stop), as scikit-learn
        ),
        Option(
            "min_delta",
            0.0,
            "smallest decrease of the monitored loss that counts as an improvement",
            lambda n, v: _number(n, v),
            estimator="tol",
            estimator_default=1e-4,
            estimator_note="lbfgs: its gradient tolerance (gtol)",
        ),
        Option(
            "verbose",
            0,
            "print a line every N epochs (0: silent)",
            _verbose,
            cli="--log-every",
            cli_default=1,
            cli_note="the command line reports every epoch unless --quiet",
            metavar="N",
            estimator="verbose",
            estimator_default=False,
        ),
        Option(
            "dtype",
            "float32",
            "precision of the parameters and arithmetic",
            _choice(DTYPES),
            DTYPES,
            estimator="dtype",
            estimator_default=None,
            estimator_note="None: X's float dtype",
            estimator_check=_choice(DTYPES, none_ok=True),
        ),
        Option(
            "seed",
            None,
            "seed of the weights, shuffling and dropout (None: draw one, record it in "
            "model.config['seed'] and print it with verbose)",
            lambda n, v: check_seed(v, n),
            cli_help="seed of the weights, shuffling and dropout (default: draw one and print it, "
            "to repeat the run with --seed N)",
            metavar="N",
            estimator="random_state",
            estimator_check=lambda n, v: check_seed(v, n, random_state=True),
            cpp="seed",
        ),
        Option(
            "shuffle", True, "reshuffle the samples every epoch", _flag, estimator="shuffle", cpp="shuffle"
        ),
        Option(
            "shuffle_block",
            None,
            "shuffle in blocks of this many consecutive rows: the blocks in a random order, the rows "
            f"mixed within each run of {BLOCK_WINDOW} blocks, so that an epoch reads a memory-mapped X "
            "in mostly sequential runs (None: every row anywhere)",
            _shuffle_block,
            cli_help="shuffle in blocks of this many consecutive rows: the blocks in a random order, the "
            f"rows mixed within each run of {BLOCK_WINDOW} blocks, for data read from disk (default: "
            "every row anywhere)",
            metavar="ROWS",
        ),
        Option("checkpoint", None, "save a checkpoint here after every epoch", None, metavar="PATH"),
        Option("resume", False, "continue from the checkpoint if it exists", _flag),
        Option("log_gradients", False, "record per-layer gradient, update and weight norms", _flag),
        Option(
            "progress",
            False,
            "a progress bar per epoch (True, False or 'auto': when stderr is a terminal)",
            _progress,
            cli_default="auto",
            cli_note="a terminal user sees a bar; a pipe or log does not",
            cli_help="a progress bar per epoch: auto (when stderr is a terminal), yes or no",
        ),
        Option(
            "engine",
            "auto",
            "auto (Numba kernels for NumPy input when installed), numba, or xp (the generic array-API path)",
            _choice(ENGINES),
            ENGINES,
            estimator="engine",
        ),
        Option(
            "n_threads",
            None,
            "BLAS threads while training (None: chosen per epoch from the idle cores)",
            _n_threads,
            cli="--threads",
            cli_help="BLAS threads while training (default: chosen per epoch from the idle cores)",
            metavar="N",
            estimator="n_threads",
        ),
        Option(
            "deterministic",
            False,
            "the same seed gives the same weights on the same machine: the BLAS threads are fixed "
            "for the whole fit (n_threads, or 1 when it is None) instead of chosen per epoch from "
            "the idle cores; NumPy input only (GPU libraries have their own switches)",
            _flag,
            cli_help="the same --seed gives the same weights on this machine: BLAS threads fixed for "
            "the whole run (--threads, or 1) instead of chosen per epoch from the idle cores",
            estimator="deterministic",
        ),
    ]


OPTIONS = {option.name: option for option in (*_model_options(), *_training_options(), *_loop_options())}
# Keywords of fit that are not settings of a run and have no entry above.
RUNTIME_ONLY = (
    "validation_data",
    "callbacks",
    "comm",
    "comm_timeout",
    "sharded",
    "sample_weight",
    "class_weight",
)
# Where MLPRegressor's default and check differ from the estimator columns (MLPClassifier's).
REGRESSOR_DEFAULTS = {"loss": "squared_error"}
REGRESSOR_CHECKS = {"loss": _choice(("squared_error", "poisson"))}


def validate(values: dict[str, Any]) -> dict[str, Any]:
    """{name: value} -> the same names with every value checked and normalised (unknown names
    raise a TypeError listing the known ones)."""
    unknown = sorted(set(values) - set(OPTIONS))
    if unknown:
        raise TypeError(f"unknown training option(s) {', '.join(unknown)}; known: {', '.join(OPTIONS)}")
    return {name: OPTIONS[name].validate(value) for name, value in values.items()}


@dataclass(frozen=True)
class TrainingOptions:
    """fit's training options, every one checked and normalised by its entry of the table: built by
    `resolve`, read as attributes (`options.epochs`). The fields are the table's names in its order
    (tests/test_options.py holds them to it), typed as its checks return them."""

    hidden_sizes: list[int]
    activation: str
    loss: str
    init: str
    batch_norm: str | None
    batch_norm_momentum: float
    epochs: int
    batch_size: int | None  # None: full batch
    optimizer: str | Optimizer
    learning_rate: float | None
    momentum: float | None
    weight_decay: float | None
    dropout: float
    clip_value: float | None
    clip_norm: float | None
    augment: Augment | None
    max_norm: float | None
    label_smoothing: float
    schedule: str | Schedule
    validation_split: float
    early_stopping: bool
    patience: int
    min_delta: float
    verbose: int
    dtype: str
    seed: int | None
    shuffle: bool
    shuffle_block: int | None  # None: a full shuffle
    checkpoint: str | os.PathLike[str] | None
    resume: bool
    log_gradients: bool
    progress: bool | str
    engine: str
    n_threads: int | None
    deterministic: bool

    def as_dict(self) -> dict[str, Any]:
        """{name: value} in the table's order (the values themselves, not copies)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def resolve(values: dict[str, Any]) -> TrainingOptions:
    """fit's options from {name: value}: every value checked and normalised as `validate` does (in the
    table's order, so the first bad one is reported), the ones not given at the table's defaults."""
    return TrainingOptions(**validate({**defaults(), **values}))


def validate_estimator(params: dict[str, Any], *, regressor: bool = False) -> dict[str, Any]:
    """{parameter: value} of the estimators' parameters that come from the table (scikit-learn's names)
    -> the same names with every value checked and normalised, a message naming the parameter
    (MLPClassifier's checks; MLPRegressor's with regressor=True)."""
    options = {o.estimator: o for o in OPTIONS.values() if o.estimator}
    checked = {}
    for name, value in params.items():
        option = options[name]
        check = (regressor and REGRESSOR_CHECKS.get(name)) or option.estimator_check or option.check
        checked[name] = value if check is None else check(name, value)
    return checked


def defaults() -> dict[str, Any]:
    """fit's defaults, {name: value}."""
    return {name: option.default for name, option in OPTIONS.items()}


def estimator_defaults(regressor: bool = False) -> dict[str, Any]:
    """The estimators' parameters that come from the table and their defaults, {parameter: value}
    (MLPClassifier's; MLPRegressor's with regressor=True)."""
    values = {o.estimator: o.estimator_value for o in OPTIONS.values() if o.estimator}
    return {**values, **REGRESSOR_DEFAULTS} if regressor else values


# ---- the C++ port's defaults -----------------------------------------------------------------------
def _cpp_value(value: object, kind: str) -> str:
    if kind == "string":
        return f'"{value}"'
    if kind == "bool":
        return "true" if value else "false"
    return repr(value) if kind == "double" else str(value)


def _cpp_names(names: Iterable[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def cpp_header() -> str:
    """The text of cpp/src/train_defaults.hpp: the C++ TrainConfig's defaults, from this table, and
    the library version (mlp/_version.py, the one place it is written)."""
    from ._version import __version__

    o = OPTIONS
    lines = [
        "// train_defaults.hpp - the C++ port's training defaults, generated from mlp/options.py:",
        "//   python -m mlp.options --cpp-header > cpp/src/train_defaults.hpp",
        "// Do not edit by hand; tests/test_options.py fails when this file and the table differ.",
        "#pragma once",
        "",
        "namespace mlp {",
        "namespace defaults {",
        "",
        "// The library version (mlp/_version.py): `mlp-cpp version` and the model files' library_version.",
        f"constexpr const char* kVersion = {_cpp_value(__version__, 'string')};",
        "",
        f"constexpr int kHiddenSizes[] = {{{', '.join(map(str, o['hidden_sizes'].default))}}};",
        f"constexpr int kEpochs = {o['epochs'].default};",
        f"constexpr int kBatchSize = {o['batch_size'].default};  // 0 on the command line: full batch",
        f"constexpr const char* kOptimizer = {_cpp_value(o['optimizer'].default, 'string')};",
        "constexpr double kLearningRate = 0.0;  // 0: the optimizer's default (kOptimizers below)",
        f"constexpr double kMomentum = {DEFAULT_MOMENTUM!r};",
        f"constexpr const char* kActivation = {_cpp_value(o['activation'].default, 'string')};",
        f"constexpr const char* kLoss = {_cpp_value(o['loss'].default, 'string')};",
        f"constexpr const char* kInit = {_cpp_value(o['init'].default, 'string')};",
        "constexpr double kWeightDecay = -1.0;  // < 0: kWeightDecayAdamw for adamw, else 0",
        f"constexpr double kWeightDecayAdamw = {ADAMW_WEIGHT_DECAY!r};",
        f"constexpr double kDropout = {o['dropout'].default!r};",
        "constexpr double kClipValue = 0.0;  // 0: off",
        "constexpr double kClipNorm = 0.0;  // 0: off",
        f"constexpr const char* kSchedule = {_cpp_value(o['schedule'].default, 'string')};",
        "constexpr long long kSeed = -1;  // < 0: draw a seed and print it (fit's seed=None)",
        f"constexpr bool kShuffle = {_cpp_value(o['shuffle'].default, 'bool')};",
        '// Batch normalisation (mlp.layers): "" (off), "before" or "after" the activation.',
        f"constexpr const char* kBatchNorm = {_cpp_value(o['batch_norm'].default or '', 'string')};",
        f"constexpr double kBatchNormMomentum = {o['batch_norm_momentum'].default!r};",
        f"constexpr double kBatchNormEps = {BATCH_NORM_EPS!r};",
        "",
        "// What a model file may hold (mlp.options.MAX_*): refused before training, accepted by every reader.",
        f"constexpr long long kMaxWidth = {MAX_WIDTH};",
        f"constexpr unsigned kMaxHiddenLayers = {MAX_HIDDEN_LAYERS};",
        f"constexpr unsigned long long kMaxMetadataBytes = {MAX_METADATA_BYTES}ULL;",
        "",
        "// The names each option takes, in the Python package's order (mlp.optimizers.OPTIMIZERS,",
        "// mlp.schedules.SCHEDULES, mlp.activations.ACTIVATIONS, mlp.losses.LOSSES,",
        "// mlp.initializers.INITIALIZERS). The port refuses by name one it does not implement, and its",
        "// unit test `defaults` fails while any is missing.",
        "struct OptimizerName {",
        "  const char* name;",
        "  double learning_rate;  // without --lr (mlp.options.DEFAULT_LEARNING_RATES)",
        "};",
        "constexpr OptimizerName kOptimizers[] = {",
        *(f'    {{"{name}", {DEFAULT_LEARNING_RATES[name]!r}}},' for name in OPTIMIZERS),
        "};",
        f"constexpr const char* kSchedules[] = {{{_cpp_names(SCHEDULES)}}};",
        f"constexpr const char* kActivations[] = {{{_cpp_names(ACTIVATIONS)}}};",
        f"constexpr const char* kLosses[] = {{{_cpp_names(LOSSES)}}};",
        f"constexpr const char* kInitializers[] = {{{_cpp_names(INITIALIZERS)}}};",
        "",
        "}  // namespace defaults",
        "}  // namespace mlp",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import contextlib
    import io

    parser = argparse.ArgumentParser(
        prog="python -m mlp.options", description="Print the training options table."
    )
    parser.add_argument("--cpp-header", action="store_true", help="print cpp/src/train_defaults.hpp")
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):  # --help: written below, where a failure is caught
            args = parser.parse_args(argv)
    except SystemExit as done:
        if done.code:
            raise
        args = None
    try:
        if args is None:
            sys.stdout.write(printed.getvalue())
        elif args.cpp_header:
            sys.stdout.write(cpp_header())
        else:
            width = max(map(len, OPTIONS))
            for option in OPTIONS.values():
                print(f"{option.name:<{width}}  {option.default!r:<14} {option.help}")
        sys.stdout.flush()  # here, not at exit: a full disk or a closed pipe is reported below
    except OSError as error:
        return _output_failed(parser.prog, error)
    return 0


def _output_failed(prog: str, error: OSError) -> int:
    """Standard output failed: one line and 1 (quietly 141 for a closed pipe), never a traceback."""
    import contextlib
    import os

    with contextlib.suppress(OSError, ValueError, AttributeError):  # what is still buffered goes nowhere
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    if isinstance(error, BrokenPipeError):
        return 141
    print(f"{prog}: error: cannot write to standard output: {error.strerror or error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
