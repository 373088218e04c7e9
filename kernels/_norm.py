"""Batch normalisation of a hidden layer, column by column: statistics, normalise + affine (+ the
activation), and the backward pass; the math of ``mlp.layers.batch_norm_forward`` and
``batch_norm_backward``, with the activation fused in where the engine places it.

H (n, k) is this process's rows of the layer's input to the normalisation; N the rows of the whole
batch (every MPI rank's rows together), so a caller over MPI sums the per-column sums of
``batch_norm_sums`` / ``batch_norm_centred_squares`` / ``batch_norm_backward_sums`` over the ranks
between the calls.  Every sum runs over the rows in order in the array dtype (no threads): the same
inputs give the same bits whatever the thread count.  A part with no rows (n == 0) gives zero sums.

Every float array of a call shares one dtype and is C-contiguous; vectors are (k,).  Outputs are
preallocated by the caller, who also checks shapes and dtypes (the kernels do not).  ``code`` is an
activation code of ``ACTIVATION_CODES``, ``IDENTITY`` for none.
"""

import numpy as np

from ._config import jit
from ._layers import IDENTITY, LEAKY_RELU, LEAKY_SLOPE, RELU, SIGMOID, TANH
from ._math import sigmoid, tanh

BATCH_NORM_EPS = 1e-5  # mlp.layers.BATCH_NORM_EPS (this package cannot import mlp): tests/test_structure.py


@jit
def _activate_row(y, code):
    """In place y[j] = act(y[j]) over one row."""
    T = y.dtype.type
    zero = T(0)
    if code == RELU:
        for j in range(y.shape[0]):
            y[j] = y[j] if (y[j] > zero or y[j] != y[j]) else zero  # NumPy's maximum: +0 for -0
    elif code == LEAKY_RELU:
        slope = T(LEAKY_SLOPE)
        for j in range(y.shape[0]):
            y[j] = slope * y[j] if y[j] < zero else y[j]
    elif code == SIGMOID:
        for j in range(y.shape[0]):
            y[j] = sigmoid(y[j])
    elif code == TANH:
        for j in range(y.shape[0]):
            y[j] = tanh(y[j])


@jit
def _derivative_row(d, a, code):
    """In place d[j] *= act'(a[j]) over one row, the derivative written from the output a."""
    T = d.dtype.type
    zero, one = T(0), T(1)
    if code == RELU:
        for j in range(d.shape[0]):
            d[j] *= one if a[j] > zero else zero  # a product, as activation_backward: NaN stays NaN
    elif code == LEAKY_RELU:
        slope = T(LEAKY_SLOPE)
        for j in range(d.shape[0]):
            d[j] *= one if a[j] > zero else slope
    elif code == SIGMOID:
        for j in range(d.shape[0]):
            d[j] *= a[j] * (one - a[j])
    elif code == TANH:
        for j in range(d.shape[0]):
            d[j] *= one - a[j] * a[j]


@jit
def _check_code(code):
    if code < IDENTITY or code > TANH:
        raise ValueError("unknown activation code (see mlp_kernels.ACTIVATION_CODES)")


@jit
def batch_norm_sums(H, sums):
    """sums[j] = sum_i H[i, j] (overwritten).  H (n, k), sums (k,)."""
    n, k = H.shape
    zero = sums.dtype.type(0)
    for j in range(k):
        sums[j] = zero
    for i in range(n):
        for j in range(k):
            sums[j] += H[i, j]


@jit
def batch_norm_centred_squares(H, sums, n_rows, mean, squares):
    """mean[j] = sums[j] / n_rows, then squares[j] = sum_i (H[i, j] - mean[j])**2 (the second pass).
    H (n, k); sums, mean, squares (k,); sums the column sums of all N = n_rows rows."""
    n, k = H.shape
    T = H.dtype.type
    count, zero = T(n_rows), T(0)
    for j in range(k):
        mean[j] = sums[j] / count
        squares[j] = zero
    for i in range(n):
        for j in range(k):
            c = H[i, j] - mean[j]
            squares[j] += c * c


@jit
def _normalise_rows(H, centre, inv, gamma, beta, Hhat, Y, code):
    """Hhat = (H - centre) * inv; Y = act(gamma Hhat + beta), row by row (code IDENTITY: no activation).
    The one normalisation loop of both statistics' forward passes."""
    n, k = H.shape
    for i in range(n):
        for j in range(k):
            h = (H[i, j] - centre[j]) * inv[j]
            Hhat[i, j] = h
            Y[i, j] = gamma[j] * h + beta[j]
        if code != IDENTITY:
            _activate_row(Y[i], code)


