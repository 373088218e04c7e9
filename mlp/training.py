"""`mlp.fit`: validate the options and the data, build the model and its trainer, run the epochs.

The options, their defaults and their checks come from `mlp.options` (one table for `fit`, the
command line, the scikit-learn estimator and the C++ port); the epochs run in `mlp.loop`; the
per-step work in an engine of `mlp.engines`.
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np

from . import distributed as _distributed
from . import options as _options
from ._array_api import Array, Device, Namespace, Params, float_dtype, from_host, to_numpy
from ._memory import check_training_memory
from ._threads import fit_threads
from ._validation import check_features, check_labels, check_sample_weight, check_targets
from .augment import check_images
from .engines import TrainingError, make_trainer
from .engines.checkpoints import check_checkpoint_path, load_checkpoint, same_options, save_checkpoint
from .initializers import default_init, initial_parameters
from .layers import Norm, Norms
from .loop import Best, Callback, Stopping, run_epochs
from .losses import takes_class_indices
from .model import MLP
from .model_file import SCALAR_HISTORY_KEYS
from .optimizers import Optimizer, make_optimizer
from .schedules import Schedule, make_schedule

if TYPE_CHECKING:
    from .augment import Augment
    from .distributed import Comm, DataParallel, Shards
    from .engines import BaseTrainer

__all__ = ["TrainingError", "build_optimizer", "fit"]

_D = _options.defaults()
T = TypeVar("T")
GRADIENT_KEYS = ("grad_norm", "update_norm", "weight_norm")


@_distributed.abort_on_error
def fit(
    X: Array,
    y: Array,
    *,
    hidden_sizes: Sequence[int] | int = _D["hidden_sizes"],
    activation: str = _D["activation"],
    loss: str = _D["loss"],
    init: str = _D["init"],
    batch_norm: str | None = _D["batch_norm"],
    batch_norm_momentum: float = _D["batch_norm_momentum"],
    epochs: int = _D["epochs"],
    batch_size: int | str | None = _D["batch_size"],
    optimizer: str | Optimizer = _D["optimizer"],
    learning_rate: float | None = _D["learning_rate"],
    momentum: float | None = _D["momentum"],
    weight_decay: float | None = _D["weight_decay"],
    dropout: float = _D["dropout"],
    clip_value: float | None = _D["clip_value"],
    clip_norm: float | None = _D["clip_norm"],
    augment: bool | str | dict[str, Any] | Augment | None = _D["augment"],
    max_norm: float | None = _D["max_norm"],
    label_smoothing: float = _D["label_smoothing"],
    schedule: str | Schedule | None = _D["schedule"],
    validation_data: tuple[Array, Array] | None = None,
    validation_split: float = _D["validation_split"],
    early_stopping: bool = _D["early_stopping"],
    patience: int = _D["patience"],
    min_delta: float = _D["min_delta"],
    callbacks: Callback | Sequence[Callback] = (),
    comm: Comm | None = None,
    comm_timeout: float | None = None,
    sharded: bool = False,
    sample_weight: Array | None = None,
    class_weight: str | dict[Any, float] | None = None,
    verbose: int | bool = _D["verbose"],
    dtype: str = _D["dtype"],
    seed: int | None = _D["seed"],
    shuffle: bool = _D["shuffle"],
    shuffle_block: int | None = _D["shuffle_block"],
    checkpoint: str | os.PathLike[str] | None = _D["checkpoint"],
    resume: bool = _D["resume"],
    log_gradients: bool = _D["log_gradients"],
    progress: bool | str = _D["progress"],
    engine: str = _D["engine"],
    n_threads: int | None = _D["n_threads"],
    deterministic: bool = _D["deterministic"],
) -> MLP:
    """Train a multilayer perceptron on (X, y) and return the trained `MLP`.

    X: (n_samples, n_features) NumPy, CuPy or any array-API array; the model lives in its namespace
    and on its device. y: integer labels (n_samples,) of any values, or one-hot rows (n_samples, K);
    with loss="squared_error" (regression) real targets (n_samples,) or (n_samples, k); with
    loss="binary_cross_entropy" (multilabel) 0/1 rows (n_samples, k); with loss="poisson" (counts)
    non-negative targets (n_samples,) or (n_samples, k).
    Every option, its default and its allowed values: `python -m mlp.options` (the table in
    `mlp/options.py`); the user guide explains each. In short:

    hidden_sizes, activation, loss, init: the network (loss cross_entropy = softmax output, mse =
        sigmoid outputs with squared error, squared_error = identity outputs for regression,
        binary_cross_entropy = independent sigmoid outputs for multilabel targets, poisson = exp
        outputs with the half Poisson deviance for counts). epochs, batch_size (None / "full": full batch).
    batch_norm: None, "before" or "after": batch normalisation of every hidden layer, before or after
        its activation (batch statistics while training, the running statistics, updated with
        batch_norm_momentum, for predictions; the user guide's "Batch normalisation").
    optimizer (or an `mlp.optimizers` instance), learning_rate (None: the optimizer's default),
        momentum, weight_decay (L2; decoupled for adamw), dropout, clip_value / clip_norm, schedule.
    augment: distort every training batch afresh (`mlp.augment`: "default", a dict or an Augment; rows
        of X must be images). max_norm: cap on each hidden unit's incoming weight norm, after every
        step. label_smoothing: cross_entropy's targets (1 - e) onehot + e / classes.
    validation_data=(X_val, y_val) or validation_split; early_stopping with patience and min_delta
        (restores the best weights). callbacks: `callback(epoch, logs, model)`; True stops.
    comm: an mpi4py communicator (MPI.COMM_WORLD under `mpiexec -n N`): data-parallel training, every
        rank passing the same X, y and options; which rows each rank takes: `mlp.distributed`.
    comm_timeout: seconds a rank waits at a collective for the others before the job ends with a
        message naming the ranks that did not arrive (a stopped or stuck rank; one not calling fit).
        None: the environment variable MLP_MPI_TIMEOUT, else 600.
    sharded: with comm, each rank passes only its own rows (X, y, sample_weight; any number of rows,
        at least one; a rank may hold a single class): the result equals one process trained on the
        ranks' rows concatenated in rank order, with the same global batches (`mlp.distributed`,
        "Sharded data"). False: every rank passes the same whole set.
    sample_weight: (n_samples,) finite weights >= 0, not all 0: each batch's loss is the weighted
        mean sum_i w_i l_i / sum_i w_i, its L2 term scaled by rows / sum_i w_i (scikit-learn's alpha
        over the weight sum); a batch weighing 0 takes no step. class_weight: None, "balanced"
        (n_samples / (n_classes * bincount(y))) or {label: weight}; multiplies each row's weight
        (classification losses). The held-out rows of validation_split keep their weights, and the
        validation loss and accuracy are weighted, as scikit-learn weights its validation score;
        validation_data may be (X_val, y_val, sample_weight_val).
    verbose: a line every N epochs. dtype: float32 | float64. seed: None draws one and records it in
        `model.config["seed"]` (printed with verbose), so that the run can be repeated; bit for bit
        with deterministic=True (below).

    X larger than memory: a C-order `numpy.memmap` in the model's dtype is never copied (the user
        guide's "Out of core"); shuffle_block (rows per block, `mlp._order`) keeps its reads mostly
        sequential.

    checkpoint / resume: save after every epoch; continue from it (bit-identical on the CPU).
    log_gradients: per-layer gradient, update and weight norms in `history`.
    progress: a tqdm bar per epoch (True, or "auto" on a terminal). engine: auto | numba | xp.
    n_threads: BLAS threads while training (None: chosen per epoch from the idle cores).
    deterministic: fix the BLAS threads for the whole fit (n_threads, or 1 when None) rather than
    follow the load, whose thread counts round float32 products differently: the same seed then
    gives bit-identical weights on the same machine (NumPy input; the same library versions).
    Recorded in `model.config` ("deterministic", "n_threads").
    """
    given = locals()  # fit's arguments; tests/test_options.py holds its keywords to the table's names
    o = _options.resolve({name: given[name] for name in _options.OPTIONS})
    callbacks = _check_callbacks(callbacks)
    ready = _prepare(
        X,
        y,
        o,
        validation_data=validation_data,
        comm=comm,
        sample_weight=sample_weight,
        class_weight=class_weight,
        sharded=sharded,
    )
    if o.epochs > 0:
        _run(ready, o, callbacks=callbacks, comm=comm)
    return ready.model


@dataclass(frozen=True)
class _Prepared:
    """What `_prepare` builds for `_run`: the untrained model, the rows it trains and validates on,
    the optimizer and schedule, the run's generator, the MPI part (None on one process), and the
    config the model records."""

    model: MLP
    X: Array
    targets: Array
    validation: tuple[Array, ...] | None  # (X_val, y_val) or (X_val, y_val, sample_weight_val)
    optimizer: Optimizer
    learning_rate: float
    schedule: Schedule | str
    rng: np.random.Generator
    parallel: DataParallel | None
    config: dict[str, Any]
    sample_weight: np.ndarray | None = None  # the training rows' weights (float64, host); None: all 1


def _prepare(
    X: Array,
    y: Array,
    o: _options.TrainingOptions,
    *,
    validation_data: tuple[Array, ...] | None,
    comm: Comm | None,
    sample_weight: Array | None = None,
    class_weight: str | dict[Any, float] | None = None,
    sharded: bool = False,
) -> _Prepared:
    """Check the data against the options, build the optimizer, schedule and model, and agree over
    MPI: everything the epochs need, before the first of them."""
    sharded = _check_sharded(sharded, o)
    if o.checkpoint is not None and _distributed.is_root(comm):  # over MPI rank 0 writes it
        check_checkpoint_path(o.checkpoint, resume=o.resume)
    X, xp, device = check_features(X, dtype=o.dtype, name="X", warn_raw_pixels=True)
    check_images(o.augment, X.shape[1])
    if o.label_smoothing and o.loss != "cross_entropy":
        raise ValueError(f"label_smoothing works with loss='cross_entropy' only, not {o.loss!r}; set it to 0")
    targets, classes = _targets(y, X.shape[0], o, xp=xp, device=device)
    # sharded: the class weights wait for every rank's classes (the agreement below)
    weights = _sample_weights(sample_weight, None if sharded else class_weight, targets, classes, X.shape[0])
    n_outputs = int(classes.shape[0]) if classes is not None else int(targets.shape[1])
    opt, learning_rate, weight_decay, l2 = build_optimizer(
        o.optimizer, learning_rate=o.learning_rate, momentum=o.momentum, weight_decay=o.weight_decay
    )
    sched = make_schedule(o.schedule)
    init = default_init(o.activation) if o.init == "auto" else o.init
    sizes = [X.shape[1], *o.hidden_sizes, n_outputs]
    check_training_memory(sizes, o.batch_size, X.shape[0], o.dtype, opt, o.dropout)

    # None on one process; over MPI every rank's data and options compared, rank 0's seed agreed
    parallel = _distributed.start(
        comm, X, targets, classes, options=o.as_dict(), seed=o.seed, sample_weight=weights, sharded=sharded
    )
    if parallel is not None and parallel.shards is not None:  # the classes of all ranks' rows
        targets, classes, weights = _shard_targets(
            parallel, y, X.shape[0], o, sample_weight, class_weight, xp=xp, device=device
        )
        n_outputs = int(classes.shape[0]) if classes is not None else int(targets.shape[1])
        sizes = [X.shape[1], *o.hidden_sizes, n_outputs]
    seed = _seed(o, parallel)
    rng = np.random.default_rng(seed)
    X, targets, validation, weights = _validation_set(
        X,
        targets,
        classes,
        validation_data,
        o,
        rng,
        xp=xp,
        device=device,
        sample_weight=weights,
        shards=None if parallel is None else parallel.shards,
    )
    float_type = float_dtype(o.dtype, xp=xp)
    params = [
        (
            from_host(W, xp=xp, device=device, dtype=float_type),
            from_host(b, xp=xp, device=device, dtype=float_type),
        )
        for W, b in initial_parameters(sizes, init, rng)
    ]
    config = _config(
        o,
        init=init,
        optimizer=opt,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        schedule=sched,
        seed=seed,
    )
    model = MLP(
        params,
        activation=o.activation,
        loss=o.loss,
        classes=classes,
        l2=l2,
        history=_empty_history(o, classified=classes is not None),
        config=config,
        batch_norm=o.batch_norm,
    )
    return _Prepared(model, X, targets, validation, opt, learning_rate, sched, rng, parallel, config, weights)


def _check_sharded(sharded: Any, o: _options.TrainingOptions) -> bool:
    """fit's `sharded`, checked: a bool, and no augmentation with it (its distortions are drawn for
    a batch's contiguous rows, which a shard's rows of a batch are not)."""
    if not isinstance(sharded, (bool, np.bool_)):
        raise TypeError(f"sharded must be True or False, got {sharded!r}")
    if sharded and o.augment is not None:
        raise ValueError("augment does not work with sharded=True yet; augment the rows before fit")
    return bool(sharded)


def _shard_targets(
    parallel: DataParallel,
    y: Array,
    n_samples: int,
    o: _options.TrainingOptions,
    sample_weight: Array | None,
    class_weight: str | dict[Any, float] | None,
    *,
    xp: Namespace,
    device: Device,
) -> tuple[Array, Array | None, np.ndarray | None]:
    """(targets, classes, weights) of this rank's rows with sharded data: labels indexed into the
    union of every rank's classes, and class_weight="balanced" counted over all ranks' rows."""
    shards = parallel.shards
    assert shards is not None
    union = None
    if shards.classes is not None:
        union = from_host(np.asarray(shards.classes), xp=xp, device=device)
    targets, classes = _targets(y, n_samples, o, xp=xp, device=device, classes=union)
    if class_weight == "balanced" and classes is not None:
        counts = np.bincount(to_numpy(targets), minlength=int(classes.shape[0]))
        counts = parallel.sum_values(counts)
        class_weight = {
            label: shards.samples / (len(counts) * count)
            for label, count in zip(to_numpy(classes).tolist(), counts.tolist(), strict=True)
        }
    return targets, classes, _sample_weights(sample_weight, class_weight, targets, classes, n_samples)


def _sample_weights(
    sample_weight: Array | None,
    class_weight: str | dict[Any, float] | None,
    targets: Array,
    classes: Array | None,
    n_samples: int,
) -> np.ndarray | None:
    """fit's sample_weight and class_weight as one float64 host array (None: unweighted)."""
    if sample_weight is None and class_weight is None:
        return None
    labels = to_numpy(targets) if classes is not None and class_weight is not None else None
    return check_sample_weight(
        sample_weight,
        n_samples,
        classes=None if classes is None else to_numpy(classes),
        labels=labels,
        class_weight=class_weight,
    )


