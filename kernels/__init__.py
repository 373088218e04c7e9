"""Fused, allocation-free Numba kernels for the CPU hot loops of MLP training (import: ``mlp_kernels``).

Depends on NumPy and Numba only.  Every kernel writes into arrays the caller preallocated: all float
arrays of one call share one dtype (float32 or float64) and are C-contiguous; labels and indices are
int64.  The functions here check that (shapes, dtypes, contiguity, label and index ranges) and then
call the compiled body; ``mlp_kernels.unchecked`` holds the same bodies without the checks, for a
caller that validated its arrays once (the training engine does, once per fit).

Names say the contract.  Where the Python core (``mlp.losses``, ``mlp.optimizers``) or the C++ port
has a function of a similar name with another contract, the kernel's name differs:
``softmax_cross_entropy_sum`` returns the loss SUM and the correct count (``mlp.losses`` and the
C++ ``softmax_cross_entropy`` return the mean); the ``*_step_fused`` updates fold L2, clipping and
the global-norm scale into the step (the C++ ``adam_step`` is the plain update);
``processed_grad_sq_norm`` is the squared norm of those processed gradients.

Call ``warmup(dtype)`` before a training loop so compilation (first run, a few seconds) or loading
of the on-disk cache (later runs) happens up front.  Numba's cache only watches the source file of
each kernel: after editing ``_config.py`` or ``_math.py``, delete this folder's ``__pycache__``.
"""

import math
import time

import numpy as np

from . import unchecked as _k
from ._layers import ACTIVATION_CODES, IDENTITY, LEAKY_RELU, LEAKY_SLOPE, RELU, SIGMOID, TANH
from ._norm import BATCH_NORM_EPS

__all__ = [
    "ACTIVATION_CODES",
    "BATCH_NORM_EPS",
    "IDENTITY",
    "LEAKY_RELU",
    "LEAKY_SLOPE",
    "RELU",
    "SIGMOID",
    "TANH",
    "activation_backward",
    "adam_step_fused",
    "add_bias_activate",
    "all_finite",
    "augment_rows",
    "batch_norm_backward",
    "batch_norm_backward_sums",
    "batch_norm_centred_squares",
    "batch_norm_forward",
    "batch_norm_running_forward",
    "batch_norm_sums",
    "bias_activation_forward",
    "bias_gradient",
    "check_float_arrays",
    "dropout_backward",
    "dropout_forward",
    "exp_poisson_sum",
    "exp_poisson_sum_weighted",
    "gather_labels",
    "gather_rows",
    "momentum_step_fused",
    "processed_grad_sq_norm",
    "rmsprop_step_fused",
    "sgd_step_fused",
    "sigmoid_binary_cross_entropy_sum",
    "sigmoid_binary_cross_entropy_sum_weighted",
    "sigmoid_mse_sum",
    "sigmoid_mse_sum_weighted",
    "softmax_cross_entropy_sum",
    "softmax_cross_entropy_sum_weighted",
    "squared_error_sum",
    "squared_error_sum_weighted",
    "warmup",
]
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ---- checks ------------------------------------------------------------------------------------------
def check_float_arrays(ndim, **arrays):
    """Each array is a C-contiguous NumPy array of `ndim` dimensions; all share one float dtype
    (float32 or float64).  Returns that dtype; raises a TypeError/ValueError naming the argument."""
    dtype = None
    for name, array in arrays.items():
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array, got {type(array).__name__}")
        if array.ndim != ndim:
            raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}")
        if array.dtype not in _FLOATS:
            raise TypeError(f"{name} must be float32 or float64, got {array.dtype}")
        if dtype is not None and array.dtype != dtype:
            raise TypeError(
                f"{name} is {array.dtype} but the other arrays are {dtype}: use one dtype per call"
            )
        if not array.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous (np.ascontiguousarray({name}))")
        dtype = array.dtype
    return dtype


def _check_writable(**arrays):
    for name, array in arrays.items():
        if not array.flags.writeable:
            raise ValueError(f"{name} is read-only; the kernel writes into it")


def _check_int64(name, array, ndim=1):
    if not isinstance(array, np.ndarray) or array.dtype != np.int64 or array.ndim != ndim:
        raise TypeError(f"{name} must be a {ndim}-D int64 NumPy array")
    if not array.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (np.ascontiguousarray({name}))")


