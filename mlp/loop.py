"""The one epoch loop: validation, early stopping, callbacks, checkpoints, progress, printing.

`mlp.fit` and the scikit-learn estimator's `fit` (and warm starts) both run their epochs here; only
what they record differs (`history` keys they ask for, and an `on_epoch` hook).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import layers
from ._array_api import Array, Namespace, Params, index_dtype, row_chunks
from ._memory import prediction_chunk_rows
from ._progress import progress_bar
from ._threads import thread_limits
from .layers import Norms
from .losses import get_loss, takes_class_indices

if TYPE_CHECKING:
    from .engines import BaseTrainer
    from .model import MLP

# callback(epoch, logs, model): True stops the training
Callback = Callable[[int, dict[str, Any], "MLP"], object]


@dataclass
class Best:
    """The best epoch so far for early stopping: its monitored loss, a copy of its parameters (when
    they are to be restored), its 0-based epoch index, and a copy of its batch normalisations (with
    the parameters)."""

    monitored: float = math.inf
    params: Params | None = None
    epoch: int = -1
    norms: Norms | None = None


@dataclass
class Stopping:
    """When to stop: after `patience` epochs without a decrease of the monitored loss by more than
    `min_delta` (patience None: never), keeping a copy of the best parameters when `restore_best`."""

    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool = False


def run_epochs(
    trainer: BaseTrainer,
    X: Array,
    targets: Array,
    *,
    until_epoch: int,
    validation: tuple[Array, ...] | None = None,
    stopping: Stopping | None = None,
    best: Best | None = None,
    history: dict[str, list[Any]] | None = None,
    callbacks: Sequence[Callback] = (),
    on_epoch: Callable[[dict[str, Any], Best], object] | None = None,
    verbose: int = 0,
    progress: bool | str = False,
    n_threads: int | None = None,
    checkpoint: Callable[[bool, Best], object] | None = None,
    sample_weight: Any = None,
) -> Best:
    """Train `trainer` epoch by epoch until its epoch count reaches `until_epoch` or a stop.

    validation: (X_val, y_val) or (X_val, y_val, sample_weight_val) evaluated after every epoch; the
    monitored loss is its (weighted) loss, else the training loss. sample_weight: the training rows'
    weights (`BaseTrainer.run_epoch`). history: {key: list} appended with each epoch's logs (NaN for a missing key).
    callbacks: `callback(epoch, logs, model)`; True stops. on_epoch(logs, best): the caller's own
    bookkeeping. checkpoint(stop, best): called after each epoch to save the state.
    Returns the final `Best` (with the best parameters restored into the model when asked).
    """
    model = trainer.model
    parallel = getattr(trainer, "parallel", None)  # over MPI: rank 0 prints, metrics and stops agreed
    root = parallel is None or parallel.root
    stopping = stopping or Stopping()
    best = best or Best()
    X, targets = trainer.prepare_data(X, targets)
    shards = None if parallel is None else parallel.shards
    rows = X.shape[0] if shards is None else shards.total
    steps = math.ceil(rows / (rows if trainer.batch_size is None else min(trainer.batch_size, rows)))
    total, epoch, patience_ran_out = until_epoch, trainer.epoch - 1, False
    for epoch in range(trainer.epoch, until_epoch):
        started = time.perf_counter()
        with (
            progress_bar(steps, f"epoch {epoch + 1}/{total}", enabled=progress if root else False) as bar,
            thread_limits(n_threads),
        ):
            trainer.on_step = bar.update
            logs = trainer.run_epoch(X, targets, sample_weight)
            trainer.on_step = None
            if validation is not None:
                logs["val_loss"], accuracy = (evaluate if parallel is None else parallel.evaluate)(
                    model, *validation, xp=model._xp
                )
                if accuracy is not None:
                    logs["val_accuracy"] = accuracy
        logs["seconds"] = time.perf_counter() - started
        if history is not None:
            for key in history:
                history[key].append(logs.get(key, math.nan))

        monitored = logs.get("val_loss", logs["loss"])
        trainer.end_epoch(monitored)
        stop = False
        if monitored < best.monitored - stopping.min_delta:
            if stopping.restore_best:
                best = Best(monitored, model.copy_params(), epoch, model.copy_norms())
            else:
                best = Best(monitored, None, epoch)
        elif stopping.patience is not None and epoch - best.epoch >= stopping.patience:
            stop = patience_ran_out = True
        if verbose and root and ((epoch + 1) % verbose == 0 or epoch + 1 == until_epoch or stop):
            print(format_logs(logs, total), flush=True)
        if on_epoch is not None:
            on_epoch(logs, best)
        if checkpoint is not None:
            checkpoint(stop, best)
        for callback in callbacks:
            if callback(epoch + 1, dict(logs), model) is True:
                stop = True
        if parallel is not None:  # a callback's stop on any rank stops them all
            stop = parallel.any(stop)
        if stop:
            break
    restored = stopping.restore_best and best.params is not None
    if restored and best.params is not None:  # (restored says so; repeated for the type checker)
        model.set_weights(best.params, norms=best.norms)
    if verbose and root and (patience_ran_out or (restored and best.epoch != epoch)):
        print(stopping_report(epoch, best, stopping, patience_ran_out, restored, validation is not None))
    return best


def stopping_report(
    epoch: int, best: Best, stopping: Stopping, patience_ran_out: bool, restored: bool, validated: bool
) -> str:
    """The line saying where early stopping ended the run and whose weights the model now holds
    (0-based epoch indices in, 1-based epochs out)."""
    name = "val_loss" if validated else "loss"
    text = (
        f"early stopping at epoch {epoch + 1}: {name} has not improved for {stopping.patience} "
        f"epoch{'' if stopping.patience == 1 else 's'}"
        if patience_ran_out
        else f"{name} was lowest at epoch {best.epoch + 1}"
    )
    if restored:
        text += f"; restored the weights of epoch {best.epoch + 1} ({name} {best.monitored:.4f})"
    return text


def evaluate(
    model: MLP, X: Array, targets: Array, sample_weight: Array | None = None, *, xp: Namespace
) -> tuple[float, float | None]:
    """Mean loss (without the L2 term) and accuracy over (X, targets), in chunks; two Python floats
    (the accuracy None for a loss on a target matrix, such as regression). With sample_weight (X's
    namespace and device), both are weighted means, as scikit-learn weights its validation score."""
    loss_fn, classes = get_loss(model.loss), takes_class_indices(model.loss)
    total_loss, correct = 0.0, 0
    total_weight = X.shape[0] if sample_weight is None else float(xp.sum(sample_weight))
    for rows in row_chunks(X.shape[0], prediction_chunk_rows(model.layer_sizes, model.dtype)):
        X_chunk, y_chunk = X[rows, ...], targets[rows, ...]
        logits = layers.forward(  # batch normalisation (if any) with the running statistics
            model.params, X_chunk, model.activation, xp=xp, batch_norm=model.batch_norm, norms=model.norms
        )[0]
        hits = xp.argmax(logits, axis=1) == y_chunk if classes else None
        if sample_weight is None:
            value, _ = loss_fn(logits, y_chunk, xp=xp)
            total_loss = total_loss + value * X_chunk.shape[0]
            if hits is not None:
                correct = correct + xp.sum(xp.astype(hits, index_dtype(xp, model.device)))
            continue
        w_chunk = sample_weight[rows, ...]
        value, _ = loss_fn(logits, y_chunk, xp=xp, row_weights=w_chunk)  # sum_i w_i l_i
        total_loss = total_loss + value
        if hits is not None:
            correct = correct + xp.sum(xp.astype(hits, w_chunk.dtype) * w_chunk)
    if sample_weight is not None:  # the weighted means (a validation set weighing 0 counts as 0)
        total = total_weight or 1.0
        return float(total_loss) / total, float(correct) / total if classes else None
    return float(total_loss) / X.shape[0], int(correct) / X.shape[0] if classes else None


def format_logs(logs: dict[str, Any], epochs: int) -> str:
    """One line per epoch: loss, accuracy, validation, learning rate, seconds."""
    width = len(str(epochs))
    text = f"epoch {logs['epoch']:>{width}}/{epochs}  loss {logs['loss']:.4f}"
    if "accuracy" in logs:
        text += f"  acc {logs['accuracy']:.4f}"
    if "val_loss" in logs:
        text += f"  val_loss {logs['val_loss']:.4f}"
    if "val_accuracy" in logs:
        text += f"  val_acc {logs['val_accuracy']:.4f}"
    if "grad_norm" in logs:
        text += "  grad_norm " + "/".join(f"{g:.3g}" for g in logs["grad_norm"])
    text += f"  lr {logs['lr']:.2e}"
    if "seconds" in logs:
        text += f"  {logs['seconds']:.2f}s"
    return text