def _seed(o: _options.TrainingOptions, parallel: DataParallel | None) -> int:
    """The run's seed: the one given (rank 0's over MPI), else one drawn here and printed with
    verbose, so that the run can still be repeated (and resumed) from the recorded seed."""
    seed = o.seed if parallel is None else parallel.seed
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
        if o.verbose:
            print(f"seed {seed} (pass seed={seed} to repeat this run)", flush=True)
    return seed


def _config(
    o: _options.TrainingOptions,
    *,
    init: str,
    optimizer: Optimizer,
    learning_rate: float,
    weight_decay: float,
    schedule: Schedule | str,
    seed: int,
) -> dict[str, Any]:
    """`model.config`: the settings the run used, the defaults resolved (augment, max_norm and
    label_smoothing recorded only when used)."""
    config = dict(
        hidden_sizes=o.hidden_sizes,
        activation=o.activation,
        loss=o.loss,
        init=init,
        epochs=o.epochs,
        batch_size=o.batch_size,
        optimizer=optimizer.config(),
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        dropout=o.dropout,
        clip_value=o.clip_value,
        clip_norm=o.clip_norm,
        schedule=getattr(schedule, "name", str(schedule)),
        dtype=o.dtype,
        seed=seed,
    )
    if o.augment is not None or o.max_norm is not None or o.label_smoothing:
        config.update(
            augment=None if o.augment is None else o.augment.to_dict(),
            max_norm=o.max_norm,
            label_smoothing=o.label_smoothing,
        )
    if o.shuffle_block is not None:  # recorded only when used, as the options above
        config["shuffle_block"] = o.shuffle_block
    if o.batch_norm is not None:
        config.update(batch_norm=o.batch_norm, batch_norm_momentum=o.batch_norm_momentum)
    if o.deterministic:  # and the BLAS threads it fixed, which the repeated run must use too
        config.update(deterministic=True, n_threads=fit_threads(o.n_threads, o.deterministic))
    return config


