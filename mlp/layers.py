"""Dense layers, batch normalisation, and the whole-network forward and backward passes (pure
functions of arrays).

Shapes: X (n, d); W (fan_in, fan_out); b (fan_out,). Forward is Z = X @ W + b.

A hidden layer is a short list of steps (`hidden_steps`): dense, then the activation, with batch
normalisation before or after it when the network has it (`batch_norm` "before" or "after"), then
dropout. The output layer is dense only. Backward walks the same steps in reverse.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from ._array_api import Array, Namespace, Params, assign
from .activations import get_activation
from .losses import get_loss

BATCH_NORM_EPS = 1e-5  # added to the variance (PyTorch's default); the C++ port's kBatchNormEps
BATCH_NORM_MOMENTUM = 0.1  # running = (1 - m) * running + m * batch statistic (PyTorch's convention)
BATCH_NORM_PLACEMENTS = ("before", "after")  # normalise the pre-activation, or the activation's output

# One hidden layer's batch normalisation: (gamma, beta, running_mean, running_var), each (width,).
Norm = tuple[Array, Array, Array, Array]
Norms = list[Norm]


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


# ---- batch normalisation ----------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchStatistics:
    """A training step's global batch, as batch normalisation sees it.

    Parameters
    ----------
    rows
        N, the rows of the global batch (every MPI rank's together). With N >= 2 each hidden layer
        is normalised with the batch's mean and (biased) variance and the running statistics are
        updated; with N == 1 the running statistics are used and kept.
    momentum
        Of the running statistics' update.
    batch_sum
        The per-column sum of an (n, k) array over the global batch's rows, a (k,) array (None:
        over these rows, ``xp.sum(A, axis=0)``; over MPI, that sum summed over the ranks).
    share
        This part's rows / N (1 on one process): the gradients here are means over this part's
        rows, which the MPI reduction weighs by `share`; batch normalisation's backward mixes the
        parts, so it works on the global scale in between.
    """

    rows: int
    momentum: float = BATCH_NORM_MOMENTUM
    batch_sum: Callable[[Array], Array] | None = None
    share: float = 1.0

    def column_sum(self, A: Array, *, xp: Namespace) -> Array:
        return xp.sum(A, axis=0) if self.batch_sum is None else self.batch_sum(A)


@dataclass(frozen=True)
class NormCache:
    """What batch normalisation's backward needs of its forward: the normalised input Hhat,
    1 / sqrt(var + eps), gamma, and whether the batch's own statistics were used."""

    normalised: Array
    inv_std: Array
    gamma: Array
    batch: bool


def batch_norm_forward(
    H: Array, norm: Norm, *, xp: Namespace, statistics: BatchStatistics | None = None
) -> tuple[Array, NormCache, Norm]:
    """Y = gamma * (H - mean) / sqrt(var + eps) + beta for H (n, k); returns (Y, cache, norm after).

    statistics None (inference) or a batch of one row: the running statistics, the norm kept.
    Else the batch's mean and biased variance (two passes, each a `statistics.column_sum`), and the
    norm returned with new running statistics (the unbiased variance N / (N - 1), as PyTorch)."""
    gamma, beta, running_mean, running_var = norm
    if statistics is None or statistics.rows < 2:
        inv_std = 1.0 / xp.sqrt(running_var + BATCH_NORM_EPS)
        Hhat = (H - running_mean) * inv_std
        return gamma * Hhat + beta, NormCache(Hhat, inv_std, gamma, batch=False), norm
    N, m = statistics.rows, statistics.momentum
    mean = statistics.column_sum(H, xp=xp) / N
    centred = H - mean
    var = statistics.column_sum(centred * centred, xp=xp) / N
    inv_std = 1.0 / xp.sqrt(var + BATCH_NORM_EPS)
    Hhat = centred * inv_std
    updated = (
        gamma,
        beta,
        (1.0 - m) * running_mean + m * mean,
        (1.0 - m) * running_var + m * (N / (N - 1)) * var,
    )
    return gamma * Hhat + beta, NormCache(Hhat, inv_std, gamma, batch=True), updated


