"""Fused, allocation-free Numba kernels for the CPU hot loops of MLP training.

Depends on NumPy and Numba only.  Every kernel writes into arrays the caller preallocated and
validates (C-contiguous, one float dtype per call: float32 or float64; labels/indices int64).
The math is exactly that of the README's "The math, precisely"; names are shared with the Python core and the C++ port.

Call ``warmup(dtype)`` before a training loop so compilation (first run, a few seconds) or loading
of the on-disk cache (later runs) happens up front.

Numba's cache only watches the source file of each kernel: after editing ``_config.py`` or
``_math.py``, delete ``kernels/__pycache__`` so the kernels that inline them are rebuilt.
"""
import time

import numpy as np

from .layers import (
    ACTIVATION_CODES,
    IDENTITY,
    LEAKY_RELU,
    LEAKY_SLOPE,
    RELU,
    SIGMOID,
    TANH,
    activation_backward,
    bias_activation_forward,
    bias_gradient,
    dropout_backward,
    dropout_forward,
    gather_labels,
    gather_rows,
)
from .losses import sigmoid_mse, softmax_cross_entropy
from .optim import adam_step, grad_sq_norm, momentum_step, rmsprop_step, sgd_step

__all__ = [
    "IDENTITY", "RELU", "LEAKY_RELU", "SIGMOID", "TANH", "ACTIVATION_CODES", "LEAKY_SLOPE",
    "gather_rows", "gather_labels", "bias_activation_forward", "activation_backward",
    "bias_gradient", "dropout_forward", "dropout_backward",
    "softmax_cross_entropy", "sigmoid_mse",
    "grad_sq_norm", "sgd_step", "momentum_step", "rmsprop_step", "adam_step",
    "warmup",
]


def warmup(dtype=np.float32):
    """Run every kernel once on tiny arrays of ``dtype`` (float32 or float64), with scalars of the
    types a training loop passes (Python float/int/bool), so that compilation or cache loading
    happens now.  Returns the seconds it took.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"kernels work on float32 or float64 arrays, not {dtype}")
    start = time.perf_counter()
    X = np.linspace(-1.0, 1.0, 12).reshape(4, 3).astype(dtype)
    y = np.array([0, 1, 2, 0], dtype=np.int64)
    idx = np.array([3, 1], dtype=np.int64)
    Z = np.empty((2, 3), dtype=dtype)
    labels = np.empty(2, dtype=np.int64)
    gather_rows(X, idx, Z)
    gather_labels(y, idx, labels)
    b = np.zeros(3, dtype=dtype)
    dA = np.ones((2, 3), dtype=dtype)
    for code in ACTIVATION_CODES.values():
        A = Z.copy()
        bias_activation_forward(A, b, code)
        activation_backward(dA, A, code)
    bias_gradient(dA, b)
    U = np.full((2, 3), 0.25, dtype=dtype)
    dropout_forward(A, U, 0.5)
    dropout_backward(dA, U)
    dZ = np.empty_like(Z)
    softmax_cross_entropy(Z, labels, 0.5, dZ)
    sigmoid_mse(Z, labels, 0.5, dZ)
    p = np.ones(5, dtype=dtype)
    g = np.full(5, 0.5, dtype=dtype)
    s1, s2 = np.zeros(5, dtype=dtype), np.zeros(5, dtype=dtype)
    grad_sq_norm(g, p, 0.0, np.inf)
    sgd_step(p, g, 0.1, 0.0, np.inf, 1.0)
    momentum_step(p, g, s1, 0.1, 0.9, False, 0.0, np.inf, 1.0)
    momentum_step(p, g, s1, 0.1, 0.9, True, 0.0, np.inf, 1.0)
    rmsprop_step(p, g, s1, 0.1, 0.9, 1e-8, 0.0, np.inf, 1.0)
    adam_step(p, g, s1, s2, 0.1, 0.9, 0.999, 1e-8, 1, 0.0, 0.0, np.inf, 1.0)
    return time.perf_counter() - start
