"""`MLPClassifier`: scikit-learn's multilayer-perceptron classifier, on this library's engines.

The output layer is scikit-learn's: softmax for three classes or more, one logistic output for two
classes, one logistic output per label for multilabel targets (y an indicator matrix). Labels of any
kind (strings, {3, 7}, negative integers, booleans) map to class indices here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, column_or_1d

from .._array_api import (
    Array,
    Device,
    DType,
    Namespace,
    Params,
    dtype_name,
    from_host,
    get_namespace,
    index_dtype,
    is_array_api_obj,
    to_numpy,
)
from ..losses import output_probabilities
from ..model import MLP
from ..model_file import save_model_file
from ..optimizers import Optimizer
from ..schedules import Schedule
from .base import BaseMLP, follow_X, is_numeric

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["MLPClassifier"]


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multilayer perceptron classifier: scikit-learn's `MLPClassifier`, same parameters and attributes.

    The Parameters are scikit-learn's, with the same meanings and defaults; the Other Parameters are
    this library's extras.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(100,)
        Widths of the hidden layers; () is a linear model.
    activation : {"identity", "logistic", "tanh", "relu"}, default="relu"
        Also this library's "leaky_relu" ("sigmoid" is "logistic").
    solver : {"lbfgs", "sgd", "adam"}, default="adam"
        "sgd" is momentum SGD (`momentum`, `nesterovs_momentum`); "lbfgs" SciPy's L-BFGS-B on the whole
        set. Also this library's "adamw", "rmsprop", "momentum", "nesterov", or an `mlp.optimizers`
        instance.
    alpha : float, default=0.0001
        L2 penalty, scaled as scikit-learn scales it: (alpha / 2) ||W||^2 / rows of the step. With
        solver="adamw", the decoupled weight decay.
    batch_size : int or "auto", default="auto"
        min(200, n_samples) for "auto"; clipped to n_samples (with a warning). Also "full".
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        The schedule of solver="sgd" (the others ignore these three, as in scikit-learn). Also this
        library's "step", "exponential", "cosine", "plateau" (any solver) or an `mlp.schedules` instance.
    learning_rate_init : float, default=0.001
    power_t : float, default=0.5
        Exponent of "invscaling".
    max_iter : int, default=200
        Most epochs (stochastic solvers) or iterations (lbfgs).
    shuffle : bool, default=True
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the shuffling, the dropout masks and the validation split; an int gives the
        same numbers as `mlp.fit(..., seed=random_state)`.
    tol : float, default=1e-4
    verbose : bool or int, default=False
        scikit-learn's lines: `Iteration N, loss = ...` every epoch, `Validation score: ...` with early
        stopping, and why training stopped.
    warm_start : bool, default=False
        `fit` starts from the previous weights. The parameters that shape the network
        (hidden_layer_sizes, activation, loss, dtype) must be those of the fit that built it: a changed
        one raises a ValueError naming it (scikit-learn keeps the old network silently); set
        warm_start=False to build a new network. `partial_fit` refuses them the same way.
    momentum : float, default=0.9
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
        Hold out `validation_fraction` of the data, stop when its accuracy has not improved by `tol` for
        more than `n_iter_no_change` epochs, keep the weights of the best one.
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's.
    n_iter_no_change : int or np.inf, default=10
        np.inf: never stop early.
    max_fun : int, default=15000
        Most loss evaluations of lbfgs.

    Other Parameters
    ----------------
    loss : {"cross_entropy", "mse"}, default="cross_entropy"
        "mse": sigmoid outputs with squared error, one per class.
    init : str, default="auto"
        "auto" is scikit-learn's initialisation (weights and biases uniform in +-sqrt(6 / (fan_in +
        fan_out)), +-sqrt(2 / ...) for "logistic"); or a name of `mlp.initializers` (biases zero).
    dropout : float, default=0.0
        Probability of dropping a hidden unit while training.
    batch_norm : {None, "before", "after"}, default=None
        Batch normalisation of every hidden layer, before or after its activation (not with
        solver="lbfgs"); predictions use the running statistics.
    batch_norm_momentum : float, default=0.1
        Momentum of the running statistics: running = (1 - m) * running + m * batch statistic.
    clip_value, clip_norm : float or None, default=None
        Clip the gradients elementwise, then by their global norm.
    dtype : {None, "float32", "float64"}, default=None
        None follows X as scikit-learn does: float32 X trains in float32, anything else in float64.
    engine : {"auto", "numba", "xp"}, default="auto"
        "auto": the fused Numba kernels for NumPy input when installed, else the array-API path.
    n_threads : int or None, default=None
        BLAS threads while training (None: chosen per epoch from the idle cores).
    deterministic : bool, default=False
        Fix the BLAS threads for the whole fit (n_threads, or 1 when None), so that the same
        random_state gives bit-identical weights on the same machine.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, {label: weight}, or "balanced" (n_samples / (n_classes * count of the
        class)), as scikit-learn's other classifiers take it: each row's loss is weighed by its class's
        weight times its `sample_weight`. "balanced" is refused by `partial_fit` (as by
        SGDClassifier's): pass the dict `compute_class_weight` gives instead.
    comm : mpi4py communicator or None, default=None
        Under `mpiexec -n N`, e.g. ``MPI.COMM_WORLD``: `fit` and `partial_fit` train data-parallel as
        `mlp.fit(..., comm=)` does, every rank passing the same X, y and parameters, each training on
        its part of every batch. Every rank ends with the same fitted weights, so any rank can
        predict; rank 0 alone prints. A rank that stops responding ends the job after
        $MLP_MPI_TIMEOUT seconds (600 by default). Not solver="lbfgs". `clone` shares the
        communicator (it is not copied) and pickling leaves it out (None).

    Attributes
    ----------
    classes_, n_features_in_, feature_names_in_, coefs_, intercepts_, loss_, best_loss_, loss_curve_,
    validation_scores_, best_validation_score_, n_iter_, t_, n_layers_, n_outputs_, out_activation_:
    as scikit-learn's. model_ : mlp.MLP, the trained network (in X's namespace and on its device);
    `model_.save(path)` writes a file whose `mlp.load(path).predict` gives the same labels as `predict`
    (integer labels: the file format stores no others, and refuses strings with a ValueError).

    Raises
    ------
    MemoryLimitError (a ValueError)
        From `fit` and `partial_fit` before anything is allocated, when the network, a batch and the
        optimizer's buffers cannot fit in the memory available (or in MLP_MEMORY_LIMIT bytes): the
        same check and message as `mlp.fit`.
    """

    def __init__(
        self,
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
        loss: str = "cross_entropy",
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
        class_weight: dict[Any, float] | str | None = None,
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
        self.class_weight = class_weight
        self.comm = comm

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    @classmethod
    def _is_classifier(cls) -> bool:
        return True

    # ---- training -------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Self:
        """Fit the model to X (n_samples, n_features; dense or SciPy sparse CSR/CSC) and y: labels of
        any kind (n_samples,), or a 0/1 indicator matrix (n_samples, n_labels) for multilabel
        classification. `sample_weight` (n_samples,) weighs each row's loss (times `class_weight`'s
        weight of its class). Returns self."""
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    @available_if(BaseMLP._check_solver)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None) -> Self:
        """One epoch over (X, y), continuing the same optimizer state; returns self.

        `classes` (all the labels y will ever hold) is required on the first call (not for a multilabel
        indicator y). `sample_weight` as in `fit`. The caller decides when to stop."""
        if not hasattr(self, "model_") and classes is None and not _is_indicator(y):
            raise ValueError("classes must be passed on the first call to partial_fit.")  # scikit-learn's
        return self._fit(X, y, incremental=True, classes=classes, sample_weight=sample_weight)

    def _sample_weights(
        self, y: Any, sample_weight: Any, *, n_samples: int, incremental: bool
    ) -> np.ndarray | None:
        """`sample_weight` times `class_weight`'s weight of each row's class, as scikit-learn's
        classifiers compose them (`compute_sample_weight`); None where all are equal."""
        if self.class_weight is None:
            return super()._sample_weights(y, sample_weight, n_samples=n_samples, incremental=incremental)
        if self.class_weight == "balanced" and incremental:
            raise ValueError(  # scikit-learn's SGDClassifier's words
                "class_weight 'balanced' is not supported for partial_fit. In order to use 'balanced' "
                "weights, use compute_class_weight('balanced', classes=classes, y=y). In place of y you can "
                "use a large enough sample of the full training set target to properly estimate the class "
                "frequency distributions. Pass the resulting weights as the class_weight parameter."
            )
        if not (self.class_weight == "balanced" or isinstance(self.class_weight, dict)):
            raise ValueError(
                f"The 'class_weight' parameter of {type(self).__name__} must be a str among {{'balanced'}}, "
                f"an instance of 'dict' or None. Got {self.class_weight!r} instead."
            )
        labels = _host_labels(y) if is_array_api_obj(y) else np.asarray(y)
        weights = compute_sample_weight(self.class_weight, _labels_1d(labels))
        if sample_weight is not None:
            weights = weights * _check_sample_weight(
                to_numpy(sample_weight)
                if is_array_api_obj(sample_weight) and not isinstance(sample_weight, np.ndarray)
                else sample_weight,
                np.empty((n_samples, 0)),
                dtype=np.float64,
            )
        return super()._sample_weights(y, weights, n_samples=n_samples, incremental=incremental)

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
        """The targets the trainer sees: class indices (softmax, mse) or a 0/1 float matrix (logistic
        outputs: two classes, multilabel). On the first call the classes and the output layer are chosen."""
        if first:
            self._choose_outputs(y, classes, xp=xp, device=device)
        elif classes is not None and not self._multilabel:
            known = _sorted_classes(classes, xp=xp, device=device)
            if not _same_classes(known, self.classes_):
                raise ValueError(  # scikit-learn's words
                    f"`classes={classes!r}` is not the same as on last call to partial_fit, was: "
                    f"{_host_labels(self.classes_)!r}"
                )
        if self._multilabel:
            if not _is_indicator(y) or y.shape[1] != self.n_outputs_:
                raise ValueError(
                    f"y must be a 0/1 indicator matrix with {self.n_outputs_} columns, as in the first fit"
                )
            return xp.astype(follow_X(y, xp=xp, device=device), dtype)
        y = _labels_1d(y)
        if not first and not incremental:  # a warm-started fit must see the same classes, as in scikit-learn
            seen = _fit_classes(y, xp=xp, device=device)
            if not _same_classes(seen, self.classes_):
                raise ValueError(  # scikit-learn's words
                    "warm_start can only be used where `y` has the same classes as in the previous call to fit. "
                    f"Previously got {_host_labels(self.classes_)}, `y` has {_host_labels(seen)}"
                )
        elif incremental:  # partial_fit: labels outside classes_ are refused as scikit-learn refuses them
            seen = _host_labels(_fit_classes(y, xp=xp, device=device))
            known = _host_labels(self.classes_)
            try:
                unknown = np.setdiff1d(seen, known, assume_unique=True)
            except (TypeError, ValueError):  # labels that do not compare with the classes
                unknown = seen
            if len(unknown):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has {known}. 'y' has {seen}."
                )
        indices = _labels_to_indices(y, self.classes_, xp=xp, device=device)
        if self._loss == "binary_cross_entropy":  # two classes: one logistic output, the second class is 1
            return xp.reshape(xp.astype(indices == 1, dtype), (-1, 1))
        return indices

    def _choose_outputs(self, y: Any, classes: Array, *, xp: Namespace, device: Device) -> None:
        self._multilabel = _is_indicator(y)
        if self._multilabel:
            check_classification_targets(y)
            self.classes_ = from_host(np.arange(y.shape[1]), xp=xp, device=device)
            self._loss, self.n_outputs_, self.out_activation_ = (
                "binary_cross_entropy",
                int(y.shape[1]),
                "logistic",
            )
            return
        y = _labels_1d(y)
        check_classification_targets(y)
        if classes is not None:
            self.classes_ = _sorted_classes(classes, xp=xp, device=device)
        else:
            self.classes_ = _fit_classes(y, xp=xp, device=device)
        n_classes = int(self.classes_.shape[0])
        if self.loss == "cross_entropy" and n_classes == 2:
            self._loss, self.n_outputs_, self.out_activation_ = "binary_cross_entropy", 1, "logistic"
        else:
            self._loss, self.n_outputs_ = self.loss, n_classes
            self.out_activation_ = "softmax" if self.loss == "cross_entropy" else "logistic"

    def _new_model(
        self, params: Params, *, activation: str, xp: Namespace, device: Device, batch_norm: str | None = None
    ) -> MLP:
        """A `ClassifierModel` recording the labels (None for a multilabel target matrix). The network
        itself classifies into the integer labels, else the indices 0..K-1; with two classes it has one
        logistic output and no classes."""
        if self._loss == "binary_cross_entropy":
            classes = None
        elif dtype_name(self.classes_.dtype).startswith(("int", "uint")):
            classes = self.classes_
        else:
            classes = from_host(np.arange(self.n_outputs_), xp=xp, device=device)
        return ClassifierModel(
            params,
            activation=activation,
            loss=self._loss,
            classes=classes,
            labels=None if self._multilabel else self.classes_,
            batch_norm=batch_norm,
        )

    def _holdout_order(self, targets: Array, n_val: int) -> np.ndarray:
        """scikit-learn's stratified split (train_test_split(stratify=y)): the validation set keeps the
        class proportions. Two classes are always stratified, as in scikit-learn (with its errors when
        the split cannot hold each class); more classes where the split can hold each (scikit-learn
        splits them at random), else at random; multilabel targets at random, as in scikit-learn. The
        class indices come to the host for it, once per fit."""
        if self._multilabel:
            return super()._holdout_order(targets, n_val)
        strata: np.ndarray = to_numpy(targets).reshape(-1)
        if self.n_outputs_ == 1:  # as scikit-learn's (n, 1) boolean column, so that its errors name the same
            strata = strata.astype(bool).reshape(-1, 1)
        else:
            counts = np.bincount(strata.astype(np.int64))
            counts = counts[counts > 0]
            if counts.min() < 2 or min(n_val, strata.shape[0] - n_val) < counts.shape[0]:
                return super()._holdout_order(targets, n_val)
        seed = int(self._rng.integers(np.iinfo(np.int32).max))
        train, held_out = train_test_split(
            np.arange(strata.shape[0]), test_size=n_val, stratify=strata, random_state=seed
        )
        return np.concatenate([held_out, train])

    def _validation_score(self, X: Array, targets: Array, weights: Array | None = None) -> float:
        """Accuracy on held-out (X, encoded targets), weighted by `weights` (X's namespace, device and
        dtype) when given, as scikit-learn's early stopping watches it."""
        xp = self.model_._xp
        logits = self._logits(X)
        if self._loss == "binary_cross_entropy":
            right = xp.all(xp.astype(logits > 0, targets.dtype) == targets, axis=1)
        else:
            right = xp.argmax(logits, axis=1) == targets
        if weights is not None:
            return float(xp.sum(weights * xp.astype(right, weights.dtype))) / float(xp.sum(weights))
        return int(xp.sum(xp.astype(right, index_dtype(xp, self.model_.device)))) / X.shape[0]

    # ---- prediction -----------------------------------------------------------------------------
    def predict_proba(self, X: Any) -> Array:
        """Class probabilities (n_samples, n_classes), columns in the order of `classes_` (multilabel:
        the probability of each label), in X's namespace and on its device."""
        return self._proba(self._validate_X(X, "predict_proba"))

    def _proba(self, X: Array) -> Array:
        model, xp = self.model_, self.model_._xp
        if self._loss != "binary_cross_entropy":
            return model.predict_proba(X)
        p = output_probabilities(self._logits(X), "binary_cross_entropy", xp=xp)
        return p if self._multilabel else xp.concat([1.0 - p, p], axis=1)

    def predict_log_proba(self, X: Any) -> Array:
        """The log of `predict_proba`, as scikit-learn computes it (-inf where a probability is 0)."""
        proba = self._proba(self._validate_X(X, "predict_log_proba"))
        xp = self.model_._xp
        if isinstance(proba, np.ndarray):
            with np.errstate(divide="ignore"):
                return np.log(proba)
        return xp.log(proba)

    def predict(self, X: Any) -> Array:
        """Predicted labels (n_samples,), values of `classes_`; multilabel: a 0/1 indicator matrix."""
        X = self._validate_X(X, "predict")
        xp = self.model_._xp
        logits = self._logits(X)
        if self._multilabel:
            return xp.astype(logits > 0, index_dtype(xp, self.model_.device))
        if self._loss == "binary_cross_entropy":
            # sigmoid(z) > 0.5 exactly when z > 0
            indices = xp.astype(logits[:, 0] > 0, index_dtype(xp, self.model_.device))
        else:
            indices = xp.argmax(logits, axis=1)
        if isinstance(self.classes_, np.ndarray) and not isinstance(indices, np.ndarray):
            # String (or other host-only) labels: the indices come to the host, the labels cannot leave it.
            return self.classes_[to_numpy(indices)]
        return xp.take(self.classes_, indices)

    def to_onnx(self, path: str | os.PathLike[str]) -> str | os.PathLike[str]:
        """Write the fitted network to `path` as an ONNX file (opset 21); return `path`. Its outputs
        ``label`` and ``probabilities`` equal `predict` and `predict_proba`, with this estimator's
        `classes_` as the labels (strings too; see `mlp.MLP.to_onnx`, `mlp.onnx`)."""
        from sklearn.utils.validation import check_is_fitted

        from ..onnx import export

        check_is_fitted(self)
        return export(self.model_, path, labels=None if self._multilabel else self.classes_)


