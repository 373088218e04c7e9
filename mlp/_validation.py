"""Input checks shared by `fit` and the model: every message says what was wrong and how to fix it."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np

from ._array_api import (
    Array,
    Device,
    DType,
    Namespace,
    array_device,
    dtype_name,
    float_dtype,
    from_host,
    get_namespace,
    index_dtype,
    is_array_api_obj,
    row_chunks,
    to_numpy,
)


def as_array(x: Any, name: str) -> Array:
    """Accept any array-API array as is; lists and other sequences become NumPy arrays."""
    if is_array_api_obj(x):
        return x
    if x is None:
        raise TypeError(f"{name} is None; pass an array of shape (n_samples, n_features)")
    try:
        return np.asarray(x)
    except Exception as error:  # ragged lists and the like
        raise TypeError(f"{name} could not be converted to an array: {error}") from None


def check_features(
    X: Array,
    *,
    dtype: DType,
    name: str = "X",
    n_features: int | None = None,
    xp: Namespace | None = None,
    device: Device | None = None,
    warn_raw_pixels: bool = False,
) -> tuple[Array, Namespace, Device]:
    """Validate a feature matrix and return it in `dtype` (a copy only when the dtype changes).

    Returns (X, xp, device). With `xp`/`device` given, X must already live there.
    """
    X = as_array(X, name)
    X_xp, X_device = get_namespace(X)
    if xp is not None and (X_xp is not xp and getattr(X_xp, "__name__", 1) != getattr(xp, "__name__", 2)):
        raise TypeError(
            f"{name} is a {getattr(X_xp, '__name__', X_xp)} array but the model lives in "
            f"{getattr(xp, '__name__', xp)}; convert {name} to that namespace first"
        )
    if device is not None and not (X_device == device):
        raise ValueError(
            f"{name} is on device {X_device!r} but the model is on {device!r}; move {name} there first"
        )
    xp, device = X_xp, X_device
    if X.ndim != 2:
        hint = ""
        if X.ndim == 1:
            hint = f" (reshape a single sample with {name}.reshape(1, -1))"
        elif X.ndim > 2:
            hint = f" (flatten each sample, e.g. images, with {name}.reshape({name}.shape[0], -1))"
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {tuple(X.shape)}{hint}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has 0 samples; pass at least one row")
    if X.shape[1] == 0:
        raise ValueError(f"{name} has 0 features; pass at least one column")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features but the model was trained on {n_features}")
    kind = dtype_name(X.dtype)
    if (
        kind == "bool"
        or kind.startswith("complex")
        or not (kind.startswith("float") or kind.startswith("int") or kind.startswith("uint"))
    ):
        raise TypeError(f"{name} must hold real numbers (float or integer), got dtype {kind}")
    target = float_dtype(dtype, xp=xp)
    if isinstance(X, np.memmap):  # out of core: checked in chunks, never copied
        _check_memmap(X, target, name=name, warn_raw_pixels=warn_raw_pixels)
        return X, xp, device
    if X.dtype != target:
        X = xp.astype(X, target)  # explicit conversion: the caller's array is never modified
    if not bool(xp.all(xp.isfinite(X))):
        raise ValueError(f"{name} contains NaN or infinity; clean or impute the data before training")
    if warn_raw_pixels:
        _warn_if_raw_pixels(X, xp=xp, name=name)
    return X, xp, device


CHUNK_BYTES = 32 << 20  # how much of a memory-mapped X its checks read at a time


def _check_memmap(X: np.memmap, dtype: Any, *, name: str, warn_raw_pixels: bool) -> None:
    """A memory-mapped X checked without reading it all into memory: it must already be in the
    model's dtype and C order (converting it would copy all of it), and its finiteness (and whether it
    holds raw pixels) is read CHUNK_BYTES at a time."""
    if X.dtype != dtype:
        other = f", or train in dtype='{X.dtype}'" if X.dtype.name in ("float32", "float64") else ""
        raise TypeError(
            f"{name} is a memory map of {X.dtype} but the model is {np.dtype(dtype)}; converting it "
            f"would read it all into memory: write it as {np.dtype(dtype)} (np.lib.format.open_memmap)"
            f"{other}"
        )
    if not X.flags.c_contiguous:
        raise ValueError(
            f"{name} is a memory map in Fortran (or strided) order; gathering its rows would copy it "
            "all: write it in C order (rows one after another)"
        )
    low, high, whole = np.inf, -np.inf, True
    for rows in row_chunks(X.shape[0], max(1, CHUNK_BYTES // (X.shape[1] * X.itemsize))):
        chunk = np.asarray(X[rows])
        if not np.isfinite(chunk).all():
            raise ValueError(f"{name} contains NaN or infinity; clean or impute the data before training")
        if warn_raw_pixels:
            low, high = min(low, float(chunk.min())), max(high, float(chunk.max()))
            whole = whole and bool((np.round(chunk) == chunk).all())
    if warn_raw_pixels and 1.0 < high <= 255.0 and low >= 0.0 and whole:
        _warn_raw_pixels(name, high)


class RawPixelsWarning(UserWarning):
    """X looks like unscaled 0-255 pixel values."""


def _warn_if_raw_pixels(X: Array, *, xp: Namespace, name: str) -> None:
    """Warn when X holds whole numbers in [0, 255] reaching above 1: raw pixels, which train badly
    (0.60 instead of 0.89 accuracy for one epoch of a plain network on MNIST)."""
    high = float(xp.max(X))
    if 1.0 < high <= 255.0 and float(xp.min(X)) >= 0.0 and bool(xp.all(xp.round(X) == X)):
        _warn_raw_pixels(name, high)


def _warn_raw_pixels(name: str, high: float) -> None:
    warnings.warn(
        f"{name} holds whole numbers from 0 to {high:g}: raw pixel values? Scale them to [0, 1] "
        f"first ({name} / 255.0); unscaled inputs train much worse",
        RawPixelsWarning,
        stacklevel=5,
    )


def is_integral_dtype(dtype: DType) -> bool:
    kind = dtype_name(dtype)
    return kind.startswith("int") or kind.startswith("uint")


def check_labels(
    y: Array, n_samples: int, *, xp: Namespace, device: Device, classes: Array | None = None, name: str = "y"
) -> tuple[Array, Array]:
    """Validate labels and return (class indices on the device, in the namespace's default integer
    dtype (`index_dtype`), classes array).

    Accepts integer labels of any values (e.g. {3, 7}; `classes` keeps them) or one-hot rows (n, K).
    With `classes` given (validation data, scoring), labels must be among them.
    """
    y = as_array(y, name)
    y_xp, _ = get_namespace(y)
    if y_xp is not xp:
        if not isinstance(y, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array or live in the same namespace as X")
        if not (y.dtype.kind in "iub" or y.dtype.kind == "f"):
            raise TypeError(
                f"{name} must hold integer class labels, got dtype {y.dtype}; "
                "encode string labels as integers first (or use mlp.MLPClassifier)"
            )
        y = from_host(y, xp=xp, device=device)
    if y.shape[0] != n_samples:
        raise ValueError(f"X and {name} have different lengths: {n_samples} samples but {y.shape[0]} labels")
    if y.ndim == 2:
        return _one_hot_to_indices(y, xp=xp, classes=classes, name=name)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D class labels or 2-D one-hot rows; got shape {tuple(y.shape)}")
    kind = dtype_name(y.dtype)
    if kind == "bool":
        y = xp.astype(y, index_dtype(xp, device))
    elif kind.startswith("float"):
        if not bool(xp.all(xp.isfinite(y))):
            raise ValueError(f"{name} holds NaN or infinity; labels must be whole numbers")
        if not bool(xp.all(xp.abs(y) <= 2.0**53)):
            raise ValueError(
                f"{name} holds labels beyond +-2**53, which a float cannot count exactly; pass integer labels"
            )
        if not bool(xp.all(y == xp.round(y))):
            raise ValueError(f"{name} must hold integer class labels; got non-integer values such as 0.5")
        y = xp.astype(y, index_dtype(xp, device))
    elif not is_integral_dtype(y.dtype):
        raise TypeError(f"{name} must hold integer class labels, got dtype {kind}")
    if classes is None:
        classes = xp.unique_values(y)
    indices = xp.astype(xp.searchsorted(classes, xp.astype(y, classes.dtype)), index_dtype(xp, device))
    clipped = xp.clip(indices, 0, classes.shape[0] - 1)
    if not bool(xp.all(xp.take(classes, clipped) == xp.astype(y, classes.dtype))):
        raise ValueError(f"{name} holds labels the model was not trained on (it knows {_describe(classes)})")
    return clipped, classes


def _one_hot_to_indices(y: Array, *, xp: Namespace, classes: Array | None, name: str) -> tuple[Array, Array]:
    kind = dtype_name(y.dtype)
    if kind.startswith("complex"):
        raise TypeError(f"{name} must hold real numbers, got dtype {kind}")
    if not kind.startswith("float"):  # bool or integer: sums of 0/1 count exactly in integers
        y = xp.astype(y, index_dtype(xp, array_device(y)))
    if not bool(xp.all((y == 0) | (y == 1))) or not bool(xp.all(xp.sum(y, axis=1) == 1)):
        raise ValueError(f"a 2-D {name} must be one-hot: 0/1 values with exactly one 1 per row")
    if classes is not None and y.shape[1] != classes.shape[0]:
        raise ValueError(
            f"one-hot {name} has {y.shape[1]} columns but the model knows {classes.shape[0]} classes"
        )
    if classes is None:
        classes = xp.arange(y.shape[1], dtype=index_dtype(xp, array_device(y)), device=array_device(y))
    return xp.astype(xp.argmax(y, axis=1), index_dtype(xp, array_device(y))), classes


def _describe(classes: Array) -> str:
    values = to_numpy(classes).tolist()
    return "{" + ", ".join(map(str, values[:20])) + (", ..." if len(values) > 20 else "") + "}"


def check_positive_int(value: Any, name: str, *, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_rate(
    value: Any,
    name: str,
    *,
    low: float = 0.0,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = False,
) -> float:
    """A finite real number in [low, high) (the brackets as the keywords say), as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    number = float(value)
    ok = number >= low if low_inclusive else number > low
    if high is not None:
        ok = ok and (number <= high if high_inclusive else number < high)
    if not ok:
        left, right = "[" if low_inclusive else "(", "]" if high_inclusive else ")"
        raise ValueError(
            f"{name} must be in {left}{low}, {high if high is not None else 'inf'}{right}, got {value!r}"
        )
    return float(value)


