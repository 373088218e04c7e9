"""Dense layers and the whole-network forward and backward passes (pure functions of arrays).

Shapes: X (n, d); W (fan_in, fan_out); b (fan_out,). Forward is Z = X @ W + b.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from ._array_api import Array, Namespace, Params, assign
from .activations import get_activation
from .losses import get_loss


def dense_forward(A_prev: Array, W: Array, b: Array, *, xp: Namespace) -> Array:
    return A_prev @ W + b


def dense_backward(
    dZ: Array, A_prev: Array, W: Array, *, xp: Namespace, need_input_grad: bool = True
) -> tuple[Array | None, Array, Array]:
    """Gradients of a dense layer: (dA_prev or None, dW, db)."""
    dW = xp.matrix_transpose(A_prev) @ dZ
    db = xp.sum(dZ, axis=0)
    dA_prev = dZ @ xp.matrix_transpose(W) if need_input_grad else None
    return dA_prev, dW, db


def forward(
    params: Params, X: Array, activation: str, *, xp: Namespace, dropout_masks: Sequence[Array] | None = None
) -> tuple[Array, list[Array], list[Array]]:
    """Run the network. Return (logits, inputs, outputs): inputs[l] is what layer l received (X, or
    hidden layer l-1's output after dropout); outputs[l] is hidden layer l's activation before dropout,
    which is what the activation's derivative needs."""
    act, _ = get_activation(activation)
    inputs, outputs = [X], []
    for layer, (W, b) in enumerate(params[:-1]):
        A = act(dense_forward(inputs[-1], W, b, xp=xp), xp=xp)
        outputs.append(A)
        inputs.append(A * dropout_masks[layer] if dropout_masks is not None else A)
    W, b = params[-1]
    return dense_forward(inputs[-1], W, b, xp=xp), inputs, outputs


def backward(
    params: Params,
    inputs: Sequence[Array],
    outputs: Sequence[Array],
    dZ: Array,
    activation: str,
    *,
    xp: Namespace,
    dropout_masks: Sequence[Array] | None = None,
) -> Params:
    """Back-propagate dL/dlogits through the network; return [(dW, db), ...] per layer."""
    _, act_backward = get_activation(activation)
    grads: list[tuple[Array, Array] | None] = [None] * len(params)
    for layer in range(len(params) - 1, -1, -1):
        W, _ = params[layer]
        dA_prev, dW, db = dense_backward(dZ, inputs[layer], W, xp=xp, need_input_grad=layer > 0)
        grads[layer] = (dW, db)
        if layer > 0:
            if dropout_masks is not None:
                dA_prev = dA_prev * dropout_masks[layer - 1]
            dZ = act_backward(dA_prev, outputs[layer - 1], xp=xp)
    return cast("Params", grads)  # every layer filled in


def l2_penalty(params: Params, l2: float, *, xp: Namespace) -> Array:
    """(l2 / 2) * sum of squared weights (biases are not penalised), as a 0-d array."""
    total = 0.0
    for W, _ in params:
        total = total + xp.sum(W * W)
    return 0.5 * l2 * total


def loss_and_gradients(
    params: Params,
    X: Array,
    y: Array,
    *,
    activation: str,
    loss: str,
    l2: float = 0.0,
    xp: Namespace,
    dropout_masks: Sequence[Array] | None = None,
    label_smoothing: float = 0.0,
    row_weights: Array | None = None,
) -> tuple[Array, Params, Array]:
    """Mean loss (0-d array, L2 term included) and per-layer gradients for integer labels y
    (label_smoothing: cross_entropy's smoothed targets, see `mlp.losses.softmax_cross_entropy`).

    row_weights (n,): the loss is sum_i row_weights[i] * loss_i instead of the mean (w / sum(w): the
    weighted mean of `mlp.fit`'s sample_weight); the L2 term is added as it is."""
    logits, inputs, outputs = forward(params, X, activation, xp=xp, dropout_masks=dropout_masks)
    weighted = {} if row_weights is None else {"row_weights": row_weights}
    if label_smoothing:
        if loss != "cross_entropy":
            raise ValueError(f"label_smoothing works with loss='cross_entropy' only, not {loss!r}")
        value, dZ = get_loss(loss)(logits, y, xp=xp, label_smoothing=label_smoothing, **weighted)
    else:
        value, dZ = get_loss(loss)(logits, y, xp=xp, **weighted)
    grads = backward(params, inputs, outputs, dZ, activation, xp=xp, dropout_masks=dropout_masks)
    if l2:
        value = value + l2_penalty(params, l2, xp=xp)
        grads = [(dW + l2 * W, db) for (dW, db), (W, _) in zip(grads, params, strict=True)]
    return value, grads, logits


def max_norm(params: Params, limit: float, *, xp: Namespace) -> Params:
    """The max-norm constraint (Srivastava et al. 2014): every hidden unit's incoming weight vector (a
    column of a hidden layer's W) is scaled down to Euclidean norm `limit` when longer. The output
    layer is left free. Call after each optimizer step.

    Returns the constrained parameters. The weights are written in place where their library allows
    it (NumPy, CuPy, PyTorch, array-api-strict: the same arrays come back); for immutable arrays
    (JAX) they are new arrays, so rebind: `params = max_norm(params, limit, xp=xp)`."""
    constrained = []
    for W, b in params[:-1]:
        norms = xp.sqrt(xp.sum(W * W, axis=0))
        scaled = W * (limit / xp.clip(norms, min=limit))  # 1 exactly where the norm is within the limit
        constrained.append((assign(W, scaled, xp=xp), b))
    return [*constrained, *params[-1:]]
