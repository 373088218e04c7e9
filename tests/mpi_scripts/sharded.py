"""Run under `mpiexec -n N python tests/mpi_scripts/sharded.py CASE OUT_DIR` (N = 2 or 3): each rank
trains with comm=MPI.COMM_WORLD, sharded=True on its own rows of sorted_data() and pickles what it saw
into OUT_DIR/rank{R}.pkl for tests/test_mpi.py to compare with a one-process run on all the rows."""

import pickle
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import mlp
from tests.mpi_scripts.common import SHARD_CUTS, SHARDED_RUNS, sorted_data

comm = MPI.COMM_WORLD
rank = comm.Get_rank()


def params_of(model):
    """The dense parameters, then the batch normalisations' arrays (running statistics included)."""
    return [np.array(a) for group in (*model.get_weights(), *model.get_norms()) for a in group]


def caught(function):
    """(None, result) or (type name, message) of the exception function() raised."""
    try:
        return None, function()
    except Exception as error:
        return type(error).__name__, str(error)


def own_rows(cut_name="unequal"):
    cuts = SHARD_CUTS[comm.Get_size()][cut_name]
    return slice(cuts[rank], cuts[rank + 1])


def equivalence(out):
    """Every run of SHARDED_RUNS on equal and unequal shards."""
    X, y = sorted_data()
    results = {}
    for cut_name in SHARD_CUTS[comm.Get_size()]:
        rows = own_rows(cut_name)
        for name, options in SHARDED_RUNS.items():
            options = dict(options)
            weights = options.pop("sample_weight", None)
            model = mlp.fit(
                X[rows],
                y[rows],
                comm=comm,
                sharded=True,
                sample_weight=None if weights is None else weights[rows],
                **options,
            )
            results[cut_name, name] = {"params": params_of(model), "history": model.history}
    return results


BASE = dict(hidden_sizes=[16, 8], batch_size=32, dtype="float64", seed=5, engine="numba", dropout=0.0)


def coherence(out):
    """Early stopping, checkpoints, refusals, on 2 ranks with unequal shards (rank 0: class 0 only)."""
    X, y = sorted_data()
    rows = own_rows()
    results = {"classes_seen": np.unique(y[rows]).tolist()}

    # early stopping on the validation rows held out over the shards: the same epoch everywhere
    model = mlp.fit(
        X[rows],
        y[rows],
        comm=comm,
        sharded=True,
        epochs=60,
        validation_split=0.25,
        early_stopping=True,
        patience=2,
        learning_rate=0.01,
        **BASE,
    )
    results["early_stopping"] = {
        "epochs": len(model.history["loss"]),
        "best_epoch": model.best_epoch,
        "val_loss": model.history["val_loss"],
        "params": params_of(model),
        "classes": np.asarray(model.classes_).tolist(),
    }

    # validation_data: each rank passes its own held-out rows (here the first 20 of its shard)
    model = mlp.fit(
        X[rows],
        y[rows],
        comm=comm,
        sharded=True,
        epochs=2,
        validation_data=(X[rows][:20], y[rows][:20]),
        **BASE,
    )
    results["validation_data"] = {
        "val_loss": model.history["val_loss"],
        "val_accuracy": model.history["val_accuracy"],
    }

    # checkpoints: a run stopped after epoch 2 and resumed equals the run never interrupted
    options = dict(epochs=4, checkpoint=str(out / "sharded.ckpt"), **BASE)
    mlp.fit(X[rows], y[rows], comm=comm, sharded=True, callbacks=lambda epoch, logs, m: epoch == 2, **options)
    resumed = mlp.fit(X[rows], y[rows], comm=comm, sharded=True, resume=True, **options)
    straight = mlp.fit(X[rows], y[rows], comm=comm, sharded=True, epochs=4, **BASE)
    results["resume"] = {"resumed": params_of(resumed), "straight": params_of(straight)}
    # the same checkpoint with the rows cut elsewhere is refused on every rank
    other = own_rows("equal")
    results["other_cut"] = caught(
        lambda: mlp.fit(X[other], y[other], comm=comm, sharded=True, resume=True, **options)
    )

    # a failure before the agreement on one rank only: every rank raises, naming that rank
    X_bad = X[rows].copy()
    if rank == 1:
        X_bad[3, 2] = np.nan
    results["bad_data"] = caught(lambda: mlp.fit(X_bad, y[rows], comm=comm, sharded=True, epochs=1, **BASE))
    # ranks must agree on the width of their rows
    X_narrow = X[rows] if rank == 0 else X[rows][:, :-1]
    results["features"] = caught(
        lambda: mlp.fit(X_narrow, y[rows], comm=comm, sharded=True, epochs=1, **BASE)
    )
    return results


def failure(out):
    """Rank 1 raises at the end of the second epoch of a sharded run; the job must end, not hang."""
    X, y = sorted_data()
    rows = own_rows()

    def explode(epoch, logs, model):
        if rank == 1 and epoch == 2:
            raise RuntimeError("boom on rank 1 at epoch 2")

    mlp.fit(X[rows], y[rows], comm=comm, sharded=True, hidden_sizes=[8], epochs=50, seed=0, callbacks=explode)
    return {"finished": True}  # never reached


CASES = {"equivalence": equivalence, "coherence": coherence, "failure": failure}

if __name__ == "__main__":
    case, out = sys.argv[1], Path(sys.argv[2])
    result = CASES[case](out)
    with open(out / f"rank{rank}.pkl", "wb") as file:
        pickle.dump(result, file)
