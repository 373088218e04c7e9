"""`MLPRegressor`: scikit-learn's multilayer-perceptron regressor, on this library's engines.

Identity outputs with the squared error (loss="squared_error"), or exp outputs with the half Poisson
deviance (loss="poisson", for counts), one output per target column; y of shape (n_samples,) or
(n_samples, n_outputs). `predict` returns (n_samples,) for one output, as scikit-learn does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils.metaestimators import available_if

from .._array_api import Array, Device, DType, Namespace
from ..metrics import r2_score
from ..optimizers import Optimizer
from ..schedules import Schedule
from .base import BaseMLP, follow_X

if TYPE_CHECKING:
    from os import PathLike

    from typing_extensions import Self

__all__ = ["MLPRegressor"]


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multilayer perceptron regressor: scikit-learn's `MLPRegressor`, same parameters and attributes.

    Parameters: those of `MLPClassifier` (scikit-learn's, then this library's extras), except that
    `loss` is scikit-learn's regressor loss: "squared_error" or "poisson" (exp outputs, half Poisson
    deviance, y >= 0: a ValueError otherwise). `early_stopping` watches the validation R^2, as in
    scikit-learn. Like
    `MLPClassifier`, warm_start refuses a changed hidden_layer_sizes, activation or dtype with a
    ValueError, and fit refuses a network that cannot fit in memory (`mlp.fit`'s check). `comm`
    (an mpi4py communicator) trains data-parallel over MPI ranks, as `MLPClassifier`'s.

    Attributes
    ----------
    n_features_in_, feature_names_in_, coefs_, intercepts_, loss_, best_loss_, loss_curve_,
    validation_scores_ (R^2), best_validation_score_, n_iter_, t_, n_layers_, n_outputs_,
    out_activation_ ("identity", or "exp" for poisson): as scikit-learn's. model_ : mlp.MLP, the
    trained network.

    The loss is 0.5 * mean over the rows of the squared error summed over the outputs: scikit-learn's
    for one output; for k outputs scikit-learn reports the mean over the outputs instead (k times less)
    while following the same gradient. The poisson loss is scikit-learn's: the mean over the rows of
    xlogy(y, y / mu) - y + mu summed over the outputs, mu = exp(logits) the predicted mean.
    """

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: int | Sequence[int] = (100,),
        activation: str = "relu",
        *,
        solver: str | Optimizer = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str | Schedule = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 1e-4,
        verbose: bool | int = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        max_fun: int = 15000,
        init: str = "auto",
        dropout: float = 0.0,
        batch_norm: str | None = None,
        batch_norm_momentum: float = 0.1,
        clip_value: float | None = None,
        clip_norm: float | None = None,
        dtype: str | None = None,
        engine: str = "auto",
        n_threads: int | None = None,
        deterministic: bool = False,
        comm: Any = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.loss = loss
        self.init = init
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.batch_norm_momentum = batch_norm_momentum
        self.clip_value = clip_value
        self.clip_norm = clip_norm
        self.dtype = dtype
        self.engine = engine
        self.n_threads = n_threads
        self.deterministic = deterministic
        self.comm = comm

    # ---- training -------------------------------------------------------------------------------
    @available_if(BaseMLP._check_solver)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> Self:
        """One epoch over (X, y), continuing the same optimizer state (`sample_weight` as in `fit`);
        returns self."""
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def _encode_targets(
        self,
        y: Any,
        *,
        first: bool,
        incremental: bool,
        classes: Any,
        xp: Namespace,
        device: Device,
        dtype: DType,
    ) -> Array:
        """y as an (n_samples, n_outputs) matrix in X's dtype, namespace and device."""
        y = follow_X(y, xp=xp, device=device)
        if y.ndim == 1:
            y = xp.reshape(y, (-1, 1))
        if first:  # self.loss was checked by _check_params
            self._loss, self.n_outputs_ = self.loss, int(y.shape[1])
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y.shape[1]} outputs but the model was fitted on {self.n_outputs_}")
        if self._loss == "poisson" and not bool(xp.all(y >= 0)):
            raise ValueError("loss='poisson' needs non-negative targets y (counts or rates)")
        return xp.astype(y, dtype)

    def _validation_score(self, X: Array, targets: Array, weights: Array | None = None) -> float:
        """R^2 on held-out (X, targets), weighted by `weights` (X's namespace, device and dtype) when
        given, as scikit-learn's early stopping watches it."""
        return r2_score(targets, self._outputs(X), xp=self.model_._xp, sample_weight=weights)

    # ---- prediction -----------------------------------------------------------------------------
    def predict(self, X: Any) -> Array:
        """Predicted values: (n_samples,) for one output, else (n_samples, n_outputs); in X's namespace
        and on its device."""
        X = self._validate_X(X, "predict")
        outputs = self._outputs(X)
        return outputs[:, 0] if outputs.shape[1] == 1 else outputs

    def _outputs(self, X: Array) -> Array:
        """What the network outputs: the logits (identity), or exp of them for poisson."""
        logits = self._logits(X)
        return self.model_._xp.exp(logits) if self._loss == "poisson" else logits

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = self.loss == "poisson"  # counts: scikit-learn's checks draw y >= 0
        return tags

    def to_onnx(self, path: str | PathLike[str]) -> str | PathLike[str]:
        """Write the fitted network to `path` as an ONNX file (opset 21); return `path`. Its output
        ``predictions`` equals `predict` (see `mlp.MLP.to_onnx`, `mlp.onnx`)."""
        from sklearn.utils.validation import check_is_fitted

        from ..onnx import export

        check_is_fitted(self)
        return export(self.model_, path)