def _check_range(name, values, high):
    if values.size and (int(values.min()) < 0 or int(values.max()) >= high):
        raise ValueError(f"{name} holds values outside [0, {high}): {int(values.min())}..{int(values.max())}")


def _check_shape(name, array, shape):
    if array.shape != tuple(shape):
        raise ValueError(f"{name} has shape {array.shape}, expected {tuple(shape)}")


def _check_code(code):
    if isinstance(code, bool) or not isinstance(code, (int, np.integer)) or not IDENTITY <= code <= TANH:
        raise ValueError(
            f"unknown activation code {code!r}; use one of mlp_kernels.ACTIVATION_CODES {ACTIVATION_CODES}"
        )


def _check_scalar(name, value, *, low=None, high=None, low_inclusive=True):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if (
        math.isnan(value)
        or (low is not None and (value < low if low_inclusive else value <= low))
        or (high is not None and value > high)
    ):
        raise ValueError(f"{name} is out of range: {value!r}")


# ---- layers ------------------------------------------------------------------------------------------
def gather_rows(X, idx, out):
    """out[i, :] = X[idx[i], :].  X (N, D), idx int64 (B,), out (B, D)."""
    check_float_arrays(2, X=X, out=out)
    _check_int64("idx", idx)
    _check_shape("out", out, (idx.shape[0], X.shape[1]))
    _check_range("idx", idx, X.shape[0])
    _check_writable(out=out)
    _k.gather_rows(X, idx, out)


def gather_labels(y, idx, out):
    """out[i] = y[idx[i]].  y int64 (N,), idx int64 (B,), out int64 (B,)."""
    for name, array in (("y", y), ("idx", idx), ("out", out)):
        _check_int64(name, array)
    _check_shape("out", out, idx.shape)
    _check_range("idx", idx, y.shape[0])
    _check_writable(out=out)
    _k.gather_labels(y, idx, out)


def bias_activation_forward(Z, b, code):
    """In place Z = act(Z + b) row by row.  Z (B, H), b (H,), code one of ACTIVATION_CODES."""
    dtype = check_float_arrays(2, Z=Z)
    if check_float_arrays(1, b=b) != dtype:
        raise TypeError(f"b is {b.dtype} but Z is {dtype}: use one dtype per call")
    _check_shape("b", b, (Z.shape[1],))
    _check_code(code)
    _check_writable(Z=Z)
    _k.bias_activation_forward(Z, b, code)


def add_bias_activate(Z, b, code):
    """In place Z = act(Z + b) with NumPy's rounding and zeros (the prediction path): the kernel of
    `bias_activation_forward`, limited to the codes whose bits equal NumPy's.  Z (B, H), b (H,); code
    IDENTITY, RELU or LEAKY_RELU (sigmoid and tanh round otherwise than NumPy)."""
    dtype = check_float_arrays(2, Z=Z)
    if check_float_arrays(1, b=b) != dtype:
        raise TypeError(f"b is {b.dtype} but Z is {dtype}: use one dtype per call")
    _check_shape("b", b, (Z.shape[1],))
    if isinstance(code, bool) or code not in (IDENTITY, RELU, LEAKY_RELU):
        raise ValueError(f"add_bias_activate takes IDENTITY, RELU or LEAKY_RELU (0, 1, 2), got {code!r}")
    _check_writable(Z=Z)
    _k.bias_activation_forward(Z, b, code)


def all_finite(X):
    """True when no element of X (B, D), float32 or float64 and C-contiguous, is NaN or infinite."""
    check_float_arrays(2, X=X)
    return bool(_k.all_finite(X))


def activation_backward(dA, A, code, db=None):
    """In place dA *= act'(A) (written from the output A); with db (H,) also the bias gradient
    db = column sums of the new dA.  dA, A (B, H)."""
    check_float_arrays(2, dA=dA, A=A)
    _check_shape("A", A, dA.shape)
    _check_code(code)
    _check_writable(dA=dA)
    if db is not None:
        if check_float_arrays(1, db=db) != dA.dtype:
            raise TypeError(f"db is {db.dtype} but dA is {dA.dtype}: use one dtype per call")
        _check_shape("db", db, (dA.shape[1],))
        _check_writable(db=db)
    _k.activation_backward(dA, A, code, db)


