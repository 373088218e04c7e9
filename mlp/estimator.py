"""`MLPClassifier`: the multilayer perceptron as a scikit-learn estimator.

scikit-learn is an optional extra (`pip install "mlp-from-scratch[sklearn]"`): importing `mlp` never imports it;
this module does, and is only imported when the estimator is used (`mlp.MLPClassifier` or
`from mlp.estimator import MLPClassifier`).

A thin layer over the core: scikit-learn's utilities validate X and y, the labels (strings, {3, 7},
negative integers, ...) are mapped here to class indices 0..K-1, and an `mlp.training.Trainer` does
the epochs, so `partial_fit` and `warm_start` continue the same optimizer state. With an integer
`random_state` the fit is the same computation as `mlp.fit(..., seed=random_state)`.

Arrays follow scikit-learn's array API convention: with `sklearn.set_config(array_api_dispatch=True)`
a CuPy or array-api-strict X keeps its namespace and device (parameters, `predict_proba`, `predict`
and numeric `classes_` live there; string labels stay NumPy); without it X becomes a NumPy array.
"""
from __future__ import annotations

import copy
import math
import numbers

import numpy as np

try:
    import sklearn
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as error:  # sklearn missing, or older than 1.6 (no validate_data / __sklearn_tags__)
    found = getattr(globals().get("sklearn"), "__version__", None)
    reason = (f"scikit-learn {found} is too old; upgrade it with: pip install -U" if found
              else "scikit-learn is not installed; install it with: pip install")
    raise ImportError(f'mlp.MLPClassifier needs scikit-learn >= 1.6, but {reason} "mlp-from-scratch[sklearn]"') from error

from . import options as _options
from ._array_api import dtype_name, float_dtype, from_host, get_namespace, is_array_api_obj, namespace_name, to_numpy
from ._validation import check_positive_int, check_rate
from .activations import get_activation
from .engines import make_trainer
from .initializers import default_init, initial_parameters
from .loop import Best, Stopping, run_epochs
from .losses import get_loss, log_softmax, output_probabilities
from .model import MLP
from .options import check_batch_size, check_hidden_sizes
from .schedules import make_schedule
from .training import build_optimizer