def _empty_history(o: _options.TrainingOptions, *, classified: bool) -> dict[str, list[Any]]:
    """{key: []} for every number an epoch records (no accuracies without classes; the gradient
    norms with log_gradients)."""
    keys = (
        SCALAR_HISTORY_KEYS
        if classified
        else tuple(k for k in SCALAR_HISTORY_KEYS if not k.endswith("accuracy"))
    )
    return {key: [] for key in keys + (GRADIENT_KEYS if o.log_gradients else ())}


def _run(
    ready: _Prepared, o: _options.TrainingOptions, *, callbacks: list[Callback], comm: Comm | None
) -> None:
    """Train `ready.model` in place: the epochs (from the checkpoint with resume), a checkpoint after
    each, and the best weights kept with early stopping."""
    model, parallel, X = ready.model, ready.parallel, ready.X
    trainer = _make_trainer(ready, o, comm=comm)
    stopping = Stopping(
        patience=o.patience if o.early_stopping else None,
        min_delta=o.min_delta,
        restore_best=o.early_stopping,
    )
    fit_options = {**ready.config, "n_samples": X.shape[0], "n_features": X.shape[1]}
    if parallel is not None:
        fit_options["ranks"] = parallel.size
    if ready.sample_weight is not None:  # a checkpoint resumes with the same weights only
        fit_options["sample_weight"] = f"crc32 {zlib.crc32(ready.sample_weight.tobytes()):08x}"
    shards = None if parallel is None else parallel.shards
    if shards is not None:  # the same on every rank: all ranks' rows
        fit_options["n_samples"], fit_options["shards"] = shards.samples, shards.rows
        if shards.weights_crc32 is not None:  # of every rank's sample weights, agreed in `start`
            fit_options["sample_weight"] = f"crc32 {shards.weights_crc32:08x}"
    best, until = Best(), o.epochs
    path = o.checkpoint
    if path is not None and o.resume and _on_root(parallel, os.path.exists, path):
        best, finished = _resume(
            trainer, path, fit_options, model.history, early_stopping=o.early_stopping, parallel=parallel
        )
        if finished:
            until = trainer.epoch  # the checkpointed run had already stopped early

    def save(stop: bool, best: Best) -> None:
        if path is None or (parallel is not None and not parallel.root):  # over MPI rank 0 writes it
            return
        save_checkpoint(
            path,
            model,
            trainer.snapshot(),
            history=model.history,
            fit_options=fit_options,
            best=(best.monitored, best.params, best.epoch) if o.early_stopping else None,
            finished=stop,
            best_norms=best.norms if o.early_stopping else None,
        )

    best = run_epochs(
        trainer,
        X,
        ready.targets,
        until_epoch=until,
        validation=ready.validation,
        stopping=stopping,
        best=best,
        history=model.history,
        callbacks=callbacks,
        verbose=o.verbose,
        progress=o.progress,
        n_threads=fit_threads(o.n_threads, o.deterministic),
        checkpoint=save if path is not None else None,
        sample_weight=ready.sample_weight,
    )
    if o.early_stopping and best.params is not None:
        model.best_epoch = best.epoch + 1