def bias_gradient(dZ, db):
    """db[j] = sum_i dZ[i, j].  dZ (B, H), db (H,)."""
    dtype = check_float_arrays(2, dZ=dZ)
    if check_float_arrays(1, db=db) != dtype:
        raise TypeError(f"db is {db.dtype} but dZ is {dtype}: use one dtype per call")
    _check_shape("db", db, (dZ.shape[1],))
    _check_writable(db=db)
    _k.bias_gradient(dZ, db)


def dropout_forward(A, U, keep_prob):
    """Inverted dropout in place: U (uniforms in [0, 1)) becomes the mask (U < keep_prob) / keep_prob
    and A *= mask.  A (B, H) float32/float64, U (B, H) of the same or a wider float dtype."""
    check_float_arrays(2, A=A)
    check_float_arrays(2, U=U)
    _check_shape("U", U, A.shape)
    _check_scalar("keep_prob", keep_prob, low=0.0, high=1.0, low_inclusive=False)
    _check_writable(A=A, U=U)
    _k.dropout_forward(A, U, keep_prob)


def dropout_backward(dA, mask):
    """dA *= mask in place.  dA (B, H), mask (B, H) as left in U by dropout_forward."""
    check_float_arrays(2, dA=dA)
    check_float_arrays(2, mask=mask)
    _check_shape("mask", mask, dA.shape)
    _check_writable(dA=dA)
    _k.dropout_backward(dA, mask)


# ---- batch normalisation -----------------------------------------------------------------------------
def _check_columns(k, dtype, **vectors):
    """Each vector is a C-contiguous (k,) array of `dtype`."""
    if check_float_arrays(1, **vectors) != dtype:
        raise TypeError(
            f"the (k,) vectors are {next(iter(vectors.values())).dtype} but H is {dtype}: use one dtype per call"
        )
    for name, vector in vectors.items():
        _check_shape(name, vector, (k,))


def _check_rows(n_rows, least):
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or n_rows < least:
        raise ValueError(
            f"n_rows must be an integer >= {least} (the rows of the whole batch), got {n_rows!r}"
        )


def batch_norm_sums(H, sums):
    """sums[j] = sum_i H[i, j].  H (n, k), sums (k,)."""
    dtype = check_float_arrays(2, H=H)
    _check_columns(H.shape[1], dtype, sums=sums)
    _check_writable(sums=sums)
    _k.batch_norm_sums(H, sums)


def batch_norm_centred_squares(H, sums, n_rows, mean, squares):
    """mean = sums / n_rows; squares[j] = sum_i (H[i, j] - mean[j])**2.  H (n, k); sums (the column
    sums of all n_rows rows of the batch), mean, squares (k,)."""
    dtype = check_float_arrays(2, H=H)
    _check_columns(H.shape[1], dtype, sums=sums, mean=mean, squares=squares)
    _check_rows(n_rows, max(H.shape[0], 1))
    _check_writable(mean=mean, squares=squares)
    _k.batch_norm_centred_squares(H, sums, int(n_rows), mean, squares)


def batch_norm_forward(
    H, mean, squares, n_rows, gamma, beta, momentum, running_mean, running_var, inv, Hhat, Y, code
):
    """Normalise with the batch statistics of n_rows >= 2 rows: inv = 1 / sqrt(squares / n_rows +
    eps), Hhat = (H - mean) inv, Y = act(gamma Hhat + beta); the running statistics move with
    `momentum` in (0, 1] (the variance unbiased).  H, Hhat, Y (n, k); the rest (k,)."""
    dtype = check_float_arrays(2, H=H, Hhat=Hhat, Y=Y)
    for name, array in (("Hhat", Hhat), ("Y", Y)):
        _check_shape(name, array, H.shape)
    _check_columns(
        H.shape[1],
        dtype,
        mean=mean,
        squares=squares,
        gamma=gamma,
        beta=beta,
        running_mean=running_mean,
        running_var=running_var,
        inv=inv,
    )
    _check_rows(n_rows, max(H.shape[0], 2))
    _check_scalar("momentum", momentum, low=0.0, high=1.0, low_inclusive=False)
    _check_code(code)
    _check_writable(running_mean=running_mean, running_var=running_var, inv=inv, Hhat=Hhat, Y=Y)
    _k.batch_norm_forward(
        H,
        mean,
        squares,
        int(n_rows),
        gamma,
        beta,
        float(momentum),
        running_mean,
        running_var,
        inv,
        Hhat,
        Y,
        code,
    )


