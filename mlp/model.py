"""The trained network: parameters in the namespace and on the device of the training data."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

import numpy as np

from . import _predict, layers
from ._array_api import (
    Array,
    Device,
    Namespace,
    Params,
    assign,
    dtype_name,
    from_host,
    get_namespace,
    index_dtype,
    namespace_name,
    resolve_namespace,
    row_chunks,
    to_numpy,
)
from ._memory import check_fits, prediction_chunk_rows
from ._validation import check_features, check_labels, check_targets
from ._version import __version__
from .layers import Norm, Norms
from .losses import OUTPUT_ACTIVATIONS, REGRESSION_LOSSES, output_probabilities, takes_class_indices
from .metrics import r2_score
from .model_file import load_model_file, save_model_file

__all__ = ["MLP", "load"]


class MLP:
    """A multilayer perceptron: `params` is a list of (W, b) per layer, W shaped (fan_in, fan_out).

    With batch normalisation (`batch_norm` "before" or "after" the activation of every hidden layer),
    `norms` holds one (gamma, beta, running_mean, running_var) tuple of (width,) arrays per hidden
    layer (gamma 1, beta 0, mean 0, var 1 when not given); without it `batch_norm` is None and `norms`
    empty. Predictions normalise with the running statistics.

    Made by `mlp.fit`; every method keeps results in the parameters' namespace and device, except
    `score` and `loss_and_gradients`, which return Python floats.

    A classifier (loss cross_entropy or mse) has `classes_`; a model trained on a target matrix
    (loss squared_error or poisson: regression; binary_cross_entropy: multilabel) has `classes_` None and
    `n_outputs` outputs.
    """

    best_epoch: int  # set by fit with early stopping: the 1-based epoch whose weights the model holds

    def __init__(
        self,
        params: Iterable[tuple[Array, Array]],
        *,
        activation: str,
        loss: str,
        classes: Array | None,
        l2: float = 0.0,
        history: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
        batch_norm: str | None = None,
        norms: Iterable[Norm] | None = None,
    ) -> None:
        self.params = [(W, b) for W, b in params]
        layers.hidden_steps(batch_norm)  # a ValueError naming the choices for anything else
        self.batch_norm = batch_norm
        self.activation = activation
        self.loss = loss
        self.classes_ = classes
        self.l2 = float(l2)
        self.history = history if history is not None else {}
        self.config = dict(config or {})
        self._xp, self.device = get_namespace(self.params[0][0])
        self.norms = self._check_norms(norms)

    def _check_norms(self, norms: Iterable[Norm] | None) -> Norms:
        """The norms for this model's hidden layers: checked, or the initial ones when None."""
        xp, widths = self._xp, self.hidden_sizes
        if self.batch_norm is None:
            if norms is not None and list(norms):
                raise ValueError(
                    "norms were given for a model without batch_norm; pass batch_norm='before' or 'after'"
                )
            return []
        if norms is None:
            dtype = self.params[0][0].dtype
            return layers.initial_norms(widths, xp=xp, dtype=dtype, device=self.device)
        checked = [tuple(norm) for norm in norms]
        if len(checked) != len(widths) or any(len(norm) != 4 for norm in checked):
            raise ValueError(
                f"norms must hold one (gamma, beta, running_mean, running_var) per hidden layer, "
                f"{len(widths)} in all; got {len(checked)}"
            )
        for width, norm in zip(widths, checked, strict=True):
            if any(tuple(a.shape) != (width,) for a in norm):
                shapes = ", ".join(str(tuple(a.shape)) for a in norm)
                raise ValueError(
                    f"a hidden layer of width {width} needs norms shaped ({width},), got {shapes}"
                )
        return [cast("Norm", norm) for norm in checked]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_xp"]  # a namespace module cannot be pickled; it is found again from the arrays
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("batch_norm", None)  # pickled before batch normalisation existed
        state.setdefault("norms", [])
        self.__dict__.update(state)
        self._xp, self.device = get_namespace(self.params[0][0])

    # -- description -------------------------------------------------------------------------
    @property
    def layer_sizes(self) -> list[int]:
        return [self.params[0][0].shape[0]] + [W.shape[1] for W, _ in self.params]

    @property
    def hidden_sizes(self) -> list[int]:
        return self.layer_sizes[1:-1]

    @property
    def n_features_in_(self) -> int:
        return self.layer_sizes[0]

    @property
    def n_classes(self) -> int:
        return self.layer_sizes[-1]

    @property
    def n_outputs(self) -> int:
        return self.layer_sizes[-1]

    @property
    def is_regressor(self) -> bool:
        return self.loss in REGRESSION_LOSSES

    @property
    def dtype(self) -> str:
        return dtype_name(self.params[0][0].dtype)

    @property
    def n_parameters(self) -> int:
        dense = sum(W.shape[0] * W.shape[1] + b.shape[0] for W, b in self.params)
        return dense + sum(gamma.shape[0] + beta.shape[0] for gamma, beta, _, _ in self.norms)

    def __repr__(self) -> str:
        sizes = self.layer_sizes
        output = OUTPUT_ACTIVATIONS[self.loss]
        hidden = " ".join(
            "bn" if step == "norm" else self.activation for step in layers.hidden_steps(self.batch_norm)
        )
        parts = [str(sizes[0])] + [f"{h} {hidden}" for h in sizes[1:-1]] + [f"{sizes[-1]} {output}"]
        return (
            f"MLP({' -> '.join(parts)}; loss={self.loss}, {self.n_parameters:,} parameters, "
            f"{self.dtype}, {namespace_name(self._xp)} on {self.device})"
        )

    # -- inference -----------------------------------------------------------------------------
    def _check_X(self, X: Array) -> Array:
        X, _, _ = check_features(
            X, dtype=self.dtype, n_features=self.n_features_in_, xp=self._xp, device=self.device
        )
        return X

    def _checked_input(self, X: Array) -> tuple[Array, bool]:
        """(X checked as `_check_X` checks it, whether the NumPy prediction path takes it). A plain
        NumPy X of the model's dtype and width is only checked for NaN and infinity (one read); any
        other goes through `check_features`, which converts it or raises its message."""
        if self._lean_takes(X) and _predict.all_finite(X):
            return X, True
        X = self._check_X(X)
        return X, self._lean_takes(X)

    def _lean_takes(self, X: Array) -> bool:
        """Whether the NumPy prediction path takes X (`_predict.takes`) and this model's arrays (one
        dtype, `_predict.one_dtype`)."""
        return _predict.takes(self.params, X) and _predict.one_dtype(self.params, self.norms)

    def _lean_logits(self, X: np.ndarray) -> np.ndarray:
        """The logits of X by the NumPy prediction path (X one it `takes`): the generic path's bits."""
        return _predict.forward(
            self.params, X, self.activation, xp=self._xp, batch_norm=self.batch_norm, norms=self.norms
        )

    def _chunk_rows(self) -> int:
        """Rows per forward pass: as many as fit in about 256 MiB of activations for these layer widths
        (8192 for a small network; a handful for one with 10^6 classes)."""
        return prediction_chunk_rows(self.layer_sizes, self.dtype)

    def _forward_chunks(self, X: Array, lean: bool = False) -> Iterator[tuple[slice, Array]]:
        """(rows, logits) for consecutive chunks of the checked X; one chunk in memory at a time.
        lean: X is one `_predict.takes`, which gives the same logits with less work per call, in
        passes as large as memory allows (`_predict.chunk_rows`)."""
        if X.shape[0] == 1:
            chunks = [slice(0, 1)]
        else:
            size = _predict.chunk_rows(tuple(self.layer_sizes), X.dtype.name) if lean else self._chunk_rows()
            chunks = row_chunks(X.shape[0], size)
        for rows in chunks:
            if lean:
                yield rows, self._lean_logits(X[rows])
            else:
                yield rows, self._logits(X[rows, ...])

    def _concat(self, chunks: list[Array]) -> Array:
        return chunks[0] if len(chunks) == 1 else self._xp.concat(chunks, axis=0)

    def _logits(self, X: Array) -> Array:
        """The network's output for the checked X, batch normalisation with the running statistics."""
        return layers.forward(
            self.params, X, self.activation, xp=self._xp, batch_norm=self.batch_norm, norms=self.norms
        )[0]

    def _check_output_fits(self, n_rows: int, what: str) -> None:
        nbytes = n_rows * self.n_classes * np.dtype(self.dtype).itemsize
        check_fits(
            nbytes,
            f"{what} for {n_rows:,} rows and {self.n_classes:,} outputs",
            "pass fewer rows at a time, or use predict(), which keeps only the labels",
        )

    def decision_function(self, X: Array) -> Array:
        """Logits (n, n_classes). MemoryLimitError (a ValueError) when the result itself cannot fit."""
        X, lean = self._checked_input(X)
        self._check_output_fits(X.shape[0], "the logits")
        return self._concat([logits for _, logits in self._forward_chunks(X, lean)])

    def predict_proba(self, X: Array) -> Array:
        """Class probabilities (n, n_classes), columns in the order of `classes_` (binary_cross_entropy:
        the probability of each output; a regression model has none: ValueError)."""
        if self.is_regressor:
            raise ValueError(f"a regression model (loss={self.loss!r}) predicts values: use predict()")
        X, lean = self._checked_input(X)
        self._check_output_fits(X.shape[0], "the probabilities")
        xp = self._xp
        chunks = self._forward_chunks(X, lean)
        return self._concat([output_probabilities(logits, self.loss, xp=xp) for _, logits in chunks])

    def _predict_indices(self, X: Array, lean: bool = False) -> Array:
        if lean and X.shape[0] == 1:  # one chunk: no generator and list for the latency of one row
            return self._lean_logits(X).argmax(axis=1)
        if lean:  # NumPy's argmax, which the wrapper's calls
            return self._concat([logits.argmax(axis=1) for _, logits in self._forward_chunks(X, lean)])
        xp = self._xp
        return self._concat([xp.argmax(logits, axis=1) for _, logits in self._forward_chunks(X)])

    def predict(self, X: Array) -> Array:
        """Predicted labels (original label values), in X's namespace and on its device. A regression
        model returns its outputs ((n,) for one output, else (n, k); poisson: exp of them, the predicted
        means); a binary_cross_entropy model 0/1 rows (n, k) in the namespace's default integer
        dtype (int64; int32 on JAX without 64-bit types), where an output's probability is above
        0.5."""
        if self.classes_ is not None:
            X, lean = self._checked_input(X)
            if lean and type(self.classes_) is np.ndarray:
                return self.classes_.take(self._predict_indices(X, lean))
            return self._xp.take(self.classes_, self._predict_indices(X, lean))
        xp = self._xp
        values = self.decision_function(X)
        if self.loss == "binary_cross_entropy":
            return xp.astype(values > 0, index_dtype(xp, self.device))  # sigmoid(z) > 0.5 exactly when z > 0
        if self.loss == "poisson":
            values = xp.exp(values)  # the predicted means
        return values[:, 0] if values.shape[1] == 1 else values

    def score(self, X: Array, y: Array) -> float:
        """Accuracy on (X, y) as a Python float; for regression the coefficient of determination R^2
        (averaged over the outputs, as scikit-learn's r2_score); for binary_cross_entropy the share
        of rows whose every output is right."""
        X = self._check_X(X)
        xp = self._xp
        if self.classes_ is None:
            Y = check_targets(
                y, X.shape[0], xp=xp, device=self.device, dtype=self.dtype, n_outputs=self.n_outputs
            )
            predicted = self.predict(X)
            if self.is_regressor:
                return r2_score(Y, xp.reshape(predicted, Y.shape), xp=xp)
            rows_right = xp.all(xp.astype(predicted, Y.dtype) == Y, axis=1)
            return int(xp.sum(xp.astype(rows_right, index_dtype(xp, self.device)))) / X.shape[0]
        y_index, _ = check_labels(y, X.shape[0], xp=xp, device=self.device, classes=self.classes_)
        predicted = self._predict_indices(X, self._lean_takes(X))
        return int(xp.sum(xp.astype(predicted == y_index, index_dtype(xp, self.device)))) / X.shape[0]

    # -- gradients, for checking ----------------------------------------------------------------
    def loss_and_gradients(self, X: Array, y: Array, *, l2: float | None = None) -> tuple[float, Params]:
        """Mean loss (a Python float, including the L2 term) and the gradients [(dW, db), ...] of the
        loss with respect to `params`, on (X, y) as given: no dropout, no shuffling.

        With batch normalisation, the loss of a training step on X as one batch (the batch's own
        statistics; the running statistics for one row), and the gradients [(dgamma, dbeta), ...]
        of the norms follow the dense ones; the running statistics are left as they are."""
        X = self._check_X(X)
        if takes_class_indices(self.loss):
            targets, _ = check_labels(y, X.shape[0], xp=self._xp, device=self.device, classes=self.classes_)
        else:
            targets = check_targets(
                y,
                X.shape[0],
                xp=self._xp,
                device=self.device,
                dtype=self.dtype,
                n_outputs=self.n_outputs,
                non_negative=self.loss == "poisson",
            )
        value, grads, _ = layers.loss_and_gradients(
            self.params,
            X,
            targets,
            activation=self.activation,
            loss=self.loss,
            l2=self.l2 if l2 is None else l2,
            xp=self._xp,
            batch_norm=self.batch_norm,
            norms=self.norms,
            statistics=layers.BatchStatistics(X.shape[0]) if self.batch_norm else None,
        )
        return float(value), grads

    # -- files ---------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """The model's description as written into model files and checkpoints (JSON-able)."""
        return {
            "library_version": __version__,
            "hidden_sizes": self.hidden_sizes,
            "activation": self.activation,
            "loss": self.loss,
            "n_features": self.n_features_in_,
            # null for a model trained on a target matrix (regression, multilabel): n_outputs says its width
            "classes": None if self.classes_ is None else [int(c) for c in to_numpy(self.classes_).tolist()],
            "n_outputs": self.n_outputs,
            "dtype": self.dtype,
            "l2": self.l2,
            "batch_norm": self.batch_norm,
            "preprocessing": self.config.get("preprocessing"),  # None unless the trainer recorded it
            "config": self.config,
            "history": self.history,
        }

    def save(self, path: str | os.PathLike[str]) -> str | os.PathLike[str]:
        """Write the model to `path` (.npz, no pickle) atomically; `mlp.load(path)` reads it back."""
        return save_model_file(path, self.get_weights(), self.metadata(), norms=self.get_norms())

    def to_onnx(self, path: str | os.PathLike[str]) -> str | os.PathLike[str]:
        """Write the model to `path` as an ONNX file (opset 21), atomically; return `path`.

        The graph is this library's own forward pass run on ndonnx arrays. Input ``X`` (batch,
        n_features) in the model's dtype, the batch dimension dynamic; outputs ``label`` (as `predict`:
        the class labels, or 0/1 rows for binary_cross_entropy) and ``probabilities`` (as
        `predict_proba`), or for regression ``predictions`` (as `predict`). See `mlp.onnx`.

        Raises ImportError when ndonnx or onnx is missing (pip install "mlp-from-scratch[onnx]"),
        ValueError for a model ONNX cannot hold, OutputPathError for a folder, FIFO, other special or
        non-ONNX file at `path`.

        >>> model.to_onnx("model.onnx")  # doctest: +SKIP
        >>> import onnxruntime  # doctest: +SKIP
        >>> label, proba = onnxruntime.InferenceSession("model.onnx").run(None, {"X": X})  # doctest: +SKIP
        """
        from .onnx import export

        return export(self, path)

    def copy_params(self) -> Params:
        """A copy of the parameters, on the same device (for snapshots such as early stopping)."""
        xp = self._xp
        return [(xp.asarray(W, copy=True), xp.asarray(b, copy=True)) for W, b in self.params]

    def copy_norms(self) -> Norms:
        """A copy of the batch normalisations' arrays, on the same device (empty without)."""
        xp = self._xp
        return [tuple(xp.asarray(a, copy=True) for a in norm) for norm in self.norms]

    def get_norms(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """The batch normalisations' (gamma, beta, running_mean, running_var) as NumPy arrays on the
        host (an explicit copy; empty without batch normalisation)."""
        return [(to_numpy(g), to_numpy(b), to_numpy(m), to_numpy(v)) for g, b, m, v in self.norms]

    def set_norms(self, norms: Sequence[Norm]) -> None:
        """Set the batch normalisations' arrays to `norms`, arrays of the same shapes (the inverse of
        `get_norms`), written into the model's arrays where their library allows it."""
        if len(norms) != len(self.norms):
            raise ValueError(f"expected {len(self.norms)} batch normalisations, got {len(norms)}")
        checked = self._check_norms(norms)
        xp = self._xp
        self.norms = [
            cast("Norm", tuple(assign(old, new, xp=xp) for old, new in zip(current, given, strict=True)))
            for current, given in zip(self.norms, checked, strict=True)
        ]

    def set_weights(self, params: Sequence[tuple[Array, Array]], norms: Sequence[Norm] | None = None) -> None:
        """Set the parameters to `params`, arrays of the same shapes (the inverse of `get_weights`),
        and with `norms` the batch normalisations' arrays (`set_norms`). They are written into the
        arrays the model holds where their library allows it (NumPy, CuPy, PyTorch, array-api-strict:
        the arrays keep their identity, so a trainer's views into its flat buffer stay views);
        immutable arrays (JAX) are replaced by new ones."""
        if len(params) != len(self.params):
            raise ValueError(f"expected {len(self.params)} layers of parameters, got {len(params)}")
        for (W, b), (W_new, b_new) in zip(self.params, params, strict=True):
            if tuple(W_new.shape) != tuple(W.shape) or tuple(b_new.shape) != tuple(b.shape):
                raise ValueError(
                    f"parameter shapes {tuple(W_new.shape)}, {tuple(b_new.shape)} do not match the "
                    f"model's {tuple(W.shape)}, {tuple(b.shape)}"
                )
        xp = self._xp
        self.params = [
            (assign(W, W_new, xp=xp), assign(b, b_new, xp=xp))
            for (W, b), (W_new, b_new) in zip(self.params, params, strict=True)
        ]
        if norms is not None:
            self.set_norms(norms)

    def set_params(self, params: Sequence[tuple[Array, Array]]) -> None:
        """Deprecated alias of `set_weights` (scikit-learn's `set_params` sets hyper-parameters, not
        weights); removed in the next version."""
        message = "MLP.set_params is deprecated and will be removed; use MLP.set_weights"
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        self.set_weights(params)

    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Parameters as NumPy arrays on the host (an explicit copy)."""
        return [(to_numpy(W), to_numpy(b)) for W, b in self.params]


def load(path: str | os.PathLike[str], *, device: Device | None = None, xp: Namespace | None = None) -> MLP:
    """Read a model file written by `MLP.save` (or the C++ port).

    The parameters go to `device` ("cpu": NumPy, the default; "gpu", "cuda" or "cuda:N": CuPy), or to
    the namespace `xp` on `device`. Every malformed file raises `mlp.ModelFileError` (a ValueError)
    before anything large is allocated; a missing one raises FileNotFoundError.
    """
    xp, device = resolve_namespace(device, xp)  # an unusable device fails before the file is read
    host_params, metadata = load_model_file(path)
    params = [
        (from_host(W, xp=xp, device=device), from_host(b, xp=xp, device=device)) for W, b in host_params
    ]
    norms = [
        cast("Norm", tuple(from_host(a, xp=xp, device=device) for a in norm)) for norm in metadata["norms"]
    ]
    classes = metadata["classes"]
    if classes is not None:
        classes = from_host(np.asarray(classes, dtype=np.int64), xp=xp, device=device)
    config = dict(metadata["config"])
    if metadata.get("preprocessing") is not None:
        config.setdefault("preprocessing", metadata["preprocessing"])
    return MLP(
        params,
        activation=metadata["activation"],
        loss=metadata["loss"],
        classes=classes,
        l2=metadata["l2"],
        history=metadata["history"],
        config=config,
        batch_norm=metadata["batch_norm"],
        norms=norms if metadata["batch_norm"] else None,
    )
