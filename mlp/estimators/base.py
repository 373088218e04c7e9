"""What `MLPClassifier` and `MLPRegressor` share: scikit-learn's parameters translated into the
library's (the options table names the pairs), the solvers, scikit-learn's stopping rule, the fitted
attributes, and the array-API and sparse-input plumbing.

Solvers. "sgd" (scikit-learn's: momentum, Nesterov with `nesterovs_momentum`), "adam" and this
library's "adamw", "rmsprop", "momentum", "nesterov" (or an `mlp.optimizers` instance) train epoch
by epoch through `mlp.loop.run_epochs` with an engine of `mlp.engines` (the Numba kernels for NumPy
input); "lbfgs" runs `scipy.optimize.minimize(method="L-BFGS-B")` on the flat parameter vector with
the library's own loss and gradients.

Stopping follows scikit-learn exactly: after more than `n_iter_no_change` epochs in which the
training loss (or, with `early_stopping`, the validation score: accuracy or R^2) did not improve by
`tol`, training stops (`learning_rate="adaptive"`: the rate is divided by 5 first, until below 1e-6),
and a `ConvergenceWarning` says when `max_iter` ran out first.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.optimize
import scipy.sparse
import sklearn
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection._split import _validate_shuffle_split
from sklearn.utils import check_random_state
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .. import distributed as _distributed
from .. import layers
from .. import options as _options
from .._array_api import (
    Array,
    Device,
    DType,
    Namespace,
    Params,
    dtype_name,
    float_dtype,
    from_host,
    get_namespace,
    is_array_api_obj,
    namespace_name,
    to_numpy,
)
from .._memory import check_fits, check_training_memory
from .._threads import fit_threads, thread_limits
from .._validation import check_flag, check_positive_int, check_rate
from ..engines import TrainingError, make_trainer
from ..initializers import initial_parameters
from ..layers import Norms
from ..loop import run_epochs
from ..model import MLP
from ..optimizers import SGD, Adam, AdamW, Momentum, Nesterov, Optimizer, RMSProp
from ..schedules import Schedule, make_schedule

if TYPE_CHECKING:
    from typing_extensions import Self

    from ..engines import BaseTrainer
    from ..loop import Best

# scikit-learn's names where they differ from the library's (the options table's estimator notes).
ACTIVATION_ALIASES = {"logistic": "sigmoid"}
ADAPTIVE_MIN_LR = 1e-6  # scikit-learn's: "adaptive" stops once the rate would fall below this
ADAPTIVE_FACTOR = 5.0


# ---- scikit-learn's two schedules of the learning rate (solver="sgd") ---------------------------------
@dataclass
class InvScaling(Schedule):
    """lr = learning_rate_init / (t + 1) ** power_t, t the samples seen before this epoch (as
    scikit-learn updates it at the end of each epoch)."""

    power_t: float = 0.5
    samples_per_epoch: int = 1
    name = "invscaling"

    def start(self, base_lr: float, epochs: int, steps_per_epoch: int) -> None:
        super().start(base_lr, epochs, steps_per_epoch)
        self.samples_seen = 0

    def lr(self, epoch: int, step: int) -> float:
        return self.base_lr / (self.samples_seen + 1) ** self.power_t

    def epoch_end(self, epoch: int, monitored: float) -> None:
        self.samples_seen += self.samples_per_epoch


@dataclass
class Adaptive(Schedule):
    """The rate stays at learning_rate_init until the estimator's stopping rule fires; then
    `reduce` divides it by 5 (and says False once it would go below 1e-6: time to stop)."""

    name = "adaptive"

    def start(self, base_lr: float, epochs: int, steps_per_epoch: int) -> None:
        super().start(base_lr, epochs, steps_per_epoch)
        self.current = base_lr

    def lr(self, epoch: int, step: int) -> float:
        return self.current

    def reduce(self) -> bool:
        if self.current <= ADAPTIVE_MIN_LR:
            return False
        self.current /= ADAPTIVE_FACTOR
        return True


class BaseMLP(BaseEstimator):
    """The shared machinery; `MLPClassifier` and `MLPRegressor` define the targets and outputs.

    Subclasses implement `_encode_targets(y, first, incremental, classes, xp, device, dtype)` (targets for the
    trainer, deciding the output layer on the first call), `_validation_score(X, targets)` and the
    prediction methods.
    """

    _default_loss = "cross_entropy"

    # Fitted state, set by fit (scikit-learn's names; the scores and best values are None where
    # scikit-learn leaves them None: with or without early stopping).
    model_: MLP
    n_iter_: int
    t_: int
    n_layers_: int
    loss_: float
    loss_curve_: list[float]
    validation_scores_: list[float] | Any
    best_validation_score_: float | Any
    best_loss_: float | Any
    _trainer: BaseTrainer | None
    _best_params: Params | None
    _best_norms: Norms | None
    _rng: np.random.Generator
    _built_with: dict[str, Any]
    _no_improvement_count: int

    # ---- the parameters, checked and translated ------------------------------------------------------
    def _check_params(self) -> dict[str, Any]:
        """Every hyper-parameter checked at fit time, as scikit-learn requires (a ValueError/TypeError
        naming it and its allowed values); returns a dict of the normalised values. The parameters of the
        options table go through its checks (`mlp.options.validate_estimator`), scikit-learn's solver
        settings that fit has no keyword for through the helpers of `mlp._validation`."""
        p = _options.validate_estimator(
            {name: getattr(self, name) for name in _options.estimator_defaults()},
            regressor=not self._is_classifier(),
        )
        p["hidden_sizes"] = p.pop("hidden_layer_sizes")
        p["schedule"] = p.pop("learning_rate")
        p["activation"] = ACTIVATION_ALIASES.get(p["activation"], p["activation"])
        p.update(
            power_t=check_rate(self.power_t, "power_t"),
            warm_start=check_flag(self.warm_start, "warm_start"),
            nesterovs_momentum=check_flag(self.nesterovs_momentum, "nesterovs_momentum"),
            beta_1=check_rate(self.beta_1, "beta_1", high=1.0),
            beta_2=check_rate(self.beta_2, "beta_2", high=1.0),
            epsilon=check_rate(self.epsilon, "epsilon", low_inclusive=False),
            max_fun=check_positive_int(self.max_fun, "max_fun"),
        )
        if p["batch_norm"] is not None and p["solver"] == "lbfgs":
            raise ValueError(
                "batch_norm does not work with solver='lbfgs' (its batch statistics change with every "
                "mini-batch); choose a stochastic solver such as 'adam', or batch_norm=None"
            )
        return p

    def _optimizer(self, p: dict[str, Any]) -> Optimizer:
        """The library optimizer for `solver` (scikit-learn's "sgd" is momentum SGD, Nesterov's by default)."""
        solver = p["solver"]
        if isinstance(solver, Optimizer):
            return copy.deepcopy(solver)
        if solver == "sgd":
            if p["momentum"] == 0:
                return SGD()
            return (Nesterov if p["nesterovs_momentum"] else Momentum)(momentum=p["momentum"])
        if solver in ("momentum", "nesterov"):
            return (Nesterov if solver == "nesterov" else Momentum)(momentum=p["momentum"])
        if solver == "adam":
            return Adam(beta1=p["beta_1"], beta2=p["beta_2"], eps=p["epsilon"])
        if solver == "adamw":
            return AdamW(beta1=p["beta_1"], beta2=p["beta_2"], eps=p["epsilon"], weight_decay=p["alpha"])
        return RMSProp(eps=p["epsilon"])

    def _schedule(self, p: dict[str, Any], n_samples: int) -> Schedule:
        """The learning-rate schedule; scikit-learn's "invscaling" and "adaptive" apply to solver="sgd"
        only (as there: any other solver keeps the rate constant)."""
        spec = p["schedule"]
        if isinstance(spec, Schedule):
            return copy.deepcopy(spec)
        if spec in ("invscaling", "adaptive") and p["solver"] != "sgd":
            return Schedule()
        if spec == "invscaling":
            return InvScaling(power_t=p["power_t"], samples_per_epoch=n_samples)
        if spec == "adaptive":
            return Adaptive()
        return make_schedule(spec)

    @staticmethod
    def _batch_rows(p: dict[str, Any], n_samples: int, *, warn: bool = True) -> int:
        """scikit-learn's batch size: "auto" is min(200, n); larger than n is clipped (with its warning)."""
        batch_size = p["batch_size"]
        if batch_size in (None, "full"):
            return n_samples
        if batch_size == "auto":
            return min(200, n_samples)
        if batch_size > n_samples and warn:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
                UserWarning,
                stacklevel=6,
            )
        return min(batch_size, n_samples)

    def _l2(self, p: dict[str, Any], rows: int) -> float:
        """scikit-learn's alpha as the library's L2 coefficient: alpha / rows of the step (its gradient is
        (X'delta + alpha W) / rows); AdamW decays the weights itself instead."""
        if isinstance(p["solver"], Optimizer) or p["solver"] == "adamw":
            return 0.0 if hasattr(self._optimizer(p), "weight_decay") else p["alpha"] / rows
        return p["alpha"] / rows

    # ---- fitting ------------------------------------------------------------------------------------
    def _check_solver(self) -> bool:
        """partial_fit is there for the stochastic solvers only (scikit-learn's rule and message): an
        AttributeError for lbfgs, so that hasattr(estimator, "partial_fit") is False. The one check:
        the subclasses' `available_if` and `_fit` both call it."""
        if self.solver == "lbfgs":
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers. {self.solver} is not stochastic."
            )
        return True

    def fit(self, X: Array, y: Array, sample_weight: Array | None = None) -> Self:
        """Fit the model to X (n_samples, n_features; dense, or SciPy sparse CSR/CSC) and y; returns
        self. With `warm_start` and a fitted model, training continues from its weights.
        `sample_weight` (n_samples,) weighs each row's loss, as in scikit-learn."""
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def _fit(
        self,
        X: Array,
        y: Array,
        *,
        incremental: bool,
        classes: Array | None = None,
        sample_weight: Array | None = None,
    ) -> Self:
        """fit and partial_fit; with `comm` (more than one rank) under `mlp.distributed`'s rule: an
        exception on one rank alone ends the job, and no rank waits past MLP_MPI_TIMEOUT seconds."""
        comm = _distributed.check_comm(getattr(self, "comm", None))  # absent from models pickled before it
        if comm is None or comm.Get_size() == 1:
            return self._fit_over(X, y, incremental=incremental, classes=classes, sample_weight=sample_weight)
        fit_over = _distributed.abort_on_error(self._fit_over)
        return fit_over(
            X, y, incremental=incremental, classes=classes, sample_weight=sample_weight, comm=comm
        )

    def _fit_over(
        self,
        X: Array,
        y: Array,
        *,
        incremental: bool,
        classes: Array | None = None,
        sample_weight: Array | None = None,
        comm: Any = None,
    ) -> Self:
        p = self._check_params()
        if incremental:
            self._check_solver()
        if incremental and p["early_stopping"]:
            raise ValueError("partial_fit does not support early_stopping=True")
        first = not (hasattr(self, "model_") and (incremental or p["warm_start"]))
        if not first:
            self._check_same_network(p, incremental=incremental)
        X, y, xp, device = self._validate_X_y(X, y, reset=first, dtype=p["dtype"])
        targets = self._encode_targets(
            y, first=first, incremental=incremental, classes=classes, xp=xp, device=device, dtype=X.dtype
        )
        weights = self._sample_weights(y, sample_weight, n_samples=X.shape[0], incremental=incremental)
        if first or not incremental:  # a new network or a new optimizer: refused up front when too large
            self._check_memory(X, p)
        parallel = self._start(comm, X, targets, weights, p, incremental=incremental)
        if first:
            self._initialise(
                X, targets, p, xp=xp, device=device, seed=None if parallel is None else parallel.seed
            )
        if p["solver"] == "lbfgs":
            self._fit_lbfgs(X, targets, p, weights)
        else:
            self._fit_stochastic(
                X, targets, p, weights, incremental=incremental, xp=xp, device=device, parallel=parallel
            )
        arrays = [a for group in (*self.model_.params, *self.model_.norms) for a in group]
        if not all(bool(xp.all(xp.isfinite(a))) for a in arrays):
            raise _distributed.all_ranks(  # scikit-learn's words; over MPI every rank has the same weights
                ValueError(
                    "Solver produced non-finite parameter weights. The input data may"
                    " contain large values and need to be preprocessed."
                )
            )
        return self

    def _start(
        self,
        comm: Any,
        X: Array,
        targets: Array,
        weights: np.ndarray | None,
        p: dict[str, Any],
        *,
        incremental: bool,
    ) -> _distributed.DataParallel | None:
        """Over MPI (`comm` of several ranks): `mlp.fit`'s agreement (`mlp.distributed.start`): every rank's
        data, weights and parameters compared, and rank 0's seed taken where random_state is not an int,
        so that every rank builds the same network; None on one process."""
        if comm is None:
            return None
        random_state = self.random_state
        seed = (
            int(random_state)
            if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool)
            else None
        )
        parameters = self.get_params(deep=False)
        options = {name: value for name, value in parameters.items() if name not in ("comm", "random_state")}
        options["partial_fit"] = incremental
        classes = getattr(self, "classes_", None) if self._is_classifier() else None
        parallel = _distributed.start(
            comm, X, targets, classes, options=options, seed=seed, sample_weight=weights
        )
        if parallel is not None and p["solver"] == "lbfgs":
            raise _distributed.all_ranks(
                ValueError(
                    "solver='lbfgs' does not train over MPI (comm=); choose a stochastic solver such as 'adam'"
                )
            )
        return parallel

    def _sample_weights(
        self, y: Any, sample_weight: Any, *, n_samples: int, incremental: bool
    ) -> np.ndarray | None:
        """The rows' weights (float64, on the host) checked as scikit-learn checks them, or None where
        they are all equal: scikit-learn divides by the weights' sum, so equal weights train as none."""
        if sample_weight is None:
            return None
        if is_array_api_obj(sample_weight) and not isinstance(sample_weight, np.ndarray):
            sample_weight = to_numpy(sample_weight)
        return _unless_uniform(
            _check_sample_weight(sample_weight, np.empty((n_samples, 0)), dtype=np.float64)
        )

    def _network_shape(self, p: dict[str, Any]) -> dict[str, Any]:
        """The parameters that fix the network, as it was built (normalised: "logistic" is "sigmoid")."""
        return {
            "hidden_layer_sizes": tuple(p["hidden_sizes"]),
            "activation": p["activation"],
            "loss": p["loss"],
            "batch_norm": p["batch_norm"],
        }

    def _check_same_network(self, p: dict[str, Any], *, incremental: bool) -> None:
        """warm_start and partial_fit continue the network built by an earlier fit. A parameter that
        shapes it (hidden_layer_sizes, activation, loss, dtype) changed since then would be ignored
        (scikit-learn keeps the old network silently); a ValueError names it instead."""
        built = dict(getattr(self, "_built_with", None) or {})  # absent in a model pickled before this check
        now = self._network_shape(p)
        built["dtype"] = self.model_.dtype
        now["dtype"] = self.model_.dtype if p["dtype"] is None else p["dtype"]  # None: the fitted one
        for name, value in built.items():
            if now[name] != value:
                how = (
                    "partial_fit continues the existing network: set it back, or call fit() to build a new one"
                    if incremental
                    else "warm_start=True continues the existing network: set it back, or set warm_start=False "
                    "to build a new one"
                )
                raise ValueError(
                    f"{name} changed since the network was fitted ({value!r} then, {getattr(self, name)!r} "
                    f"now); {how}"
                )

    def _check_memory(self, X: Array, p: dict[str, Any]) -> None:
        """`mlp.fit`'s check (`check_training_memory`, the same estimate and message): a network, batch or
        optimizer that cannot fit in the memory available (or in MLP_MEMORY_LIMIT bytes) raises
        MemoryLimitError, a ValueError, before anything is allocated."""
        n_samples = X.shape[0]
        optimizer: str | Optimizer
        if p["solver"] == "lbfgs":
            batch_rows, optimizer = None, "lbfgs"
        else:
            batch_rows, optimizer = self._batch_rows(p, n_samples, warn=False), self._optimizer(p)
        check_training_memory(
            [X.shape[1], *p["hidden_sizes"], self.n_outputs_],
            batch_rows,
            n_samples,
            dtype_name(X.dtype),
            optimizer,
            p["dropout"],
            hint="use smaller hidden_layer_sizes or a smaller batch_size",
        )

    def _initialise(
        self,
        X: Array,
        targets: Array,
        p: dict[str, Any],
        *,
        xp: Namespace,
        device: Device,
        seed: int | None = None,
    ) -> None:
        """Fresh weights and fitted attributes (a first fit, or a fit without warm_start). Random numbers
        come from one Generator in `mlp.fit`'s order: the weights, then each epoch's shuffle and
        dropout masks (the early-stopping split comes after the weights). seed: the one every MPI rank
        agreed on (None: from random_state)."""
        self._rng = _generator(self.random_state if seed is None else seed)
        sizes = [X.shape[1], *p["hidden_sizes"], self.n_outputs_]
        if p["init"] == "auto":
            host = sklearn_initial_parameters(sizes, p["activation"], self._rng)
        else:
            host = initial_parameters(sizes, p["init"], self._rng)
        params = [
            (
                from_host(W, xp=xp, device=device, dtype=X.dtype),
                from_host(b, xp=xp, device=device, dtype=X.dtype),
            )
            for W, b in host
        ]
        self.model_ = self._new_model(
            params, activation=p["activation"], xp=xp, device=device, batch_norm=p["batch_norm"]
        )
        self._built_with = self._network_shape(p)
        self._trainer = None
        self.n_iter_ = 0
        self.t_ = 0
        self.n_layers_ = len(sizes)
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if p["early_stopping"]:
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -math.inf, None
        else:
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = None, None, math.inf
        self._best_params = None
        self._best_norms = None

    def _new_model(
        self, params: Params, *, activation: str, xp: Namespace, device: Device, batch_norm: str | None = None
    ) -> MLP:
        """The `model_` around fresh parameters (the classifier's records its labels)."""
        return MLP(params, activation=activation, loss=self._loss, classes=None, batch_norm=batch_norm)

    def _new_trainer(self, X_like: Array, p: dict[str, Any], n_train: int) -> BaseTrainer:
        rows = self._batch_rows(p, n_train)
        self.model_.l2 = self._l2(p, rows)
        return make_trainer(
            self.model_,
            X_like,
            engine=p["engine"],
            optimizer=self._optimizer(p),
            learning_rate=p["learning_rate_init"],
            schedule=self._schedule(p, n_train),
            epochs=p["max_iter"],
            batch_size=rows,
            dropout=p["dropout"],
            batch_norm_momentum=p["batch_norm_momentum"],
            clip_value=p["clip_value"],
            clip_norm=p["clip_norm"],
            shuffle=p["shuffle"],
            rng=self._rng,
        )

    def _fit_stochastic(
        self,
        X: Array,
        targets: Array,
        p: dict[str, Any],
        weights: np.ndarray | None,
        *,
        incremental: bool,
        xp: Namespace,
        device: Device,
        parallel: _distributed.DataParallel | None = None,
    ) -> None:
        """Epochs through `mlp.loop.run_epochs` (one epoch for partial_fit), with scikit-learn's
        stopping rule, curves, counters and verbose lines kept from each epoch's logs. A diverging
        loss raises scikit-learn's ValueError, or with early stopping ends the fit on the best weights.
        Over MPI (`parallel`) each rank trains on its part of every batch as `mlp.fit` does, the
        losses are summed over the ranks, rank 0 computes the validation score for all and prints."""
        X_val = T_val = w_val = None
        if p["early_stopping"]:
            X, targets, weights, X_val, T_val, w_host = self._split_validation(
                X, targets, weights, p, xp=xp, device=device
            )
            if w_host is not None:  # moved once: the validation score is weighed where X_val lives
                w_val = from_host(w_host, xp=xp, device=device, dtype=X.dtype)
        n = X.shape[0]
        if incremental and self._trainer is not None:
            trainer = self._trainer  # partial_fit: the same optimizer state, step count and schedule
            trainer.batch_size = self._batch_rows(p, n)
            if isinstance(trainer.schedule, InvScaling):
                trainer.schedule.samples_per_epoch = n
        else:  # a new optimizer for every fit, as scikit-learn (warm_start keeps the weights only)
            trainer = self._trainer = self._new_trainer(X, p, n)
        trainer.parallel = parallel
        if parallel is not None:
            parallel.check_batches(n, trainer.batch_size, empty_parts=trainer.takes_empty_batch_parts)
        verbose = p["verbose"] and (parallel is None or parallel.root)
        schedule = trainer.schedule
        stop = [False]
        self.n_iter_ = 0

        def on_epoch(logs: dict[str, Any], best: Best) -> None:
            self.n_iter_ += 1
            self.t_ += n
            self.loss_ = logs["loss"]
            self.loss_curve_.append(logs["loss"])
            if verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}", flush=True)
            if X_val is not None:
                score = self._validation_score
                if parallel is not None:  # the same score on every rank, so that they stop together
                    score = functools.partial(parallel.from_root, score)
                self.validation_scores_.append(score(X_val, T_val, w_val))
                if verbose:
                    print(f"Validation score: {self.validation_scores_[-1]:f}", flush=True)
            if self._count_no_improvement(p, X_val is not None) > p["n_iter_no_change"]:
                message, stopping = self._no_improvement(p, X_val is not None, schedule)
                stop[0] = stopping and not incremental
                if verbose:
                    print(message, flush=True)

        try:
            run_epochs(
                trainer,
                X,
                targets,
                until_epoch=trainer.epoch + (1 if incremental else p["max_iter"]),
                on_epoch=on_epoch,
                callbacks=[lambda epoch, logs, model: stop[0]],
                n_threads=fit_threads(p["n_threads"], p["deterministic"]),
                sample_weight=weights,  # the weighted mean loss, L2 over the weights' sum (scikit-learn's)
            )
        except TrainingError:
            if X_val is None or self._best_params is None:
                raise _distributed.all_ranks(  # scikit-learn's words for non-finite weights
                    ValueError(
                        "Solver produced non-finite parameter weights. The input data may"
                        " contain large values and need to be preprocessed."
                    )
                ) from None
            stop[0] = True  # the loss diverged: the best weights so far are kept, as scikit-learn keeps them
        if X_val is not None and self._best_params is not None:
            # the weights of the best validation score
            self.model_.set_weights(self._best_params, norms=getattr(self, "_best_norms", None))
        if not incremental and not stop[0] and self.n_iter_ == p["max_iter"]:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({p['max_iter']}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _no_improvement(self, p: dict[str, Any], validating: bool, schedule: Any) -> tuple[str, bool]:
        """(scikit-learn's verbose line, whether to stop) when the score stopped improving: the
        adaptive schedule lowers its rate first and stops only once the rate is too small."""
        watched = "Validation score" if validating else "Training loss"
        message = (
            f"{watched} did not improve more than tol={p['tol']:f} for "
            f"{int(p['n_iter_no_change'])} consecutive epochs."
        )
        if not isinstance(schedule, Adaptive):
            return message + " Stopping.", True
        if schedule.reduce():
            self._no_improvement_count = 0
            return message + f" Setting learning rate to {schedule.current:f}", False
        return message + " Learning rate too small. Stopping.", True

    def _count_no_improvement(self, p: dict[str, Any], validating: bool) -> int:
        """scikit-learn's `_update_no_improvement_count`: count the epochs whose training loss (or, with
        early stopping, validation score) did not improve on the best by `tol`; keep the best."""
        tol = p["tol"]
        if validating:
            score = self.validation_scores_[-1]
            worse = score < self.best_validation_score_ + tol
            self._no_improvement_count = self._no_improvement_count + 1 if worse else 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = self.model_.copy_params()
                self._best_norms = self.model_.copy_norms()
        else:
            loss = self.loss_curve_[-1]
            worse = loss > self.best_loss_ - tol
            self._no_improvement_count = self._no_improvement_count + 1 if worse else 0
            self.best_loss_ = min(self.best_loss_, loss)
        return self._no_improvement_count

    def _split_validation(
        self,
        X: Array,
        targets: Array,
        weights: np.ndarray | None,
        p: dict[str, Any],
        *,
        xp: Namespace,
        device: Device,
    ) -> tuple[Array, Array, np.ndarray | None, Array, Array, np.ndarray | None]:
        """Hold out ceil(validation_fraction * n) samples, at least 2, with their weights (X, targets,
        weights of the training rows, then of the held-out rows), drawn from the estimator's random
        stream (stratified by class for a single-output classifier), refused as scikit-learn's
        train_test_split refuses them, with its messages."""
        n = X.shape[0]
        _, n_val = _validate_shuffle_split(n, p["validation_fraction"], None, default_test_size=0.25)
        host_order = self._holdout_order(targets, n_val)
        if n_val < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size of your dataset."
            )
        order = from_host(host_order, xp=xp, device=device)
        X_val, T_val = xp.take(X, order[:n_val], axis=0), xp.take(targets, order[:n_val], axis=0)
        X, targets = xp.take(X, order[n_val:], axis=0), xp.take(targets, order[n_val:], axis=0)
        if weights is None:
            return X, targets, None, X_val, T_val, None
        return X, targets, weights[host_order[n_val:]], X_val, T_val, weights[host_order[:n_val]]

    def _holdout_order(self, targets: Array, n_val: int) -> np.ndarray:
        """A permutation of the samples (host int64) whose first n_val form the validation set."""
        return self._rng.permutation(targets.shape[0])

    def _fit_lbfgs(self, X: Array, targets: Array, p: dict[str, Any], weights: np.ndarray | None) -> None:
        """scikit-learn's lbfgs: SciPy's L-BFGS-B on the flat parameter vector (float64 on the host, as
        SciPy requires; each evaluation moves it to the model's device and the gradient back) with the
        library's loss and gradients; the L2 term is alpha / n_samples as scikit-learn scales it (with
        weights: the weighted mean loss and alpha / sum(weights), scikit-learn's objective)."""
        model = self.model_
        xp, device = model._xp, model.device
        dtype = float_dtype(model.dtype, xp=xp)
        model.l2 = p["alpha"] / X.shape[0]
        if weights is not None:  # the weighted mean loss; the L2 term alpha / sum(weights), scikit-learn's
            model.l2 = p["alpha"] / float(weights.sum())
            weights = from_host(weights / weights.sum(), xp=xp, device=device, dtype=dtype)
        shapes = [tuple(a.shape) for pair in model.params for a in pair]
        sizes = [math.prod(shape) for shape in shapes]

        def unpack(theta: np.ndarray) -> Params:
            arrays: list[Array] = []
            offset = 0
            for shape, size in zip(shapes, sizes, strict=True):
                arrays.append(
                    from_host(theta[offset : offset + size].reshape(shape), xp=xp, device=device, dtype=dtype)
                )
                offset += size
            return list(zip(arrays[0::2], arrays[1::2], strict=True))

        def loss_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
            value, grads, _ = layers.loss_and_gradients(
                unpack(theta),
                X,
                targets,
                activation=model.activation,
                loss=model.loss,
                l2=model.l2,
                xp=xp,
                row_weights=weights,
            )
            flat = [to_numpy(g).astype(np.float64).ravel() for pair in grads for g in pair]
            return float(value), np.concatenate(flat)

        curve: list[float] = []

        def record(intermediate_result: Any) -> None:
            curve.append(float(intermediate_result.fun))
            if p["verbose"]:
                print(f"Iteration {len(curve)}, loss = {curve[-1]:.8f}", flush=True)

        theta = np.concatenate(
            [to_numpy(a).astype(np.float64).ravel() for pair in model.params for a in pair]
        )
        with thread_limits(fit_threads(p["n_threads"], p["deterministic"])):
            result = scipy.optimize.minimize(
                loss_and_gradient,
                theta,
                method="L-BFGS-B",
                jac=True,
                callback=record,
                options={"maxfun": p["max_fun"], "maxiter": p["max_iter"], "gtol": p["tol"]},
            )
        model.set_weights(unpack(result.x))
        with warnings.catch_warnings(record=True) as told:  # scikit-learn's ConvergenceWarning (max_iter,
            warnings.simplefilter("always", ConvergenceWarning)  # max_fun), told from the caller's line
            self.n_iter_ = _check_optimize_result("lbfgs", result, p["max_iter"])
        self.loss_ = float(result.fun)
        self.loss_curve_.extend(curve)
        if self.best_loss_ is not None:
            self.best_loss_ = min([self.best_loss_, self.loss_, *curve])
        for warning in told:
            warnings.warn(warning.message, warning.category, stacklevel=4)

    # ---- fitted views -------------------------------------------------------------------------------
    @property
    def coefs_(self) -> list[Array]:
        """The weight matrices, W[i] of shape (fan_in, fan_out), in X's namespace and device."""
        check_is_fitted(self)
        return [W for W, _ in self.model_.params]

    @coefs_.setter
    def coefs_(self, values: Sequence[Any]) -> None:
        self._set_layer_arrays("coefs_", values, 0)

    @property
    def intercepts_(self) -> list[Array]:
        """The bias vectors, one per layer."""
        check_is_fitted(self)
        return [b for _, b in self.model_.params]

    @intercepts_.setter
    def intercepts_(self, values: Sequence[Any]) -> None:
        self._set_layer_arrays("intercepts_", values, 1)

    def _set_layer_arrays(self, name: str, values: Sequence[Any], part: int) -> None:
        """Assigned `coefs_` (part 0) or `intercepts_` (part 1), as scikit-learn users start from known
        weights: one array per layer, each of the fitted network's shape, copied into the model (its
        namespace, device and dtype), which predict and a following warm-started fit then use."""
        check_is_fitted(self)
        model = self.model_
        current = [pair[part] for pair in model.params]
        values = list(values)
        if len(values) != len(current):
            raise ValueError(f"{name} needs {len(current)} arrays, one per layer, got {len(values)}")
        arrays = []
        for index, (value, old) in enumerate(zip(values, current, strict=True)):
            host = to_numpy(value) if is_array_api_obj(value) and not isinstance(value, np.ndarray) else value
            host = np.asarray(host, dtype=np.float64)
            if host.shape != tuple(old.shape):
                raise ValueError(
                    f"{name}[{index}] has shape {host.shape}; the network's layer {index} needs {tuple(old.shape)}"
                )
            arrays.append(from_host(host, xp=model._xp, device=model.device, dtype=old.dtype))
        model.set_weights(
            [(new, b) if part == 0 else (W, new) for (W, b), new in zip(model.params, arrays, strict=True)]
        )

    # ---- a communicator is shared, never copied --------------------------------------------------------
    def __sklearn_clone__(self) -> Self:
        """scikit-learn's clone, except that `comm` is the same communicator in the clone: it stands for
        the processes of the running job (only MPI's predefined communicators can be deep-copied)."""
        comm = getattr(self, "comm", None)
        if comm is None:
            return super().__sklearn_clone__()
        twin = copy.copy(self)  # a shallow copy without the communicator, cloned as usual
        twin.comm = None
        twin = twin.__sklearn_clone__()
        twin.comm = comm
        return twin

    def __getstate__(self) -> dict[str, Any]:
        """The pickled state leaves the communicator out (None): it belongs to the job that ran."""
        state: dict[str, Any] = super().__getstate__()
        return state if state.get("comm") is None else {**state, "comm": None}

    # ---- input validation ---------------------------------------------------------------------------
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = False
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = True
        return tags

    def _input_namespace(self, X: Any) -> Namespace:
        """X's namespace when scikit-learn dispatches on the array API, else NumPy (X becomes NumPy)."""
        if (
            sklearn.get_config()["array_api_dispatch"]
            and is_array_api_obj(X)
            and not scipy.sparse.issparse(X)
        ):
            return get_namespace(X)[0]
        return get_namespace(np.empty(0))[0]

    def _validate_X_y(
        self, X: Any, y: Any, *, reset: bool, dtype: str | None
    ) -> tuple[Array, Array, Namespace, Device]:
        """validate_data for fit/partial_fit; returns (dense X in the model's float dtype, y, xp, device).
        With `reset` (a new model) the dtype is `dtype`, or follows X when None; else the model's."""
        xp = self._input_namespace(X)
        if reset:
            wanted = [xp.float64, xp.float32] if dtype is None else float_dtype(dtype, xp=xp)
        else:
            wanted = float_dtype(self.model_.dtype, xp=xp)
        X, y = validate_data(
            self,
            X,
            y,
            reset=reset,
            dtype=wanted,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=not self._is_classifier(),
        )
        X = _dense(X)
        xp, device = get_namespace(X)
        if not reset:
            self._check_same_namespace(xp, device, "fit")
        return X, y, xp, device

    @classmethod
    def _is_classifier(cls) -> bool:
        return False

    def _validate_X(self, X: Any, method: str) -> Array:
        check_is_fitted(self)
        xp = self._input_namespace(X)
        X = validate_data(
            self, X, reset=False, dtype=float_dtype(self.model_.dtype, xp=xp), accept_sparse=["csr", "csc"]
        )
        X = _dense(X)
        self._check_same_namespace(*get_namespace(X), method)
        return X

    def _check_same_namespace(self, xp: Namespace, device: Device, method: str) -> None:
        model = self.model_
        if namespace_name(xp) == namespace_name(model._xp) and device == model.device:
            return
        raise ValueError(
            f"Inputs passed to {type(self).__name__}.{method}() must use the same namespace and the same "
            f"device as those passed to fit(): the model lives in {namespace_name(model._xp)} on "
            f"{model.device!r}, X in {namespace_name(xp)} on {device!r}. Move X there first (with array "
            "API dispatch on, pass arrays of the namespace used in fit)"
        )

    def _logits(self, X: Array) -> Array:
        return self.model_.decision_function(X)