def batch_norm_running_forward(H, gamma, beta, running_mean, running_var, inv, Hhat, Y, code):
    """Normalise with the running statistics (left as they are): inv = 1 / sqrt(running_var + eps),
    Hhat = (H - running_mean) inv, Y = act(gamma Hhat + beta).  H, Hhat, Y (n, k); the rest (k,)."""
    dtype = check_float_arrays(2, H=H, Hhat=Hhat, Y=Y)
    for name, array in (("Hhat", Hhat), ("Y", Y)):
        _check_shape(name, array, H.shape)
    _check_columns(
        H.shape[1], dtype, gamma=gamma, beta=beta, running_mean=running_mean, running_var=running_var, inv=inv
    )
    _check_code(code)
    _check_writable(inv=inv, Hhat=Hhat, Y=Y)
    _k.batch_norm_running_forward(H, gamma, beta, running_mean, running_var, inv, Hhat, Y, code)


def batch_norm_backward_sums(dY, A, code, Hhat, dgamma, dbeta):
    """In place dY *= act'(A) (code IDENTITY: unchanged); dbeta = column sums of dY, dgamma = column
    sums of dY Hhat.  dY, A, Hhat (n, k); dgamma, dbeta (k,)."""
    dtype = check_float_arrays(2, dY=dY, A=A, Hhat=Hhat)
    for name, array in (("A", A), ("Hhat", Hhat)):
        _check_shape(name, array, dY.shape)
    _check_columns(dY.shape[1], dtype, dgamma=dgamma, dbeta=dbeta)
    _check_code(code)
    _check_writable(dY=dY, dgamma=dgamma, dbeta=dbeta)
    _k.batch_norm_backward_sums(dY, A, code, Hhat, dgamma, dbeta)


def batch_norm_backward(dY, Hhat, gamma, inv, S1, S2, inv_rows, A, code, dH, db):
    """dH = act'(A) gamma inv (dY - S1 inv_rows - Hhat S2 inv_rows) (dH may be dY; code IDENTITY: no
    act'), db = column sums of dH.  inv_rows = 1 / N for the batch statistics of N rows, 0.0 for the
    running statistics.  dY, Hhat, A, dH (n, k); gamma, inv, S1, S2, db (k,)."""
    dtype = check_float_arrays(2, dY=dY, Hhat=Hhat, A=A, dH=dH)
    for name, array in (("Hhat", Hhat), ("A", A), ("dH", dH)):
        _check_shape(name, array, dY.shape)
    _check_columns(dY.shape[1], dtype, gamma=gamma, inv=inv, S1=S1, S2=S2, db=db)
    _check_scalar("inv_rows", inv_rows, low=0.0, high=1.0)
    _check_code(code)
    _check_writable(dH=dH, db=db)
    _k.batch_norm_backward(dY, Hhat, gamma, inv, S1, S2, float(inv_rows), A, code, dH, db)


# ---- losses ------------------------------------------------------------------------------------------
def _check_loss_args(Z, y, scale, dZ):
    check_float_arrays(2, Z=Z, dZ=dZ)
    _check_shape("dZ", dZ, Z.shape)
    _check_int64("y", y)
    _check_shape("y", y, (Z.shape[0],))
    _check_range("y", y, Z.shape[1])
    _check_scalar("scale", scale)
    _check_writable(dZ=dZ)


def softmax_cross_entropy_sum(Z, y, scale, dZ):
    """Softmax + cross-entropy over logits Z (B, K) and labels y (B,): returns (loss SUM over the
    rows as a float64, number of rows whose first arg-max is the label) and writes
    dZ = (softmax(Z) - onehot(y)) * scale (dZ may be Z).  Pass scale = 1/B for the mean's gradient."""
    _check_loss_args(Z, y, scale, dZ)
    return _k.softmax_cross_entropy_sum(Z, y, scale, dZ)


def sigmoid_mse_sum(Z, y, scale, dZ):
    """Sigmoid outputs + squared error: returns (SUM over rows of 0.5 * sum_k (A_k - onehot_k)^2,
    correct count) and writes dZ = (A - onehot) * A * (1 - A) * scale."""
    _check_loss_args(Z, y, scale, dZ)
    return _k.sigmoid_mse_sum(Z, y, scale, dZ)


