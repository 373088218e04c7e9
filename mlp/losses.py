"""Output layers fused with their losses, one pass over the logits.

    cross_entropy         softmax outputs, cross-entropy        targets: class indices (n,)
    mse                   sigmoid outputs, squared error        targets: class indices (n,)
    squared_error         identity outputs, squared error       targets: real values (n, k)  (regression)
    binary_cross_entropy  sigmoid outputs, binary cross-entropy targets: 0/1 values (n, k)   (multilabel)
    poisson               exp outputs, half Poisson deviance    targets: counts >= 0 (n, k)  (regression)

Each loss takes the logits Z (n, k) and the targets, and returns the mean loss over the rows (a 0-d
array: no host synchronisation) together with dL/dZ. Fusing the output non-linearity with the loss
is what makes the gradient simple (output - target for the three canonical pairs) and the loss
finite for logits of any size. `CLASS_LOSSES` take class indices and report an accuracy;
`VALUE_LOSSES` take a float target matrix in the model's dtype.
"""

from __future__ import annotations

from collections.abc import Callable

from ._array_api import Array, Device, DType, Namespace


def one_hot(y: Array, n_classes: int, *, xp: Namespace, dtype: DType) -> Array:
    """(n,) integer indices -> (n, K) array of 0/1 in `dtype`."""
    classes = xp.arange(n_classes, dtype=y.dtype, device=_device(y))
    return xp.astype(y[:, None] == classes[None, :], dtype)


def log_softmax(Z: Array, *, xp: Namespace) -> Array:
    shifted = Z - xp.max(Z, axis=1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))


def softmax(Z: Array, *, xp: Namespace) -> Array:
    shifted = xp.exp(Z - xp.max(Z, axis=1, keepdims=True))
    return shifted / xp.sum(shifted, axis=1, keepdims=True)


def log_sigmoid(Z: Array, *, xp: Namespace) -> Array:
    """log(sigmoid(Z)) = -softplus(-Z), finite for any Z: `min(Z, 0) - log1p(exp(-|Z|))`."""
    return xp.minimum(Z, 0.0) - xp.log1p(xp.exp(-xp.abs(Z)))


def softmax_cross_entropy(
    Z: Array, y: Array, *, xp: Namespace, label_smoothing: float = 0.0, row_weights: Array | None = None
) -> tuple[Array, Array]:
    """Mean of -log softmax(Z)[y] and its gradient (softmax(Z) - onehot(y)) / n.

    label_smoothing e: the target is (1 - e) onehot(y) + e / K (Szegedy et al. 2016), so the loss is
    the mean of -sum_k target_k log softmax(Z)_k and the gradient (softmax(Z) - target) / n."""
    n, k = Z.shape
    target = one_hot(y, k, xp=xp, dtype=Z.dtype)
    logp = log_softmax(Z, xp=xp)
    if row_weights is not None:
        loss, dZ = _weighted(-xp.sum(logp * target, axis=1), xp.exp(logp) - target, row_weights, xp=xp)
        if label_smoothing:
            loss, dZ = smooth_labels(Z, y, loss, dZ, label_smoothing, 1.0, xp=xp, row_weights=row_weights)
        return loss, dZ
    loss_sum = -xp.sum(logp * target)
    dZ = (xp.exp(logp) - target) / n
    if label_smoothing:
        loss_sum, dZ = smooth_labels(Z, y, loss_sum, dZ, label_smoothing, 1.0 / n, xp=xp)
    return loss_sum / n, dZ


