"""Slow, obviously-correct references for the kernels in `kernels/`, written straight from docs/user_guide/math.md.

Plain Python loops over plain Python floats (float64), no vectorisation, no cleverness.  Inputs are
NumPy arrays; nothing is modified in place: every function returns new float64 arrays (int64 for
labels).  Two places follow the input dtype on purpose, as every float32 implementation must:
the bias is added in the input dtype before the activation (Z + b is one rounded float32 value),
and dropout compares U < keep_prob in the dtype of U, as NumPy does for `U < keep_prob`.
"""

import math

import numpy as np

LEAKY_SLOPE = 0.01
ACTIVATIONS = ["identity", "relu", "leaky_relu", "sigmoid", "tanh"]  # index = activation code


def gather_rows(X, idx):
    out = np.zeros((len(idx), X.shape[1]))
    for i in range(len(idx)):
        for j in range(X.shape[1]):
            out[i, j] = X[idx[i], j]
    return out


def gather_labels(y, idx):
    return np.array([y[idx[i]] for i in range(len(idx))], dtype=np.int64)


def sigmoid(z):
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def activation(z, name):
    if name == "identity":
        return z
    if name == "relu":
        return max(0.0, z)
    if name == "leaky_relu":
        return z if z > 0 else LEAKY_SLOPE * z
    if name == "sigmoid":
        return sigmoid(z)
    if name == "tanh":
        return math.tanh(z)
    raise ValueError(name)


def activation_derivative_from_output(a, name):
    if name == "identity":
        return 1.0
    if name == "relu":
        return 1.0 if a > 0 else 0.0
    if name == "leaky_relu":
        return 1.0 if a > 0 else LEAKY_SLOPE
    if name == "sigmoid":
        return a * (1.0 - a)
    if name == "tanh":
        return 1.0 - a * a
    raise ValueError(name)


def bias_activation_forward(Z, b, code):
    name = ACTIVATIONS[code]
    A = np.zeros(Z.shape)
    for i in range(Z.shape[0]):
        for j in range(Z.shape[1]):
            z = float(Z[i, j] + b[j])  # the sum rounded in the input dtype
            A[i, j] = activation(z, name)
    return A


def activation_backward(dA, A, code):
    name = ACTIVATIONS[code]
    out = np.zeros(dA.shape)
    for i in range(dA.shape[0]):
        for j in range(dA.shape[1]):
            out[i, j] = float(dA[i, j]) * activation_derivative_from_output(float(A[i, j]), name)
    return out


def bias_gradient(dZ):
    db = np.zeros(dZ.shape[1])
    for j in range(dZ.shape[1]):
        total = 0.0
        for i in range(dZ.shape[0]):
            total += float(dZ[i, j])
        db[j] = total
    return db


def dropout_forward(A, U, keep_prob):
    """Returns (A * mask, mask) with mask = (U < keep_prob) / keep_prob."""
    keep = U.dtype.type(keep_prob)
    out = np.zeros(A.shape)
    mask = np.zeros(A.shape)
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            mask[i, j] = (1.0 if U[i, j] < keep else 0.0) / keep_prob
            out[i, j] = float(A[i, j]) * mask[i, j]
    return out, mask


def dropout_backward(dA, mask):
    out = np.zeros(dA.shape)
    for i in range(dA.shape[0]):
        for j in range(dA.shape[1]):
            out[i, j] = float(dA[i, j]) * float(mask[i, j])
    return out


def argmax_first(row):
    best = 0
    for k in range(1, len(row)):
        if row[k] > row[best]:
            best = k
    return best


def softmax_cross_entropy(Z, y, scale):
    """Returns (loss_sum, n_correct, dZ)."""
    n, K = Z.shape
    loss_sum, n_correct = 0.0, 0
    dZ = np.zeros((n, K))
    for i in range(n):
        row = [float(v) for v in Z[i]]
        m = max(row)
        total = sum(math.exp(v - m) for v in row)
        loss_sum += (m + math.log(total)) - row[y[i]]
        for k in range(K):
            onehot = 1.0 if k == y[i] else 0.0
            dZ[i, k] = (math.exp(row[k] - m) / total - onehot) * scale
        n_correct += 1 if argmax_first(row) == y[i] else 0
    return loss_sum, n_correct, dZ


