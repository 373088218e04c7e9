"""Output-layer losses fused with their gradient, one pass over the logits.

Z (B, K) logits, float32 or float64, C-contiguous; dZ (B, K) output, which may be Z itself (in
place).  ``scale`` multiplies the gradient: pass 1/B for the gradient of the mean loss.

The classification losses take y int64 (B,) class indices in [0, K) (checked by the caller) and
return (loss_sum, n_correct): loss_sum is the float64 SUM over rows (divide by B for the mean loss)
and n_correct the number of rows whose first largest logit is at y[i].  The losses on a target
matrix, ``squared_error_sum`` (regression), ``sigmoid_binary_cross_entropy_sum`` (two classes,
multilabel) and ``exp_poisson_sum`` (counts), take targets Y (B, K) of Z's dtype and return the loss
sum only.
"""

import math

from ._config import jit
from ._math import exp_nonpos, fmaximum, sigmoid


@jit
def _row_max(Z, i):
    """Largest element of row i of Z (B, K), K >= 1; NaN if the row holds a NaN."""
    best = Z[i, 0]
    for c in range(1, Z.shape[1]):
        best = fmaximum(best, Z[i, c])
    return best


@jit
def _is_first_argmax(Z, i, zmax, c):
    """Whether c is the first index of the largest element zmax of row i of Z (B, K)."""
    if Z[i, c] != zmax:  # also True when Z[i, c] is NaN
        return False
    ties = 0
    for j in range(c):
        ties += 1 if Z[i, j] == zmax else 0
    return ties == 0


@jit
def softmax_cross_entropy_sum(Z, y, scale, dZ):
    """Softmax + cross-entropy.  Per row: loss_sum += logsumexp(Z_i) - Z_i[y_i] (max subtracted
    first, finite for logits of +-1000); dZ_i = (softmax(Z_i) - onehot(y_i)) * scale.
    """
    n, k = Z.shape
    T = Z.dtype.type
    sc = T(scale)
    loss = 0.0
    correct = 0
    for i in range(n):
        yi = y[i]
        zmax = _row_max(Z, i)
        zy = Z[i, yi]  # read before dZ (maybe Z) is written
        if _is_first_argmax(Z, i, zmax, yi):
            correct += 1
        total = T(0)
        for c in range(k):
            e = exp_nonpos(Z[i, c] - zmax)
            dZ[i, c] = e
            total += e
        loss += (float(zmax) - float(zy)) + math.log(float(total))
        r = sc / total
        for c in range(k):
            dZ[i, c] *= r
        dZ[i, yi] -= sc
    return loss, correct


@jit
def sigmoid_mse_sum(Z, y, scale, dZ):
    """Sigmoid + squared error.  Per row, A = sigmoid(Z_i):
    loss_sum += 0.5 * sum_k (A_k - onehot_k)^2; dZ_i = (A - onehot) * A * (1 - A) * scale.
    """
    n, k = Z.shape
    T = Z.dtype.type
    sc, zero, one = T(scale), T(0), T(1)
    loss = 0.0
    correct = 0
    for i in range(n):
        yi = y[i]
        if _is_first_argmax(Z, i, _row_max(Z, i), yi):
            correct += 1
        row = 0.0
        for c in range(k):
            a = sigmoid(Z[i, c])
            d = a - (one if c == yi else zero)
            row += float(d) * float(d)
            dZ[i, c] = d * a * (one - a) * sc
        loss += 0.5 * row
    return loss, correct


@jit
def squared_error_sum(Z, Y, scale, dZ):
    """Identity outputs + squared error (regression).  Per row:
    loss_sum += 0.5 * sum_k (Z_ik - Y_ik)^2; dZ_i = (Z_i - Y_i) * scale.  Returns loss_sum.
    """
    n, k = Z.shape
    sc = Z.dtype.type(scale)
    loss = 0.0
    for i in range(n):
        row = 0.0
        for c in range(k):
            d = Z[i, c] - Y[i, c]
            row += float(d) * float(d)
            dZ[i, c] = d * sc
        loss += 0.5 * row
    return loss


@jit
def sigmoid_binary_cross_entropy_sum(Z, Y, scale, dZ):
    """Sigmoid outputs + binary cross-entropy per output (two classes, multilabel).  Per element:
    loss_sum += softplus(z) - y * z  (= -y log s(z) - (1 - y) log(1 - s(z)), finite for any z);
    dZ = (sigmoid(z) - y) * scale.  Returns loss_sum.
    """
    n, k = Z.shape
    sc = Z.dtype.type(scale)
    loss = 0.0
    for i in range(n):
        row = 0.0
        for c in range(k):
            z, t = Z[i, c], Y[i, c]
            x = float(z)
            row += max(x, 0.0) + math.log1p(math.exp(-abs(x))) - float(t) * x
            dZ[i, c] = (sigmoid(z) - t) * sc
        loss += row
    return loss


@jit
def exp_poisson_sum(Z, Y, scale, dZ):
    """Exp outputs + half Poisson deviance per output (counts, Y >= 0; scikit-learn's poisson loss).
    Per element: loss_sum += xlogy(y, y) - y - y * z + exp(z)  (= y log(y / mu) - y + mu with
    mu = exp(z), written with log mu = z: finite where exp(z) underflows; y log y is 0 for y = 0);
    dZ = (exp(z) - y) * scale.  Returns loss_sum.
    """
    n, k = Z.shape
    T = Z.dtype.type
    sc = T(scale)
    loss = 0.0
    for i in range(n):
        row = 0.0
        for c in range(k):
            z, t = Z[i, c], Y[i, c]
            x, y = float(z), float(t)
            mu = math.exp(x)
            row += (y * math.log(y) if y > 0.0 else 0.0) - y - y * x + mu
            dZ[i, c] = (T(mu) - t) * sc
        loss += row
    return loss