def smooth_labels(
    Z: Array,
    y: Array,
    loss_sum: Array,
    dZ: Array,
    smoothing: float,
    scale: float,
    *,
    xp: Namespace,
    row_weights: Array | None = None,
) -> tuple[Array, Array]:
    """Turn softmax cross-entropy's loss sum and gradient dZ = (softmax(Z) - onehot(y)) * scale into
    those of the smoothed targets t = (1 - e) onehot(y) + e / K: per row the loss gains
    e * (Z[y] - mean(Z)) and dZ becomes (softmax(Z) - t) * scale = dZ + e * scale * (onehot - 1 / K).
    Every engine calls this one function (the Numba engine on its kernel's results).

    row_weights (n,): the loss sum and the gradient were weighted per row (row i's loss counted
    row_weights[i] times, its gradient scaled by row_weights[i] * scale); the smoothing terms are too."""
    k = Z.shape[1]
    onehot = one_hot(y, k, xp=xp, dtype=Z.dtype)
    if row_weights is not None:
        w = xp.astype(row_weights, Z.dtype)
        loss_sum = loss_sum + smoothing * xp.sum(w * (xp.sum(onehot * Z, axis=1) - xp.sum(Z, axis=1) / k))
        return loss_sum, dZ + (smoothing * scale) * (w[:, None] * (onehot - 1.0 / k))
    loss_sum = loss_sum + smoothing * (xp.sum(onehot * Z) - xp.sum(Z) / k)
    return loss_sum, dZ + (smoothing * scale) * (onehot - 1.0 / k)


def sigmoid_mse(
    Z: Array, y: Array, *, xp: Namespace, row_weights: Array | None = None
) -> tuple[Array, Array]:
    """Mean over rows of 0.5 * ||sigmoid(Z) - onehot(y)||^2 and its gradient with respect to Z."""
    from .activations import sigmoid

    n, k = Z.shape
    target = one_hot(y, k, xp=xp, dtype=Z.dtype)
    A = sigmoid(Z, xp=xp)
    diff = A - target
    if row_weights is not None:
        return _weighted(0.5 * xp.sum(diff * diff, axis=1), diff * A * (1.0 - A), row_weights, xp=xp)
    loss = 0.5 * xp.sum(diff * diff) / n
    dZ = diff * A * (1.0 - A) / n
    return loss, dZ


def squared_error(
    Z: Array, Y: Array, *, xp: Namespace, row_weights: Array | None = None
) -> tuple[Array, Array]:
    """Identity outputs: mean over rows of 0.5 * ||Z - Y||^2 and its gradient (Z - Y) / n.

    Y (n, k) real targets in Z's dtype. For one output this is scikit-learn's squared loss; for k
    outputs scikit-learn reports the mean over the k columns as well (its gradient is this one)."""
    n = Z.shape[0]
    diff = Z - Y
    if row_weights is not None:
        return _weighted(0.5 * xp.sum(diff * diff, axis=1), diff, row_weights, xp=xp)
    return 0.5 * xp.sum(diff * diff) / n, diff / n


def sigmoid_binary_cross_entropy(
    Z: Array, Y: Array, *, xp: Namespace, row_weights: Array | None = None
) -> tuple[Array, Array]:
    """Sigmoid outputs, one binary cross-entropy per column (multilabel; one column for two
    classes): mean over rows of -sum_k [Y log s(Z) + (1 - Y) log(1 - s(Z))], gradient
    (sigmoid(Z) - Y) / n. Y (n, k) in [0, 1]. Written with log-sigmoids, so finite for any Z."""
    from .activations import sigmoid

    n = Z.shape[0]
    # log s(z) = log_sigmoid(z), log(1 - s(z)) = log_sigmoid(z) - z
    log_s = log_sigmoid(Z, xp=xp)
    if row_weights is not None:
        per_row = -xp.sum(Y * log_s + (1.0 - Y) * (log_s - Z), axis=1)
        return _weighted(per_row, sigmoid(Z, xp=xp) - Y, row_weights, xp=xp)
    loss = -xp.sum(Y * log_s + (1.0 - Y) * (log_s - Z)) / n
    return loss, (sigmoid(Z, xp=xp) - Y) / n