def sigmoid_mse(Z, y, scale):
    """Returns (loss_sum, n_correct, dZ)."""
    n, K = Z.shape
    loss_sum, n_correct = 0.0, 0
    dZ = np.zeros((n, K))
    for i in range(n):
        row = [float(v) for v in Z[i]]
        for k in range(K):
            a = sigmoid(row[k])
            onehot = 1.0 if k == y[i] else 0.0
            loss_sum += 0.5 * (a - onehot) ** 2
            dZ[i, k] = (a - onehot) * a * (1.0 - a) * scale
        n_correct += 1 if argmax_first(row) == y[i] else 0
    return loss_sum, n_correct, dZ


def squared_error(Z, Y, scale):
    """Identity outputs, real targets Y (n, K). Returns (loss_sum, dZ)."""
    n, K = Z.shape
    loss_sum = 0.0
    dZ = np.zeros((n, K))
    for i in range(n):
        for k in range(K):
            d = float(Z[i, k]) - float(Y[i, k])
            loss_sum += 0.5 * d * d
            dZ[i, k] = d * scale
    return loss_sum, dZ


def sigmoid_binary_cross_entropy(Z, Y, scale):
    """Sigmoid outputs, targets Y (n, K) in [0, 1]. Returns (loss_sum, dZ)."""
    n, K = Z.shape
    loss_sum = 0.0
    dZ = np.zeros((n, K))
    for i in range(n):
        for k in range(K):
            z, t = float(Z[i, k]), float(Y[i, k])
            # -t log s(z) - (1 - t) log(1 - s(z)), with log s(z) = -log(1 + e^-z) written stably
            log_s = -math.log1p(math.exp(-z)) if z >= 0 else z - math.log1p(math.exp(z))
            loss_sum += -(t * log_s + (1.0 - t) * (log_s - z))
            dZ[i, k] = (sigmoid(z) - t) * scale
    return loss_sum, dZ


def exp_poisson(Z, Y, scale):
    """Exp outputs, counts Y (n, K) >= 0: half Poisson deviance. Returns (loss_sum, dZ)."""
    n, K = Z.shape
    loss_sum = 0.0
    dZ = np.zeros((n, K))
    for i in range(n):
        for k in range(K):
            z, t = float(Z[i, k]), float(Y[i, k])
            mu = math.exp(z)
            # t log(t / mu) - t + mu, with log mu = z; t log t is 0 at t = 0
            loss_sum += (t * math.log(t) if t > 0 else 0.0) - t * z - t + mu
            dZ[i, k] = (mu - t) * scale
    return loss_sum, dZ


# ---- gradient processing and optimizers: lists of Python floats in, new float64 arrays out ----


def effective_gradient(g, p, l2, clip_value, grad_scale):
    """clip(g + l2 * p, -clip_value, clip_value) * grad_scale, elementwise."""
    out = []
    for gi, pi in zip(g, p, strict=True):
        x = float(gi) + l2 * float(pi)
        x = min(max(x, -clip_value), clip_value)
        out.append(x * grad_scale)
    return out


def grad_sq_norm(g, p, l2, clip_value):
    return sum(x * x for x in effective_gradient(g, p, l2, clip_value, 1.0))


def sgd_step(p, g, lr, l2, clip_value, grad_scale):
    gh = effective_gradient(g, p, l2, clip_value, grad_scale)
    return np.array([float(p[i]) - lr * gh[i] for i in range(len(gh))])


def momentum_step(p, g, v, lr, mu, nesterov, l2, clip_value, grad_scale):
    """Returns (p, v)."""
    gh = effective_gradient(g, p, l2, clip_value, grad_scale)
    p_new, v_new = [], []
    for i in range(len(gh)):
        vi = mu * float(v[i]) + gh[i]
        step = gh[i] + mu * vi if nesterov else vi
        p_new.append(float(p[i]) - lr * step)
        v_new.append(vi)
    return np.array(p_new), np.array(v_new)


def rmsprop_step(p, g, s, lr, rho, eps, l2, clip_value, grad_scale):
    """Returns (p, s)."""
    gh = effective_gradient(g, p, l2, clip_value, grad_scale)
    p_new, s_new = [], []
    for i in range(len(gh)):
        si = rho * float(s[i]) + (1.0 - rho) * gh[i] * gh[i]
        p_new.append(float(p[i]) - lr * gh[i] / (math.sqrt(si) + eps))
        s_new.append(si)
    return np.array(p_new), np.array(s_new)