def _make_trainer(ready: _Prepared, o: _options.TrainingOptions, *, comm: Comm | None) -> BaseTrainer:
    """The engine's trainer for the prepared run; over MPI its batches checked against the ranks."""
    trainer = make_trainer(
        ready.model,
        ready.X,
        engine=o.engine,
        on_compile=_say_compiling if o.verbose and _distributed.is_root(comm) else None,
        optimizer=ready.optimizer,
        learning_rate=ready.learning_rate,
        schedule=ready.schedule,
        epochs=o.epochs,
        batch_size=o.batch_size,
        dropout=o.dropout,
        clip_value=o.clip_value,
        clip_norm=o.clip_norm,
        shuffle=o.shuffle,
        shuffle_block=o.shuffle_block,
        rng=ready.rng,
        log_gradients=o.log_gradients,
        augment=o.augment,
        max_norm=o.max_norm,
        label_smoothing=o.label_smoothing,
        batch_norm_momentum=o.batch_norm_momentum,
    )
    if ready.parallel is not None:
        if ready.parallel.shards is None:  # sharded, both engines add zeros for a part without rows
            ready.parallel.check_batches(
                ready.X.shape[0], o.batch_size, empty_parts=trainer.takes_empty_batch_parts
            )
        trainer.parallel = ready.parallel
    return trainer


