"""The Numba engine: the same training step as `Trainer`, on NumPy arrays, through `kernels/`.

What changes is only where memory goes. All parameters live in one flat buffer (every weight
matrix, then every bias), and so do their gradients and the optimizer's moments, so an optimizer
update is two kernel calls over contiguous memory. Activations, gradients and mini-batches go into
buffers allocated once; matrix products stay in BLAS (`np.matmul(..., out=...)`); everything
elementwise is a fused kernel. The model's `params` become views into the flat buffer, so
checkpoints, early stopping and the model's own methods see the same arrays.

The random numbers are drawn exactly as the generic path draws them (one permutation per epoch, one
float64 uniform per dropout unit), so both engines train the same network from the same seed.
"""
from __future__ import annotations

import math

import numpy as np

from .training import Trainer, check_finite

try:  # Numba is an optional dependency
    import kernels

    NUMBA_AVAILABLE = True
except ImportError:  # pragma: no cover - exercised by the engine="numba" error test
    kernels = None
    NUMBA_AVAILABLE = False

_OPTIMIZER_KERNELS = {"sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"}


def supports(X, optimizer, loss):
    """Whether the Numba engine can train on X with this optimizer and loss."""
    return (
        NUMBA_AVAILABLE
        and isinstance(X, np.ndarray)
        and X.dtype in (np.float32, np.float64)
        and getattr(optimizer, "name", None) in _OPTIMIZER_KERNELS
        and type(optimizer).step in _KNOWN_STEPS
        and loss in ("cross_entropy", "mse")
    )


def unsupported_reason(X, optimizer):
    if not NUMBA_AVAILABLE:
        return 'engine="numba" needs Numba: pip install "mlp[numba]"'
    if not isinstance(X, np.ndarray):
        return f'engine="numba" trains on NumPy arrays only, got {type(X).__module__}.{type(X).__name__}; use engine="xp"'
    if type(optimizer).step not in _KNOWN_STEPS:
        return f'engine="numba" has kernels for the built-in optimizers only, not {type(optimizer).__name__}; use engine="xp"'
    return None