def adam_step(p, g, m, v, lr, beta1, beta2, eps, t, decoupled_wd, l2, clip_value, grad_scale):
    """Returns (p, m, v).  AdamW when decoupled_wd > 0: p -= lr * decoupled_wd * p first."""
    gh = effective_gradient(g, p, l2, clip_value, grad_scale)
    p_new, m_new, v_new = [], [], []
    for i in range(len(gh)):
        pi = float(p[i])
        pi = pi - lr * decoupled_wd * pi
        mi = beta1 * float(m[i]) + (1.0 - beta1) * gh[i]
        vi = beta2 * float(v[i]) + (1.0 - beta2) * gh[i] * gh[i]
        mhat = mi / (1.0 - beta1**t)
        vhat = vi / (1.0 - beta2**t)
        p_new.append(pi - lr * mhat / (math.sqrt(vhat) + eps))
        m_new.append(mi)
        v_new.append(vi)
    return np.array(p_new), np.array(m_new), np.array(v_new)


def weighted(loss, Z, y, w, scale):
    """A loss reference above with a weight per row: row i alone with scale * w[i], its loss counted
    w[i] times. Returns what the unweighted reference returns (loss sum, [n_correct,] dZ)."""
    n = Z.shape[0]
    rows = [loss(Z[i : i + 1], y[i : i + 1], scale * float(w[i])) for i in range(n)]
    total = sum(float(w[i]) * row[0] for i, row in enumerate(rows))
    dZ = np.concatenate([row[-1] for row in rows]) if n else np.zeros(Z.shape)
    if len(rows[0] if rows else ()) == 3:
        return total, sum(row[1] for row in rows), dZ
    return total, dZ


BATCH_NORM_EPS = 1e-5


def batch_norm_forward(H, gamma, beta, running_mean, running_var, momentum, code, training):
    """Batch normalisation of H (n, k) then the activation `code` (identity for none), as
    docs/user_guide/math.md writes it. Training with n >= 2 rows: the batch's statistics, and the
    running ones moved with `momentum`; else (inference, or one row) the running statistics.
    Returns (Y, Hhat, inv, new running_mean, new running_var)."""
    n, k = H.shape
    name = ACTIVATIONS[code]
    mean, var = [float(v) for v in running_mean], [float(v) for v in running_var]
    new_mean, new_var = list(mean), list(var)
    if training and n >= 2:
        mean = [math.fsum(float(H[i, j]) for i in range(n)) / n for j in range(k)]
        var = [math.fsum((float(H[i, j]) - mean[j]) ** 2 for i in range(n)) / n for j in range(k)]
        for j in range(k):
            new_mean[j] = (1 - momentum) * float(running_mean[j]) + momentum * mean[j]
            new_var[j] = (1 - momentum) * float(running_var[j]) + momentum * var[j] * n / (n - 1)
    inv = [1.0 / math.sqrt(var[j] + BATCH_NORM_EPS) for j in range(k)]
    Hhat, Y = np.zeros((n, k)), np.zeros((n, k))
    for i in range(n):
        for j in range(k):
            Hhat[i, j] = (float(H[i, j]) - mean[j]) * inv[j]
            Y[i, j] = activation(float(gamma[j]) * Hhat[i, j] + float(beta[j]), name)
    return Y, Hhat, np.array(inv), np.array(new_mean), np.array(new_var)


def batch_norm_backward(dA, A, code, Hhat, gamma, inv, batch_statistics):
    """The gradients through act(BN(H)) given dA at its output A (n, k) (code identity: dA is dY):
    (dH, dgamma, dbeta). batch_statistics: the step normalised with its own batch's statistics."""
    n, k = dA.shape
    dY = activation_backward(dA, A, code)
    dbeta = np.array([math.fsum(dY[i, j] for i in range(n)) for j in range(k)])
    dgamma = np.array([math.fsum(dY[i, j] * float(Hhat[i, j]) for i in range(n)) for j in range(k)])
    dH = np.zeros((n, k))
    for i in range(n):
        for j in range(k):
            centred = dY[i, j]
            if batch_statistics:
                centred = dY[i, j] - dbeta[j] / n - float(Hhat[i, j]) * dgamma[j] / n
            dH[i, j] = float(gamma[j]) * float(inv[j]) * centred
    return dH, dgamma, dbeta
