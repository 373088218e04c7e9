"""Row-wise kernels of a dense layer: mini-batch gathering, bias + activation, their backward, dropout.

Every array is C-contiguous; float arrays are all float32 or all float64 (one dtype per call);
labels and indices are int64.  Outputs are preallocated by the caller, who also checks shapes,
dtypes and index ranges (the kernels do not).  Scalars are Python floats/ints.
"""

from ._config import jit
from ._math import sigmoid, tanh

IDENTITY = 0
RELU = 1
LEAKY_RELU = 2
SIGMOID = 3
TANH = 4
ACTIVATION_CODES = {
    "identity": IDENTITY,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "sigmoid": SIGMOID,
    "tanh": TANH,
}
LEAKY_SLOPE = 0.01  # mlp.activations.LEAKY_SLOPE (this package cannot import mlp): tests/test_structure.py


@jit
def gather_rows(X, idx, out):
    """out[i, :] = X[idx[i], :].  X (N, D), idx int64 (B,), out (B, D)."""
    d = X.shape[1]
    for i in range(idx.shape[0]):
        r = idx[i]
        for j in range(d):
            out[i, j] = X[r, j]


@jit
def gather_labels(y, idx, out):
    """out[i] = y[idx[i]].  y int64 (N,), idx int64 (B,), out int64 (B,)."""
    for i in range(idx.shape[0]):
        out[i] = y[idx[i]]


@jit
def bias_activation_forward(Z, b, code):
    """In place Z[i, j] = act(Z[i, j] + b[j]).  Z (B, H), b (H,), code one of ACTIVATION_CODES.

    relu and leaky_relu keep NaN (a diverged layer stays visible downstream). identity, relu and
    leaky_relu give the bits of ``mlp.activations`` on NumPy (relu is ``maximum(z, 0)``: +0 for -0),
    so the prediction path uses them too; sigmoid and tanh round as ``_math`` does.
    """
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
                Z[i, j] = slope * z if z < zero else z
    elif code == SIGMOID:
        for i in range(n):
            for j in range(h):
                Z[i, j] = sigmoid(Z[i, j] + b[j])
    elif code == TANH:
        for i in range(n):
            for j in range(h):
                Z[i, j] = tanh(Z[i, j] + b[j])
    else:
        raise ValueError("unknown activation code (see mlp_kernels.ACTIVATION_CODES)")


@jit
def activation_backward(dA, A, code, db=None):
    """In place dA[i, j] *= act'(A[i, j]), the derivative written from the output A.

    dA (B, H) the gradient with respect to A, overwritten with the gradient with respect to Z;
    A (B, H) the activation output saved by the forward pass. With db (H,) given, also
    db[j] = sum_i (new) dA[i, j] in the same pass: the layer's bias gradient without reading dZ
    again (Numba compiles the db=None case without that branch).
    """
    if code < IDENTITY or code > TANH:
        raise ValueError("unknown activation code (see mlp_kernels.ACTIVATION_CODES)")
    n, h = dA.shape
    T = dA.dtype.type
    zero, one = T(0), T(1)
    if db is not None:
        for j in range(h):
            db[j] = zero
    if code == IDENTITY:
        if db is not None:
            for i in range(n):
                for j in range(h):
                    db[j] += dA[i, j]
        return
    slope = T(LEAKY_SLOPE)
    for i in range(n):
        for j in range(h):
            a = A[i, j]
            if code == RELU:
                d = one if a > zero else zero
            elif code == LEAKY_RELU:
                d = one if a > zero else slope
            elif code == SIGMOID:
                d = a * (one - a)
            else:
                d = one - a * a
            v = dA[i, j] * d
            dA[i, j] = v
            if db is not None:
                db[j] += v


@jit
def bias_gradient(dZ, db):
    """db[j] = sum_i dZ[i, j] (db overwritten).  dZ (B, H), db (H,); summed in the array dtype."""
    n, h = dZ.shape
    zero = db.dtype.type(0)
    for j in range(h):
        db[j] = zero
    for i in range(n):
        for j in range(h):
            db[j] += dZ[i, j]


@jit
def dropout_forward(A, U, keep_prob):
    """Inverted dropout, in place.  A (B, H) activations; U (B, H) uniforms in [0, 1) drawn by the
    caller with `rng.random(out=U, dtype=U.dtype)` (a Generator needs dtype= for float32 output),
    overwritten with the mask (U < keep_prob) / keep_prob that dropout_backward needs.
    0 < keep_prob <= 1. The comparison is made in U's dtype, as NumPy does for `U < keep_prob`, so
    float64 uniforms give the same mask as the generic path for float32 activations too.
    """
    n, h = A.shape
    T = A.dtype.type
    keep, scale, zero = U.dtype.type(keep_prob), T(1.0 / keep_prob), T(0)
    for i in range(n):
        for j in range(h):
            m = scale if U[i, j] < keep else zero
            U[i, j] = m
            A[i, j] *= m


@jit
def dropout_backward(dA, mask):
    """dA *= mask, in place.  dA (B, H), mask (B, H) as left in U by dropout_forward."""
    n, h = dA.shape
    for i in range(n):
        for j in range(h):
            dA[i, j] *= mask[i, j]