# ---- helpers ------------------------------------------------------------------------------------------
def sklearn_initial_parameters(
    layer_sizes: Sequence[int], activation: str, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's initialisation (init="auto"): weights and biases uniform in +-sqrt(6 / (fan_in +
    fan_out)) (+-sqrt(2 / ...) for the logistic activation), drawn layer by layer, W then b, from `rng`."""
    factor = 2.0 if activation == "sigmoid" else 6.0
    params = []
    for fan_in, fan_out in itertools.pairwise(layer_sizes):
        bound = math.sqrt(factor / (fan_in + fan_out))
        params.append((rng.uniform(-bound, bound, (fan_in, fan_out)), rng.uniform(-bound, bound, fan_out)))
    return params


def _dense(X: Any) -> Array:
    """A SciPy sparse X becomes a dense NumPy array once, after checking that it fits in memory (the
    network's first layer multiplies dense rows; a MemoryLimitError, a ValueError, says so otherwise)."""
    if not scipy.sparse.issparse(X):
        return X
    check_fits(
        X.shape[0] * X.shape[1] * X.dtype.itemsize,
        f"densifying the sparse X of shape {X.shape}",
        "pass fewer rows at a time (partial_fit takes batches)",
    )
    return X.toarray()


def follow_X(y: Array, *, xp: Namespace, device: Device) -> Array:
    """y in X's namespace and on its device ("everything follows X"). NumPy arrays are moved once;
    arrays in another namespace or on another device go through the host (targets only, once)."""
    if isinstance(y, np.ndarray):
        return from_host(y, xp=xp, device=device)
    y_xp, y_device = get_namespace(y)
    if namespace_name(y_xp) == namespace_name(xp) and y_device == device:
        return y
    return from_host(to_numpy(y), xp=xp, device=device)


def _unless_uniform(weights: np.ndarray) -> np.ndarray | None:
    return None if bool(np.all(weights == weights[0])) else weights


def is_numeric(dtype: DType) -> bool:
    return dtype_name(dtype).startswith(("int", "uint", "float"))


def _generator(random_state: int | np.random.RandomState | None) -> np.random.Generator:
    """A NumPy Generator: an int seeds it directly (as `mlp.fit(seed=...)` does); None or a
    RandomState instance draw a seed, following scikit-learn's `random_state` convention."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return np.random.default_rng(int(random_state))
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    return np.random.default_rng(seed)