@jit
def batch_norm_forward(
    H, mean, squares, n_rows, gamma, beta, momentum, running_mean, running_var, inv, Hhat, Y, code
):
    """A training step's normalisation with the batch statistics of N = n_rows >= 2 rows.

    var = squares / N; inv = 1 / sqrt(var + eps); Hhat = (H - mean) * inv; Y = act(gamma Hhat + beta)
    (code IDENTITY: no activation).  The running statistics move in place:
    running_mean = (1 - m) running_mean + m mean, running_var = (1 - m) running_var + m var N / (N - 1).
    H, Hhat, Y (n, k); the rest (k,); inv, Hhat, Y written; momentum m a float in (0, 1].
    """
    _check_code(code)
    k = H.shape[1]
    T = H.dtype.type
    count, one, eps, m = T(n_rows), T(1), T(BATCH_NORM_EPS), T(momentum)
    unbias = T(n_rows / (n_rows - 1))
    for j in range(k):
        var = squares[j] / count
        inv[j] = one / np.sqrt(var + eps)
        running_mean[j] = (one - m) * running_mean[j] + m * mean[j]
        running_var[j] = (one - m) * running_var[j] + m * var * unbias
    _normalise_rows(H, mean, inv, gamma, beta, Hhat, Y, code)


@jit
def batch_norm_running_forward(H, gamma, beta, running_mean, running_var, inv, Hhat, Y, code):
    """Normalisation with the running statistics (inference, and a training step of one row), which
    stay as they are: inv = 1 / sqrt(running_var + eps); Hhat = (H - running_mean) * inv;
    Y = act(gamma Hhat + beta).  H, Hhat, Y (n, k); the rest (k,); inv, Hhat, Y written."""
    _check_code(code)
    k = H.shape[1]
    T = H.dtype.type
    one, eps = T(1), T(BATCH_NORM_EPS)
    for j in range(k):
        inv[j] = one / np.sqrt(running_var[j] + eps)
    _normalise_rows(H, running_mean, inv, gamma, beta, Hhat, Y, code)


@jit
def batch_norm_backward_sums(dY, A, code, Hhat, dgamma, dbeta):
    """The first pass back: in place dY *= act'(A) (from the output A; code IDENTITY: dY as it is),
    then dbeta[j] = sum_i dY[i, j] and dgamma[j] = sum_i dY[i, j] Hhat[i, j] (overwritten): the
    gradients of gamma and beta, and this part's S1, S2.  dY, A, Hhat (n, k); dgamma, dbeta (k,)."""
    _check_code(code)
    n, k = dY.shape
    zero = dY.dtype.type(0)
    for j in range(k):
        dgamma[j] = zero
        dbeta[j] = zero
    for i in range(n):
        if code != IDENTITY:
            _derivative_row(dY[i], A[i], code)
        for j in range(k):
            d = dY[i, j]
            dbeta[j] += d
            dgamma[j] += d * Hhat[i, j]


@jit
def batch_norm_backward(dY, Hhat, gamma, inv, S1, S2, inv_rows, A, code, dH, db):
    """The second pass back: dH = gamma inv (dY - S1 / N - Hhat S2 / N), then in place
    dH *= act'(A) (from the output A; code IDENTITY: as it is), and db[j] = sum_i dH[i, j].

    S1, S2: the column sums of dY and dY Hhat over all N rows (``batch_norm_backward_sums`` summed
    over the ranks); inv_rows = 1 / N, or 0.0 for a step normalised with the running statistics
    (then dH = gamma inv dY).  dY, Hhat, A, dH (n, k), dH may be dY; the rest (k,); dH, db written.
    """
    _check_code(code)
    n, k = dY.shape
    T = dY.dtype.type
    scale, zero = T(inv_rows), T(0)
    for j in range(k):
        db[j] = zero
    for i in range(n):
        for j in range(k):
            dH[i, j] = gamma[j] * inv[j] * (dY[i, j] - S1[j] * scale - Hhat[i, j] * (S2[j] * scale))
        if code != IDENTITY:
            _derivative_row(dH[i], A[i], code)
        for j in range(k):
            db[j] += dH[i, j]
