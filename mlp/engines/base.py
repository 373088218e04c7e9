"""What every engine shares: the epoch and the step around an engine's own arithmetic.

`BaseTrainer.run_epoch` walks the batches of an epoch, draws every random number (the epoch's
permutation, the augmentation key, the dropout uniforms), asks the schedule for each step's rate,
counts the steps, reduces the gradients over MPI ranks, logs gradient norms, applies the max-norm
constraint, reads the per-step losses back once, checks that they are finite and writes the logs. An
engine supplies only what differs (see the methods marked "engine"):

    _epoch_batches(X, y, w, order, key, spans)  the batches of an epoch (and their sample weights),
                                                gathered (and augmented)
    _engine_weights(w)                          the sample weights as the engine gathers them
    _dropout_buffers(rows)                      where this step's dropout uniforms go
    _gradients(X_batch, y_batch, ...)           forward and backward: loss sum, correct count
    _reduce_gradients(parallel)                 the MPI sum of its gradient storage
    _weight_gradient_norms()                    per-layer norms of the weight gradients
    _update(lr)                                 clipping and the optimizer step on its parameters
    _to_host(values)                            the epoch's per-step numbers, read back once

Because both engines get their random numbers and their step boundaries from here, training the
same model from the same seed draws the same numbers on every engine by construction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import layers
from .._array_api import Array, assign, from_host, to_numpy
from .._order import block_order
from ..augment import BatchAugmenter
from ..losses import takes_class_indices

if TYPE_CHECKING:
    from ..augment import Augment
    from ..distributed import DataParallel
    from ..model import MLP
    from ..optimizers import Optimizer
    from ..schedules import Schedule

Span = tuple[int, int, int, int]  # (start, stop) of a global batch and this rank's part [lo, hi) of it


class TrainingError(RuntimeError):
    """Training diverged (the loss became NaN or infinite)."""


def check_finite(step_losses: np.ndarray, *, epoch: int, lr: float) -> None:
    """Raise TrainingError naming the first step (1-based) whose loss was NaN or infinite."""
    bad = np.flatnonzero(~np.isfinite(step_losses))
    if bad.size:
        raise TrainingError(
            f"the loss became {step_losses[bad[0]]} at epoch {epoch + 1}, step {bad[0] + 1} of "
            f"{len(step_losses)} (learning rate {lr:g}); lower the learning rate, clip the gradients "
            "(clip_norm=1.0) or check that X is scaled (e.g. pixels divided by 255)"
        )


class BaseTrainer:
    """Everything that changes while a model trains: its parameters (updated in place), the optimizer
    state, the step count, the random generator and the schedule.

    `mlp.loop.run_epochs` drives one for `fit` and for the scikit-learn estimators; `partial_fit`
    keeps one and calls `run_epoch` whenever new data arrives.
    """

    # Capabilities an engine declares (read by fit, never found out with isinstance):
    # a rank may hold no row of a global batch over MPI (its part adds zeros to the sums)
    takes_empty_batch_parts = False

    def __init__(
        self,
        model: MLP,
        *,
        optimizer: Optimizer,
        learning_rate: float,
        schedule: Schedule,
        epochs: int,
        batch_size: int | None,
        dropout: float = 0.0,
        clip_value: float | None = None,
        clip_norm: float | None = None,
        shuffle: bool = True,
        shuffle_block: int | None = None,
        rng: np.random.Generator | None = None,
        log_gradients: bool = False,
        augment: Augment | None = None,
        max_norm: float | None = None,
        label_smoothing: float = 0.0,
        batch_norm_momentum: float = layers.BATCH_NORM_MOMENTUM,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.schedule = schedule
        self.epochs = epochs
        self.batch_size = batch_size
        self.dropout = dropout
        self.clip_value, self.clip_norm = clip_value, clip_norm
        self.shuffle = shuffle
        self.shuffle_block = shuffle_block  # rows per block of `block_order` (None: a full shuffle)
        self.log_gradients = log_gradients
        self.augment = augment  # an mlp.augment.Augment: every batch distorted afresh (None: as it is)
        self.augmenter = BatchAugmenter(augment) if augment is not None else None
        self.max_norm = max_norm  # the largest norm of a hidden unit's incoming weights (None: free)
        self.label_smoothing = label_smoothing
        self.batch_norm_momentum = batch_norm_momentum  # of the model's running statistics, if it has any
        self.on_step: Callable[[int], object] | None = (
            None  # called with 1 after every step (a progress bar's update)
        )
        self.rng = rng if rng is not None else np.random.default_rng()
        self.step_count = 0  # optimizer steps taken (Adam's t)
        self.epoch = 0  # epochs completed
        self.state: list[Any] = []  # the optimizer's arrays, per parameter in [W0, b0, W1, ...] order
        self._scheduled = False
        self._norms: _NormLog | None = None
        self.parallel: DataParallel | None = None  # set when training over MPI ranks
        self._weights_cache: tuple[Any, tuple[np.ndarray, Any]] | None = None  # (given, prepared)

    # ---- the random numbers, drawn here for every engine ----------------------------------------
    @property
    def mask_rng(self) -> np.random.Generator:
        """The generator of the dropout masks: the trainer's own, or this rank's over MPI (the
        shuffling stays on `rng`, the same on every rank)."""
        if self.parallel is None:
            return self.rng
        assert self.parallel.dropout_rng is not None  # DataParallel.start_epoch made it, before any step
        return self.parallel.dropout_rng

    def draw_dropout_uniforms(self, buffers: list[np.ndarray]) -> list[np.ndarray]:
        """Fill one float64 (rows, width) buffer per hidden layer, in layer order, with uniforms in
        [0, 1): a unit is kept where its uniform is below 1 - dropout."""
        for buffer in buffers:
            self.mask_rng.random(out=buffer)
        return buffers

    def epoch_order(self, n: int) -> np.ndarray:
        """The order of this epoch's rows: a full permutation, or with shuffle_block the block order
        of `mlp._order` (mostly sequential reads of a memory-mapped X)."""
        if self.shuffle_block is None:
            return self.rng.permutation(n)
        return block_order(n, self.shuffle_block, self.rng)

    def augment_key(self) -> int | None:
        """This epoch's augmentation key (one draw from the trainer's generator), or None without
        augmentation: batches are drawn from (key, step), so they need no state of their own."""
        return None if self.augmenter is None else int(self.rng.integers(2**63))

    # ---- one epoch ------------------------------------------------------------------------------
    def run_epoch(self, X: Array, targets: Array, sample_weight: Any = None) -> dict[str, Any]:
        """One pass over (X, targets): X validated and in the model's dtype; targets the class
        indices, or the (n, k) target matrix of a value loss (squared_error, binary_cross_entropy)
        in X's dtype. sample_weight: None, or n finite weights >= 0 (checked by fit's
        `check_sample_weight`): each batch's loss is then the weighted mean sum_i w_i l_i / sum_i w_i
        over the global batch and its L2 term is scaled by rows / sum_i w_i (scikit-learn's alpha /
        sum of weights); a batch whose weights sum to 0 takes no step.

        Returns {"epoch", "loss", "accuracy", "lr"} (plus gradient norms with log_gradients): the mean
        training loss (with the L2 term and dropout, as optimised) and accuracy of the mini-batches
        as they were seen; no "accuracy" for a loss on a target matrix.
        """
        X, targets = self.prepare_data(X, targets)  # free when fit already prepared them
        n = X.shape[0]
        weights = self._prepare_weights(sample_weight, n)
        shards = None if self.parallel is None else self.parallel.shards
        if shards is not None:  # sharded over MPI: the epoch runs over every rank's training rows
            n = shards.total
        step_size, steps = self._begin_epoch(n)
        order = self.epoch_order(n) if self.shuffle and steps > 1 else None
        key = self.augment_key()
        if shards is None:
            spans = self._spans(n, step_size)
            weight_sums = None if weights is None else _weight_sums(weights[0], order, spans)
        else:  # this rank's rows of each global batch, in a local order; the weight sums reduced
            assert self.parallel is not None
            order, spans = shards.epoch(order, step_size)
            if weights is not None:
                local = [(lo, hi, lo, hi) for _, _, lo, hi in spans]
                weight_sums = self.parallel.sum_values(_weight_sums(weights[0], order, local))
            else:
                weight_sums = None
        self._norms = _NormLog(self.model) if self.log_gradients else None
        loss_sums: list[Any] = []
        corrects: list[Any] = []
        lr = self.learning_rate
        batches = self._epoch_batches(X, targets, None if weights is None else weights[1], order, key, spans)
        try:
            for step, (X_batch, y_batch, w_batch) in enumerate(batches):
                start, stop, _, _ = spans[step]
                if self.parallel is not None:  # this rank's share of the global batch
                    self.parallel.share(*spans[step])
                lr = self.schedule.lr(self.epoch, step)
                if weight_sums is not None and not weight_sums[step] > 0:  # no weight: no step
                    loss_sums.append(0.0)
                    corrects.append(0)
                    continue
                dropout = self._dropout_buffers(X_batch.shape[0]) if self.dropout else None
                loss_sum, correct = self.step(
                    X_batch,
                    y_batch,
                    lr=lr,
                    batch_rows=stop - start,
                    dropout=dropout,
                    weights=w_batch,
                    weight_sum=None if weight_sums is None else float(weight_sums[step]),
                )
                loss_sums.append(loss_sum)
                corrects.append(correct)
                if self.on_step is not None:
                    self.on_step(1)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
        norms, self._norms = self._norms, None
        # One read-back per epoch: the per-step losses and correct counts.
        losses = np.asarray(self._to_host(loss_sums), dtype=np.float64)
        correct = int(np.asarray(self._to_host(corrects)).sum()) if corrects else 0
        if self.parallel is not None:  # every rank checks and reports the sums over all ranks
            losses, correct = self.parallel.sum_epoch(losses, correct)
        check_finite(losses, epoch=self.epoch, lr=lr)
        self.epoch += 1
        logs: dict[str, Any] = {"epoch": self.epoch, "loss": float(losses.sum() / n), "lr": lr}
        if takes_class_indices(self.model.loss):
            logs["accuracy"] = float(correct / n)
        if norms is not None:
            logs.update(norms.logs(steps))
        return logs

    def step(
        self,
        X_batch: Array,
        y_batch: Array,
        *,
        lr: float,
        batch_rows: int | None = None,
        dropout: Any = None,
        weights: Any = None,
        weight_sum: float | None = None,
    ) -> tuple[Any, Any]:
        """One optimizer step on a batch, the same for every engine: the gradients (the loss sum over
        the batch's rows divided by `batch_rows`, the global batch's size over MPI; with `weights`,
        this part's rows' weights in the engine's form, the weighted sum divided by `weight_sum`, the
        global batch's), summed over the ranks, logged, clipped and applied, then the max-norm
        constraint. Returns (loss sum with the L2 term, correct count), each a number or a 0-d array
        that `_to_host` reads back later: with weights, the weighted mean times the batch's rows."""
        rows = X_batch.shape[0]
        loss_sum, correct = self._gradients(
            X_batch, y_batch, batch_rows or rows, dropout, weights=weights, weight_sum=weight_sum
        )
        if self.parallel is not None:  # the global batch's mean gradient: one allreduce
            self._reduce_gradients(self.parallel)
        if self._norms is not None:  # log_gradients: the norms before clipping
            self._norms.add(self._weight_gradient_norms())
        self.step_count += 1
        self._update(lr)
        if self.max_norm is not None:  # in place where the arrays allow it (the Numba engine's views)
            self.model.params = layers.max_norm(self.model.params, self.max_norm, xp=self.model._xp)
        return loss_sum, correct

    def _spans(self, n: int, step_size: int) -> list[Span]:
        """[(start, stop, lo, hi)] of every step: the global batch's rows [start, stop) of the epoch's
        order and this rank's part [lo, hi) of them (the whole batch on one process)."""
        spans = []
        for start in range(0, n, step_size):
            stop = min(start + step_size, n)
            lo, hi = (start, stop) if self.parallel is None else self.parallel.rows_of(start, stop)
            spans.append((start, stop, lo, hi))
        return spans

    def _prepare_weights(self, sample_weight: Any, n: int) -> tuple[np.ndarray, Any] | None:
        """(host float64 copy, the engine's form) of the sample weights, made once per array given
        (every epoch of a fit passes the same one), or None without weights."""
        if sample_weight is None:
            return None
        cached = self._weights_cache
        if cached is not None and cached[0] is sample_weight:
            return cached[1]
        host = np.ascontiguousarray(to_numpy(sample_weight), dtype=np.float64)
        if host.shape != (n,):
            raise ValueError(f"sample_weight has shape {host.shape}, expected ({n},)")
        prepared = (host, self._engine_weights(host))
        self._weights_cache = (sample_weight, prepared)
        return prepared

    def prepare_data(self, X: Array, targets: Array) -> tuple[Array, Array]:
        """The arrays `run_epoch` works on best, made once before the epochs (the generic path takes
        them as they are)."""
        return X, targets

    def _begin_epoch(self, n: int) -> tuple[int, int]:
        """(rows per step, steps) for n samples; starts the schedule on the first epoch."""
        step_size = n if self.batch_size is None else min(self.batch_size, n)
        steps = math.ceil(n / step_size)
        if not self._scheduled:
            self.schedule.start(self.learning_rate, max(self.epochs, 1), steps)
            self._scheduled = True
        if self.parallel is not None:
            self.parallel.start_epoch(self.epoch)
        return step_size, steps

    def end_epoch(self, monitored: float) -> None:
        """Tell the schedule how the epoch went (the validation loss if any, else the training loss)."""
        self.schedule.epoch_end(self.epoch - 1, monitored)

    # ---- what an engine supplies ----------------------------------------------------------------
    def _epoch_batches(  # engine
        self,
        X: Array,
        targets: Array,
        weights: Any,
        order: np.ndarray | None,
        key: int | None,
        spans: Sequence[Span],
    ) -> Iterator[tuple[Array, Array, Any]]:
        """Yield (X_batch, y_batch, w_batch) for every span: this rank's rows [lo, hi) of the global
        batch, taken through `order` (None: in order) and distorted with augmentation `key` (None: as
        is); w_batch their weights, gathered from `weights` (the engine's form, None: unweighted)."""
        raise NotImplementedError

    def _engine_weights(self, weights: np.ndarray) -> Any:  # engine
        """The float64 host sample weights as `_epoch_batches` gathers them (the host array itself
        unless the engine works elsewhere)."""
        return weights

    def _dropout_buffers(self, rows: int) -> Any:  # engine
        """This step's dropout, drawn with `draw_dropout_uniforms` into float64 (rows, width)
        buffers, in the form `_gradients` takes."""
        raise NotImplementedError

    def _gradients(
        self,
        X_batch: Array,
        y_batch: Array,
        batch_rows: int,
        dropout: Any,
        *,
        weights: Any = None,
        weight_sum: float | None = None,
    ) -> tuple[Any, Any]:  # engine
        """Forward and backward into the engine's gradient storage: (loss sum over the rows, with the
        L2 term; correct count, 0 for a loss on a target matrix). With weights (this part's rows'),
        the gradient of sum_i w_i l_i / weight_sum plus the L2 term scaled by batch_rows / weight_sum,
        and as loss sum batch_rows / weight_sum * sum_i w_i l_i plus this part's rows times that term."""
        raise NotImplementedError

    def _reduce_gradients(self, parallel: DataParallel) -> None:  # engine
        raise NotImplementedError

    def _weight_gradient_norms(self) -> list[Any]:  # engine
        """Per layer, the Euclidean norm of the weight gradient (L2 term included), a number or a
        0-d array."""
        raise NotImplementedError

    def _update(self, lr: float) -> None:  # engine
        """Clip the gradients (by value, then by global norm) and apply the optimizer with rate lr."""
        raise NotImplementedError

    def _to_host(self, values: Sequence[Any]) -> np.ndarray:  # engine
        """A list of numbers or 0-d arrays -> a NumPy array, with one transfer from the device."""
        return np.asarray(values)

    # ---- the state that outlives a call: checkpoints, warm starts, pickling ----------------------
    OPTIONS = (
        "optimizer",
        "learning_rate",
        "schedule",
        "epochs",
        "batch_size",
        "dropout",
        "clip_value",
        "clip_norm",
        "shuffle",
        "shuffle_block",
        "log_gradients",
        "augment",
        "max_norm",
        "label_smoothing",
        "batch_norm_momentum",
    )

    def snapshot(self) -> dict[str, Any]:
        """Host copies of everything that changes while training, except the model's parameters."""
        return {
            "state": [np.array(to_numpy(s), copy=True) for s in self.state],
            "step_count": self.step_count,
            "epoch": self.epoch,
            "rng_state": self.rng.bit_generator.state,
            "schedule_state": dict(vars(self.schedule)) if self._scheduled else None,
        }

    def restore(self, snapshot: dict[str, Any], *, schedule: bool = True) -> None:
        """Load a `snapshot`: the optimizer state is written into the arrays where their library
        allows it (so a flat-buffer engine keeps its layout), new arrays where it does not (JAX). With
        schedule=False the schedule starts over (a warm start)."""
        if len(snapshot["state"]) != len(self.state):
            raise ValueError(
                f"the snapshot holds {len(snapshot['state'])} optimizer arrays, expected {len(self.state)}"
            )
        model, state = self.model, []
        for index, (target, saved) in enumerate(zip(self.state, snapshot["state"], strict=True)):
            if tuple(saved.shape) != tuple(target.shape):
                raise ValueError(
                    f"optimizer array {index} has shape {tuple(saved.shape)}, expected {tuple(target.shape)}"
                )
            saved = from_host(saved, xp=model._xp, device=model.device)
            state.append(assign(target, saved, xp=model._xp))
        self.state = state
        self.step_count, self.epoch = int(snapshot["step_count"]), int(snapshot["epoch"])
        self.rng.bit_generator.state = snapshot["rng_state"]
        if schedule and snapshot.get("schedule_state"):
            vars(self.schedule).update(snapshot["schedule_state"])
            self._scheduled = True

    def __getstate__(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "options": {k: getattr(self, k) for k in self.OPTIONS},
            "snapshot": self.snapshot(),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["model"], rng=np.random.default_rng(), **state["options"])  # type: ignore[misc]
        self.restore(state["snapshot"])


def _weight_sums(weights: np.ndarray, order: np.ndarray | None, spans: Sequence[Span]) -> np.ndarray:
    """The sum of the sample weights of every global batch (float64, on the host: every rank
    holds all the weights, so every rank gets the same sums without a collective)."""
    ordered = weights if order is None else weights[order]
    return np.array([math.fsum(ordered[start:stop]) for start, stop, _, _ in spans])


class _NormLog:
    """Per-layer weight-gradient norms summed over an epoch's steps, and the weights at its start."""

    def __init__(self, model: MLP) -> None:
        self.model, self.xp = model, model._xp
        self.grad_sums: list[Any] = [0.0] * len(model.params)
        self.weights_before = [self.xp.asarray(W, copy=True) for W, _ in model.params]

    def add(self, norms: Sequence[Any]) -> None:
        self.grad_sums = [total + norm for total, norm in zip(self.grad_sums, norms, strict=True)]

    def logs(self, steps: int) -> dict[str, list[float]]:
        xp, params = self.xp, self.model.params
        return {
            "grad_norm": [float(total) / steps for total in self.grad_sums],
            "update_norm": [
                float(xp.sqrt(xp.sum((W - W0) * (W - W0))))
                for (W, _), W0 in zip(params, self.weights_before, strict=True)
            ],
            "weight_norm": [float(xp.sqrt(xp.sum(W * W))) for W, _ in params],
        }