def _say_compiling() -> None:
    print(COMPILING, file=sys.stderr, flush=True)


COMPILING = "compiling the Numba kernels (a few seconds, once: later runs load them from Numba's cache)"


def _check_callbacks(callbacks: Callback | Sequence[Callback] | None) -> list[Callback]:
    if callable(callbacks):
        callbacks = [callbacks]
    callbacks = list(callbacks or ())
    if not all(callable(c) for c in callbacks):
        raise TypeError("callbacks must be callables taking (epoch, logs, model)")
    return callbacks


def _targets(
    y: Array,
    n_samples: int,
    o: _options.TrainingOptions,
    *,
    xp: Namespace,
    device: Device,
    classes: Array | None = None,
    n_outputs: int | None = None,
    name: str = "y",
) -> tuple[Array, Array | None]:
    """(targets, classes): class indices and the classes for a classification loss; for
    squared_error, binary_cross_entropy and poisson a float matrix (n, k) and None."""
    if takes_class_indices(o.loss):
        return check_labels(y, n_samples, xp=xp, device=device, classes=classes, name=name)
    values = check_targets(
        y,
        n_samples,
        xp=xp,
        device=device,
        dtype=o.dtype,
        n_outputs=n_outputs,
        name=name,
        unit_interval=o.loss == "binary_cross_entropy",
        non_negative=o.loss == "poisson",
    )
    return values, None


