"""The generic engine: one training step written against the array API (NumPy, CuPy,
array-api-strict, PyTorch, ...), run by the epoch of `mlp.engines.base.BaseTrainer`.

Everything inside an epoch stays on the data's device. Per-step losses and correct counts stay
device scalars and are read back once per epoch, so a GPU never waits for the host mid-epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import layers
from .._array_api import Array, from_host, index_dtype, to_numpy
from ..layers import Norms
from ..losses import takes_class_indices
from ..optimizers import apply_step, clip_gradients
from .base import BaseTrainer, Span, TrainingError, check_finite

if TYPE_CHECKING:
    from ..distributed import DataParallel
    from ..model import MLP

__all__ = ["Trainer", "TrainingError", "check_finite"]


class Trainer(BaseTrainer):
    """The array-API engine: per-parameter arrays in the input's namespace and on its device.

    It writes into no array (the standard leaves in-place updates optional, and JAX's arrays are
    immutable): every step makes new parameters and a new optimizer state, and rebinds
    `model.params` (and `model.norms`) and `state` to them.

    With batch normalisation, gamma and beta are trained after the dense parameters (neither is a
    weight: no L2 term or decay), and every step with a global batch of two rows or more replaces
    the running statistics with those `mlp.layers.batch_norm_forward` updated; over MPI the batch
    statistics are sums over every rank's rows (`DataParallel.sum_columns`)."""

    def __init__(self, model: MLP, **options: Any) -> None:
        super().__init__(model, **options)
        dense, norms = 2 * len(model.params), 2 * len(model.norms)
        self.is_weight = [index % 2 == 0 for index in range(dense)] + [False] * norms
        self.state = self.optimizer.init_state(self.flat_params, xp=model._xp)
        self._grads: Sequence[Array] = []
        self._logits: Array = None
        self._value: Array = None
        self._running: Norms = model.norms  # the norms the last forward pass left (new running statistics)

    @property
    def flat_params(self) -> list[Array]:
        """The model's current parameters in the optimizer's order [W0, b0, W1, b1, ..., then gamma0,
        beta0, gamma1, beta1, ... with batch normalisation]."""
        dense = [p for pair in self.model.params for p in pair]
        return dense + [p for gamma, beta, _, _ in self.model.norms for p in (gamma, beta)]

    def train_step(
        self, X_batch: Array, y_batch: Array, *, lr: float, dropout_masks: Sequence[Array] | None = None
    ) -> tuple[Array, Sequence[Array], Array]:
        """One optimizer step on a mini-batch (`BaseTrainer.step`: forward, backward, clipping,
        update; `model.params` and `state` then hold new arrays), with the dropout masks given.

        dropout_masks: one (rows, width) array of 0 or 1/keep per hidden layer, or None for no
        dropout. Returns (mean loss with the L2 term, as a 0-d array; the clipped flat gradients
        [dW0, db0, dW1, ...] that were applied; the logits)."""
        self.step(X_batch, y_batch, lr=lr, dropout=dropout_masks)
        return self._value, self._grads, self._logits

    # ---- what the base asks of an engine --------------------------------------------------------
    def _epoch_batches(
        self,
        X: Array,
        targets: Array,
        weights: Array | None,
        order: np.ndarray | None,
        key: int | None,
        spans: Sequence[Span],
    ) -> Iterator[tuple[Array, Array, Array | None]]:
        xp, device = self.model._xp, self.model.device
        if order is not None:
            order = from_host(order, xp=xp, device=device)
        for step, (start, stop, lo, hi) in enumerate(spans):
            w_batch = None
            if order is None:
                X_batch, y_batch = X[lo:hi, ...], targets[lo:hi, ...]
                if weights is not None:
                    w_batch = weights[lo:hi]
            else:
                X_batch, y_batch = xp.take(X, order[lo:hi], axis=0), xp.take(targets, order[lo:hi], axis=0)
                if weights is not None:
                    w_batch = xp.take(weights, order[lo:hi], axis=0)
            # the batch's own distortion, the same for any engine and rank count (key: augmentation is on)
            if key is not None and self.augmenter is not None:
                X_batch = self.augmenter.batch(
                    X_batch, key, step, stop - start, (lo - start, hi - start), xp=xp
                )
            yield X_batch, y_batch, w_batch

    def _engine_weights(self, weights: np.ndarray) -> Array:
        """The weights on the model's device, in its dtype."""
        model = self.model
        return from_host(weights, xp=model._xp, device=model.device, dtype=model.params[0][0].dtype)

    def _dropout_buffers(self, rows: int) -> list[Array]:
        """Inverted-dropout masks, 0 or 1/keep, from uniforms drawn on the host and moved to the
        model's device once."""
        keep, model = 1.0 - self.dropout, self.model
        uniforms = self.draw_dropout_uniforms([np.empty((rows, width)) for width in model.hidden_sizes])
        return [
            from_host((u < keep) / keep, xp=model._xp, device=model.device, dtype=model.params[0][0].dtype)
            for u in uniforms
        ]

    def _gradients(
        self,
        X_batch: Array,
        y_batch: Array,
        batch_rows: int,
        dropout: Any,
        *,
        weights: Array | None = None,
        weight_sum: float | None = None,
    ) -> tuple[Array, Any]:
        model, xp = self.model, self.model._xp
        rows = X_batch.shape[0]
        statistics = self._statistics(rows, batch_rows)
        self._running = model.norms
        joins = statistics is not None and statistics.rows >= 2  # the batch statistics' allreduces
        if rows == 0 and not joins:  # sharded over MPI, this rank holds no row of the batch: it adds zeros
            self._grads = [xp.zeros_like(p) for p in self.flat_params]
            self._value = xp.zeros((), dtype=model.params[0][0].dtype, device=model.device)
            self._logits = None
            return self._value, 0
        l2, row_weights = model.l2, None
        if rows == 0:  # no row, but batch normalisation's sums over the ranks: a pass over no row joins them
            row_weights = xp.zeros((0,), dtype=model.params[0][0].dtype, device=model.device)
        elif weights is not None and weight_sum is not None:
            # Row i counts w_i / weight_sum, over MPI divided by this rank's row share (which
            # sum_gradient_list multiplies back), so the ranks' sum is the global weighted mean; the
            # L2 term is scikit-learn's: alpha / sum of weights where it is alpha / rows unweighted.
            row_weights = weights * (batch_rows / (weight_sum * rows))
            l2 = l2 * (batch_rows / weight_sum)
        done = layers.backprop(
            model.params,
            X_batch,
            y_batch,
            activation=model.activation,
            loss=model.loss,
            l2=l2,
            xp=xp,
            dropout_masks=dropout,
            label_smoothing=self.label_smoothing,
            row_weights=row_weights,
            batch_norm=model.batch_norm,
            norms=model.norms,
            statistics=statistics,
        )
        value, logits, self._running = done.value, done.logits, done.norms
        self._value, self._logits = value, logits
        # means over this rank's rows (weighted over MPI), in the optimizer's order
        self._grads = [g for pair in done.grads for g in pair]
        if rows == 0:  # its loss sum is over no row: 0, not the L2 term the pass added
            self._logits = None
            return value * 0, 0
        correct = 0
        if takes_class_indices(model.loss):
            correct = xp.sum(xp.astype(xp.argmax(logits, axis=1) == y_batch, index_dtype(xp, model.device)))
        return value * rows, correct

    def _statistics(self, rows: int, batch_rows: int) -> layers.BatchStatistics | None:
        """How batch normalisation sees this step's global batch of `batch_rows` rows, `rows` of them
        here (None without batch normalisation)."""
        if self.model.batch_norm is None:
            return None
        parallel, model = self.parallel, self.model
        batch_sum = None
        if parallel is not None:

            def batch_sum(A: Array) -> Array:
                return parallel.sum_columns(A, xp=model._xp, device=model.device)

        return layers.BatchStatistics(
            batch_rows, momentum=self.batch_norm_momentum, batch_sum=batch_sum, share=rows / batch_rows
        )

    def _reduce_gradients(self, parallel: DataParallel) -> None:
        self._grads = parallel.sum_gradient_list(self._grads)

    def _weight_gradient_norms(self) -> list[Array]:
        xp = self.model._xp
        return [xp.sqrt(xp.sum(dW * dW)) for dW in self._grads[0 : 2 * len(self.model.params) : 2]]

    def _update(self, lr: float) -> None:
        xp = self.model._xp
        if self.clip_value is not None or self.clip_norm is not None:
            self._grads = clip_gradients(
                self._grads, clip_value=self.clip_value, clip_norm=self.clip_norm, xp=xp
            )
        params, self.state = apply_step(
            self.optimizer,
            self.flat_params,
            self._grads,
            self.state,
            lr=lr,
            t=self.step_count,
            xp=xp,
            is_weight=self.is_weight,
        )
        model, dense = self.model, 2 * len(self.model.params)
        model.params = list(zip(params[0:dense:2], params[1:dense:2], strict=True))
        model.norms = [
            (gamma, beta, running_mean, running_var)
            for gamma, beta, (_, _, running_mean, running_var) in zip(
                params[dense::2], params[dense + 1 :: 2], self._running, strict=True
            )
        ]

    def _to_host(self, values: Sequence[Any]) -> np.ndarray:
        """One transfer: the step values stacked on the device, then copied."""
        if not values or isinstance(values[0], (int, float)):
            return np.asarray(values)
        return to_numpy(self.model._xp.stack(values))