def squared_error_sum(Z, Y, scale, dZ):
    """Identity outputs + squared error (regression) over outputs Z (B, K) and real targets Y (B, K)
    of the same dtype: returns the SUM over rows of 0.5 * sum_k (Z_k - Y_k)^2 (a float64) and writes
    dZ = (Z - Y) * scale (dZ may be Z).  Pass scale = 1/B for the mean's gradient."""
    _check_target_loss_args(Z, Y, scale, dZ)
    return _k.squared_error_sum(Z, Y, scale, dZ)


def sigmoid_binary_cross_entropy_sum(Z, Y, scale, dZ):
    """Sigmoid outputs + binary cross-entropy per output (two classes as one output, multilabel) over
    logits Z (B, K) and targets Y (B, K) in [0, 1] of the same dtype: returns the SUM over rows of
    sum_k [softplus(Z_k) - Y_k Z_k] (= -Y log s(Z) - (1 - Y) log(1 - s(Z)), finite for any Z) as a
    float64 and writes dZ = (sigmoid(Z) - Y) * scale (dZ may be Z)."""
    _check_target_loss_args(Z, Y, scale, dZ)
    return _k.sigmoid_binary_cross_entropy_sum(Z, Y, scale, dZ)


def exp_poisson_sum(Z, Y, scale, dZ):
    """Exp outputs + half Poisson deviance per output (counts; scikit-learn's poisson loss) over
    logits Z (B, K) and targets Y (B, K) >= 0 of the same dtype: returns the SUM over rows of
    sum_k [xlogy(Y_k, Y_k) - Y_k - Y_k Z_k + exp(Z_k)] as a float64 (finite where exp(Z) underflows)
    and writes dZ = (exp(Z) - Y) * scale (dZ may be Z)."""
    _check_target_loss_args(Z, Y, scale, dZ)
    if not np.all(Y >= 0):
        raise ValueError("Y must hold values >= 0 (counts) for the Poisson loss")
    return _k.exp_poisson_sum(Z, Y, scale, dZ)


def _check_row_weights(w, rows):
    if not isinstance(w, np.ndarray) or w.dtype != np.float64 or w.ndim != 1:
        raise TypeError("w must be a 1-D float64 NumPy array (one weight per row)")
    if not w.flags.c_contiguous:
        raise ValueError("w must be C-contiguous (np.ascontiguousarray(w))")
    _check_shape("w", w, (rows,))
    if not np.all(np.isfinite(w) & (w >= 0)):
        raise ValueError("w must hold finite weights >= 0")


def softmax_cross_entropy_sum_weighted(Z, y, w, scale, dZ):
    """softmax_cross_entropy_sum with a weight per row, w (B,) float64 >= 0: returns (SUM over rows
    of w_i times row i's loss, correct count) and writes dZ_i = (softmax(Z_i) - onehot(y_i)) * w_i *
    scale.  Pass scale = 1/sum(w) for the gradient of the weighted mean."""
    _check_loss_args(Z, y, scale, dZ)
    _check_row_weights(w, Z.shape[0])
    return _k.softmax_cross_entropy_sum_weighted(Z, y, w, scale, dZ)


def sigmoid_mse_sum_weighted(Z, y, w, scale, dZ):
    """sigmoid_mse_sum with a weight per row (see softmax_cross_entropy_sum_weighted)."""
    _check_loss_args(Z, y, scale, dZ)
    _check_row_weights(w, Z.shape[0])
    return _k.sigmoid_mse_sum_weighted(Z, y, w, scale, dZ)


def squared_error_sum_weighted(Z, Y, w, scale, dZ):
    """squared_error_sum with a weight per row, w (B,) float64 >= 0: returns the SUM over rows of w_i
    times row i's loss and writes dZ_i = (Z_i - Y_i) * w_i * scale."""
    _check_target_loss_args(Z, Y, scale, dZ)
    _check_row_weights(w, Z.shape[0])
    return _k.squared_error_sum_weighted(Z, Y, w, scale, dZ)


def exp_poisson_sum_weighted(Z, Y, w, scale, dZ):
    """exp_poisson_sum with a weight per row (see squared_error_sum_weighted); Y >= 0."""
    _check_target_loss_args(Z, Y, scale, dZ)
    if not np.all(Y >= 0):
        raise ValueError("Y must hold values >= 0 (counts) for the Poisson loss")
    _check_row_weights(w, Z.shape[0])
    return _k.exp_poisson_sum_weighted(Z, Y, w, scale, dZ)