def _validation_set(
    X: Array,
    targets: Array,
    classes: Array | None,
    validation_data: Any,
    o: _options.TrainingOptions,
    rng: np.random.Generator,
    *,
    xp: Namespace,
    device: Device,
    sample_weight: np.ndarray | None = None,
    shards: Shards | None = None,
) -> tuple[Array, Array, tuple[Array, ...] | None, np.ndarray | None]:
    """(X, targets, (X_val, y_val[, w_val]) or None, the training rows' weights): validation_data
    checked, or validation_split drawn from rng (the held-out rows keep their weights, on X's
    device in its dtype, so that the validation loss is weighted as scikit-learn's score). With
    sharded data, this rank's rows of the split one process makes of all N rows (`Shards.hold_out`);
    validation_data is then this rank's own."""
    if validation_data is not None:
        if o.validation_split:
            raise ValueError("pass either validation_data or validation_split, not both")
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3)):
            raise TypeError(
                "validation_data must be a pair (X_val, y_val) or (X_val, y_val, sample_weight_val)"
            )
        X_val, _, _ = check_features(
            validation_data[0], dtype=o.dtype, name="X_val", n_features=X.shape[1], xp=xp, device=device
        )
        y_val, _ = _targets(
            validation_data[1],
            X_val.shape[0],
            o,
            xp=xp,
            device=device,
            classes=classes,
            n_outputs=None if classes is not None else targets.shape[1],
            name="y_val",
        )
        if len(validation_data) == 2 or validation_data[2] is None:
            return X, targets, (X_val, y_val), sample_weight
        w_val = check_sample_weight(validation_data[2], X_val.shape[0])
        assert w_val is not None  # given, so checked into an array
        return X, targets, (X_val, y_val, _weights_like(w_val, o, xp=xp, device=device)), sample_weight
    if not o.validation_split:
        return X, targets, None, sample_weight
    if isinstance(X, np.memmap):  # the training rows would be gathered into memory: all of X
        raise ValueError(
            "validation_split copies the training rows of X into memory, and X is a memory map; "
            "hold out rows of the map instead: validation_data=(X[-n:], y[-n:]) and train on X[:-n]"
        )
    rows = X.shape[0] if shards is None else shards.samples
    n_val = int(round(rows * o.validation_split))  # noqa: RUF046  (NumPy 1: a NumPy shape's round() is a float)
    if n_val < 1 or n_val >= rows:
        raise ValueError(
            f"validation_split={o.validation_split} leaves {n_val} validation and "
            f"{rows - n_val} training samples; both need at least one"
        )
    host_order = rng.permutation(rows)
    if shards is not None:  # this rank's held-out and training rows, each in host_order's order
        held, kept = shards.hold_out(host_order, n_val)
        validation_rows: tuple[Array, ...] = (xp.take(X, held, axis=0), xp.take(targets, held, axis=0))
        if sample_weight is not None:
            validation_rows += (_weights_like(sample_weight[held], o, xp=xp, device=device),)
            sample_weight = sample_weight[kept]
        return xp.take(X, kept, axis=0), xp.take(targets, kept, axis=0), validation_rows, sample_weight
    order = from_host(host_order, xp=xp, device=device)
    validation: tuple[Array, ...] = (
        xp.take(X, order[:n_val], axis=0),
        xp.take(targets, order[:n_val], axis=0),
    )
    if sample_weight is not None:
        validation += (_weights_like(sample_weight[host_order[:n_val]], o, xp=xp, device=device),)
        sample_weight = sample_weight[host_order[n_val:]]
        if not np.any(sample_weight > 0):
            raise ValueError(
                "the training rows left by validation_split all weigh 0; at least one needs a positive weight"
            )
    return (
        xp.take(X, order[n_val:], axis=0),
        xp.take(targets, order[n_val:], axis=0),
        validation,
        sample_weight,
    )


