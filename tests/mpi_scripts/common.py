"""The data and the runs that tests/test_mpi.py compares between 2 MPI ranks and one process."""

import numpy as np

# 300 rows in batches of 32: 9 full global batches and a last one of 12 rows (6 per rank).
N_ROWS, N_FEATURES, N_CLASSES = 300, 12, 3

# Every run is float64 without dropout, so 2 ranks must match one process to rounding.
_BASE = dict(hidden_sizes=[16, 8], epochs=3, batch_size=32, dropout=0.0, dtype="float64", seed=3)
EQUIVALENCE_RUNS = {
    "numba_adam": dict(_BASE, engine="numba", optimizer="adam"),
    "xp_adam": dict(_BASE, engine="xp", optimizer="adam"),
    # L2 in the loss, clipping of the summed gradient, log_gradients and a validation split (evaluated
    # in two halves and reduced) on each engine
    "numba_l2_clip_val": dict(
        _BASE,
        engine="numba",
        optimizer="momentum",
        weight_decay=1e-3,
        clip_norm=0.5,
        log_gradients=True,
        validation_split=0.2,
    ),
    "xp_l2_clip_val": dict(
        _BASE,
        engine="xp",
        optimizer="momentum",
        weight_decay=1e-3,
        clip_norm=0.5,
        log_gradients=True,
        validation_split=0.2,
    ),
    "numba_full_batch": dict(_BASE, engine="numba", optimizer="sgd", batch_size="full", schedule="constant"),
    # batches of 299 and 1 rows: rank 0 has no row of the second and adds zeros to its allreduce
    "numba_last_batch_of_one": dict(_BASE, engine="numba", batch_size=299),
    # sample weights (some 0) times the balanced class weights: the weighted mean of a global batch is
    # its weighted sum over the batch's weight sum on every rank; the held-out rows keep their weights
    **{
        f"{engine}_weighted": dict(
            _BASE,
            engine=engine,
            optimizer="adam",
            weight_decay=1e-3,
            validation_split=0.2,
            sample_weight=np.random.default_rng(7).integers(0, 4, N_ROWS).astype(float),
            class_weight="balanced",
        )
        for engine in ("numba", "xp")
    },
    # batch normalisation: statistics over both ranks' rows (the generic engine; "auto" picks it)
    "xp_batch_norm_before": dict(
        _BASE, engine="xp", batch_norm="before", clip_norm=0.5, weight_decay=1e-3, validation_split=0.2
    ),
    "auto_batch_norm_after_weighted": dict(
        _BASE,
        engine="auto",
        batch_norm="after",
        batch_norm_momentum=0.3,
        sample_weight=np.random.default_rng(7).integers(0, 4, N_ROWS).astype(float),
    ),
}


def data():
    """A small classification problem, the same on every rank."""
    rng = np.random.default_rng(42)
    centers = rng.normal(0, 2, size=(N_CLASSES, N_FEATURES))
    y = rng.integers(0, N_CLASSES, size=N_ROWS)
    return centers[y] + rng.normal(0, 1.5, size=(N_ROWS, N_FEATURES)), y


# sharded=True: each rank passes only its rows, [cut[r], cut[r+1]) of data(); by rank count, equal and
# unequal shards (with 2 ranks, rank 0's 100 rows of the label-sorted data hold one class only)
SHARD_CUTS = {
    2: {"equal": [0, 150, 300], "unequal": [0, 100, 300]},
    3: {"equal": [0, 100, 200, 300], "unequal": [0, 41, 230, 300]},
}
SHARDED_RUNS = {
    f"{engine}_{name}": dict(_BASE, engine=engine, **extra)
    for engine in ("numba", "xp")
    for name, extra in {
        "adam": dict(optimizer="adam"),
        "l2_clip_val": dict(
            optimizer="momentum", weight_decay=1e-3, clip_norm=0.5, log_gradients=True, validation_split=0.2
        ),
        "weighted": dict(
            optimizer="adam",
            validation_split=0.2,
            sample_weight=np.random.default_rng(7).integers(0, 4, N_ROWS).astype(float),
            class_weight="balanced",
        ),
        "last_batch_of_one": dict(batch_size=299),
    }.items()
}
# batch normalisation's sums over the shards: in order (shuffle=False) the first batches are rank 0's
# rows only, so the other ranks join its allreduces with no rows; then a last batch of one row
SHARDED_RUNS.update(
    xp_batch_norm_in_order=dict(_BASE, engine="xp", batch_norm="before", shuffle=False),
    xp_batch_norm_last_batch_of_one=dict(_BASE, engine="xp", batch_norm="after", batch_size=299),
)


def sorted_data():
    """data() with its rows sorted by label, so that a shard may hold one class only."""
    X, y = data()
    order = np.argsort(y, kind="stable")
    return X[order], y[order]
