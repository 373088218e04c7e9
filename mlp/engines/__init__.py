"""Training engines: the objects that run epochs over a model's parameters, and the choice between them.

    base.BaseTrainer            the epoch and the step every engine shares (batches, random numbers,
                                schedule, MPI reduction, gradient norms, max-norm, logs)
    generic.Trainer             the array-API step (NumPy, CuPy, array-api-strict, ...)
    numba_trainer.NumbaTrainer  the same step on NumPy through the fused kernels of mlp_kernels
    checkpoints                 the training state written to and read from disk

`make_trainer` picks one; `fit` and the scikit-learn estimator both go through it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._array_api import Array
from ..options import ENGINES  # the choices, defined once with the other options
from . import numba_trainer
from .base import BaseTrainer, TrainingError, check_finite
from .generic import Trainer

if TYPE_CHECKING:
    from ..model import MLP
    from ..optimizers import Optimizer

__all__ = [
    "ENGINES",
    "BaseTrainer",
    "Trainer",
    "TrainingError",
    "check_finite",
    "choose_engine",
    "make_trainer",
]


def choose_engine(
    engine: str,
    X: Array,
    optimizer: Optimizer,
    loss: str,
    *,
    on_compile: Callable[[], object] | None = None,
    batch_norm: str | None = None,
) -> type[BaseTrainer]:
    """The Trainer class for `engine` on data like X: the Numba one for NumPy float input when Numba
    is installed and has what the model needs ("auto"; `batch_norm`: the model's), always ("numba",
    an error saying why when it cannot), or never ("xp").
    The Numba kernels compile (or load their cache) here, outside the loop; on_compile() is called
    once before they compile (not when they load from the cache)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(map(repr, ENGINES))}, got {engine!r}")
    if engine == "xp":
        return Trainer
    error = numba_trainer.import_error()
    if isinstance(error, ValueError):  # Numba is installed but refused its environment (NUMBA_NUM_THREADS)
        raise error.with_traceback(None)
    if numba_trainer.supports(X, optimizer, loss, batch_norm=batch_norm):
        numba_trainer.warmup(X.dtype, on_compile)
        return numba_trainer.NumbaTrainer
    if engine == "numba":
        error = numba_trainer.import_error()
        if error is not None:
            raise ImportError(
                numba_trainer.unsupported_reason(X, optimizer, batch_norm=batch_norm)
            ) from error
        raise ValueError(numba_trainer.unsupported_reason(X, optimizer, batch_norm=batch_norm))
    return Trainer


def make_trainer(
    model: MLP,
    X: Array,
    *,
    engine: str = "auto",
    on_compile: Callable[[], object] | None = None,
    **options: Any,
) -> BaseTrainer:
    """A Trainer for `model` on data like X, chosen by `choose_engine` (on_compile: see there);
    options are Trainer's keywords."""
    chosen = choose_engine(
        engine, X, options["optimizer"], model.loss, on_compile=on_compile, batch_norm=model.batch_norm
    )
    return chosen(model, **options)