__all__ = ["MLPClassifier"]


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """Multilayer perceptron classifier (softmax output) with the scikit-learn estimator API.

    Parameters
    ----------
    hidden_sizes : tuple of int, default=(100,)
        Widths of the hidden layers (scikit-learn's `hidden_layer_sizes`); () is a linear softmax model.
    activation : {"relu", "leaky_relu", "tanh", "sigmoid", "identity"}, default="relu"
    loss : {"cross_entropy", "mse"}, default="cross_entropy"
        Softmax + cross-entropy, or sigmoid outputs + mean squared error.
    init : str, default="auto"
        Weight initialiser: "auto" is He for the ReLU family, Glorot otherwise (see `mlp.initializers`).
    epochs : int, default=200
        Most passes over the data per `fit` (scikit-learn's `max_iter`); training stops earlier when the
        monitored loss stops improving (`tol`, `n_iter_no_change`).
    batch_size : int, "full" or None, default=200
        Mini-batch size, capped at the number of samples (scikit-learn's "auto" is min(200, n));
        "full" or None gives full-batch gradient descent.
    optimizer : {"adam", "adamw", "sgd", "momentum", "nesterov", "rmsprop"} or an `mlp.optimizers`
        instance, default="adam"
    learning_rate : float or None, default=None
        Base learning rate; None takes the optimizer's default (1e-3 for Adam, 0.1 for SGD).
    momentum : float or None, default=None
        For "momentum" / "nesterov" (None: 0.9).
    weight_decay : float or None, default=None
        L2 penalty (lambda/2)*||W||^2 on the weights, decoupled for "adamw". None: 0.01 for "adamw",
        else 0.
    dropout : float, default=0.0
        Probability of dropping a hidden unit while training.
    clip_value, clip_norm : float or None, default=None
        Clip the gradients elementwise, then by their global norm.
    schedule : {"constant", "step", "exponential", "cosine", "plateau"} or an `mlp.schedules`
        instance, default="constant"
        Learning-rate schedule over the `epochs` of one `fit` (a warm-started `fit` restarts it;
        `partial_fit` continues it, so use "constant" or "plateau" there).
    early_stopping : bool, default=False
        Hold out `validation_fraction` of the data, stop when the validation loss has not improved by
        `tol` for `n_iter_no_change` epochs, and keep the weights of the best epoch.
    validation_fraction : float, default=0.1
        Share of the samples held out when `early_stopping` (at least one sample each side).
    n_iter_no_change : int or None, default=10
        Epochs without an improvement of at least `tol` before stopping; the monitored loss is the
        validation loss with `early_stopping`, else the training loss. None trains all `epochs`.
    tol : float, default=1e-4
        Smallest decrease of the monitored loss that counts as an improvement.
    shuffle : bool, default=True
        Reshuffle the samples every epoch.
    warm_start : bool, default=False
        `fit` continues from the previous weights and optimizer state (same features and classes).
    dtype : {None, "float32", "float64"}, default=None
        Precision of the parameters and arithmetic. None follows X as scikit-learn does: float32 X
        trains in float32, anything else in float64.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the shuffling, the dropout masks and the validation split; an int
        gives the same numbers as `mlp.fit(..., seed=random_state)`.
    verbose : int, default=0
        0 silent, 1 a line per epoch, N a line every N epochs.

    Attributes
    ----------
    classes_ : array of shape (n_classes,)
        The labels, sorted; in X's namespace and device when numeric, NumPy otherwise (strings).
    n_features_in_, feature_names_in_ : as in scikit-learn.
    model_ : mlp.MLP
        The trained network (parameters in X's namespace and on its device).
    coefs_, intercepts_ : lists of arrays, the weights W (fan_in, fan_out) and biases b per layer.
    loss_curve_ : list of float
        Mean training loss of each epoch (with the L2 term and dropout, as optimised); warm starts and
        `partial_fit` append to it.
    validation_loss_curve_, validation_scores_ : list of float or None
        Validation loss and accuracy per epoch with `early_stopping`, else None.
    best_loss_ : float
        Best monitored loss of the last `fit` (validation with `early_stopping`, else training).
    best_validation_score_ : float or None
        Validation accuracy at the best epoch with `early_stopping`.
    n_iter_ : int
        Epochs run in all (warm starts and `partial_fit` calls add up).
    """

    def __init__(
        self,
        hidden_sizes=(100,),
        activation="relu",
        loss="cross_entropy",
        init="auto",
        epochs=200,
        batch_size=200,
        optimizer="adam",
        learning_rate=None,
        momentum=None,
        weight_decay=None,
        dropout=0.0,
        clip_value=None,
        clip_norm=None,
        schedule="constant",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        shuffle=True,
        warm_start=False,
        dtype=None,
        random_state=None,
        verbose=0,
        engine="auto",
        n_threads=None,
    ):
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.loss = loss
        self.init = init
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.clip_value = clip_value
        self.clip_norm = clip_norm
        self.schedule = schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.shuffle = shuffle
        self.warm_start = warm_start
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose
        self.engine = engine
        self.n_threads = n_threads

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        tags.classifier_tags.multi_label = False
        tags.target_tags.single_output = True
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags

    # ---- training ---------------------------------------------------------------------------
    def fit(self, X, y):
        """Train on (X, y) for up to `epochs` epochs; returns self.

        X: (n_samples, n_features) numbers. y: (n_samples,) labels of any kind (ints, strings, ...).
        With `warm_start` and a fitted model, training continues from its weights and optimizer state.
        """
        settings = self._check_settings()
        warm = bool(self.warm_start) and hasattr(self, "model_")
        X, y, xp, device = self._validate_X_y(X, y, "fit", reset=not warm, dtype=settings["dtype"])
        if warm:
            y_index = self._encode(y, xp=xp, device=device)
            self._continue_trainer(X, settings)
        else:
            classes, y_index = _fit_labels(y, xp=xp, device=device)
            self._initialise(X, classes, settings, xp=xp, device=device)

        X_val = y_val = None
        if self.early_stopping:
            X, y_index, X_val, y_val = self._split_validation(X, y_index, settings, xp=xp, device=device)
        self._run_epochs(X, y_index, X_val, y_val, settings, xp=xp)
        return self

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y), continuing the same optimizer state; returns self.

        `classes` (all the labels that will ever be seen) is required on the first call.
        `early_stopping` and `n_iter_no_change` do not apply: the caller decides when to stop.
        """
        first = not hasattr(self, "model_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit (all the labels y can hold)")
        settings = self._check_settings()
        X, y, xp, device = self._validate_X_y(X, y, "partial_fit", reset=first, dtype=settings["dtype"])
        if first:
            classes = _sorted_classes(classes, xp=xp, device=device)
            self._initialise(X, classes, settings, xp=xp, device=device)
        elif classes is not None and not _same_classes(_sorted_classes(classes, xp=xp, device=device), self.classes_):
            raise ValueError(
                f"classes={_describe(classes)} differs from the classes of the previous fit {_describe(self.classes_)}"
            )
        y_index = self._encode(y, xp=xp, device=device)

        def record(logs, best):
            self.loss_curve_.append(logs["loss"])
            self.n_iter_ += 1

        trainer = self._trainer
        run_epochs(trainer, X, y_index, until_epoch=trainer.epoch + 1, on_epoch=record,
                   verbose=settings["verbose"], n_threads=settings["n_threads"])
        return self

    # ---- prediction -------------------------------------------------------------------------
    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes), columns in the order of `classes_`, in X's
        namespace and on its device."""
        X = self._validate_X(X, "predict_proba")
        return self.model_.predict_proba(X)

    def predict_log_proba(self, X):
        """Log of `predict_proba`, computed from the logits (finite where the probability underflows)."""
        X = self._validate_X(X, "predict_log_proba")
        model = self.model_
        logits = model.decision_function(X)
        if model.loss == "cross_entropy":
            return log_softmax(logits, xp=model._xp)
        return model._xp.log(output_probabilities(logits, model.loss, xp=model._xp))

    def predict(self, X):
        """Predicted labels (n_samples,), values of `classes_`."""
        X = self._validate_X(X, "predict")
        model = self.model_
        xp = model._xp
        indices = xp.argmax(model.decision_function(X), axis=1)
        if isinstance(self.classes_, np.ndarray) and not isinstance(indices, np.ndarray):
            # String (or other host-only) labels: the indices come to the host, the labels cannot leave it.
            return self.classes_[to_numpy(indices)]
        return xp.take(self.classes_, indices)

    # ---- fitted views -----------------------------------------------------------------------
    @property
    def coefs_(self):
        check_is_fitted(self)
        return [W for W, _ in self.model_.params]

    @property
    def intercepts_(self):
        check_is_fitted(self)
        return [b for _, b in self.model_.params]

    # ---- helpers ----------------------------------------------------------------------------
    def _check_settings(self):
        """Validate the hyper-parameters (at fit time, as scikit-learn requires) into a dict."""
        get_activation(self.activation)
        get_loss(self.loss)
        if self.dtype not in (None, "float32", "float64"):
            raise ValueError(f"dtype must be None, 'float32' or 'float64', got {self.dtype!r}")
        spec = self.optimizer if isinstance(self.optimizer, str) else copy.deepcopy(self.optimizer)
        optimizer, learning_rate, weight_decay, l2 = build_optimizer(
            spec, learning_rate=self.learning_rate, momentum=self.momentum, weight_decay=self.weight_decay
        )
        for name in ("clip_value", "clip_norm"):
            if getattr(self, name) is not None:
                check_rate(getattr(self, name), name, low=0.0, low_inclusive=False)
        n_iter_no_change = self.n_iter_no_change
        if n_iter_no_change is not None:
            n_iter_no_change = check_positive_int(n_iter_no_change, "n_iter_no_change")
        verbose = self.verbose
        verbose = check_positive_int(int(verbose) if isinstance(verbose, bool) else verbose, "verbose", allow_zero=True)
        if not isinstance(self.early_stopping, (bool, np.bool_)):
            raise ValueError(f"early_stopping must be True or False, got {self.early_stopping!r}")
        settings = dict(
            hidden_sizes=check_hidden_sizes(self.hidden_sizes),
            epochs=check_positive_int(self.epochs, "epochs"),
            batch_size=check_batch_size(self.batch_size),
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            optimizer=optimizer,
            l2=l2,
            dropout=check_rate(self.dropout, "dropout", high=1.0),
            validation_fraction=check_rate(self.validation_fraction, "validation_fraction", low=0.0,
                                           high=1.0, low_inclusive=False),
            n_iter_no_change=n_iter_no_change,
            tol=check_rate(self.tol, "tol"),
            verbose=verbose,
            dtype=self.dtype,
            n_threads=_options.OPTIONS["n_threads"].validate(self.n_threads),
        )
        settings["init"] = default_init(self.activation) if self.init == "auto" else self.init
        return settings

    def _new_trainer(self, model, X, optimizer, settings, rng):
        schedule = make_schedule(self.schedule if isinstance(self.schedule, (str, type(None)))
                                 else copy.deepcopy(self.schedule))
        return make_trainer(
            model, X, engine=self.engine, optimizer=optimizer, learning_rate=settings["learning_rate"], schedule=schedule,
            epochs=settings["epochs"], batch_size=settings["batch_size"], dropout=settings["dropout"],
            clip_value=self.clip_value, clip_norm=self.clip_norm, shuffle=bool(self.shuffle), rng=rng,
        )

    def _initialise(self, X, classes, settings, *, xp, device):
        """Fresh weights, optimizer state and history (fit without warm start, first partial_fit).
        Random numbers come from one Generator in `mlp.fit`'s order: the initial weights, then each
        epoch's shuffle and dropout masks (the early-stopping split comes after the weights)."""
        rng = _generator(self.random_state)
        sizes = [X.shape[1], *settings["hidden_sizes"], int(classes.shape[0])]
        params = [
            (from_host(W, xp=xp, device=device, dtype=X.dtype), from_host(b, xp=xp, device=device, dtype=X.dtype))
            for W, b in initial_parameters(sizes, settings["init"], rng)
        ]
        self.classes_ = classes
        self.model_ = MLP(params, activation=self.activation, loss=self.loss, classes=classes, l2=settings["l2"])
        self._trainer = self._new_trainer(self.model_, X, settings["optimizer"], settings, rng)
        self.loss_curve_ = []
        self.validation_loss_curve_ = [] if self.early_stopping else None
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_loss_ = math.inf
        self.best_validation_score_ = None
        self.n_iter_ = 0

    def _continue_trainer(self, X, settings):
        """Warm start: same weights, optimizer state, step count and random stream; the schedule
        starts over."""
        old = self._trainer
        trainer = self._new_trainer(self.model_, X, old.optimizer, settings, old.rng)
        trainer.restore(old.snapshot(), schedule=False)
        self._trainer = trainer
        if self.early_stopping and self.validation_loss_curve_ is None:
            self.validation_loss_curve_, self.validation_scores_ = [], []

    def _split_validation(self, X, y_index, settings, *, xp, device):
        n = X.shape[0]
        n_val = math.ceil(settings["validation_fraction"] * n)
        if n - n_val < 1:
            raise ValueError(
                f"early_stopping with validation_fraction={self.validation_fraction} holds out {n_val} of "
                f"n_samples={n}, which leaves no training sample; pass more samples or early_stopping=False"
            )
        order = from_host(self._trainer.rng.permutation(n), xp=xp, device=device)
        X_val, y_val = xp.take(X, order[:n_val], axis=0), xp.take(y_index, order[:n_val])
        return xp.take(X, order[n_val:], axis=0), xp.take(y_index, order[n_val:]), X_val, y_val

    def _run_epochs(self, X, y_index, X_val, y_val, settings, *, xp):
        """Up to `epochs` more epochs through the library's epoch loop; the curves and counters of
        scikit-learn's estimators are kept from its logs."""
        trainer, has_validation = self._trainer, X_val is not None
        best_score = [None]

        def record(logs, best):
            self.loss_curve_.append(logs["loss"])
            self.n_iter_ += 1
            if has_validation:
                self.validation_loss_curve_.append(logs["val_loss"])
                self.validation_scores_.append(logs["val_accuracy"])
                if best.epoch == trainer.epoch - 1:
                    best_score[0] = logs["val_accuracy"]

        stopping = Stopping(patience=settings["n_iter_no_change"], min_delta=settings["tol"],
                            restore_best=has_validation)
        best = run_epochs(trainer, X, y_index, until_epoch=trainer.epoch + settings["epochs"],
                          validation=(X_val, y_val) if has_validation else None, stopping=stopping, best=Best(),
                          on_epoch=record, verbose=settings["verbose"], n_threads=settings["n_threads"])
        self.best_loss_ = best.monitored
        self.best_validation_score_ = best_score[0]

    def _input_namespace(self, X):
        """X's namespace when scikit-learn dispatches on the array API, else NumPy (X becomes NumPy)."""
        if sklearn.get_config()["array_api_dispatch"] and is_array_api_obj(X):
            return get_namespace(X)[0]
        return get_namespace(np.empty(0))[0]

    def _validate_X_y(self, X, y, method, *, reset, dtype):
        """validate_data for fit/partial_fit; returns (X in the model's float dtype, y, xp, device).
        With `reset` (a new model) the dtype is `dtype`, or follows X when None; else the model's."""
        xp = self._input_namespace(X)
        if reset:
            wanted = [xp.float64, xp.float32] if dtype is None else float_dtype(dtype, xp=xp)
        else:
            wanted = float_dtype(self.model_.dtype, xp=xp)
        X, y = validate_data(self, X, y, reset=reset, dtype=wanted)
        check_classification_targets(y)
        xp, device = get_namespace(X)
        if not reset:
            self._check_same_namespace(xp, device, method)
        return X, y, xp, device

    def _validate_X(self, X, method):
        check_is_fitted(self)
        xp = self._input_namespace(X)
        X = validate_data(self, X, reset=False, dtype=float_dtype(self.model_.dtype, xp=xp))
        self._check_same_namespace(*get_namespace(X), method)
        return X

    def _check_same_namespace(self, xp, device, method):
        model = self.model_
        if namespace_name(xp) == namespace_name(model._xp) and device == model.device:
            return
        raise ValueError(
            f"Inputs passed to {type(self).__name__}.{method}() must use the same namespace and the same "
            f"device as those passed to fit(): the model lives in {namespace_name(model._xp)} on "
            f"{model.device!r}, X in {namespace_name(xp)} on {device!r}. Move X there first (with array "
            "API dispatch on, pass arrays of the namespace used in fit)"
        )

    def _encode(self, y, *, xp, device):
        """Labels of a fitted model -> class indices (int64, X's namespace and device)."""
        return _labels_to_indices(y, self.classes_, xp=xp, device=device)