def exp_poisson(
    Z: Array, Y: Array, *, xp: Namespace, row_weights: Array | None = None
) -> tuple[Array, Array]:
    """Exp outputs (the predicted mean is exp(Z)), half Poisson deviance: mean over rows of
    sum_k [xlogy(Y, Y) - Y - Y Z + exp(Z)], gradient (exp(Z) - Y) / n. Y (n, k) >= 0.

    scikit-learn's poisson loss (MLPRegressor(loss="poisson"): sum over the outputs of the mean over
    the rows of xlogy(y, y / mu) - y + mu, mu = exp(z)), written with log mu = Z so that it stays
    finite where exp(Z) underflows to 0; xlogy(y, y) is 0 for y = 0 (the limit)."""
    n = Z.shape[0]
    mu = xp.exp(Z)
    positive = Y > 0
    y_log_y = xp.where(positive, Y * xp.log(xp.where(positive, Y, xp.ones_like(Y))), xp.zeros_like(Y))
    if row_weights is not None:
        return _weighted(xp.sum(y_log_y - Y - Y * Z + mu, axis=1), mu - Y, row_weights, xp=xp)
    loss = xp.sum(y_log_y - Y - Y * Z + mu) / n
    return loss, (mu - Y) / n


def _weighted(row_losses: Array, dZ_rows: Array, row_weights: Array, *, xp: Namespace) -> tuple[Array, Array]:
    """The weighted form of a loss: sum_i row_weights[i] * row_losses[i] (a 0-d array) and the
    gradient rows dZ_rows[i] scaled by row_weights[i]. With row_weights = w / sum(w) this is the
    weighted mean sum_i w_i l_i / sum_i w_i and its gradient (`mlp.fit`'s sample_weight)."""
    w = xp.astype(row_weights, row_losses.dtype)
    return xp.sum(w * row_losses), dZ_rows * w[:, None]


def output_probabilities(Z: Array, loss: str, *, xp: Namespace) -> Array:
    """Class probabilities from logits: softmax for cross-entropy, normalised sigmoids for MSE,
    the sigmoid of each output for binary cross-entropy (each column its own probability)."""
    if loss == "cross_entropy":
        return softmax(Z, xp=xp)
    from .activations import sigmoid

    A = sigmoid(Z, xp=xp)
    if loss == "binary_cross_entropy":
        return A
    if loss != "mse":
        raise ValueError(f"a model trained with loss={loss!r} gives values, not class probabilities")
    return A / xp.sum(A, axis=1, keepdims=True)


def output_values(Z: Array, loss: str, *, xp: Namespace) -> Array:
    """What the network outputs for logits Z: the values themselves for squared_error, exp(Z) for
    poisson (the predicted means), else the probabilities of `output_probabilities`."""
    if loss == "poisson":
        return xp.exp(Z)
    return Z if loss == "squared_error" else output_probabilities(Z, loss, xp=xp)


LOSSES: dict[str, Callable[..., tuple[Array, Array]]] = {
    "cross_entropy": softmax_cross_entropy,
    "mse": sigmoid_mse,
    "squared_error": squared_error,
    "binary_cross_entropy": sigmoid_binary_cross_entropy,
    "poisson": exp_poisson,
}
CLASS_LOSSES = frozenset({"cross_entropy", "mse"})  # targets: class indices; an accuracy is reported
# targets: a float matrix (n, k)
VALUE_LOSSES = frozenset({"squared_error", "binary_cross_entropy", "poisson"})
# the outputs are values (identity, exp): predict gives them, score is R^2
REGRESSION_LOSSES = frozenset({"squared_error", "poisson"})
OUTPUT_ACTIVATIONS = {
    "cross_entropy": "softmax",
    "mse": "sigmoid",
    "squared_error": "identity",
    "binary_cross_entropy": "sigmoid",
    "poisson": "exp",
}


def takes_class_indices(loss: str) -> bool:
    """Whether `loss` trains on class indices (and reports an accuracy), not on a target matrix."""
    return loss in CLASS_LOSSES


def get_loss(name: str) -> Callable[..., tuple[Array, Array]]:
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(map(repr, LOSSES))}") from None


def _device(x: Array) -> Device:
    from ._array_api import array_device

    return array_device(x)