def sigmoid_binary_cross_entropy_sum_weighted(Z, Y, w, scale, dZ):
    """sigmoid_binary_cross_entropy_sum with a weight per row (see squared_error_sum_weighted)."""
    _check_target_loss_args(Z, Y, scale, dZ)
    _check_row_weights(w, Z.shape[0])
    return _k.sigmoid_binary_cross_entropy_sum_weighted(Z, Y, w, scale, dZ)


def _check_target_loss_args(Z, Y, scale, dZ):
    check_float_arrays(2, Z=Z, Y=Y, dZ=dZ)
    _check_shape("Y", Y, Z.shape)
    _check_shape("dZ", dZ, Z.shape)
    _check_scalar("scale", scale)
    _check_writable(dZ=dZ)


# ---- optimizer steps on flat buffers -----------------------------------------------------------------
def _check_step_args(p, g, *state, lr=None, l2=0.0, clip_value=math.inf, grad_scale=1.0):
    arrays = {"p": p, "g": g, **{f"state{i}": s for i, s in enumerate(state)}}
    check_float_arrays(1, **arrays)
    for name, array in arrays.items():
        _check_shape(name, array, p.shape)
    _check_writable(p=p, **{f"state{i}": s for i, s in enumerate(state)})
    if lr is not None:
        _check_scalar("lr", lr, low=0.0)
    _check_scalar("l2", l2, low=0.0)
    _check_scalar("clip_value", clip_value, low=0.0, low_inclusive=False)
    _check_scalar("grad_scale", grad_scale, low=0.0)


def processed_grad_sq_norm(g, p, l2, clip_value):
    """sum_i clip(g_i + l2 * p_i, -clip_value, clip_value)^2 as a float64.  g, p (P,)."""
    _check_step_args(p, g, l2=l2, clip_value=clip_value)
    return _k.processed_grad_sq_norm(g, p, l2, clip_value)


def sgd_step_fused(p, g, lr, l2, clip_value, grad_scale):
    """p -= lr * g_hat, g_hat = clip(g + l2 p, +-clip_value) * grad_scale.  p, g (P,)."""
    _check_step_args(p, g, lr=lr, l2=l2, clip_value=clip_value, grad_scale=grad_scale)
    _k.sgd_step_fused(p, g, lr, l2, clip_value, grad_scale)


def momentum_step_fused(p, g, v, lr, mu, nesterov, l2, clip_value, grad_scale):
    """v = mu v + g_hat; p -= lr v (nesterov: p -= lr (g_hat + mu v)).  p, g, v (P,)."""
    _check_step_args(p, g, v, lr=lr, l2=l2, clip_value=clip_value, grad_scale=grad_scale)
    _check_scalar("mu", mu, low=0.0, high=1.0)
    _k.momentum_step_fused(p, g, v, lr, mu, bool(nesterov), l2, clip_value, grad_scale)


def rmsprop_step_fused(p, g, s, lr, rho, eps, l2, clip_value, grad_scale):
    """s = rho s + (1 - rho) g_hat^2; p -= lr g_hat / (sqrt(s) + eps).  p, g, s (P,)."""
    _check_step_args(p, g, s, lr=lr, l2=l2, clip_value=clip_value, grad_scale=grad_scale)
    _check_scalar("rho", rho, low=0.0, high=1.0)
    _check_scalar("eps", eps, low=0.0, low_inclusive=False)
    _k.rmsprop_step_fused(p, g, s, lr, rho, eps, l2, clip_value, grad_scale)


def adam_step_fused(p, g, m, v, lr, beta1, beta2, eps, t, decoupled_wd, l2, clip_value, grad_scale):
    """Adam (AdamW when decoupled_wd > 0) with bias correction at step t >= 1.  p, g, m, v (P,)."""
    _check_step_args(p, g, m, v, lr=lr, l2=l2, clip_value=clip_value, grad_scale=grad_scale)
    for name, value in (("beta1", beta1), ("beta2", beta2)):
        _check_scalar(name, value, low=0.0, high=1.0)
    _check_scalar("eps", eps, low=0.0, low_inclusive=False)
    _check_scalar("decoupled_wd", decoupled_wd, low=0.0)
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1:
        raise ValueError(f"t must be an integer >= 1 (the step count), got {t!r}")
    _k.adam_step_fused(p, g, m, v, lr, beta1, beta2, eps, int(t), decoupled_wd, l2, clip_value, grad_scale)


