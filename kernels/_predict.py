"""Kernels of the prediction path: a hidden layer's bias and activation in place, rounded as NumPy
rounds them, and a finiteness check of X that reads it once without a temporary array.

``add_bias_activate`` gives the bits of ``mlp.activations`` on NumPy (``maximum(Z + b, 0)`` for relu,
+0 for -0 and NaN kept; ``where(Z + b > 0, Z + b, slope * (Z + b))`` for leaky_relu; ``Z + b`` for
identity), so a prediction through it equals the generic forward pass bit for bit.  The sigmoid and
tanh of ``_math`` round otherwise and are not offered here.
"""

import numpy as np

from ._config import jit
from ._layers import IDENTITY, LEAKY_RELU, LEAKY_SLOPE, RELU


@jit
def add_bias_activate(Z, b, code):
    """In place Z[i, j] = act(Z[i, j] + b[j]).  Z (B, H), b (H,); code IDENTITY, RELU or LEAKY_RELU."""
    n, h = Z.shape
    T = Z.dtype.type
    zero = T(0)
    if code == IDENTITY:
        for i in range(n):
            for j in range(h):
                Z[i, j] += b[j]
    elif code == RELU:
        for i in range(n):
            for j in range(h):
                z = Z[i, j] + b[j]
                Z[i, j] = z if (z > zero or z != z) else zero
    elif code == LEAKY_RELU:
        slope = T(LEAKY_SLOPE)
        for i in range(n):
            for j in range(h):
                z = Z[i, j] + b[j]
                Z[i, j] = z if z > zero else slope * z
    else:
        raise ValueError("add_bias_activate takes IDENTITY, RELU or LEAKY_RELU")


@jit
def all_finite(X):
    """True when no element of X (B, D) is NaN or infinite; rows read in order, stopping at the first
    row that holds one."""
    n, d = X.shape
    limit = np.inf
    for i in range(n):
        finite = True
        for j in range(d):
            finite &= abs(X[i, j]) < limit
        if not finite:
            return False
    return True
