"""The output-layer losses of ``_losses`` weighted per row (sample weights).

Each takes the arguments of its unweighted kernel plus w (B,) float64 weights >= 0 before
``scale``: row i's loss counts w[i] times in the returned sum and its gradient row is scaled by
w[i] * scale (pass scale = 1 / sum(w) for the gradient of the weighted mean).  Row i is the
unweighted kernel run on that one row with scale * w[i], so a row's arithmetic is the unweighted
kernel's, and the unweighted kernels themselves stay exactly as they are.  The classification
losses also return the (unweighted) number of correct rows.
"""

from ._config import jit
from ._losses import (
    exp_poisson_sum,
    sigmoid_binary_cross_entropy_sum,
    sigmoid_mse_sum,
    softmax_cross_entropy_sum,
    squared_error_sum,
)


@jit
def softmax_cross_entropy_sum_weighted(Z, y, w, scale, dZ):
    """sum_i w_i (logsumexp(Z_i) - Z_i[y_i]); dZ_i = (softmax(Z_i) - onehot(y_i)) * w_i * scale."""
    loss = 0.0
    correct = 0
    for i in range(Z.shape[0]):
        row, hit = softmax_cross_entropy_sum(Z[i : i + 1], y[i : i + 1], scale * w[i], dZ[i : i + 1])
        loss += w[i] * row
        correct += hit
    return loss, correct


@jit
def sigmoid_mse_sum_weighted(Z, y, w, scale, dZ):
    """sum_i w_i 0.5 ||sigmoid(Z_i) - onehot(y_i)||^2; dZ_i as sigmoid_mse_sum's times w_i."""
    loss = 0.0
    correct = 0
    for i in range(Z.shape[0]):
        row, hit = sigmoid_mse_sum(Z[i : i + 1], y[i : i + 1], scale * w[i], dZ[i : i + 1])
        loss += w[i] * row
        correct += hit
    return loss, correct


@jit
def squared_error_sum_weighted(Z, Y, w, scale, dZ):
    """sum_i w_i 0.5 ||Z_i - Y_i||^2; dZ_i = (Z_i - Y_i) * w_i * scale."""
    loss = 0.0
    for i in range(Z.shape[0]):
        loss += w[i] * squared_error_sum(Z[i : i + 1], Y[i : i + 1], scale * w[i], dZ[i : i + 1])
    return loss


@jit
def sigmoid_binary_cross_entropy_sum_weighted(Z, Y, w, scale, dZ):
    """sum_i w_i sum_k [softplus(Z_ik) - Y_ik Z_ik]; dZ_i = (sigmoid(Z_i) - Y_i) * w_i * scale."""
    loss = 0.0
    for i in range(Z.shape[0]):
        row = sigmoid_binary_cross_entropy_sum(Z[i : i + 1], Y[i : i + 1], scale * w[i], dZ[i : i + 1])
        loss += w[i] * row
    return loss


@jit
def exp_poisson_sum_weighted(Z, Y, w, scale, dZ):
    """sum_i w_i sum_k [xlogy(Y_ik, Y_ik) - Y_ik - Y_ik Z_ik + exp(Z_ik)]; dZ_i = (exp(Z_i) - Y_i) * w_i * scale."""
    loss = 0.0
    for i in range(Z.shape[0]):
        loss += w[i] * exp_poisson_sum(Z[i : i + 1], Y[i : i + 1], scale * w[i], dZ[i : i + 1])
    return loss
