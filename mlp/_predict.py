"""The prediction path of a NumPy model: `mlp.layers.forward`'s products and elementwise steps in the
same order, so the same bits, without the generic path's per-call costs (the array-API wrapper, a
temporary per bias and activation, a finiteness check through a boolean copy of X).

`takes(params, X)` says whether X goes this way as it is; `all_finite(X)` is the check the generic
path makes, `forward(params, X, activation, xp=...)` the logits of one chunk of rows. With Numba
(`mlp_kernels`) a hidden layer's bias and relu, leaky_relu or identity is one pass in place and the
finiteness check one read of X; without it NumPy's in-place operations do the same arithmetic. Batch
normalisation (running statistics) is NumPy's in-place steps in the generic path's order; its beta
joins the activation's pass when the norm comes first. The kernels are used once Numba has loaded them
in this process (`mlp_kernels.warmup`, which every fit with the Numba engine runs): the first kernel a
process loads costs about 0.5 s of Numba's start-up, more than a one-off prediction should pay.
Measured (bench/test_predict.py, bench/RESULTS.md "Prediction"): 10 000 MNIST rows through
784-128-64-10 cost what the three matrix products alone cost, one row a few microseconds more.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from ._array_api import Namespace, Params
from ._memory import PREDICT_BUDGET, prediction_row_bytes
from .activations import get_activation
from .layers import BATCH_NORM_EPS, Norm

try:  # Numba is optional: without it the same arithmetic in NumPy's in-place operations
    from mlp_kernels import ACTIVATION_CODES
    from mlp_kernels import unchecked as _kernels
except ImportError:
    ACTIVATION_CODES, _kernels = {}, None

# The activations whose kernel rounds as mlp.activations does on NumPy (sigmoid and tanh do not).
IN_PLACE = ("identity", "relu", "leaky_relu")
_loaded = False  # whether Numba has loaded the kernels in this process (then it stays so)


def _ready_kernels() -> Any:
    """`mlp_kernels.unchecked` once Numba has loaded its kernels in this process, else None."""
    global _loaded
    if not _loaded and _kernels is not None:
        _loaded = bool(_kernels.all_finite.signatures)
    return _kernels if _loaded else None


def takes(params: Params, X: Any) -> bool:
    """True when X is a plain NumPy array (no memmap or other subclass) that the network's NumPy
    parameters take as it is: 2-D, at least one row, the parameters' dtype and input width. Anything
    else goes through `check_features` first (conversions, and its messages for bad input)."""
    W = params[0][0]
    return (
        type(X) is np.ndarray
        and type(W) is np.ndarray
        and X.ndim == 2
        and X.dtype == W.dtype
        and X.shape[0] > 0
        and X.shape[1] == W.shape[0]
    )


def one_dtype(params: Params, norms: Sequence[Norm]) -> bool:
    """True when every parameter and norm array has the first weight's dtype. The path's in-place steps
    keep A's dtype, where the generic path would promote to a wider bias or norm. (Plain loops: this
    runs on every call, and generators cost a one-row prediction more.)"""
    dtype = params[0][0].dtype
    for W, b in params:
        if W.dtype != dtype or b.dtype != dtype:
            return False
    for norm in norms:
        for a in norm:
            if a.dtype != dtype:
                return False
    return True


def all_finite(X: np.ndarray) -> bool:
    """True when X holds no NaN or infinity (one read of X with Numba, for a C-contiguous X)."""
    kernels = _ready_kernels()
    if kernels is not None and X.flags.c_contiguous:
        return bool(kernels.all_finite(X))
    return bool(np.isfinite(X).all())


@lru_cache(maxsize=64)
def chunk_rows(layer_sizes: tuple[int, ...], dtype: str) -> int:
    """Rows per forward pass: as many as fit in about PREDICT_BUDGET bytes of activations, without the
    generic path's cap of 8192 rows. Each product waits for its slowest BLAS thread, and on a busy
    machine that wait comes per product: 10 000 MNIST rows in one pass took 60 ms against 95 ms in
    passes of 8192 and 1808 rows, interleaved in one run (two cores, load average 6)."""
    return max(1, PREDICT_BUDGET // prediction_row_bytes(layer_sizes, dtype))


def forward(
    params: Params,
    X: np.ndarray,
    activation: str,
    *,
    xp: Namespace,
    batch_norm: str | None = None,
    norms: Sequence[Norm] = (),
) -> np.ndarray:
    """The logits of X (rows, n_outputs): Z = A @ W, then the bias, activation and normalisation (with
    the running statistics, `batch_norm` "before" or "after" the activation) in place, layer by layer;
    the last layer A @ W + b. (Written out flat: for one row each Python step is a few percent.)"""
    kernels = _ready_kernels()
    code = ACTIVATION_CODES[activation] if kernels is not None and activation in IN_PLACE else None
    A = X
    for layer, (W, b) in enumerate(params[:-1]):
        A = A @ W
        if batch_norm == "before":  # act(gamma * ((A + b - mean) * inv_std) + beta)
            A += b
            A = _add_bias_activate(_scale_by_norm(A, norms[layer], xp), norms[layer][1], activation, code, xp)
        elif batch_norm == "after":  # gamma * ((act(A + b) - mean) * inv_std) + beta
            A = _scale_by_norm(_add_bias_activate(A, b, activation, code, xp), norms[layer], xp)
            A += norms[layer][1]
        else:
            A = _add_bias_activate(A, b, activation, code, xp)
    W, b = params[-1]
    identity = ACTIVATION_CODES["identity"] if kernels is not None else None
    return _add_bias_activate(A @ W, b, "identity", identity, xp)


def _add_bias_activate(
    A: np.ndarray, b: np.ndarray, activation: str, code: int | None, xp: Namespace
) -> np.ndarray:
    """act(A + b): in place in one pass where a kernel rounds as NumPy (`code`), else NumPy's steps."""
    if code is not None and b.dtype == A.dtype:
        _kernels.bias_activation_forward(A, b, code)
        return A
    A += b
    return get_activation(activation)[0](A, xp=xp)


def _scale_by_norm(A: np.ndarray, norm: Norm, xp: Namespace) -> np.ndarray:
    """In place A = gamma * ((A - running_mean) * inv_std): `mlp.layers.batch_norm_forward`'s steps with
    the running statistics, in its order (so its bits), up to adding beta."""
    gamma, _, running_mean, running_var = norm
    A -= running_mean
    A *= 1.0 / xp.sqrt(running_var + BATCH_NORM_EPS)
    A *= gamma
    return A
