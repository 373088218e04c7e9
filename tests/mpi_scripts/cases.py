"""Run under `mpiexec -n 2 python tests/mpi_scripts/cases.py CASE OUT_DIR`: each rank trains with
comm=MPI.COMM_WORLD and pickles what it saw into OUT_DIR/rank{R}.pkl for tests/test_mpi.py to compare
with a one-process run. CASE is one of the functions below."""

import os
import pickle
import signal
import sys
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import mlp
from tests.mpi_scripts.common import EQUIVALENCE_RUNS, data

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


def equivalence(out):
    X, y = data()
    results = {}
    for name, options in EQUIVALENCE_RUNS.items():
        model = mlp.fit(X, y, comm=comm, **options)
        results[name] = {"params": params_of(model), "history": model.history}
    return results


def coherence(out):
    X, y = data()
    base = dict(hidden_sizes=[16, 8], batch_size=32, dtype="float64", seed=5, engine="numba")
    results = {}

    # dropout: masks per rank from (seed, rank, epoch); the same on a second run
    results["dropout"] = [
        params_of(mlp.fit(X, y, comm=comm, epochs=3, dropout=0.3, **base)) for _ in range(2)
    ]

    # early stopping on the reduced validation loss: every rank stops at the same epoch
    model = mlp.fit(
        X,
        y,
        comm=comm,
        epochs=60,
        dropout=0.0,
        validation_split=0.25,
        early_stopping=True,
        patience=2,
        learning_rate=0.01,
        **base,
    )
    results["early_stopping"] = {
        "epochs": len(model.history["loss"]),
        "best_epoch": model.best_epoch,
        "val_loss": model.history["val_loss"],
        "params": params_of(model),
    }

    # a callback asking to stop on rank 1 only stops both
    model = mlp.fit(
        X,
        y,
        comm=comm,
        epochs=6,
        dropout=0.0,
        callbacks=lambda epoch, logs, m: rank == 1 and epoch == 2,
        **base,
    )
    results["callback_stop"] = len(model.history["loss"])

    # divergence: the NaN check sees the summed losses, so both ranks raise TrainingError together
    results["nan"] = caught(
        lambda: mlp.fit(X * 1e150, y, comm=comm, epochs=2, optimizer="sgd", learning_rate=1e6, **base)
    )

    # labels must agree: rank 1 calls class 2 "7"
    y_other = np.where(y == 2, 7, y) if rank == 1 else y
    results["classes"] = caught(lambda: mlp.fit(X, y_other, comm=comm, epochs=1, **base))

    # a failure before the agreement on one rank only: every rank raises, naming that rank
    X_bad = X.copy()
    if rank == 1:
        X_bad[3, 2] = np.nan
    results["bad_data"] = caught(lambda: mlp.fit(X_bad, y, comm=comm, epochs=1, **base))

    # the generic engine cannot take a rank's empty part of a last batch of 1 row
    results["xp_short_batch"] = caught(
        lambda: mlp.fit(X, y, comm=comm, epochs=1, **dict(base, engine="xp", batch_size=299))
    )

    # checkpoints: rank 0 writes and reads (rank 1's path does not even exist); a run stopped after
    # epoch 2 and resumed equals the run that was never interrupted, dropout masks included
    checkpoint = str(out / "run.ckpt") if rank == 0 else str(out / "no-such-folder" / "run.ckpt")
    options = dict(epochs=4, dropout=0.2, checkpoint=checkpoint, **base)
    mlp.fit(X, y, comm=comm, callbacks=lambda epoch, logs, m: epoch == 2, **options)
    resumed = mlp.fit(X, y, comm=comm, resume=True, **options)
    straight = mlp.fit(X, y, comm=comm, epochs=4, dropout=0.2, **base)
    results["resume"] = {
        "resumed": params_of(resumed),
        "straight": params_of(straight),
        "history": resumed.history["loss"],
    }
    return results


def failure(out):
    """Rank 1 raises in the middle of the second epoch's end; the job must end, not hang."""
    X, y = data()

    def explode(epoch, logs, model):
        if rank == 1 and epoch == 2:
            raise RuntimeError("boom on rank 1 at epoch 2")

    mlp.fit(X, y, comm=comm, hidden_sizes=[8], epochs=50, batch_size=32, seed=0, callbacks=explode)
    return {"finished": True}  # never reached


def stopped(out):
    """Rank 1 stops itself (SIGSTOP) at the end of epoch 1, as a rank stuck in I/O would; rank 0
    must end the job after comm_timeout=3 seconds, naming rank 1. The test SIGKILLs rank 1 (its pid
    is in OUT_DIR/rank1.pid) whatever happens."""
    X, y = data()
    (out / f"rank{rank}.pid").write_text(str(os.getpid()))

    def stop(epoch, logs, model):
        if rank == 1 and epoch == 1:
            os.kill(os.getpid(), signal.SIGSTOP)

    mlp.fit(
        X, y, comm=comm, comm_timeout=3, hidden_sizes=[8], epochs=50, batch_size=32, seed=0, callbacks=stop
    )
    return {"finished": True}  # never reached


def absent(out):
    """Rank 1 never calls fit (it sleeps, as a rank waiting on a lost file would); rank 0 must end the
    job after MLP_MPI_TIMEOUT seconds (set by the test), naming rank 1."""
    (out / f"rank{rank}.pid").write_text(str(os.getpid()))
    if rank == 1:
        time.sleep(300)
        return {"finished": True}  # never reached: the job ends first
    X, y = data()
    mlp.fit(X, y, comm=comm, hidden_sizes=[8], epochs=2, batch_size=32, seed=0)
    return {"finished": True}  # never reached


def estimators(out):
    """MLPClassifier and MLPRegressor with comm=: every rank ends with the same fitted weights and
    predictions (random_state=None: rank 0's seed), equal to one process's for an int random_state."""
    from sklearn.base import clone

    from mlp.estimators import MLPClassifier, MLPRegressor

    X, y = data()
    options = dict(hidden_layer_sizes=(16,), max_iter=4, batch_size=32, dtype="float64", engine="numba")
    results = {}
    for name, estimator in {
        "classifier": MLPClassifier(random_state=0, early_stopping=True, **options),
        "regressor": MLPRegressor(random_state=0, **options),
        "unseeded": MLPClassifier(**options),
    }.items():
        model = clone(estimator.set_params(comm=comm))  # clone keeps the communicator
        assert model.comm is comm
        target = X[:, 0] if name == "regressor" else y
        model.fit(X, target)
        results[name] = {
            "coefs": [np.array(a) for a in (*model.coefs_, *model.intercepts_)],
            "predict": np.asarray(model.predict(X)),
            "loss_curve": list(model.loss_curve_),
        }
    return results


CASES = {
    "equivalence": equivalence,
    "coherence": coherence,
    "failure": failure,
    "stopped": stopped,
    "absent": absent,
    "estimators": estimators,
}

if __name__ == "__main__":
    case, out = sys.argv[1], Path(sys.argv[2])
    result = CASES[case](out)
    with open(out / f"rank{rank}.pkl", "wb") as file:
        pickle.dump(result, file)