# ---- the model and its file ----------------------------------------------------------------------
class ClassifierModel(MLP):
    """`MLPClassifier.model_`: the network as trained, plus the estimator's `labels` (its `classes_`;
    None for multilabel), so that `save` writes a file whose `mlp.load(path).predict` gives the
    estimator's labels.

    The file stores a classifier's labels as integers: integer labels as they are, booleans as 0 and
    1, floats that are whole numbers as those. Other labels (strings, uint64 beyond int64) cannot be
    written: `save` raises a ValueError saying what to do rather than write a file that predicts
    indices. Two classes (one logistic output z) are written as the equivalent softmax over the
    logits (0, z): the same predictions and probabilities, in a file any reader of the format (the
    C++ port too) takes.
    """

    def __init__(self, params: Params, *, labels: Array, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.labels = labels

    def save(self, path: str | os.PathLike[str]) -> str | os.PathLike[str]:
        """Write the model to `path` (.npz, no pickle) atomically with the estimator's labels as its
        classes; `mlp.load(path).predict(X)` then equals `MLPClassifier.predict(X)`."""
        params, metadata = self.get_weights(), self.metadata()
        if self.labels is not None:
            metadata["classes"] = _file_classes(self.labels)
            if self.loss == "binary_cross_entropy":
                W, b = params[-1]
                params[-1] = (
                    np.concatenate([np.zeros_like(W), W], axis=1),
                    np.concatenate([np.zeros_like(b), b]),
                )
                metadata.update(loss="cross_entropy", n_outputs=2)
        return save_model_file(path, params, metadata, norms=self.get_norms())


def _file_classes(labels: Array) -> list[int]:
    """The labels as the integers a model file stores, or a ValueError when they are not integers."""
    values = _host_labels(labels)
    whole = values.dtype.kind in "biu" or (
        values.dtype.kind == "f" and bool(np.all(np.isfinite(values) & (values == np.round(values))))
    )
    stores = "integer class labels only"
    if whole:
        integers = [int(v) for v in values.tolist()]
        if all(-(2**63) <= v < 2**63 for v in integers):  # the format's int64
            return integers
        stores = "class labels as int64, from -2**63 to 2**63 - 1, and these are integers beyond that"
    raise ValueError(
        f"this classifier's labels {_describe(labels)} cannot be saved: an mlp model file stores {stores}. "
        "Fit on such labels (e.g. encode them with sklearn.preprocessing.LabelEncoder and map the "
        "predictions back with its inverse_transform), or keep the whole estimator with pickle or joblib"
    )


# ---- labels --------------------------------------------------------------------------------------
def _is_indicator(y: Any) -> bool:
    return (
        getattr(y, "ndim", np.ndim(y)) == 2 and y.shape[1] > 1 and type_of_target(y) == "multilabel-indicator"
    )


def _labels_1d(y: Any) -> Any:
    """A column vector becomes 1-D, with scikit-learn's DataConversionWarning."""
    if getattr(y, "ndim", 1) == 2 and y.shape[1] == 1:
        if isinstance(y, np.ndarray):
            return column_or_1d(y, warn=True)
        xp, _ = get_namespace(y)
        return xp.reshape(y, (-1,))
    return y


def _host_labels(y: Array) -> np.ndarray:
    return y if isinstance(y, np.ndarray) else to_numpy(y)


def _fit_classes(y: Array, *, xp: Namespace, device: Device) -> Array:
    """Sorted classes of y: in X's namespace and on its device when the labels are numbers; a NumPy
    array for strings and other host-only labels."""
    if is_numeric(y.dtype):
        return xp.unique_values(follow_X(y, xp=xp, device=device))
    return np.unique(_host_labels(y))


def _sorted_classes(classes: Any, *, xp: Namespace, device: Device) -> Array:
    """partial_fit's `classes` argument, deduplicated and sorted, placed like `_fit_classes` places them."""
    if is_array_api_obj(classes) and not isinstance(classes, np.ndarray):
        classes = to_numpy(classes)
    classes = np.unique(np.asarray(classes))
    if classes.ndim != 1 or classes.shape[0] == 0:
        raise ValueError(f"classes must be a non-empty 1-D list of labels, got {classes!r}")
    if is_numeric(classes.dtype):
        return from_host(classes, xp=xp, device=device)
    return classes


def _labels_to_indices(y: Array, classes: Array, *, xp: Namespace, device: Device) -> Array:
    """Index of each label of y in the sorted `classes` (`index_dtype`, X's namespace and device); a
    ValueError names the first unknown label."""
    if is_numeric(classes.dtype) and is_numeric(y.dtype):
        # Numeric classes live with X: the lookup stays on the device.
        y = follow_X(y, xp=xp, device=device)
        if (
            not dtype_name(classes.dtype).startswith("float")
            and dtype_name(y.dtype).startswith("float")
            and not bool(xp.all(y == xp.round(y)))
        ):
            raise ValueError(
                f"y holds labels the model was not trained on, such as non-integers (it knows {_describe(classes)})"
            )
        y = xp.astype(y, classes.dtype)
        indices = xp.clip(xp.searchsorted(classes, y), 0, classes.shape[0] - 1)
        known = xp.take(classes, indices) == y
        if not bool(xp.all(known)):
            first = to_numpy(y)[~to_numpy(known)][0]  # the error path only reads back
            raise ValueError(
                f"y holds labels the model was not trained on, such as {first.item()!r} "
                f"(it knows {_describe(classes)})"
            )
        return xp.astype(indices, index_dtype(xp, device))
    classes, y = _host_labels(classes), _host_labels(y)
    try:
        indices = np.clip(np.searchsorted(classes, y), 0, classes.shape[0] - 1)
        known = np.asarray(classes[indices] == y, dtype=bool)
    except TypeError:  # labels that do not compare with the classes (numbers against strings)
        indices, known = np.zeros(y.shape, dtype=np.int64), np.zeros(y.shape, dtype=bool)
    if not np.all(known):
        first = y[~known][0]
        raise ValueError(
            f"y holds labels the model was not trained on, such as {getattr(first, 'item', lambda: first)()!r} "
            f"(it knows {_describe(classes)})"
        )
    return from_host(indices.astype(np.int64), xp=xp, device=device)


def _same_classes(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = _host_labels(a), _host_labels(b)
    return a.shape == b.shape and bool(np.all(a == b))


def _describe(classes: Array) -> str:
    values = _host_labels(classes) if is_array_api_obj(classes) else np.asarray(classes)
    values = values.tolist()
    return "{" + ", ".join(map(repr, values[:20])) + (", ..." if len(values) > 20 else "") + "}"