# ---- augmentation ------------------------------------------------------------------------------------
def augment_rows(X, rows, affine, noise, basis_y, basis_x, alpha, height, width, out):
    """out[b] = image X[rows[b]] under an affine map plus an elastic displacement, sampled bilinearly
    (0 outside the image).  X (N, H*W) and out (B, H*W) of one float dtype; rows int64 (B,); affine
    float64 (B, 6): pixel (x, y) reads (a0 x + a1 y + a2 + dx, a3 x + a4 y + a5 + dy); noise float32
    (B, 2, r_y, r_x), or (0, 2, r_y, r_x) for no displacement; basis_y (H, r_y) and basis_x (W, r_x) of
    X's dtype: (dx, dy) = alpha * basis_y @ noise[b, c] @ basis_x.T.  See mlp.augment."""
    check_float_arrays(2, X=X, out=out)
    _check_int64("rows", rows)
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if X.shape[1] != height * width:
        raise ValueError(f"X has {X.shape[1]} columns but height x width = {height * width}")
    _check_shape("out", out, (rows.shape[0], X.shape[1]))
    _check_range("rows", rows, X.shape[0])
    if not isinstance(affine, np.ndarray) or affine.dtype != np.float64 or not affine.flags.c_contiguous:
        raise TypeError("affine must be a C-contiguous float64 NumPy array")
    _check_shape("affine", affine, (rows.shape[0], 6))
    if check_float_arrays(2, basis_y=basis_y, basis_x=basis_x) != X.dtype:
        raise TypeError(f"the bases are {basis_y.dtype} but X is {X.dtype}: use one dtype per call")
    _check_shape("basis_y", basis_y, (height, basis_y.shape[1]))
    _check_shape("basis_x", basis_x, (width, basis_x.shape[1]))
    if not isinstance(noise, np.ndarray) or noise.dtype != np.float32 or not noise.flags.c_contiguous:
        raise TypeError("noise must be a C-contiguous float32 NumPy array")
    if (
        noise.ndim != 4
        or noise.shape[0] not in (0, rows.shape[0])
        or noise.shape[1:] != (2, basis_y.shape[1], basis_x.shape[1])
    ):
        raise ValueError(
            f"noise has shape {noise.shape}, expected ({rows.shape[0]} or 0, 2, {basis_y.shape[1]}, "
            f"{basis_x.shape[1]})"
        )
    _check_scalar("alpha", alpha, low=0.0)
    _check_writable(out=out)
    _k.augment_rows(X, rows, affine, noise, basis_y, basis_x, float(alpha), int(height), int(width), out)


# ---- compile up front --------------------------------------------------------------------------------
def warmup(dtype=np.float32, on_compile=None):
    """Run every kernel once on tiny arrays of ``dtype`` (float32 or float64), with scalars of the
    types a training loop passes (Python float/int/bool), so that compilation or cache loading
    happens now.  Returns the seconds it took.

    ``on_compile``: called once, without arguments, just before the first kernel that Numba has to
    compile (found neither in this process nor in its on-disk cache); never when all of them load,
    so a caller can tell its user why the first run waits.
    """
    dtype = np.dtype(dtype)
    if dtype not in _FLOATS:
        raise TypeError(f"kernels work on float32 or float64 arrays, not {dtype}")
    start = time.perf_counter()
    if on_compile is None:
        _call_every_kernel(dtype)
    else:
        with _on_first_compile(on_compile):
            _call_every_kernel(dtype)
    return time.perf_counter() - start


def _on_first_compile(notify):
    """A context in which ``notify()`` is called at the start of the first compilation, once. Numba
    announces "numba:compile" after a cache miss only, so loading from its cache stays silent."""
    from numba.core import event  # not at the top: _config checks the environment before Numba loads

    class FirstCompile(event.Listener):
        def on_start(self, data):
            nonlocal notify
            first, notify = notify, None
            if first is not None:
                first()

        def on_end(self, data):
            pass

    return event.install_listener("numba:compile", FirstCompile())


