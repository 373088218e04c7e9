"""The Numba engine: the same training step as `Trainer`, on NumPy arrays, through `mlp_kernels`.

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

from ..augment import Prefetcher, apply_kernel
from .generic import Trainer, check_finite

try:  # Numba is an optional dependency (the extra mlp-from-scratch[numba])
    import mlp_kernels
    from mlp_kernels import unchecked as kernels

    NUMBA_AVAILABLE, _IMPORT_ERROR = True, None
except ImportError as error:  # kept, so that engine="numba" reports the real cause
    mlp_kernels = kernels = None
    NUMBA_AVAILABLE, _IMPORT_ERROR = False, error

_OPTIMIZER_KERNELS = {"sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"}
# The fused output-layer kernel of each loss.
_LOSS_KERNELS = {
    "cross_entropy": "softmax_cross_entropy_sum",
    "mse": "sigmoid_mse_sum",
    "squared_error": "squared_error_sum",
    "binary_cross_entropy": "sigmoid_binary_cross_entropy_sum",
}


def supports(X, optimizer, loss):
    """Whether the Numba engine can train on X with this optimizer and loss."""
    return (
        NUMBA_AVAILABLE
        and isinstance(X, np.ndarray)
        and X.dtype in (np.float32, np.float64)
        and getattr(optimizer, "name", None) in _OPTIMIZER_KERNELS
        and type(optimizer).step in _KNOWN_STEPS
        and loss in _LOSS_KERNELS
    )


def import_error():
    """The ImportError that made the kernels unavailable, or None."""
    return _IMPORT_ERROR


def warmup(dtype):
    """Compile the kernels for `dtype` (or load them from Numba's cache) before the first epoch."""
    mlp_kernels.warmup(dtype)


def unsupported_reason(X, optimizer):
    if not NUMBA_AVAILABLE:
        if getattr(_IMPORT_ERROR, "name", None) in ("numba", "llvmlite"):
            return 'engine="numba" needs Numba: pip install "mlp-from-scratch[numba]"'
        return f'engine="numba" could not import its kernels (mlp_kernels): {_IMPORT_ERROR}'
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
        n_buffers = {"sgd": 0, "momentum": 1, "nesterov": 1, "rmsprop": 1, "adam": 2, "adamw": 2}[
            self.optimizer.name
        ]
        self.state_flat = [np.zeros(total, dtype=dtype) for _ in range(n_buffers)]
        self.state = []
        for buffer in self.state_flat:
            W_state, b_state = views(buffer)
            self.state += [p for pair in zip(W_state, b_state) for p in pair]

        self.code = mlp_kernels.ACTIVATION_CODES[model.activation]
        self.loss_kernel = getattr(kernels, _LOSS_KERNELS[model.loss])
        # targets: an (n, k) float matrix (regression, two classes as one output, multilabel)
        self.regression = model.loss in ("squared_error", "binary_cross_entropy")
        self.keep = 1.0 - self.dropout
        self._buffers_for = None
        self._view_cache = {}
        self._prepared = ()

        # The two blocks the optimizer walks: (params, grads, moments, l2 of the loss, decoupled decay?)
        nw = self.n_weights
        l2 = 0.0 if self.optimizer.name == "adamw" else model.l2
        self._blocks = (
            (self.flat[:nw], self.grad_flat[:nw], [b[:nw] for b in self.state_flat], l2, True),
            (self.flat[nw:], self.grad_flat[nw:], [b[nw:] for b in self.state_flat], 0.0, False),
        )
        self.prefetch = True  # make the next augmented batch in a background thread (False: in turn)
        self._clip_value = math.inf if self.clip_value is None else float(self.clip_value)
        self._step = self._make_step()

    # ---- buffers --------------------------------------------------------------------------------
    def _allocate(self, batch, n_features):
        """Per-layer buffers for mini-batches of up to `batch` rows (allocated once per shape)."""
        if self._buffers_for == (batch, n_features):
            return
        dtype, widths = self.dtype, self.model.layer_sizes[1:]
        self.X_batch = np.empty((batch, n_features), dtype=dtype)
        self.y_batch = (
            np.empty((batch, widths[-1]), dtype=dtype) if self.regression else np.empty(batch, dtype=np.int64)
        )
        self.Z = [np.empty((batch, w), dtype=dtype) for w in widths]  # activations (pre-dropout)
        self.D = [np.empty((batch, w), dtype=dtype) for w in widths[:-1]] if self.dropout else None
        self.U = [np.empty((batch, w), dtype=np.float64) for w in widths[:-1]] if self.dropout else None
        self.dA = [np.empty((batch, w), dtype=dtype) for w in widths[:-1]]
        self.dZ_out = np.empty((batch, widths[-1]), dtype=dtype)
        # augmented batches: two buffers, one trained on while the other is made
        self.X_augmented = (
            [np.empty((batch, n_features), dtype=dtype) for _ in range(2)] if self.augmenter else None
        )
        self._buffers_for = (batch, n_features)
        self._view_cache = {}

    # ---- one epoch ------------------------------------------------------------------------------
    def prepare_data(self, X, y_index):
        """C-contiguous X and int64 labels (regression: targets (n, k) in the model's dtype), so the
        kernels never see strides (a copy only if needed), checked once here: the loop calls the
        kernels unchecked."""
        X = np.ascontiguousarray(X)
        y_index = np.ascontiguousarray(y_index, dtype=self.dtype if self.regression else np.int64)
        if self._prepared and X is self._prepared[0] and y_index is self._prepared[1]:
            return X, y_index
        if mlp_kernels.check_float_arrays(2, X=X) != self.dtype:
            raise TypeError(f"X is {X.dtype} but the model is {self.dtype}")
        expected = (X.shape[0], self.model.layer_sizes[-1]) if self.regression else (X.shape[0],)
        if X.shape[1] != self.model.layer_sizes[0] or y_index.shape != expected:
            raise ValueError(
                f"X {X.shape} and targets {y_index.shape} do not fit a model of "
                f"{self.model.layer_sizes[0]} inputs and {self.model.layer_sizes[-1]} outputs"
            )
        if (
            not self.regression
            and y_index.size
            and (int(y_index.min()) < 0 or int(y_index.max()) >= self.model.n_classes)
        ):
            raise ValueError(f"labels must be class indices in [0, {self.model.n_classes})")
        self._prepared = (X, y_index)
        return X, y_index

    def run_epoch(self, X, y_index):
        X, y_index = self.prepare_data(X, y_index)  # free when fit already prepared them
        model, rng = self.model, self.rng
        n = X.shape[0]
        step_size, steps = self._begin_epoch(n)
        self._allocate(step_size, X.shape[1])
        order = rng.permutation(n) if self.shuffle and steps > 1 else None
        key = self.augment_key()
        augmented = None
        if key is not None:  # made one step ahead in a background thread (the kernel releases the GIL)
            augmented = iter(
                Prefetcher(self._augmenting(X, order, key, step_size), steps, background=self.prefetch)
            )
        try:
            return self._run_steps(X, y_index, order, augmented, step_size, steps)
        finally:
            if augmented is not None:
                augmented.close()

    def _augmenting(self, X, order, key, step_size):
        """make(step) for the Prefetcher: the augmented rows of `step` (this rank's part over MPI)
        written into one of the two buffers, gathered through `order` (None: in order)."""
        n, spec = X.shape[0], self.augment
        rows_of = order if order is not None else np.arange(n, dtype=np.int64)
        batches = [(start, min(start + step_size, n)) for start in range(0, n, step_size)]
        # this rank's rows of every batch, found here: the worker thread must not call part(), which
        # records the share of the step being trained
        parts = batches if self.parallel is None else [self.parallel.part(*batch) for batch in batches]

        def make(step):
            (start, stop), (first, last) = batches[step], parts[step]
            affine, noise = self.augmenter.params(key, step, stop - start, (first - start, last - start))
            out = self.X_augmented[step % 2][: last - first]
            apply_kernel(kernels.augment_rows, X, rows_of[first:last], affine, noise, spec, out)
            return out

        return make

    def _run_steps(self, X, y_index, order, augmented, step_size, steps):
        model, n = self.model, X.shape[0]
        step_losses = np.empty(steps)
        correct = 0
        lr = self.learning_rate
        if self.log_gradients:
            grad_sums = [0.0] * len(model.params)
            weights_before = [W.copy() for W, _ in model.params]
        for step in range(steps):
            start, stop = step * step_size, min((step + 1) * step_size, n)
            batch_rows = stop - start
            if self.parallel is not None:  # this rank's part of the global batch
                start, stop = self.parallel.part(start, stop)
            rows = stop - start
            if order is None:
                X_batch, y_batch = X[start:stop], y_index[start:stop]
            else:
                X_batch, y_batch = self.X_batch[:rows], self.y_batch[:rows]
                if augmented is None:
                    kernels.gather_rows(X, order[start:stop], X_batch)
                if self.regression:
                    kernels.gather_rows(y_index, order[start:stop], y_batch)
                else:
                    kernels.gather_labels(y_index, order[start:stop], y_batch)
            if augmented is not None:
                X_batch = next(augmented)
            loss_sum, n_correct = self._step_gradients(X_batch, y_batch, rows, batch_rows)
            if self.parallel is not None:  # the global batch's mean gradient, on every rank
                self.parallel.sum_gradients(self.grad_flat)
            if self.log_gradients:
                for layer, (W, _) in enumerate(model.params):
                    grad_sums[layer] += math.sqrt(
                        kernels.processed_grad_sq_norm(
                            self.grad_W[layer].reshape(-1), W.reshape(-1), model.l2, math.inf
                        )
                    )
            if model.l2:  # the penalty of the weights the gradient was taken at
                weights = self.flat[: self.n_weights]
                loss_sum += rows * 0.5 * model.l2 * float(np.dot(weights, weights))
            self.step_count += 1
            lr = self.schedule.lr(self.epoch, step)
            self._update(lr)
            if self.max_norm is not None:
                _max_norm(model.params, self.max_norm)
            step_losses[step] = loss_sum
            correct += n_correct
            if self.on_step is not None:
                self.on_step(1)

        if self.parallel is not None:  # every rank checks and reports the sums over all ranks
            step_losses, correct = self.parallel.sum_epoch(step_losses, correct)
        check_finite(step_losses, epoch=self.epoch, lr=lr)
        self.epoch += 1
        logs = {"epoch": self.epoch, "loss": float(step_losses.sum() / n), "lr": lr}
        if not self.regression:
            logs["accuracy"] = correct / n
        if self.log_gradients:
            logs["grad_norm"] = [total / steps for total in grad_sums]
            logs["update_norm"] = [
                float(np.linalg.norm(W - W0)) for (W, _), W0 in zip(model.params, weights_before)
            ]
            logs["weight_norm"] = [float(np.linalg.norm(W)) for W, _ in model.params]
        return logs

    def _views(self, rows):
        """Row views of the batch buffers for a batch of `rows` (cached: at most two sizes an epoch)."""
        views = self._view_cache.get(rows)
        if views is None:

            def cut(buffers):
                return [b[:rows] for b in buffers]

            views = (
                cut(self.Z),
                cut(self.D) if self.D else None,
                cut(self.U) if self.U else None,
                cut(self.dA),
                self.dZ_out[:rows],
            )
            self._view_cache[rows] = views
        return views

    def _step_gradients(self, X_batch, y_batch, rows, batch_rows=None):
        """Forward and backward over one mini-batch into grad_flat; returns (loss sum, n correct).

        The gradient is the loss sum over the `rows` divided by batch_rows (default rows): over MPI,
        this rank's share of the mean over the whole global batch. The L2 term is not added here: the
        update kernels add l2 * W to the weight gradients."""
        params, last, code = self.model.params, len(self.model.params) - 1, self.code
        scale = 1.0 / (batch_rows or rows)
        Z, D, U, dA_views, dZ = self._views(rows)
        A = X_batch
        inputs = [A]
        for layer in range(last):
            W, b = params[layer]
            np.matmul(A, W, out=Z[layer])
            kernels.bias_activation_forward(Z[layer], b, code)
            A = Z[layer]
            if D is not None:
                rng_fill(self.mask_rng, U[layer])
                D[layer][...] = A
                kernels.dropout_forward(D[layer], U[layer], self.keep)
                A = D[layer]
            inputs.append(A)
        W, b = params[last]
        np.matmul(A, W, out=Z[last])
        kernels.bias_activation_forward(Z[last], b, mlp_kernels.IDENTITY)

        if self.regression:
            loss_sum, n_correct = self.loss_kernel(Z[last], y_batch, scale, dZ), 0
        else:
            loss_sum, n_correct = self.loss_kernel(Z[last], y_batch, scale, dZ)
            if self.label_smoothing:
                loss_sum = _smooth_labels(Z[last], y_batch, scale, dZ, loss_sum, self.label_smoothing)
        grad_W, grad_b = self.grad_W, self.grad_b
        kernels.bias_gradient(dZ, grad_b[last])
        for layer in range(last, -1, -1):
            np.matmul(inputs[layer].T, dZ, out=grad_W[layer])
            if layer == 0:
                break
            dA = dA_views[layer - 1]
            np.matmul(dZ, params[layer][0].T, out=dA)
            if U is not None:
                kernels.dropout_backward(dA, U[layer - 1])
            kernels.activation_backward(dA, Z[layer - 1], code, grad_b[layer - 1])  # also the bias gradient
            dZ = dA
        return float(loss_sum), int(n_correct)

    def _update(self, lr):
        """Clip, then apply the optimizer to the weight block and the bias block."""
        scale = 1.0
        if self.clip_norm is not None:
            (pW, gW, _, l2W, _), (pb, gb, _, _, _) = self._blocks
            norm = math.sqrt(
                kernels.processed_grad_sq_norm(gW, pW, l2W, self._clip_value)
                + kernels.processed_grad_sq_norm(gb, pb, 0.0, self._clip_value)
            )
            if norm > self.clip_norm:
                scale = self.clip_norm / norm
        for p, g, moments, l2, decay in self._blocks:
            self._step(p, g, moments, lr, l2, decay, scale)

    def _make_step(self):
        """The optimizer's kernel call for one block, with its hyper-parameters bound once."""
        opt, clip_value, name = self.optimizer, self._clip_value, self.optimizer.name
        if name == "sgd":
            return lambda p, g, m, lr, l2, decay, scale: kernels.sgd_step_fused(
                p, g, lr, l2, clip_value, scale
            )
        if name in ("momentum", "nesterov"):
            mu, nesterov = opt.momentum, name == "nesterov"
            return lambda p, g, m, lr, l2, decay, scale: kernels.momentum_step_fused(
                p, g, m[0], lr, mu, nesterov, l2, clip_value, scale
            )
        if name == "rmsprop":
            return lambda p, g, m, lr, l2, decay, scale: kernels.rmsprop_step_fused(
                p, g, m[0], lr, opt.rho, opt.eps, l2, clip_value, scale
            )
        wd = opt.weight_decay if name == "adamw" else 0.0
        return lambda p, g, m, lr, l2, decay, scale: kernels.adam_step_fused(
            p,
            g,
            m[0],
            m[1],
            lr,
            opt.beta1,
            opt.beta2,
            opt.eps,
            self.step_count,
            wd if decay else 0.0,
            l2,
            clip_value,
            scale,
        )


def _smooth_labels(Z, y, scale, dZ, loss_sum, smoothing):
    """Turn the softmax cross-entropy kernel's results (loss sum, dZ = (softmax - onehot) * scale) into
    those of the smoothed targets t = (1 - e) onehot + e / K: per row the loss gains
    e * (Z[y] - mean(Z)), and dZ = (softmax - t) * scale = dZ + e * scale * (onehot - 1 / K)."""
    rows, k = Z.shape
    picked = Z[np.arange(rows), y]
    loss_sum = loss_sum + smoothing * (
        float(picked.sum(dtype=np.float64)) - float(Z.sum(dtype=np.float64)) / k
    )
    dZ[np.arange(rows), y] += smoothing * scale
    dZ -= smoothing * scale / k
    return loss_sum


def _max_norm(params, limit):
    """mlp.layers.max_norm on NumPy arrays, in place: hidden units' incoming weight columns scaled
    to norm `limit` where longer."""
    for W, _ in params[:-1]:
        norms = np.sqrt(np.einsum("ij,ij->j", W, W))
        if norms.max(initial=0.0) > limit:
            W *= (limit / np.maximum(norms, limit)).astype(W.dtype)


def rng_fill(rng, out):
    """Uniforms in [0, 1) into a float64 buffer, the same numbers as rng.random(out.shape)."""
    rng.random(out=out)


def _known_steps():
    from .. import optimizers

    return {
        cls.step
        for cls in (
            optimizers.SGD,
            optimizers.Momentum,
            optimizers.Nesterov,
            optimizers.RMSProp,
            optimizers.Adam,
            optimizers.AdamW,
        )
    }


_KNOWN_STEPS = _known_steps()