class NumbaTrainer(Trainer):
    """A `Trainer` whose epoch runs on fused Numba kernels over preallocated NumPy buffers."""

    def __init__(self, model, **options):
        super().__init__(model, **options)
        dtype = model.params[0][0].dtype
        self.dtype = dtype
        sizes = model.layer_sizes
        shapes_W = [(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        shapes_b = [(b,) for b in sizes[1:]]
        self.n_weights = sum(a * b for a, b in shapes_W)
        total = self.n_weights + sum(b for (b,) in shapes_b)

        def views(flat):
            W_views, b_views, offset = [], [], 0
            for shape in shapes_W:
                W_views.append(flat[offset : offset + shape[0] * shape[1]].reshape(shape))
                offset += shape[0] * shape[1]
            for (width,) in shapes_b:
                b_views.append(flat[offset : offset + width])
                offset += width
            return W_views, b_views

        self.flat = np.empty(total, dtype=dtype)
        W_views, b_views = views(self.flat)
        for (W, b), W_view, b_view in zip(model.params, W_views, b_views):
            W_view[...] = W
            b_view[...] = b
        model.params = list(zip(W_views, b_views))
        self.flat_params = [p for pair in model.params for p in pair]

        self.grad_flat = np.zeros(total, dtype=dtype)
        self.grad_W, self.grad_b = views(self.grad_flat)

        # Optimizer state: flat buffers, exposed per parameter in the generic order (for checkpoints).
        n_buffers = {"sgd": 0, "momentum": 1, "nesterov": 1, "rmsprop": 1, "adam": 2, "adamw": 2}[self.optimizer.name]
        self.state_flat = [np.zeros(total, dtype=dtype) for _ in range(n_buffers)]
        self.state = []
        for buffer in self.state_flat:
            W_state, b_state = views(buffer)
            self.state += [p for pair in zip(W_state, b_state) for p in pair]

        self.code = kernels.ACTIVATION_CODES[model.activation]
        self._buffers_for = None

    # ---- buffers --------------------------------------------------------------------------------
    def _allocate(self, batch, n_features):
        """Per-layer buffers for mini-batches of up to `batch` rows (allocated once per shape)."""
        if self._buffers_for == (batch, n_features):
            return
        dtype, widths = self.dtype, self.model.layer_sizes[1:]
        self.X_batch = np.empty((batch, n_features), dtype=dtype)
        self.y_batch = np.empty(batch, dtype=np.int64)
        self.Z = [np.empty((batch, w), dtype=dtype) for w in widths]  # activations (pre-dropout)
        self.D = [np.empty((batch, w), dtype=dtype) for w in widths[:-1]] if self.dropout else None
        self.U = [np.empty((batch, w), dtype=np.float64) for w in widths[:-1]] if self.dropout else None
        self.dA = [np.empty((batch, w), dtype=dtype) for w in widths[:-1]]
        self.dZ_out = np.empty((batch, widths[-1]), dtype=dtype)
        self._buffers_for = (batch, n_features)

    # ---- one epoch ------------------------------------------------------------------------------
    def run_epoch(self, X, y_index):
        if not isinstance(X, np.ndarray) or not X.flags.c_contiguous:
            X = np.ascontiguousarray(X)
        y_index = np.ascontiguousarray(y_index, dtype=np.int64)
        model, rng = self.model, self.rng
        n = X.shape[0]
        step_size = n if self.batch_size is None else min(self.batch_size, n)
        steps = math.ceil(n / step_size)
        if not self._scheduled:
            self.schedule.start(self.learning_rate, max(self.epochs, 1), steps)
            self._scheduled = True
        self._allocate(step_size, X.shape[1])
        order = rng.permutation(n) if self.shuffle and steps > 1 else None
        step_losses = np.empty(steps)
        correct = 0
        lr = self.learning_rate
        if self.log_gradients:
            grad_sums = [0.0] * len(model.params)
            weights_before = [W.copy() for W, _ in model.params]
        for step in range(steps):
            start, stop = step * step_size, min((step + 1) * step_size, n)
            rows = stop - start
            if order is None:
                X_batch, y_batch = X[start:stop], y_index[start:stop]
            else:
                X_batch, y_batch = self.X_batch[:rows], self.y_batch[:rows]
                kernels.gather_rows(X, order[start:stop], X_batch)
                kernels.gather_labels(y_index, order[start:stop], y_batch)
            loss_sum, n_correct = self._step_gradients(X_batch, y_batch, rows)
            if self.log_gradients:
                for layer, (W, _) in enumerate(model.params):
                    grad_sums[layer] += math.sqrt(
                        kernels.grad_sq_norm(self.grad_W[layer].reshape(-1), W.reshape(-1), model.l2, math.inf)
                    )
            if model.l2:  # the penalty of the weights the gradient was taken at
                weights = self.flat[: self.n_weights]
                loss_sum += rows * 0.5 * model.l2 * float(np.dot(weights, weights))
            self.step_count += 1
            lr = self.schedule.lr(self.epoch, step)
            self._update(lr)
            step_losses[step] = loss_sum
            correct += n_correct
            if self.on_step is not None:
                self.on_step(1)

        check_finite(step_losses, epoch=self.epoch, lr=lr)
        self.epoch += 1
        logs = {"epoch": self.epoch, "loss": float(step_losses.sum() / n), "accuracy": correct / n, "lr": lr}
        if self.log_gradients:
            logs["grad_norm"] = [total / steps for total in grad_sums]
            logs["update_norm"] = [float(np.linalg.norm(W - W0)) for (W, _), W0 in zip(model.params, weights_before)]
            logs["weight_norm"] = [float(np.linalg.norm(W)) for W, _ in model.params]
        return logs

    def _step_gradients(self, X_batch, y_batch, rows):
        """Forward and backward over one mini-batch into grad_flat; returns (loss sum, n correct).

        The L2 term is not added here: the update kernels add l2 * W to the weight gradients."""
        model = self.model
        params, last = model.params, len(model.params) - 1
        Z = [z[:rows] for z in self.Z]
        inputs = [X_batch]
        keep = 1.0 - self.dropout
        for layer, (W, b) in enumerate(params):
            np.matmul(inputs[-1], W, out=Z[layer])
            if layer == last:
                kernels.bias_activation_forward(Z[layer], b, kernels.IDENTITY)
                break
            kernels.bias_activation_forward(Z[layer], b, self.code)
            if self.dropout:
                U, D = self.U[layer][:rows], self.D[layer][:rows]
                rng_fill(self.rng, U)
                D[...] = Z[layer]
                kernels.dropout_forward(D, U, keep)
                inputs.append(D)
            else:
                inputs.append(Z[layer])

        dZ = self.dZ_out[:rows]
        loss_kernel = kernels.softmax_cross_entropy if model.loss == "cross_entropy" else kernels.sigmoid_mse
        loss_sum, n_correct = loss_kernel(Z[last], y_batch, 1.0 / rows, dZ)
        for layer in range(last, -1, -1):
            W = params[layer][0]
            np.matmul(inputs[layer].T, dZ, out=self.grad_W[layer])
            kernels.bias_gradient(dZ, self.grad_b[layer])
            if layer == 0:
                break
            dA = self.dA[layer - 1][:rows]
            np.matmul(dZ, W.T, out=dA)
            if self.dropout:
                kernels.dropout_backward(dA, self.U[layer - 1][:rows])
            kernels.activation_backward(dA, Z[layer - 1], self.code)
            dZ = dA
        return float(loss_sum), int(n_correct)

    def _update(self, lr):
        """Clip and apply the optimizer to the weight block and the bias block."""
        model, opt = self.model, self.optimizer
        nw = self.n_weights
        pW, pb = self.flat[:nw], self.flat[nw:]
        gW, gb = self.grad_flat[:nw], self.grad_flat[nw:]
        decoupled = opt.name == "adamw"
        l2 = 0.0 if decoupled else model.l2
        clip_value = math.inf if self.clip_value is None else float(self.clip_value)
        scale = 1.0
        if self.clip_norm is not None:
            norm = math.sqrt(kernels.grad_sq_norm(gW, pW, l2, clip_value) + kernels.grad_sq_norm(gb, pb, 0.0, clip_value))
            if norm > self.clip_norm:
                scale = self.clip_norm / norm
        state = [(buffer[:nw], buffer[nw:]) for buffer in self.state_flat]
        for block, (p, g, l2_block, decay) in enumerate(((pW, gW, l2, True), (pb, gb, 0.0, False))):
            moments = [pair[block] for pair in state]
            if opt.name == "sgd":
                kernels.sgd_step(p, g, lr, l2_block, clip_value, scale)
            elif opt.name in ("momentum", "nesterov"):
                kernels.momentum_step(p, g, moments[0], lr, opt.momentum, opt.name == "nesterov", l2_block, clip_value, scale)
            elif opt.name == "rmsprop":
                kernels.rmsprop_step(p, g, moments[0], lr, opt.rho, opt.eps, l2_block, clip_value, scale)
            else:
                wd = opt.weight_decay if decoupled and decay else 0.0
                kernels.adam_step(p, g, moments[0], moments[1], lr, opt.beta1, opt.beta2, opt.eps,
                                  self.step_count, wd, l2_block, clip_value, scale)


def rng_fill(rng, out):
    """Uniforms in [0, 1) into a float64 buffer, the same numbers as rng.random(out.shape)."""
    rng.random(out=out)


def _known_steps():
    from . import optimizers

    return {cls.step for cls in (optimizers.SGD, optimizers.Momentum, optimizers.Nesterov, optimizers.RMSProp,
                                 optimizers.Adam, optimizers.AdamW)}


_KNOWN_STEPS = _known_steps()