def _call_every_kernel(dtype):
    X = np.linspace(-1.0, 1.0, 12).reshape(4, 3).astype(dtype)
    y = np.array([0, 1, 2, 0], dtype=np.int64)
    idx = np.array([3, 1], dtype=np.int64)
    Z = np.empty((2, 3), dtype=dtype)
    labels = np.empty(2, dtype=np.int64)
    gather_rows(X, idx, Z)
    gather_labels(y, idx, labels)
    b = np.zeros(3, dtype=dtype)
    dA = np.ones((2, 3), dtype=dtype)
    all_finite(X)
    for code in ACTIVATION_CODES.values():
        A = Z.copy()
        bias_activation_forward(A, b, code)
        activation_backward(dA, A, code)
        activation_backward(dA, A, code, b)
    bias_gradient(dA, b)
    for U in (np.full((2, 3), 0.25, dtype=dtype), np.full((2, 3), 0.25)):
        dropout_forward(A, U, 0.5)
        dropout_backward(dA, U)
    dZ = np.empty_like(Z)
    softmax_cross_entropy_sum(Z, labels, 0.5, dZ)
    sigmoid_mse_sum(Z, labels, 0.5, dZ)
    squared_error_sum(Z, X[:2], 0.5, dZ)
    sigmoid_binary_cross_entropy_sum(Z, X[:2], 0.5, dZ)
    w = np.array([0.5, 2.0])
    softmax_cross_entropy_sum_weighted(Z, labels, w, 0.5, dZ)
    sigmoid_mse_sum_weighted(Z, labels, w, 0.5, dZ)
    squared_error_sum_weighted(Z, X[:2], w, 0.5, dZ)
    sigmoid_binary_cross_entropy_sum_weighted(Z, X[:2], w, 0.5, dZ)
    exp_poisson_sum_weighted(Z, np.abs(X[:2]), w, 0.5, dZ)
    exp_poisson_sum(Z, np.abs(X[:2]), 0.5, dZ)
    _call_batch_norm_kernels(Z)
    p = np.ones(5, dtype=dtype)
    g = np.full(5, 0.5, dtype=dtype)
    s1, s2 = np.zeros(5, dtype=dtype), np.zeros(5, dtype=dtype)
    processed_grad_sq_norm(g, p, 0.0, math.inf)
    sgd_step_fused(p, g, 0.1, 0.0, math.inf, 1.0)
    momentum_step_fused(p, g, s1, 0.1, 0.9, False, 0.0, math.inf, 1.0)
    momentum_step_fused(p, g, s1, 0.1, 0.9, True, 0.0, math.inf, 1.0)
    rmsprop_step_fused(p, g, s1, 0.1, 0.9, 1e-8, 0.0, math.inf, 1.0)
    adam_step_fused(p, g, s1, s2, 0.1, 0.9, 0.999, 1e-8, 1, 0.0, 0.0, math.inf, 1.0)
    image, affine = np.zeros((2, 4), dtype=dtype), np.tile([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], (2, 1))
    basis = np.full((2, 1), 0.5, dtype=dtype)
    for noise in (np.zeros((2, 2, 1, 1), dtype=np.float32), np.zeros((0, 2, 1, 1), dtype=np.float32)):
        augment_rows(
            image,
            np.array([1, 0], dtype=np.int64),
            affine,
            noise,
            basis,
            basis,
            1.0,
            2,
            2,
            np.empty_like(image),
        )


def _call_batch_norm_kernels(H):
    k, dtype = H.shape[1], H.dtype
    sums, mean, squares, gamma, beta, inv, running_mean, running_var = np.ones((8, k), dtype=dtype)
    Hhat, Y, dY = np.empty_like(H), np.empty_like(H), np.ones_like(H)
    batch_norm_sums(H, sums)
    batch_norm_centred_squares(H, sums, H.shape[0], mean, squares)
    for code in ACTIVATION_CODES.values():
        batch_norm_forward(
            H, mean, squares, H.shape[0], gamma, beta, 0.1, running_mean, running_var, inv, Hhat, Y, code
        )
        batch_norm_running_forward(H, gamma, beta, running_mean, running_var, inv, Hhat, Y, code)
        batch_norm_backward_sums(dY, Y, code, Hhat, sums, mean)
        batch_norm_backward(dY, Hhat, gamma, inv, sums, mean, 0.5, Y, code, dY, squares)