# ---- labels --------------------------------------------------------------------------------------
def _is_numeric(dtype):
    name = dtype_name(dtype)
    return name.startswith(("int", "uint", "float"))


def _follow_X(y, *, xp, device):
    """y in X's namespace and on its device ("everything follows X"). NumPy labels are moved once;
    labels in another namespace or on another device go through the host (labels only, once)."""
    if isinstance(y, np.ndarray):
        return from_host(y, xp=xp, device=device)
    y_xp, y_device = get_namespace(y)
    if namespace_name(y_xp) == namespace_name(xp) and y_device == device:
        return y
    return from_host(to_numpy(y), xp=xp, device=device)


def _host_labels(y):
    return y if isinstance(y, np.ndarray) else to_numpy(y)


def _fit_labels(y, *, xp, device):
    """Sorted classes and int64 class indices of y (both in X's namespace and on its device when the
    labels are numbers; classes stay a NumPy array for strings and other host-only labels)."""
    if _is_numeric(y.dtype):
        y = _follow_X(y, xp=xp, device=device)
        classes = xp.unique_values(y)
        return classes, xp.astype(xp.searchsorted(classes, y), xp.int64)
    classes, indices = np.unique(_host_labels(y), return_inverse=True)
    return classes, from_host(indices.reshape(-1).astype(np.int64), xp=xp, device=device)


