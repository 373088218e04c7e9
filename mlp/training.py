"""The training loop: batching, optimisation, validation, early stopping, history.

Everything inside an epoch stays on the data's device. Per-step losses and correct counts are written
into small device arrays and read back once per epoch, so a GPU never waits for the host mid-epoch.
"""
from __future__ import annotations

import math
import os
import time

import numpy as np

from . import layers, saving
from ._array_api import float_dtype, from_host, row_chunks, to_numpy
from ._validation import check_features, check_labels, check_positive_int, check_rate
from .activations import get_activation
from .initializers import default_init, initial_parameters
from .losses import get_loss
from .model import MLP
from .optimizers import clip_gradients, make_optimizer
from .schedules import make_schedule

# The default recipe: measured in the README (test accuracy and seconds on a 2-core CPU).
DEFAULT_HIDDEN_SIZES = (256, 128)
DEFAULT_EPOCHS = 25
DEFAULT_DROPOUT = 0.1
DEFAULT_BATCH_SIZE = 128
DEFAULT_SCHEDULE = "cosine"

DEFAULT_LEARNING_RATES = {
    "sgd": 0.1,
    "momentum": 0.05,
    "nesterov": 0.05,
    "rmsprop": 1e-3,
    "adam": 1e-3,
    "adamw": 1e-3,
}
EVAL_CHUNK = 8192


class TrainingError(RuntimeError):
    """Training diverged (the loss became NaN or infinite)."""


