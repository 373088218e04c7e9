"""The generic engine: one training step written against the array API, and the epoch around it.

Everything inside an epoch stays on the data's device. Per-step losses and correct counts are written
into small device arrays and read back once per epoch, so a GPU never waits for the host mid-epoch.
"""

from __future__ import annotations

import math

import numpy as np

from .. import layers
from .._array_api import from_host, row_chunks, to_numpy
from ..augment import BatchAugmenter
from ..losses import takes_class_indices
from ..optimizers import clip_gradients


class TrainingError(RuntimeError):
    """Training diverged (the loss became NaN or infinite)."""


def check_finite(step_losses, *, epoch, lr):
    """Raise TrainingError naming the first step (1-based) whose loss was NaN or infinite."""
    bad = np.flatnonzero(~np.isfinite(step_losses))
    if bad.size:
        raise TrainingError(
            f"the loss became {step_losses[bad[0]]} at epoch {epoch + 1}, step {bad[0] + 1} of "
            f"{len(step_losses)} (learning rate {lr:g}); lower the learning rate, clip the gradients "
            "(clip_norm=1.0) or check that X is scaled (e.g. pixels divided by 255)"
        )


class Trainer:
    """Everything that changes while a model trains: its parameters (updated in place), the optimizer
    state, the step count, the random generator and the schedule.

    `mlp.loop.run_epochs` drives one for `fit` and for the scikit-learn estimator; `partial_fit`
    keeps one and calls `run_epoch` whenever new data arrives. Nothing here reads device arrays
    back except once per epoch, for the metrics.
    """

    def __init__(
        self,
        model,
        *,
        optimizer,
        learning_rate,
        schedule,
        epochs,
        batch_size,
        dropout=0.0,
        clip_value=None,
        clip_norm=None,
        shuffle=True,
        rng=None,
        log_gradients=False,
        augment=None,
        max_norm=None,
        label_smoothing=0.0,
    ):
        self.model = model
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.schedule = schedule
        self.epochs = epochs
        self.batch_size = batch_size
        self.dropout = dropout
        self.clip_value, self.clip_norm = clip_value, clip_norm
        self.shuffle = shuffle
        self.log_gradients = log_gradients
        self.augment = augment  # an mlp.augment.Augment: every batch distorted afresh (None: as it is)
        self.augmenter = BatchAugmenter(augment) if augment is not None else None
        self.max_norm = max_norm  # the largest norm of a hidden unit's incoming weights (None: free)
        self.label_smoothing = label_smoothing
        self.on_step = None  # called with 1 after every step (a progress bar's update)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.flat_params = [p for pair in model.params for p in pair]
        self.is_weight = [index % 2 == 0 for index in range(len(self.flat_params))]
        self.state = optimizer.init_state(self.flat_params, xp=model._xp)
        self.step_count = 0  # optimizer steps taken (Adam's t)
        self.epoch = 0  # epochs completed
        self._scheduled = False
        self._norms = None
        self.parallel = None  # a mlp.distributed.DataParallel when training over MPI ranks

    # ---- one step -------------------------------------------------------------------------------
    def train_step(self, X_batch, y_batch, *, lr, dropout_masks=None):
        """One optimizer step on a mini-batch: forward, backward, clipping, update (in place).

        dropout_masks: one (rows, width) array of 0 or 1/keep per hidden layer, or None for no
        dropout. Returns (mean loss with the L2 term, as a 0-d array; the clipped flat gradients
        [dW0, db0, dW1, ...] that were applied; the logits)."""
        model, xp = self.model, self.model._xp
        value, grads, logits = layers.loss_and_gradients(
            model.params,
            X_batch,
            y_batch,
            activation=model.activation,
            loss=model.loss,
            l2=model.l2,
            xp=xp,
            dropout_masks=dropout_masks,
            label_smoothing=self.label_smoothing,
        )
        flat_grads = [g for pair in grads for g in pair]
        if self.parallel is not None:  # the global batch's mean gradient: one allreduce of a packed buffer
            flat_grads = self.parallel.sum_gradient_list(flat_grads)
        if self._norms is not None:  # log_gradients: the norms before clipping
            self._norms.add(flat_grads[0::2])
        if self.clip_value is not None or self.clip_norm is not None:
            flat_grads = clip_gradients(
                flat_grads, clip_value=self.clip_value, clip_norm=self.clip_norm, xp=xp
            )
        self.step_count += 1
        self.optimizer.step(
            self.flat_params,
            flat_grads,
            self.state,
            lr=lr,
            t=self.step_count,
            xp=xp,
            is_weight=self.is_weight,
        )
        if self.max_norm is not None:
            layers.max_norm(model.params, self.max_norm, xp=xp)
        return value, flat_grads, logits

    @property
    def mask_rng(self):
        """The generator of the dropout masks: the trainer's own, or this rank's over MPI (the
        shuffling stays on `rng`, the same on every rank)."""
        return self.rng if self.parallel is None else self.parallel.dropout_rng

    def dropout_masks(self, rows, dtype):
        """Inverted-dropout masks for a batch of `rows`, drawn on the host (one float64 uniform per
        unit, the numbers every engine draws) and moved to the model's device once."""
        if not self.dropout:
            return None
        keep, model = 1.0 - self.dropout, self.model
        return [
            from_host(
                (self.mask_rng.random((rows, width)) < keep) / keep,
                xp=model._xp,
                device=model.device,
                dtype=dtype,
            )
            for width in model.hidden_sizes
        ]

    # ---- one epoch ------------------------------------------------------------------------------
    def run_epoch(self, X, y_index):
        """One pass over (X, y_index): X validated and in the model's dtype, y_index class indices
        (or, for squared_error and binary_cross_entropy, the (n, k) target matrix in X's dtype).

        Returns {"epoch", "loss", "accuracy", "lr"} (plus gradient norms with log_gradients): the mean
        training loss (with the L2 term and dropout, as optimised) and accuracy of the mini-batches
        as they were seen; no "accuracy" for a loss on a target matrix.
        """
        model, xp = self.model, self.model._xp
        n = X.shape[0]
        step_size, steps = self._begin_epoch(n)
        step_losses = xp.zeros((steps,), dtype=X.dtype, device=model.device)
        classes = takes_class_indices(model.loss)
        step_correct = xp.zeros((steps,), dtype=xp.int64, device=model.device)
        order = None
        if self.shuffle and steps > 1:
            order = from_host(self.rng.permutation(n), xp=xp, device=model.device)
        key = self.augment_key()
        lr = self.learning_rate
        norms = self._norms = _NormLog(model, xp) if self.log_gradients else None
        for step, rows in enumerate(row_chunks(n, step_size)):
            batch = rows
            if self.parallel is not None:  # this rank's part of the global batch
                rows = slice(*self.parallel.part(rows.start, rows.stop))
            if order is None:
                X_batch, y_batch = X[rows, ...], y_index[rows, ...]
            else:
                X_batch, y_batch = xp.take(X, order[rows], axis=0), xp.take(y_index, order[rows], axis=0)
            if key is not None:  # the batch's own distortion, the same for any engine and rank count
                X_batch = self.augmenter.batch(
                    X_batch,
                    key,
                    step,
                    batch.stop - batch.start,
                    (rows.start - batch.start, rows.stop - batch.start),
                    xp=xp,
                )
            masks = self.dropout_masks(X_batch.shape[0], X.dtype)
            lr = self.schedule.lr(self.epoch, step)
            value, _, logits = self.train_step(X_batch, y_batch, lr=lr, dropout_masks=masks)
            step_losses[step] = value * y_batch.shape[0]
            if classes:
                step_correct[step] = xp.sum(xp.astype(xp.argmax(logits, axis=1) == y_batch, xp.int64))
            if self.on_step is not None:
                self.on_step(1)

        self._norms = None
        # One read-back per epoch: the per-step losses and correct counts.
        losses = to_numpy(step_losses).astype(np.float64)
        correct = int(to_numpy(step_correct).sum())
        if self.parallel is not None:  # every rank checks and reports the sums over all ranks
            losses, correct = self.parallel.sum_epoch(losses, correct)
        check_finite(losses, epoch=self.epoch, lr=lr)
        self.epoch += 1
        logs = {"epoch": self.epoch, "loss": float(losses.sum() / n), "lr": lr}
        if classes:
            logs["accuracy"] = float(correct / n)
        if norms is not None:
            logs.update(norms.logs(steps))
        return logs

    def augment_key(self):
        """This epoch's augmentation key (one draw from the trainer's generator), or None without
        augmentation: batches are drawn from (key, step), so they need no state of their own."""
        return None if self.augmenter is None else int(self.rng.integers(2**63))

    def prepare_data(self, X, y_index):
        """The arrays `run_epoch` works on best, made once before the epochs (the generic path takes
        them as they are)."""
        return X, y_index

    def _begin_epoch(self, n):
        """(rows per step, steps) for n samples; starts the schedule on the first epoch."""
        step_size = n if self.batch_size is None else min(self.batch_size, n)
        steps = math.ceil(n / step_size)
        if not self._scheduled:
            self.schedule.start(self.learning_rate, max(self.epochs, 1), steps)
            self._scheduled = True
        if self.parallel is not None:
            self.parallel.start_epoch(self.epoch)
        return step_size, steps

    def end_epoch(self, monitored):
        """Tell the schedule how the epoch went (the validation loss if any, else the training loss)."""
        self.schedule.epoch_end(self.epoch - 1, monitored)

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
        "log_gradients",
        "augment",
        "max_norm",
        "label_smoothing",
    )

    def snapshot(self):
        """Host copies of everything that changes while training, except the model's parameters."""
        return {
            "state": [np.array(to_numpy(s), copy=True) for s in self.state],
            "step_count": self.step_count,
            "epoch": self.epoch,
            "rng_state": self.rng.bit_generator.state,
            "schedule_state": dict(vars(self.schedule)) if self._scheduled else None,
        }

    def restore(self, snapshot, *, schedule=True):
        """Load a `snapshot` (optimizer state written in place, so a flat-buffer engine keeps its
        layout). With schedule=False the schedule starts over (a warm start)."""
        if len(snapshot["state"]) != len(self.state):
            raise ValueError(
                f"the snapshot holds {len(snapshot['state'])} optimizer arrays, expected {len(self.state)}"
            )
        model = self.model
        for index, (target, saved) in enumerate(zip(self.state, snapshot["state"])):
            if tuple(saved.shape) != tuple(target.shape):
                raise ValueError(
                    f"optimizer array {index} has shape {tuple(saved.shape)}, expected {tuple(target.shape)}"
                )
            target[...] = from_host(saved, xp=model._xp, device=model.device)
        self.step_count, self.epoch = int(snapshot["step_count"]), int(snapshot["epoch"])
        self.rng.bit_generator.state = snapshot["rng_state"]
        if schedule and snapshot.get("schedule_state"):
            vars(self.schedule).update(snapshot["schedule_state"])
            self._scheduled = True

    def __getstate__(self):
        return {
            "model": self.model,
            "options": {k: getattr(self, k) for k in self.OPTIONS},
            "snapshot": self.snapshot(),
        }

    def __setstate__(self, state):
        self.__init__(state["model"], rng=np.random.default_rng(), **state["options"])
        self.restore(state["snapshot"])


class _NormLog:
    """Per-layer gradient norms summed over an epoch's steps, and the weights at its start."""

    def __init__(self, model, xp):
        self.model, self.xp = model, xp
        self.grad_sums = [0.0] * len(model.params)
        self.weights_before = [xp.asarray(W, copy=True) for W, _ in model.params]

    def add(self, weight_grads):
        xp = self.xp
        self.grad_sums = [total + xp.sqrt(xp.sum(dW * dW)) for total, dW in zip(self.grad_sums, weight_grads)]

    def logs(self, steps):
        xp, params = self.xp, self.model.params
        return {
            "grad_norm": [float(total) / steps for total in self.grad_sums],
            "update_norm": [
                float(xp.sqrt(xp.sum((W - W0) * (W - W0)))) for (W, _), W0 in zip(params, self.weights_before)
            ],
            "weight_norm": [float(xp.sqrt(xp.sum(W * W))) for W, _ in params],
        }
