"""Gradient processing and optimizer steps on flat 1-D parameter buffers.

p, g and the optimizer state (v, s, m) are 1-D C-contiguous arrays of one float dtype and equal
length: the caller lays all parameters out in one flat buffer (weights and biases are views into
it) and calls a step once for the weights block and once for the biases block (l2=0 and
decoupled_wd=0 for biases).  g is never modified.  Every step uses the effective gradient

    g_hat = clip(g + l2 * p, -clip_value, clip_value) * grad_scale

(clip_value=inf disables clipping; grad_scale = max_norm / norm from processed_grad_sq_norm when the
global norm exceeds max_norm, else 1).  Hyper-parameters are Python floats; t is an int >= 1.
"""

import math

from ._config import jit


@jit
def _processed(g, p, l2, clip_value):
    """clip(g + l2 * p, -clip_value, clip_value) for one element; NaN stays NaN."""
    x = g + l2 * p
    if x > clip_value:
        x = clip_value
    elif x < -clip_value:
        x = -clip_value
    return x


@jit
def processed_grad_sq_norm(g, p, l2, clip_value):
    """sum_i clip(g_i + l2 * p_i, -c, c)**2 as a float64 (accumulated in float64).  g, p (P,)."""
    T = g.dtype.type
    l2_, c = T(l2), T(clip_value)
    acc = 0.0
    for i in range(g.shape[0]):
        x = float(_processed(g[i], p[i], l2_, c))
        acc += x * x
    return acc


@jit
def sgd_step_fused(p, g, lr, l2, clip_value, grad_scale):
    """p -= lr * g_hat.  p, g (P,)."""
    T = p.dtype.type
    step, l2_, c, gs = T(lr), T(l2), T(clip_value), T(grad_scale)
    for i in range(p.shape[0]):
        p[i] -= step * (_processed(g[i], p[i], l2_, c) * gs)


@jit
def momentum_step_fused(p, g, v, lr, mu, nesterov, l2, clip_value, grad_scale):
    """v = mu * v + g_hat; p -= lr * v, or with nesterov p -= lr * (g_hat + mu * v).
    p, g, v (P,); v starts at zero.
    """
    T = p.dtype.type
    lr_, mu_, l2_, c, gs = T(lr), T(mu), T(l2), T(clip_value), T(grad_scale)
    if nesterov:
        for i in range(p.shape[0]):
            gh = _processed(g[i], p[i], l2_, c) * gs
            vi = mu_ * v[i] + gh
            v[i] = vi
            p[i] -= lr_ * (gh + mu_ * vi)
    else:
        for i in range(p.shape[0]):
            gh = _processed(g[i], p[i], l2_, c) * gs
            vi = mu_ * v[i] + gh
            v[i] = vi
            p[i] -= lr_ * vi


@jit
def rmsprop_step_fused(p, g, s, lr, rho, eps, l2, clip_value, grad_scale):
    """s = rho * s + (1 - rho) * g_hat^2; p -= lr * g_hat / (sqrt(s) + eps).  p, g, s (P,)."""
    T = p.dtype.type
    lr_, rho_, rho1, eps_ = T(lr), T(rho), T(1.0 - rho), T(eps)
    l2_, c, gs = T(l2), T(clip_value), T(grad_scale)
    for i in range(p.shape[0]):
        gh = _processed(g[i], p[i], l2_, c) * gs
        si = rho_ * s[i] + rho1 * (gh * gh)
        s[i] = si
        p[i] -= lr_ * gh / (math.sqrt(si) + eps_)


@jit
def adam_step_fused(p, g, m, v, lr, beta1, beta2, eps, t, decoupled_wd, l2, clip_value, grad_scale):
    """Adam, or AdamW when decoupled_wd > 0 (p -= lr * decoupled_wd * p first).  p, g, m, v (P,).

    m = b1 m + (1-b1) g_hat; v = b2 v + (1-b2) g_hat^2; p -= lr * mhat / (sqrt(vhat) + eps) with
    mhat = m / (1 - b1^t), vhat = v / (1 - b2^t); g_hat uses p from before the weight decay.
    """
    T = p.dtype.type
    lr_, eps_, decay = T(lr), T(eps), T(lr * decoupled_wd)
    b1, b1c, b2, b2c = T(beta1), T(1.0 - beta1), T(beta2), T(1.0 - beta2)
    inv_bc1 = T(1.0 / (1.0 - beta1**t))  # bias corrections, in float64, once per call
    inv_bc2 = T(1.0 / (1.0 - beta2**t))
    l2_, c, gs = T(l2), T(clip_value), T(grad_scale)
    for i in range(p.shape[0]):
        pi = p[i]
        gh = _processed(g[i], pi, l2_, c) * gs
        pi -= decay * pi
        mi = b1 * m[i] + b1c * gh
        vi = b2 * v[i] + b2c * (gh * gh)
        m[i] = mi
        v[i] = vi
        p[i] = pi - lr_ * (mi * inv_bc1) / (math.sqrt(vi * inv_bc2) + eps_)