def fit(
    X,
    y,
    *,
    hidden_sizes=DEFAULT_HIDDEN_SIZES,
    activation="relu",
    loss="cross_entropy",
    init="auto",
    epochs=DEFAULT_EPOCHS,
    batch_size=DEFAULT_BATCH_SIZE,
    optimizer="adam",
    learning_rate=None,
    momentum=None,
    weight_decay=None,
    dropout=DEFAULT_DROPOUT,
    clip_value=None,
    clip_norm=None,
    schedule=DEFAULT_SCHEDULE,
    validation_data=None,
    validation_split=0.0,
    early_stopping=False,
    patience=5,
    min_delta=0.0,
    callbacks=(),
    verbose=0,
    dtype="float32",
    seed=None,
    shuffle=True,
    checkpoint=None,
    resume=False,
    log_gradients=False,
    progress=False,
    engine="auto",
):
    """Train a multilayer perceptron on (X, y) and return the trained `MLP`.

    X: (n_samples, n_features) NumPy, CuPy or any array-API array; the model lives in its namespace
    and on its device. y: integer labels (n_samples,) of any values, or one-hot rows (n_samples, K).

    hidden_sizes: widths of the hidden layers, any number of them ([] gives a linear softmax model).
    activation: relu | leaky_relu | sigmoid | tanh | identity, for every hidden layer.
    loss: cross_entropy (softmax output) | mse (sigmoid output, the classic beginners' network).
    init: auto (He for the ReLU family, else Glorot) | he_normal | he_uniform | glorot_normal |
        glorot_uniform | lecun_normal | lecun_uniform | normal.
    batch_size: int (1 = pure SGD), or None / "full" for full-batch gradient descent. The data are
        reshuffled every epoch from `seed`; the last partial batch is used.
    optimizer: sgd | momentum | nesterov | rmsprop | adam | adamw, or an `mlp.optimizers` instance.
    learning_rate: base rate (default depends on the optimizer); `schedule` shapes it over training:
        constant | step | exponential | cosine | plateau, or an `mlp.schedules` instance.
    weight_decay: L2 penalty (lambda/2)*||W||^2 on the weights; with adamw the decoupled decay
        (default 0.01 there, 0 elsewhere).
    dropout: probability of dropping a hidden unit during training (inverted dropout).
    clip_value / clip_norm: clip gradients elementwise, then by their global norm.
    validation_data=(X_val, y_val) or validation_split=fraction: evaluated after each epoch.
    early_stopping: stop when the monitored loss (validation if any, else training) has not improved
        by `min_delta` for `patience` epochs, and restore the best weights.
    callbacks: callables `callback(epoch, logs, model)` run after each epoch; returning True stops.
    verbose: 0 silent, 1 a line per epoch, N a line every N epochs (and the last).
    dtype: float32 (default) or float64. seed: int for reproducible initialisation, shuffling, dropout.
    checkpoint: a path; after every epoch the weights, optimizer state, epoch, random state and
        history are saved there atomically. resume=True continues from it (same options required);
        on the CPU the resumed run ends with the same weights as an uninterrupted one.
    engine: "auto" (the Numba kernels for NumPy float input when Numba is installed, else the generic
        array-API path), "numba" (insist on the kernels) or "xp" (force the generic path).
    progress: True for a progress bar per epoch (tqdm, on stderr), "auto" for one only when stderr
        is a terminal.
    log_gradients: record per-layer gradient norms (mean over the epoch's steps, before clipping),
        the size of each layer's update over the epoch, and its weight norm, in `history`.
    """
    # ---- validate everything before any work -------------------------------------------------
    X, xp, device = check_features(X, dtype=dtype, name="X")
    y_index, classes = check_labels(y, X.shape[0], xp=xp, device=device)
    hidden_sizes = check_hidden_sizes(hidden_sizes)
    get_activation(activation)
    get_loss(loss)
    epochs = check_positive_int(epochs, "epochs", allow_zero=True)
    batch_size = check_batch_size(batch_size)
    dropout = check_rate(dropout, "dropout", high=1.0)
    validation_split = check_rate(validation_split, "validation_split", high=1.0)
    patience = check_positive_int(patience, "patience", allow_zero=True)
    min_delta = check_rate(min_delta, "min_delta")
    verbose = check_positive_int(int(verbose) if isinstance(verbose, bool) else verbose, "verbose", allow_zero=True)
    for name, value in (("clip_value", clip_value), ("clip_norm", clip_norm)):
        if value is not None:
            check_rate(value, name, low=0.0, low_inclusive=False)
    if callable(callbacks):
        callbacks = [callbacks]
    callbacks = list(callbacks or ())
    if not all(callable(c) for c in callbacks):
        raise TypeError("callbacks must be callables taking (epoch, logs, model)")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed must be an integer or None, got {seed!r}")

    opt, learning_rate, weight_decay, l2 = build_optimizer(
        optimizer, learning_rate=learning_rate, momentum=momentum, weight_decay=weight_decay
    )
    sched = make_schedule(schedule)
    if init == "auto":
        init = default_init(activation)

    if seed is None:  # still reproducible from the recorded seed, and resumable
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    rng = np.random.default_rng(seed)
    X_val = y_val = None
    if validation_data is not None:
        if validation_split:
            raise ValueError("pass either validation_data or validation_split, not both")
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise TypeError("validation_data must be a pair (X_val, y_val)")
        X_val, _, _ = check_features(
            validation_data[0], dtype=dtype, name="X_val", n_features=X.shape[1], xp=xp, device=device
        )
        y_val, _ = check_labels(validation_data[1], X_val.shape[0], xp=xp, device=device, classes=classes, name="y_val")
    elif validation_split:
        n_val = int(round(X.shape[0] * validation_split))
        if n_val < 1 or n_val >= X.shape[0]:
            raise ValueError(
                f"validation_split={validation_split} leaves {n_val} validation and "
                f"{X.shape[0] - n_val} training samples; both need at least one"
            )
        order = from_host(rng.permutation(X.shape[0]), xp=xp, device=device)
        X_val, y_val = xp.take(X, order[:n_val], axis=0), xp.take(y_index, order[:n_val])
        X, y_index = xp.take(X, order[n_val:], axis=0), xp.take(y_index, order[n_val:])
    if early_stopping and epochs == 0:
        early_stopping = False

    # ---- the model ------------------------------------------------------------------------------
    n, n_features = X.shape
    sizes = [n_features, *hidden_sizes, int(classes.shape[0])]
    float_type = float_dtype(dtype, xp=xp)
    params = [
        (from_host(W, xp=xp, device=device, dtype=float_type), from_host(b, xp=xp, device=device, dtype=float_type))
        for W, b in initial_parameters(sizes, init, rng)
    ]
    config = dict(
        hidden_sizes=list(hidden_sizes), activation=activation, loss=loss, init=init, epochs=epochs,
        batch_size=batch_size, optimizer=opt.config(), learning_rate=learning_rate, weight_decay=weight_decay,
        dropout=dropout, clip_value=clip_value, clip_norm=clip_norm, schedule=getattr(sched, "name", str(sched)),
        dtype=dtype, seed=seed,
    )
    keys = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"]
    if log_gradients:
        keys += ["grad_norm", "update_norm", "weight_norm"]
    history = {key: [] for key in keys}
    model = MLP(params, activation=activation, loss=loss, classes=classes, l2=l2, history=history, config=config)
    if epochs == 0:
        return model

    # ---- the loop -------------------------------------------------------------------------------
    trainer = make_trainer(
        model, X, engine=engine, optimizer=opt, learning_rate=learning_rate, schedule=sched, epochs=epochs,
        batch_size=batch_size, dropout=dropout, clip_value=clip_value, clip_norm=clip_norm,
        shuffle=shuffle, rng=rng, log_gradients=log_gradients,
    )
    best = (math.inf, None, -1)  # (monitored loss, parameter copy, epoch index)
    fit_options = {**config, "n_samples": n, "n_features": n_features}
    if checkpoint is not None and resume and os.path.exists(checkpoint):
        best, finished = _resume(trainer, checkpoint, fit_options, history, best)
        if finished:
            epochs = trainer.epoch  # the checkpointed run had already stopped early
    bar_factory = _progress_bars(progress)
    steps_per_epoch = math.ceil(n / (n if batch_size is None else min(batch_size, n)))
    X, y_index = trainer.prepare_data(X, y_index)
    for epoch in range(trainer.epoch, epochs):
        started = time.perf_counter()
        with bar_factory(f"epoch {epoch + 1}/{epochs}", steps_per_epoch) as bar:
            trainer.on_step = bar.update
            logs = trainer.run_epoch(X, y_index)
        if X_val is not None:
            logs["val_loss"], logs["val_accuracy"] = evaluate(model, X_val, y_val, xp=xp)
        logs["seconds"] = time.perf_counter() - started
        for key in history:
            history[key].append(logs.get(key, float("nan")))

        monitored = logs.get("val_loss", logs["loss"])
        trainer.end_epoch(monitored)
        stop = False
        if early_stopping:
            if monitored < best[0] - min_delta:
                best = (monitored, model.copy_params(), epoch)
            elif epoch - best[2] >= patience:
                stop = True
        if verbose and ((epoch + 1) % verbose == 0 or epoch + 1 == epochs or stop):
            print(_format_logs(logs, epochs), flush=True)
        if checkpoint is not None:
            saving.save_checkpoint(checkpoint, trainer, history=history, fit_options=fit_options,
                                   best=best if early_stopping else None, finished=stop)
        for callback in callbacks:
            if callback(epoch + 1, dict(logs), model) is True:
                stop = True
        if stop:
            break

    if early_stopping and best[1] is not None:
        model.set_params(best[1])
        model.best_epoch = best[2] + 1
    return model


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

    `fit` drives one for a fixed number of epochs; `partial_fit`-style callers keep one and call
    `run_epoch` whenever new data arrives. Nothing here reads device arrays back except once per
    epoch, for the metrics.
    """

    def __init__(self, model, *, optimizer, learning_rate, schedule, epochs, batch_size, dropout=0.0,
                 clip_value=None, clip_norm=None, shuffle=True, rng=None, log_gradients=False):
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
        self.on_step = None  # called with 1 after every step (a progress bar's update)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.flat_params = [p for pair in model.params for p in pair]
        self.is_weight = [index % 2 == 0 for index in range(len(self.flat_params))]
        self.state = optimizer.init_state(self.flat_params, xp=model._xp)
        self.step_count = 0  # optimizer steps taken (Adam's t)
        self.epoch = 0  # epochs completed
        self._scheduled = False

    def run_epoch(self, X, y_index):
        """One pass over (X, y_index): X validated and in the model's dtype, y_index class indices.

        Returns {"epoch", "loss", "accuracy", "lr"}: the mean training loss (with the L2 term and
        dropout, as optimised) and accuracy of the mini-batches as they were seen.
        """
        model, xp, rng = self.model, self.model._xp, self.rng
        n = X.shape[0]
        step_size, steps = self._begin_epoch(n)
        step_losses = xp.zeros((steps,), dtype=X.dtype, device=model.device)
        step_correct = xp.zeros((steps,), dtype=xp.int64, device=model.device)
        order = None
        if self.shuffle and steps > 1:
            order = from_host(rng.permutation(n), xp=xp, device=model.device)
        keep = 1.0 - self.dropout
        lr = self.learning_rate
        if self.log_gradients:
            grad_sums = [0.0] * len(model.params)
            weights_before = [xp.asarray(W, copy=True) for W, _ in model.params]
        for step, rows in enumerate(row_chunks(n, step_size)):
            if order is None:
                X_batch, y_batch = X[rows, ...], y_index[rows]
            else:
                X_batch, y_batch = xp.take(X, order[rows], axis=0), xp.take(y_index, order[rows])
            masks = None
            if self.dropout:
                masks = [
                    from_host((rng.random((X_batch.shape[0], width)) < keep) / keep,
                              xp=xp, device=model.device, dtype=X.dtype)
                    for width in model.hidden_sizes
                ]
            value, grads, logits = layers.loss_and_gradients(
                model.params, X_batch, y_batch, activation=model.activation, loss=model.loss, l2=model.l2,
                xp=xp, dropout_masks=masks,
            )
            if self.log_gradients:
                grad_sums = [total + xp.sqrt(xp.sum(dW * dW)) for total, (dW, _) in zip(grad_sums, grads)]
            flat_grads = [g for pair in grads for g in pair]
            if self.clip_value is not None or self.clip_norm is not None:
                flat_grads = clip_gradients(flat_grads, clip_value=self.clip_value, clip_norm=self.clip_norm, xp=xp)
            self.step_count += 1
            lr = self.schedule.lr(self.epoch, step)
            self.optimizer.step(self.flat_params, flat_grads, self.state, lr=lr, t=self.step_count, xp=xp,
                                is_weight=self.is_weight)
            step_losses[step] = value * y_batch.shape[0]
            step_correct[step] = xp.sum(xp.astype(xp.argmax(logits, axis=1) == y_batch, xp.int64))
            if self.on_step is not None:
                self.on_step(1)

        # One read-back per epoch: the per-step losses and correct counts.
        losses = to_numpy(step_losses).astype(np.float64)
        check_finite(losses, epoch=self.epoch, lr=lr)
        self.epoch += 1
        logs = {
            "epoch": self.epoch,
            "loss": float(losses.sum() / n),
            "accuracy": float(to_numpy(step_correct).sum() / n),
            "lr": lr,
        }
        if self.log_gradients:
            logs["grad_norm"] = [float(total) / steps for total in grad_sums]
            logs["update_norm"] = [float(xp.sqrt(xp.sum((W - W0) * (W - W0))))
                                   for (W, _), W0 in zip(model.params, weights_before)]
            logs["weight_norm"] = [float(xp.sqrt(xp.sum(W * W))) for W, _ in model.params]
        return logs

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
        return step_size, steps

    def end_epoch(self, monitored):
        """Tell the schedule how the epoch went (the validation loss if any, else the training loss)."""
        self.schedule.epoch_end(self.epoch - 1, monitored)

    # ---- the state that outlives a call: checkpoints, warm starts, pickling ----------------------
    OPTIONS = ("optimizer", "learning_rate", "schedule", "epochs", "batch_size", "dropout", "clip_value",
               "clip_norm", "shuffle", "log_gradients")

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
            raise ValueError(f"the snapshot holds {len(snapshot['state'])} optimizer arrays, expected {len(self.state)}")
        model = self.model
        for target, saved in zip(self.state, snapshot["state"]):
            target[...] = from_host(saved, xp=model._xp, device=model.device)
        self.step_count, self.epoch = int(snapshot["step_count"]), int(snapshot["epoch"])
        self.rng.bit_generator.state = snapshot["rng_state"]
        if schedule and snapshot.get("schedule_state"):
            vars(self.schedule).update(snapshot["schedule_state"])
            self._scheduled = True

    def __getstate__(self):
        return {"model": self.model, "options": {k: getattr(self, k) for k in self.OPTIONS},
                "snapshot": self.snapshot()}

    def __setstate__(self, state):
        self.__init__(state["model"], rng=np.random.default_rng(), **state["options"])
        self.restore(state["snapshot"])


def build_optimizer(optimizer, *, learning_rate=None, momentum=None, weight_decay=None):
    """The optimizer with mlp's defaults: returns (optimizer, learning_rate, weight_decay, l2), where
    l2 is the penalty added to the loss (0 for AdamW, whose decay is decoupled)."""
    opt_name = optimizer if isinstance(optimizer, str) else getattr(optimizer, "name", None)
    if learning_rate is None:
        learning_rate = DEFAULT_LEARNING_RATES.get(opt_name, 1e-3)
    learning_rate = check_rate(learning_rate, "learning_rate", low=0.0, low_inclusive=False)
    if weight_decay is None:
        weight_decay = 0.01 if opt_name == "adamw" else 0.0
    weight_decay = check_rate(weight_decay, "weight_decay")
    if momentum is not None:
        momentum = check_rate(momentum, "momentum", high=1.0)
    decoupled = opt_name == "adamw"
    opt = make_optimizer(optimizer, momentum=momentum, weight_decay=weight_decay if decoupled else None)
    if not isinstance(optimizer, str):
        decoupled = hasattr(opt, "weight_decay")
    return opt, learning_rate, weight_decay, 0.0 if decoupled else weight_decay


def make_trainer(model, X, *, engine="auto", **options):
    """A Trainer for `model` on data like X: the Numba engine for NumPy input when it can (engine
    "auto"), or as `engine` says. Options are Trainer's keyword arguments."""
    return _choose_engine(engine, X, options["optimizer"], model.loss)(model, **options)