def _weights_like(
    weights: np.ndarray, o: _options.TrainingOptions, *, xp: Namespace, device: Device
) -> Array:
    """Host weights on the data's device, in the training dtype."""
    return from_host(weights, xp=xp, device=device, dtype=float_dtype(o.dtype, xp=xp))


def build_optimizer(
    optimizer: str | Optimizer,
    *,
    learning_rate: float | None = None,
    momentum: float | None = None,
    weight_decay: float | None = None,
) -> tuple[Optimizer, float, float, float]:
    """The optimizer with mlp's defaults: returns (optimizer, learning_rate, weight_decay, l2), where
    l2 is the penalty added to the loss (0 for AdamW, whose decay is decoupled)."""
    check = _options.OPTIONS
    opt_name = optimizer if isinstance(optimizer, str) else getattr(optimizer, "name", None)
    if learning_rate is None:
        learning_rate = _options.DEFAULT_LEARNING_RATES.get(opt_name or "", 1e-3)
    learning_rate = check["learning_rate"].validate(learning_rate)
    if weight_decay is None:
        weight_decay = _options.ADAMW_WEIGHT_DECAY if opt_name == "adamw" else 0.0
    weight_decay = check["weight_decay"].validate(weight_decay)
    momentum = check["momentum"].validate(momentum)
    decoupled = opt_name == "adamw"
    opt = make_optimizer(optimizer, momentum=momentum, weight_decay=weight_decay if decoupled else None)
    if not isinstance(optimizer, str):
        decoupled = hasattr(opt, "weight_decay")
    return opt, learning_rate, weight_decay, 0.0 if decoupled else weight_decay