def batch_norm_backward(
    dY: Array, cache: NormCache, *, xp: Namespace, statistics: BatchStatistics | None = None
) -> tuple[Array, Array, Array]:
    """(dH, dgamma, dbeta) from dY (n, k). dgamma and dbeta are sums over these rows (reduced over MPI
    with the other gradients); with batch statistics dH also needs the global sums of dY and
    dY * Hhat (one `column_sum` of both, side by side)."""
    Hhat, inv_std, gamma = cache.normalised, cache.inv_std, cache.gamma
    dgamma, dbeta = xp.sum(dY * Hhat, axis=0), xp.sum(dY, axis=0)
    if not cache.batch or statistics is None:
        return dY * (gamma * inv_std), dgamma, dbeta
    N, share, k = statistics.rows, statistics.share, Hhat.shape[1]
    sums = statistics.column_sum(xp.concat([dY, dY * Hhat], axis=1) * share, xp=xp)  # the global scale
    to_part = 1.0 / share if share > 0 else 0.0  # back to this part's scale (an empty part has no rows)
    dH = (gamma * inv_std) * (dY - (sums[:k] / N + Hhat * (sums[k:] / N)) * to_part)
    return dH, dgamma, dbeta


def hidden_steps(batch_norm: str | None) -> tuple[str, ...]:
    """A hidden layer's steps after its dense part and before dropout: "act" and "norm" in order."""
    if batch_norm is None:
        return ("act",)
    if batch_norm not in BATCH_NORM_PLACEMENTS:
        raise ValueError(f"batch_norm must be None, 'before' or 'after', got {batch_norm!r}")
    return ("norm", "act") if batch_norm == "before" else ("act", "norm")


def initial_norms(widths: Sequence[int], *, xp: Namespace, dtype: object, device: object) -> Norms:
    """gamma = 1, beta = 0, running_mean = 0, running_var = 1 for hidden layers of these widths."""
    return [
        (
            xp.ones((k,), dtype=dtype, device=device),
            xp.zeros((k,), dtype=dtype, device=device),
            xp.zeros((k,), dtype=dtype, device=device),
            xp.ones((k,), dtype=dtype, device=device),
        )
        for k in widths
    ]


# ---- the network ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ForwardPass:
    """What `forward_pass` computes: logits; inputs[l], what layer l received (X, or hidden layer
    l-1's output after dropout); outputs[l], hidden layer l's activation output (what the
    activation's derivative needs); normalised[l], its batch normalisation's cache (none without);
    norms, the norms after the pass (new running statistics when batch statistics were used)."""

    logits: Array
    inputs: list[Array]
    outputs: list[Array]
    normalised: list[NormCache]
    norms: Norms


def forward_pass(
    params: Params,
    X: Array,
    activation: str,
    *,
    xp: Namespace,
    dropout_masks: Sequence[Array] | None = None,
    batch_norm: str | None = None,
    norms: Sequence[Norm] = (),
    statistics: BatchStatistics | None = None,
) -> ForwardPass:
    """Run the network. batch_norm None, "before" or "after" with `norms`, one per hidden layer;
    statistics None: inference (running statistics), else a training step (`BatchStatistics`)."""
    act, _ = get_activation(activation)
    steps = hidden_steps(batch_norm)
    if batch_norm is not None and len(norms) != len(params) - 1:
        raise ValueError(f"batch_norm needs one norm per hidden layer, {len(params) - 1}; got {len(norms)}")
    inputs, outputs, caches, after = [X], [], [], []
    for layer, (W, b) in enumerate(params[:-1]):
        H = dense_forward(inputs[-1], W, b, xp=xp)
        for step in steps:
            if step == "act":
                H = act(H, xp=xp)
                outputs.append(H)
            else:
                H, cache, norm = batch_norm_forward(H, norms[layer], xp=xp, statistics=statistics)
                caches.append(cache)
                after.append(norm)
        inputs.append(H * dropout_masks[layer] if dropout_masks is not None else H)
    W, b = params[-1]
    return ForwardPass(dense_forward(inputs[-1], W, b, xp=xp), inputs, outputs, caches, after)


def forward(
    params: Params,
    X: Array,
    activation: str,
    *,
    xp: Namespace,
    dropout_masks: Sequence[Array] | None = None,
    batch_norm: str | None = None,
    norms: Sequence[Norm] = (),
    statistics: BatchStatistics | None = None,
) -> tuple[Array, list[Array], list[Array]]:
    """`forward_pass`'s (logits, inputs, outputs); with batch_norm and no statistics, inference."""
    done = forward_pass(
        params,
        X,
        activation,
        xp=xp,
        dropout_masks=dropout_masks,
        batch_norm=batch_norm,
        norms=norms,
        statistics=statistics,
    )
    return done.logits, done.inputs, done.outputs