def _choose_engine(engine, X, optimizer, loss):
    """The Trainer class for `engine`; the Numba one compiles (or loads its cache) here, outside the loop."""
    if engine not in ("auto", "numba", "xp"):
        raise ValueError(f"engine must be 'auto', 'numba' or 'xp', got {engine!r}")
    if engine == "xp":
        return Trainer
    from . import numba_engine

    if numba_engine.supports(X, optimizer, loss):
        numba_engine.kernels.warmup(X.dtype)
        return numba_engine.NumbaTrainer
    if engine == "numba":
        reason = numba_engine.unsupported_reason(X, optimizer)
        raise (ImportError if not numba_engine.NUMBA_AVAILABLE else ValueError)(reason)
    return Trainer


def _resume(trainer, path, fit_options, history, best):
    """Restore a Trainer (in place) from a checkpoint; return (early-stopping best, finished)."""
    model, xp = trainer.model, trainer.model._xp
    params, state, best_params, metadata = saving.load_checkpoint(path)
    differences = saving.same_options(metadata.get("fit_options") or {}, fit_options)
    if differences:
        raise ValueError(f"cannot resume from {path}: it was made with other options ({'; '.join(differences)})")
    model.set_params([(from_host(W, xp=xp, device=model.device), from_host(b, xp=xp, device=model.device))
                      for W, b in params])
    trainer.restore({"state": state, "step_count": metadata["step_count"], "epoch": metadata["epoch"],
                     "rng_state": metadata["rng_state"], "schedule_state": metadata.get("schedule_state")})
    for key in history:
        history[key][:] = list((metadata.get("history") or {}).get(key, []))
    saved_best = metadata.get("best")
    if saved_best is not None:
        snapshot = None
        if best_params is not None:
            snapshot = [(from_host(W, xp=xp, device=model.device), from_host(b, xp=xp, device=model.device))
                        for W, b in best_params]
        best = (saved_best["monitored"], snapshot, saved_best["epoch"])
    return best, bool(metadata.get("finished"))