def _sorted_classes(classes, *, xp, device):
    """partial_fit's `classes` argument, deduplicated and sorted, placed like `_fit_labels` places them."""
    if is_array_api_obj(classes) and not isinstance(classes, np.ndarray):
        classes = to_numpy(classes)
    classes = np.unique(np.asarray(classes))
    if classes.ndim != 1 or classes.shape[0] == 0:
        raise ValueError(f"classes must be a non-empty 1-D list of labels, got {classes!r}")
    if _is_numeric(classes.dtype):
        return from_host(classes, xp=xp, device=device)
    return classes


def _labels_to_indices(y, classes, *, xp, device):
    """Index of each label of y in the sorted `classes` (int64, X's namespace and device); a
    ValueError names the first unknown label."""
    if _is_numeric(classes.dtype) and _is_numeric(y.dtype):
        # Numeric classes live with X: the lookup stays on the device.
        y = _follow_X(y, xp=xp, device=device)
        if dtype_name(classes.dtype).startswith("float") or not dtype_name(y.dtype).startswith("float"):
            y = xp.astype(y, classes.dtype)
        elif not bool(xp.all(y == xp.round(y))):
            raise ValueError(
                f"y holds labels the model was not trained on, such as non-integers (it knows {_describe(classes)})"
            )
        else:
            y = xp.astype(y, classes.dtype)
        indices = xp.clip(xp.searchsorted(classes, y), 0, classes.shape[0] - 1)
        known = xp.take(classes, indices) == y
        if not bool(xp.all(known)):
            first = to_numpy(y)[~to_numpy(known)][0]  # the error path only reads back
            raise ValueError(
                f"y holds labels the model was not trained on, such as {first.item()!r} "
                f"(it knows {_describe(classes)})"
            )
        return xp.astype(indices, xp.int64)
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


def _same_classes(a, b):
    a, b = _host_labels(a), _host_labels(b)
    return a.shape == b.shape and bool(np.all(a == b))


def _describe(classes):
    values = _host_labels(classes) if is_array_api_obj(classes) else np.asarray(classes)
    values = values.tolist()
    return "{" + ", ".join(map(repr, values[:20])) + (", ..." if len(values) > 20 else "") + "}"


# ---- randomness, pickling, printing --------------------------------------------------------------
def _generator(random_state):
    """A NumPy Generator: an int seeds it directly (as `mlp.fit(seed=...)` does); None or a
    RandomState instance draw a seed, following scikit-learn's `random_state` convention."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return np.random.default_rng(int(random_state))
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    return np.random.default_rng(seed)