def _on_root(parallel: DataParallel | None, function: Callable[..., T], *args: Any) -> T:
    """function(*args) here, or over MPI on rank 0 with the result sent to every rank."""
    return function(*args) if parallel is None else parallel.from_root(function, *args)


def _resume(
    trainer: BaseTrainer,
    path: str | os.PathLike[str],
    fit_options: dict[str, Any],
    history: dict[str, list[Any]],
    *,
    early_stopping: bool,
    parallel: DataParallel | None = None,
) -> tuple[Best, bool]:
    """Restore a Trainer (in place) from a checkpoint; return (early-stopping Best, finished)."""
    model, xp = trainer.model, trainer.model._xp
    params, state, best_params, metadata = _on_root(parallel, load_checkpoint, path)
    saved_options = metadata.get("fit_options") or {}
    differences = same_options(saved_options, fit_options)
    if differences:  # the same on every rank (the checkpoint is rank 0's)
        epochs = ""
        if any(difference.startswith("epochs:") for difference in differences):
            epochs = (
                "; the number of epochs cannot be changed on resume, not even raised to train longer: "
                f"resume with epochs={saved_options.get('epochs')}, or train for "
                f"epochs={fit_options.get('epochs')} from the start with another checkpoint path"
            )
        raise _distributed.all_ranks(
            ValueError(
                f"cannot resume from {path}: it was made with other options ({'; '.join(differences)})"
                f"{epochs}"
            )
        )

    def to_device(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> Params:
        return [
            (from_host(W, xp=xp, device=model.device), from_host(b, xp=xp, device=model.device))
            for W, b in pairs
        ]

    def norms_to_device(norms: Sequence[Sequence[np.ndarray]]) -> Norms:
        return [cast("Norm", tuple(from_host(a, xp=xp, device=model.device) for a in norm)) for norm in norms]

    model.set_weights(to_device(params), norms=norms_to_device(metadata["norms"]))
    trainer.restore(
        {
            "state": state,
            "step_count": metadata["step_count"],
            "epoch": metadata["epoch"],
            "rng_state": metadata["rng_state"],
            "schedule_state": metadata.get("schedule_state"),
        }
    )
    for key in history:
        history[key][:] = list((metadata.get("history") or {}).get(key, []))
    best = Best()
    saved_best = metadata.get("best")
    if saved_best is not None and early_stopping:
        snapshot = to_device(best_params) if best_params is not None else None
        best_norms = norms_to_device(metadata["best_norms"]) if metadata["best_norms"] is not None else None
        best = Best(saved_best["monitored"], snapshot, saved_best["epoch"], best_norms)
    return best, bool(metadata.get("finished"))
