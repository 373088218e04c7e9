"""Output layers fused with their losses: softmax + cross-entropy, sigmoid + mean squared error.

Each loss takes the logits Z (n, K) and integer class indices y (n,), and returns the mean loss over
the rows together with dL/dZ, in one pass. Fusing the output non-linearity with the loss is what makes
the gradient simple (softmax - onehot) and the loss finite for logits of any size.
"""
from __future__ import annotations


def one_hot(y, n_classes, *, xp, dtype):
    """(n,) integer indices -> (n, K) array of 0/1 in `dtype`."""
    classes = xp.arange(n_classes, dtype=y.dtype, device=_device(y))
    return xp.astype(y[:, None] == classes[None, :], dtype)


def log_softmax(Z, *, xp):
    shifted = Z - xp.max(Z, axis=1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))


def softmax(Z, *, xp):
    shifted = xp.exp(Z - xp.max(Z, axis=1, keepdims=True))
    return shifted / xp.sum(shifted, axis=1, keepdims=True)


def softmax_cross_entropy(Z, y, *, xp):
    """Mean of -log softmax(Z)[y] and its gradient (softmax(Z) - onehot(y)) / n.

    The loss is returned as a 0-d array in Z's namespace (no host synchronisation).
    """
    n, k = Z.shape
    target = one_hot(y, k, xp=xp, dtype=Z.dtype)
    logp = log_softmax(Z, xp=xp)
    loss = -xp.sum(logp * target) / n
    dZ = (xp.exp(logp) - target) / n
    return loss, dZ


def sigmoid_mse(Z, y, *, xp):
    """Mean over rows of 0.5 * ||sigmoid(Z) - onehot(y)||^2 and its gradient with respect to Z."""
    from .activations import sigmoid

    n, k = Z.shape
    target = one_hot(y, k, xp=xp, dtype=Z.dtype)
    A = sigmoid(Z, xp=xp)
    diff = A - target
    loss = 0.5 * xp.sum(diff * diff) / n
    dZ = diff * A * (1.0 - A) / n
    return loss, dZ


def output_probabilities(Z, loss, *, xp):
    """Class probabilities from logits: softmax for cross-entropy, normalised sigmoids for MSE."""
    if loss == "cross_entropy":
        return softmax(Z, xp=xp)
    from .activations import sigmoid

    A = sigmoid(Z, xp=xp)
    return A / xp.sum(A, axis=1, keepdims=True)


LOSSES = {"cross_entropy": softmax_cross_entropy, "mse": sigmoid_mse}


def get_loss(name):
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r}; choose 'cross_entropy' or 'mse'") from None


def _device(x):
    from ._array_api import array_device

    return array_device(x)
