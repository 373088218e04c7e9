"""The Numba engine: the step of `mlp.engines.base.BaseTrainer` on NumPy arrays, through `mlp_kernels`.

What changes is only where memory goes. All parameters live in one flat buffer (every weight
matrix, then every bias), and so do their gradients and the optimizer's moments, so an optimizer
update is two kernel calls over contiguous memory. Activations, gradients and mini-batches go into
buffers allocated once; matrix products stay in BLAS (`np.matmul(..., out=...)`); everything
elementwise is a fused kernel. The model's `params` become views into the flat buffer, so
checkpoints, early stopping and the model's own methods see the same arrays.

The epoch, the random numbers (one permutation per epoch, one float64 uniform per dropout unit), the
step count, max-norm and the MPI reduction are the base's, so both engines train the same network
from the same seed; label smoothing is `mlp.losses.smooth_labels` applied to the kernel's results.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import losses
from ..augment import Prefetcher, apply_kernel
from .base import BaseTrainer, Span

if TYPE_CHECKING:
    from .._array_api import DType
    from ..distributed import DataParallel
    from ..model import MLP
    from ..optimizers import Optimizer

_IMPORT_ERROR: ImportError | None
try:  # Numba is an optional dependency (the extra mlp-from-scratch[numba])
    import mlp_kernels
    from mlp_kernels import unchecked as kernels

    NUMBA_AVAILABLE, _IMPORT_ERROR = True, None
except ImportError as error:  # kept, so that engine="numba" reports the real cause
    mlp_kernels = kernels = None
    NUMBA_AVAILABLE, _IMPORT_ERROR = False, error

# A block's step: (params, grads, moments, lr, l2, decoupled decay?, clip-norm scale) -> None.
Step = Callable[[np.ndarray, np.ndarray, list[np.ndarray], float, float, bool, float], None]


def _sgd_step(opt: Any, clip_value: float, trainer: NumbaTrainer) -> Step:
    return lambda p, g, m, lr, l2, decay, scale: kernels.sgd_step_fused(p, g, lr, l2, clip_value, scale)


def _momentum_step(opt: Any, clip_value: float, trainer: NumbaTrainer) -> Step:
    mu, nesterov = opt.momentum, opt.name == "nesterov"
    return lambda p, g, m, lr, l2, decay, scale: kernels.momentum_step_fused(
        p, g, m[0], lr, mu, nesterov, l2, clip_value, scale
    )


def _rmsprop_step(opt: Any, clip_value: float, trainer: NumbaTrainer) -> Step:
    return lambda p, g, m, lr, l2, decay, scale: kernels.rmsprop_step_fused(
        p, g, m[0], lr, opt.rho, opt.eps, l2, clip_value, scale
    )


def _adam_step(opt: Any, clip_value: float, trainer: NumbaTrainer) -> Step:
    wd = opt.weight_decay if opt.name == "adamw" else 0.0
    return lambda p, g, m, lr, l2, decay, scale: kernels.adam_step_fused(
        p,
        g,
        m[0],
        m[1],
        lr,
        opt.beta1,
        opt.beta2,
        opt.eps,
        trainer.step_count,  # read at each step
        wd if decay else 0.0,
        l2,
        clip_value,
        scale,
    )


# The optimizers the fused kernels implement, once: name (the class of mlp.optimizers.OPTIMIZERS
# whose step the kernel reproduces) -> (moment buffers per parameter, the kernel call for one block
# with the optimizer's hyper-parameters bound: opt is that class, with its own hyper-parameters).
_OPTIMIZER_KERNELS: dict[str, tuple[int, Callable[[Any, float, NumbaTrainer], Step]]] = {
    "sgd": (0, _sgd_step),
    "momentum": (1, _momentum_step),
    "nesterov": (1, _momentum_step),
    "rmsprop": (1, _rmsprop_step),
    "adam": (2, _adam_step),
    "adamw": (2, _adam_step),
}
# The fused output-layer kernel of each loss (its weighted form: the name + "_weighted").
_LOSS_KERNELS = {
    "cross_entropy": "softmax_cross_entropy_sum",
    "mse": "sigmoid_mse_sum",
    "squared_error": "squared_error_sum",
    "binary_cross_entropy": "sigmoid_binary_cross_entropy_sum",
    "poisson": "exp_poisson_sum",
}


def supports(X: object, optimizer: Optimizer, loss: str, *, batch_norm: str | None = None) -> bool:
    """Whether the Numba engine can train on X with this optimizer and loss (and batch_norm, the
    model's placement of batch normalisation)."""
    return (
        NUMBA_AVAILABLE
        and batch_norm is None  # its kernels have no batch normalisation yet: the generic engine trains it
        and isinstance(X, np.ndarray)
        and X.dtype in (np.float32, np.float64)
        and getattr(optimizer, "name", None) in _OPTIMIZER_KERNELS
        and _built_in_step(optimizer)
        and loss in _LOSS_KERNELS
    )


def import_error() -> ImportError | None:
    """The ImportError that made the kernels unavailable, or None."""
    return _IMPORT_ERROR


def warmup(dtype: DType, on_compile: Callable[[], object] | None = None) -> None:
    """Compile the kernels for `dtype` (or load them from Numba's cache) before the first epoch;
    on_compile() is called first when they have to be compiled."""
    mlp_kernels.warmup(dtype, on_compile=on_compile)


def unsupported_reason(X: object, optimizer: Optimizer, *, batch_norm: str | None = None) -> str | None:
    if not NUMBA_AVAILABLE:
        if getattr(_IMPORT_ERROR, "name", None) in ("numba", "llvmlite"):
            return 'engine="numba" needs Numba: pip install "mlp-from-scratch[numba]"'
        return f'engine="numba" could not import its kernels (mlp_kernels): {_IMPORT_ERROR}'
    if not isinstance(X, np.ndarray):
        return f'engine="numba" trains on NumPy arrays only, got {type(X).__module__}.{type(X).__name__}; use engine="xp"'
    if not _built_in_step(optimizer):
        return f'engine="numba" has kernels for the built-in optimizers only, not {type(optimizer).__name__}; use engine="xp"'
    if batch_norm is not None:
        return 'engine="numba" has no batch normalisation yet; use engine="xp" (or "auto", which picks it)'
    return None


class NumbaTrainer(BaseTrainer):
    """The engine whose steps run on fused Numba kernels over preallocated NumPy buffers."""

    takes_empty_batch_parts = True  # a rank with no row of a batch adds zeros and joins the allreduce

    def __init__(self, model: MLP, **options: Any) -> None:
        super().__init__(model, **options)
        dtype = model.params[0][0].dtype
        self.dtype = dtype
        sizes = model.layer_sizes
        shapes_W = [(a, b) for a, b in itertools.pairwise(sizes)]
        shapes_b = [(b,) for b in sizes[1:]]
        self.n_weights = sum(a * b for a, b in shapes_W)
        total = self.n_weights + sum(b for (b,) in shapes_b)

        def views(flat: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
            W_views: list[np.ndarray] = []
            b_views: list[np.ndarray] = []
            offset = 0
            for shape in shapes_W:
                W_views.append(flat[offset : offset + shape[0] * shape[1]].reshape(shape))
                offset += shape[0] * shape[1]
            for (width,) in shapes_b:
                b_views.append(flat[offset : offset + width])
                offset += width
            return W_views, b_views

        self.flat = np.empty(total, dtype=dtype)
        W_views, b_views = views(self.flat)
        for (W, b), W_view, b_view in zip(model.params, W_views, b_views, strict=True):
            W_view[...] = W
            b_view[...] = b
        model.params = list(zip(W_views, b_views, strict=True))
        self.flat_params = [p for pair in model.params for p in pair]

        self.grad_flat = np.zeros(total, dtype=dtype)
        self.grad_W, self.grad_b = views(self.grad_flat)

        # Optimizer state: flat buffers, exposed per parameter in the generic order (for checkpoints).
        n_buffers, make_step = _OPTIMIZER_KERNELS[self.optimizer.name]
        self.state_flat = [np.zeros(total, dtype=dtype) for _ in range(n_buffers)]
        self.state = []
        for buffer in self.state_flat:
            W_state, b_state = views(buffer)
            self.state += [p for pair in zip(W_state, b_state, strict=True) for p in pair]

        self.code = mlp_kernels.ACTIVATION_CODES[model.activation]
        self.loss_kernel = getattr(kernels, _LOSS_KERNELS[model.loss])
        self.weighted_loss_kernel = getattr(kernels, _LOSS_KERNELS[model.loss] + "_weighted", None)
        self._l2_scale = 1.0  # this step's L2 factor: rows / sum of weights with sample weights
        # targets: an (n, k) float matrix (regression, counts, two classes as one output, multilabel)
        self.regression = model.loss in ("squared_error", "binary_cross_entropy", "poisson")
        self.keep = 1.0 - self.dropout
        self._buffers_for: tuple[int, int] | None = None
        self._view_cache: dict[int, tuple[Any, ...]] = {}
        self._prepared: tuple[np.ndarray, ...] = ()

        # The two blocks the optimizer walks: (params, grads, moments, l2 of the loss, decoupled decay?)
        nw = self.n_weights
        l2 = 0.0 if self.optimizer.name == "adamw" else model.l2
        self._blocks = (
            (self.flat[:nw], self.grad_flat[:nw], [b[:nw] for b in self.state_flat], l2, True),
            (self.flat[nw:], self.grad_flat[nw:], [b[nw:] for b in self.state_flat], 0.0, False),
        )
        self.prefetch = True  # make the next augmented batch in a background thread (False: in turn)
        self._clip_value = math.inf if self.clip_value is None else float(self.clip_value)
        self._step = make_step(self.optimizer, self._clip_value, self)  # hyper-parameters bound once

    # ---- buffers --------------------------------------------------------------------------------
    def _allocate(self, batch: int, n_features: int) -> None:
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
        self.w_batch = np.empty(batch, dtype=np.float64)  # sample weights gathered through the order
        # augmented batches: two buffers, one trained on while the other is made
        self.X_augmented = (
            [np.empty((batch, n_features), dtype=dtype) for _ in range(2)] if self.augmenter else None
        )
        self._buffers_for = (batch, n_features)
        self._view_cache = {}

    def prepare_data(self, X: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """C-contiguous X and int64 labels (regression: targets (n, k) in the model's dtype), so the
        kernels never see strides (a copy only if needed), checked once here: the loop calls the
        kernels unchecked."""
        X = np.ascontiguousarray(X)
        targets = np.ascontiguousarray(targets, dtype=self.dtype if self.regression else np.int64)
        if self._prepared and X is self._prepared[0] and targets is self._prepared[1]:
            return X, targets
        if mlp_kernels.check_float_arrays(2, X=X) != self.dtype:
            raise TypeError(f"X is {X.dtype} but the model is {self.dtype}")
        expected = (X.shape[0], self.model.layer_sizes[-1]) if self.regression else (X.shape[0],)
        if X.shape[1] != self.model.layer_sizes[0] or targets.shape != expected:
            raise ValueError(
                f"X {X.shape} and targets {targets.shape} do not fit a model of "
                f"{self.model.layer_sizes[0]} inputs and {self.model.layer_sizes[-1]} outputs"
            )
        if (
            not self.regression
            and targets.size
            and (int(targets.min()) < 0 or int(targets.max()) >= self.model.n_classes)
        ):
            raise ValueError(f"labels must be class indices in [0, {self.model.n_classes})")
        self._prepared = (X, targets)
        return X, targets

    # ---- what the base asks of an engine --------------------------------------------------------
    def _epoch_batches(
        self,
        X: np.ndarray,
        targets: np.ndarray,
        weights: np.ndarray | None,
        order: np.ndarray | None,
        key: int | None,
        spans: Sequence[Span],
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        start, stop, _, _ = spans[0]
        self._allocate(stop - start, X.shape[1])
        augmented = None
        if key is not None:  # made one step ahead in a background thread (the kernel releases the GIL)
            augmented = iter(
                Prefetcher(self._augmenting(X, order, key, spans), len(spans), background=self.prefetch)
            )
        try:
            for _, _, lo, hi in spans:
                rows = hi - lo
                w_batch = None
                if weights is not None:
                    w_batch = weights[lo:hi] if order is None else self.w_batch[:rows]
                    if order is not None:
                        np.take(weights, order[lo:hi], out=w_batch)
                if order is None:
                    X_batch, y_batch = X[lo:hi], targets[lo:hi]
                else:
                    X_batch, y_batch = self.X_batch[:rows], self.y_batch[:rows]
                    if augmented is None:
                        kernels.gather_rows(X, order[lo:hi], X_batch)
                    if self.regression:
                        kernels.gather_rows(targets, order[lo:hi], y_batch)
                    else:
                        kernels.gather_labels(targets, order[lo:hi], y_batch)
                if augmented is not None:
                    X_batch = next(augmented)
                yield X_batch, y_batch, w_batch
        finally:
            if augmented is not None:
                augmented.close()

    def _augmenting(
        self, X: np.ndarray, order: np.ndarray | None, key: int, spans: Sequence[Span]
    ) -> Callable[[int], np.ndarray]:
        """make(step) for the Prefetcher: the augmented rows of `step` (this rank's part over MPI)
        written into one of the two buffers, gathered through `order` (None: in order)."""
        rows_of = order if order is not None else np.arange(X.shape[0], dtype=np.int64)
        augmenter, buffers, spec = self.augmenter, self.X_augmented, self.augment
        assert augmenter is not None and buffers is not None and spec is not None  # augmentation is on

        def make(step: int) -> np.ndarray:
            start, stop, lo, hi = spans[step]
            affine, noise = augmenter.params(key, step, stop - start, (lo - start, hi - start))
            out = buffers[step % 2][: hi - lo]
            apply_kernel(kernels.augment_rows, X, rows_of[lo:hi], affine, noise, spec, out)
            return out

        return make

    def _dropout_buffers(self, rows: int) -> list[np.ndarray]:
        """The uniforms themselves, in the float64 buffers the dropout kernels read."""
        return self.draw_dropout_uniforms(self._views(rows)[2] or [])  # [] without hidden layers

    def _reduce_gradients(self, parallel: DataParallel) -> None:
        parallel.sum_gradients(self.grad_flat)

    def _weight_gradient_norms(self) -> list[float]:
        model = self.model
        return [
            math.sqrt(
                kernels.processed_grad_sq_norm(
                    self.grad_W[layer].reshape(-1), W.reshape(-1), model.l2 * self._l2_scale, math.inf
                )
            )
            for layer, (W, _) in enumerate(model.params)
        ]

    def _views(self, rows: int) -> tuple[Any, ...]:
        """Row views of the batch buffers for a batch of `rows` (cached: at most two sizes an epoch)."""
        views = self._view_cache.get(rows)
        if views is None:

            def cut(buffers: list[np.ndarray]) -> list[np.ndarray]:
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

    def _gradients(
        self,
        X_batch: np.ndarray,
        y_batch: np.ndarray,
        batch_rows: int,
        dropout: list[np.ndarray] | None,
        *,
        weights: np.ndarray | None = None,
        weight_sum: float | None = None,
    ) -> tuple[float, int]:
        """Forward and backward over one mini-batch into grad_flat; returns (loss sum, n correct).

        The gradient is the loss sum over the rows divided by batch_rows: over MPI, this rank's share
        of the mean over the whole global batch. The L2 term's gradient is not added here: the update
        kernels add l2 * W to the weight gradients (its loss is added here, at the weights the
        gradient was taken at). With weights, the weighted loss sum divided by weight_sum (the global
        batch's), and the L2 term scaled by batch_rows / weight_sum (`_l2_scale`, read by the update)."""
        model = self.model
        params, last, code, rows = model.params, len(model.params) - 1, self.code, X_batch.shape[0]
        scale, self._l2_scale = 1.0 / batch_rows, 1.0
        if weights is not None and weight_sum is not None:
            scale, self._l2_scale = 1.0 / weight_sum, batch_rows / weight_sum
        Z, D, _, dA_views, dZ = self._views(rows)
        U = dropout
        A = X_batch
        inputs = [A]
        for layer in range(last):
            W, b = params[layer]
            np.matmul(A, W, out=Z[layer])
            kernels.bias_activation_forward(Z[layer], b, code)
            A = Z[layer]
            if U is not None:
                D[layer][...] = A
                kernels.dropout_forward(D[layer], U[layer], self.keep)
                A = D[layer]
            inputs.append(A)
        W, b = params[last]
        np.matmul(A, W, out=Z[last])
        kernels.bias_activation_forward(Z[last], b, mlp_kernels.IDENTITY)

        if weights is not None:
            loss_sum, n_correct = self._weighted_loss(Z[last], y_batch, weights, scale, dZ)
        elif self.regression:
            loss_sum, n_correct = self.loss_kernel(Z[last], y_batch, scale, dZ), 0
        else:
            loss_sum, n_correct = self.loss_kernel(Z[last], y_batch, scale, dZ)
            if self.label_smoothing:
                loss_sum, dZ[...] = losses.smooth_labels(
                    Z[last], y_batch, loss_sum, dZ, self.label_smoothing, scale, xp=model._xp
                )
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
        loss_sum = float(loss_sum)
        if weights is not None:  # the weighted mean, times the global batch's rows as the unweighted sum
            loss_sum *= batch_rows * scale
        if model.l2:  # the penalty of the weights the gradient was taken at
            flat_W = self.flat[: self.n_weights]
            loss_sum += rows * 0.5 * (model.l2 * self._l2_scale) * float(np.dot(flat_W, flat_W))
        return loss_sum, int(n_correct)

    def _weighted_loss(
        self, Z: np.ndarray, y_batch: np.ndarray, weights: np.ndarray, scale: float, dZ: np.ndarray
    ) -> tuple[float, int]:
        """The weighted loss kernel: (sum_i w_i l_i, n correct), dZ_i = g_i * w_i * scale."""
        if self.weighted_loss_kernel is None:
            raise ValueError(
                f"loss={self.model.loss!r} takes no sample weights on the Numba engine; use engine='xp'"
            )
        if self.regression:
            return self.weighted_loss_kernel(Z, y_batch, weights, scale, dZ), 0
        loss_sum, n_correct = self.weighted_loss_kernel(Z, y_batch, weights, scale, dZ)
        if self.label_smoothing:
            loss_sum, dZ[...] = losses.smooth_labels(
                Z, y_batch, loss_sum, dZ, self.label_smoothing, scale, xp=self.model._xp, row_weights=weights
            )
        return loss_sum, n_correct

    def _update(self, lr: float) -> None:
        """Clip, then apply the optimizer to the weight block and the bias block."""
        scale = 1.0
        if self.clip_norm is not None:
            (pW, gW, _, l2W, _), (pb, gb, _, _, _) = self._blocks
            norm = math.sqrt(
                kernels.processed_grad_sq_norm(gW, pW, l2W * self._l2_scale, self._clip_value)
                + kernels.processed_grad_sq_norm(gb, pb, 0.0, self._clip_value)
            )
            if norm > self.clip_norm:
                scale = self.clip_norm / norm
        for p, g, moments, l2, decay in self._blocks:
            self._step(p, g, moments, lr, l2 * self._l2_scale, decay, scale)


def _known_steps() -> set[tuple[Callable[..., Any], Callable[..., Any]]]:
    """(step, update) of the built-in optimizers: a subclass that overrides either has its own math."""
    from .. import optimizers

    classes = [optimizers.OPTIMIZERS[name] for name in _OPTIMIZER_KERNELS]
    return {(cls.step, cls.update) for cls in classes}


_KNOWN_STEPS = _known_steps()


def _built_in_step(optimizer: Optimizer) -> bool:
    return (type(optimizer).step, type(optimizer).update) in _KNOWN_STEPS