class ParameterError(TypeError, ValueError):
    """A parameter of the wrong kind (a switch that is no bool, a seed that is no non-negative integer):
    a TypeError, and a ValueError as scikit-learn's parameter errors are, so code written for either
    catches it."""


def check_flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_targets(
    y: Array,
    n_samples: int,
    *,
    xp: Namespace,
    device: Device,
    dtype: DType,
    n_outputs: int | None = None,
    name: str = "y",
    unit_interval: bool = False,
    non_negative: bool = False,
) -> Array:
    """Validate real-valued targets (regression, or 0/1 indicator rows) and return them as a float
    matrix (n_samples, k) in `dtype`, in X's namespace and on its device.

    y of shape (n,) becomes (n, 1). With `n_outputs` given (validation data, scoring), y must have
    that many columns. unit_interval: every value must lie in [0, 1] (binary cross-entropy);
    non_negative: every value must be >= 0 (counts, the Poisson loss)."""
    y = as_array(y, name)
    y_xp, _ = get_namespace(y)
    if y_xp is not xp:
        if not isinstance(y, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array or live in the same namespace as X")
        if y.dtype.kind not in "iufb":
            raise TypeError(f"{name} must hold real numbers for a regression loss, got dtype {y.dtype}")
        y = from_host(y, xp=xp, device=device)
    kind = dtype_name(y.dtype)
    if kind.startswith("complex") or not (kind == "bool" or kind.startswith(("float", "int", "uint"))):
        raise TypeError(f"{name} must hold real numbers for a regression loss, got dtype {kind}")
    if y.ndim not in (1, 2):
        raise ValueError(
            f"{name} must be 1-D (n_samples,) or 2-D (n_samples, n_outputs); got shape {tuple(y.shape)}"
        )
    if y.shape[0] != n_samples:
        raise ValueError(f"X and {name} have different lengths: {n_samples} samples but {y.shape[0]} targets")
    if y.ndim == 1:
        y = xp.reshape(y, (n_samples, 1))
    if y.shape[1] == 0:
        raise ValueError(f"{name} has 0 columns; pass at least one target per sample")
    if n_outputs is not None and y.shape[1] != n_outputs:
        raise ValueError(f"{name} has {y.shape[1]} outputs but the model was trained on {n_outputs}")
    y = xp.astype(y, float_dtype(dtype, xp=xp))
    if not bool(xp.all(xp.isfinite(y))):
        raise ValueError(
            f"{name} contains NaN or infinity (or values too large for {dtype}); clean the targets first"
        )
    if unit_interval and not bool(xp.all((y >= 0) & (y <= 1))):
        raise ValueError(f"{name} must hold values in [0, 1] (0/1 indicator rows) for binary cross-entropy")
    if non_negative and not bool(xp.all(y >= 0)):
        raise ValueError(
            f"{name} must hold non-negative values (counts or rates) for the poisson loss; "
            f"its smallest is {float(xp.min(y))}"
        )
    return y


def check_sample_weight(
    sample_weight: Any,
    n_samples: int,
    *,
    classes: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    class_weight: Any = None,
) -> np.ndarray | None:
    """fit's sample_weight and class_weight as one float64 NumPy array of n_samples weights, or None
    when both are None (every row weighs 1: the unweighted arithmetic, untouched).

    sample_weight: None or n_samples finite numbers >= 0, not all 0. class_weight (classification
    only: `classes` the sorted class values, `labels` each row's class index): None, "balanced"
    (n_samples / (n_classes * bincount(y)), as scikit-learn's compute_class_weight) or {label:
    weight} with labels among the classes (the others weigh 1); each row's sample weight is then
    multiplied by its class's weight, as scikit-learn's classifiers compose them."""
    weights = None
    if sample_weight is not None:
        values = to_numpy(as_array(sample_weight, "sample_weight"))
        if values.dtype.kind not in "iufb":
            raise TypeError(f"sample_weight must hold real numbers, got dtype {values.dtype}")
        if values.shape != (n_samples,):
            raise ValueError(
                f"sample_weight must have shape ({n_samples},), one weight per sample; got {values.shape}"
            )
        weights = values.astype(np.float64)
        if not np.all(np.isfinite(weights)):
            raise ValueError("sample_weight holds NaN or infinity; weights must be finite")
        if np.any(weights < 0):
            raise ValueError("sample_weight holds negative values; weights must be >= 0")
    if class_weight is not None:
        if classes is None or labels is None:
            raise ValueError("class_weight works with a classification loss (cross_entropy or mse) only")
        per_class = _class_weights(class_weight, np.asarray(classes), np.asarray(labels))
        by_row = per_class[np.asarray(labels)]
        weights = by_row if weights is None else weights * by_row
    if weights is not None and not np.any(weights > 0):
        raise ValueError("the sample weights are all 0; at least one sample needs a positive weight")
    return weights


def _class_weights(class_weight: Any, classes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One float64 weight per class, as scikit-learn's compute_class_weight."""
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(
                f"class_weight must be None, 'balanced' or a dict {{label: weight}}, got {class_weight!r}"
            )
        counts = np.bincount(labels, minlength=classes.shape[0]).astype(np.float64)
        # classes without a training row (possible with given classes) weigh nothing: no row uses them
        return np.divide(
            labels.shape[0], classes.shape[0] * counts, out=np.zeros_like(counts), where=counts > 0
        )
    if not isinstance(class_weight, dict):
        raise TypeError(
            f"class_weight must be None, 'balanced' or a dict {{label: weight}}, got {class_weight!r}"
        )
    per_class = np.ones(classes.shape[0])
    for label, weight in class_weight.items():
        where = np.flatnonzero(classes == label) if not isinstance(label, str) else np.array([], dtype=int)
        if where.size != 1:
            raise ValueError(
                f"class_weight has label {label!r}, which is not a class of y ({_describe(classes)})"
            )
        if (
            isinstance(weight, bool)
            or not isinstance(weight, numbers.Real)
            or not np.isfinite(float(weight))
            or weight < 0
        ):
            raise ValueError(f"class_weight[{label!r}] must be a finite number >= 0, got {weight!r}")
        per_class[where[0]] = float(weight)
    return per_class