def backward(
    params: Params,
    inputs: Sequence[Array],
    outputs: Sequence[Array],
    dZ: Array,
    activation: str,
    *,
    xp: Namespace,
    dropout_masks: Sequence[Array] | None = None,
    batch_norm: str | None = None,
    normalised: Sequence[NormCache] = (),
    statistics: BatchStatistics | None = None,
) -> Params:
    """Back-propagate dL/dlogits through the network; return [(dW, db), ...] per layer, followed
    with batch normalisation by [(dgamma, dbeta), ...] per hidden layer (the optimizer's order)."""
    _, act_backward = get_activation(activation)
    steps = hidden_steps(batch_norm)[::-1]
    grads: list[tuple[Array, Array] | None] = [None] * len(params)
    norm_grads: list[tuple[Array, Array] | None] = [None] * len(normalised)
    for layer in range(len(params) - 1, -1, -1):
        W, _ = params[layer]
        dA, dW, db = dense_backward(dZ, inputs[layer], W, xp=xp, need_input_grad=layer > 0)
        grads[layer] = (dW, db)
        if layer == 0:
            break
        if dropout_masks is not None:
            dA = dA * dropout_masks[layer - 1]
        for step in steps:
            if step == "act":
                dA = act_backward(dA, outputs[layer - 1], xp=xp)
            else:
                dA, dgamma, dbeta = batch_norm_backward(
                    dA, normalised[layer - 1], xp=xp, statistics=statistics
                )
                norm_grads[layer - 1] = (dgamma, dbeta)
        dZ = dA
    return cast("Params", grads + norm_grads)  # every entry filled in


def l2_penalty(params: Params, l2: float, *, xp: Namespace) -> Array:
    """(l2 / 2) * sum of squared weights (biases are not penalised), as a 0-d array."""
    total = 0.0
    for W, _ in params:
        total = total + xp.sum(W * W)
    return 0.5 * l2 * total


@dataclass(frozen=True)
class Backprop:
    """What `backprop` computes: the loss (0-d, L2 term included), the gradients ([(dW, db), ...]
    then [(dgamma, dbeta), ...] with batch normalisation), the logits, and the norms after the pass
    (new running statistics in a training step with batch statistics)."""

    value: Array
    grads: Params
    logits: Array
    norms: Norms


def backprop(
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
    batch_norm: str | None = None,
    norms: Sequence[Norm] = (),
    statistics: BatchStatistics | None = None,
) -> Backprop:
    """Forward, loss and backward: the mean loss (0-d array, L2 term included), gradients and logits
    for integer labels y (label_smoothing: cross_entropy's smoothed targets, see
    `mlp.losses.softmax_cross_entropy`), and the norms after the pass.

    row_weights (n,): the loss is sum_i row_weights[i] * loss_i instead of the mean (w / sum(w): the
    weighted mean of `mlp.fit`'s sample_weight); the L2 term is added as it is.

    The gradients: [(dW, db), ...] per layer, then with batch_norm [(dgamma, dbeta), ...] per hidden
    layer. statistics: None normalises with the running statistics (inference), else with the batch's
    (`BatchStatistics`; the new running statistics come back in `Backprop.norms`)."""
    done = forward_pass(
        params,
        X,
        activation,
        xp=xp,
        dropout_masks=dropout_masks,
        batch_norm=batch_norm,
        norms=norms,
        statistics=statistics,
    )
    weighted = {} if row_weights is None else {"row_weights": row_weights}
    if label_smoothing:
        if loss != "cross_entropy":
            raise ValueError(f"label_smoothing works with loss='cross_entropy' only, not {loss!r}")
        value, dZ = get_loss(loss)(done.logits, y, xp=xp, label_smoothing=label_smoothing, **weighted)
    else:
        value, dZ = get_loss(loss)(done.logits, y, xp=xp, **weighted)
    grads = backward(
        params,
        done.inputs,
        done.outputs,
        dZ,
        activation,
        xp=xp,
        dropout_masks=dropout_masks,
        batch_norm=batch_norm,
        normalised=done.normalised,
        statistics=statistics,
    )
    if l2:  # on the weights only: not the biases, not gamma and beta
        value = value + l2_penalty(params, l2, xp=xp)
        dense = [(dW + l2 * W, db) for (dW, db), (W, _) in zip(grads[: len(params)], params, strict=True)]
        grads = dense + grads[len(params) :]
    return Backprop(value, grads, done.logits, done.norms)


def loss_and_gradients(params: Params, X: Array, y: Array, **options: Any) -> tuple[Array, Params, Array]:
    """`backprop`'s loss, gradients and logits, for callers that need no norms: the same arguments
    (activation, loss, xp, and the optional l2, dropout_masks, label_smoothing, row_weights,
    batch_norm, norms, statistics)."""
    done = backprop(params, X, y, **options)
    return done.value, done.grads, done.logits


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