def evaluate(model, X, y_index, *, xp):
    """Mean loss (without the L2 term) and accuracy over (X, y_index), in chunks; two Python floats."""
    loss_fn = get_loss(model.loss)
    total_loss, correct = 0.0, 0
    for rows in row_chunks(X.shape[0], EVAL_CHUNK):
        X_chunk, y_chunk = X[rows, ...], y_index[rows]
        logits = layers.forward(model.params, X_chunk, model.activation, xp=xp)[0]
        value, _ = loss_fn(logits, y_chunk, xp=xp)
        total_loss = total_loss + value * X_chunk.shape[0]
        correct = correct + xp.sum(xp.astype(xp.argmax(logits, axis=1) == y_chunk, xp.int64))
    return float(total_loss) / X.shape[0], int(correct) / X.shape[0]


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass


def _progress_bars(progress):
    """A factory of per-epoch progress bars: tqdm when asked for (and installed), else no-ops."""
    import sys

    if progress == "auto":
        progress = sys.stderr.isatty()
    if not progress:
        return lambda description, total: _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError('progress bars need tqdm: pip install "mlp[progress]"') from None
    return lambda description, total: tqdm(desc=description, total=total, unit="step", leave=False, file=sys.stderr)


def _format_logs(logs, epochs):
    width = len(str(epochs))
    text = f"epoch {logs['epoch']:>{width}}/{epochs}  loss {logs['loss']:.4f}  acc {logs['accuracy']:.4f}"
    if "val_loss" in logs:
        text += f"  val_loss {logs['val_loss']:.4f}  val_acc {logs['val_accuracy']:.4f}"
    return text + f"  lr {logs['lr']:.2e}  {logs['seconds']:.2f}s"


def check_hidden_sizes(hidden_sizes):
    if isinstance(hidden_sizes, (int, np.integer)) and not isinstance(hidden_sizes, bool):
        hidden_sizes = [hidden_sizes]
    try:
        sizes = list(hidden_sizes)
    except TypeError:
        raise TypeError(f"hidden_sizes must be a list of layer widths, got {hidden_sizes!r}") from None
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"hidden_sizes must hold positive integers, got {hidden_sizes!r}")
    return [int(size) for size in sizes]


def check_batch_size(batch_size):
    if batch_size is None or batch_size == "full":
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, None or 'full', got {batch_size!r}")
    return int(batch_size)
