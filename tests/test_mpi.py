"""Data-parallel training over MPI (`mlp.fit(..., comm=)`, `mpiexec -n 2 mlp train`): 2 ranks train the
same network as one process, stay coherent (seed, classes, dropout, early stopping, NaN, checkpoints),
and an exception on one rank ends the job instead of hanging it.

Each test launches `mpiexec -n 2` on a script of tests/mpi_scripts/ with a timeout, and compares what
the ranks pickled with a one-process run made here. In CI (mpi extra installed) they must run.
"""

import contextlib
import itertools
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import mlp
from mlp.cli import CommandError
from mlp.distributed import agreed, batch_part, on_every_rank, resolve_timeout
from tests.helpers import REPO_ROOT
from tests.mpi_scripts.common import EQUIVALENCE_RUNS, SHARD_CUTS, SHARDED_RUNS, data, sorted_data

RANKS = 2
TIMEOUT = 180  # seconds for one mpiexec launch (a few seconds when the Numba cache is warm)
SCRIPT = REPO_ROOT / "tests" / "mpi_scripts" / "cases.py"


def _mpiexec():
    """The mpiexec beside this Python (the mpich wheel installs it there), else on PATH; skip (fail in
    CI) when mpi4py or mpiexec is missing."""
    reason = None
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        reason = 'mpi4py is not installed (pip install "mlp-from-scratch[mpi]")'
    launcher = Path(sys.executable).parent / "mpiexec"
    launcher = str(launcher) if launcher.exists() else shutil.which("mpiexec")
    if reason is None and launcher is None:
        reason = 'no mpiexec found (pip install "mlp-from-scratch[mpi]" installs MPICH\'s)'
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason + " (in CI these tests must run, not skip)")
        pytest.skip(reason)
    return launcher


def _environment():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")  # two ranks on a small machine: no oversubscription
    return env


def _launch(args, *, cwd, timeout=TIMEOUT):
    """mpiexec -n 2 ARGS: the CompletedProcess (stdout and stderr as text), failing on a timeout."""
    command = [_mpiexec(), "-n", str(RANKS), *map(str, args)]
    try:
        return subprocess.run(
            command, cwd=cwd, env=_environment(), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(
            f"{' '.join(command)} did not finish within {timeout}s (a rank left waiting?)\n"
            f"stdout: {error.stdout}\nstderr: {error.stderr}"
        )


def _run_case(case, tmp_path):
    done = _launch([sys.executable, SCRIPT, case, tmp_path], cwd=tmp_path)
    assert done.returncode == 0, f"case {case} failed:\n{done.stdout}\n{done.stderr}"
    return [pickle.loads((tmp_path / f"rank{rank}.pkl").read_bytes()) for rank in range(RANKS)]


def _params(model):
    """The dense parameters, then the batch normalisations' arrays (running statistics included)."""
    return [np.array(a) for group in (*model.get_weights(), *model.get_norms()) for a in group]


def _assert_same_params(a, b, rtol):
    assert len(a) == len(b)
    for index, (x, y) in enumerate(zip(a, b, strict=True)):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol, err_msg=f"parameter array {index}")


def _assert_identical(a, b):
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


# ---- in this process, without mpiexec ------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 2, 3, 8])
@pytest.mark.parametrize("rows", [1, 2, 5, 12, 128])
def test_every_row_of_a_global_batch_goes_to_exactly_one_rank_in_order(size, rows):
    parts = [batch_part(40, 40 + rows, rank, size) for rank in range(size)]
    assert parts[0][0] == 40 and parts[-1][1] == 40 + rows
    # contiguous, in rank order
    assert all(hi == next_lo for (_, hi), (next_lo, _) in itertools.pairwise(parts))
    lengths = [hi - lo for lo, hi in parts]
    assert max(lengths) - min(lengths) <= 1 and (min(lengths) > 0 or rows < size)


class OneRank:
    """A communicator of one rank, as mpi4py's COMM_SELF behaves, without MPI."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def Allreduce(self, *args, **kwargs):
        raise AssertionError("a single rank needs no allreduce")

    allgather = bcast = Abort = Allreduce


def test_a_communicator_of_one_rank_trains_exactly_as_without_one():
    X, y = data()
    options = dict(hidden_sizes=[8], epochs=2, batch_size=32, seed=1, dropout=0.2)
    _assert_identical(_params(mlp.fit(X, y, comm=OneRank(), **options)), _params(mlp.fit(X, y, **options)))


def test_comm_must_be_a_communicator():
    X, y = data()
    with pytest.raises(
        TypeError, match=re.escape("comm must be an mpi4py communicator such as MPI.COMM_WORLD, got str")
    ):
        mlp.fit(X, y, comm="world", epochs=1)


class _TwoRanksSeenFrom:
    """A two-rank communicator seen from one rank: bcast hands out what rank 0 sent (recorded here)."""

    def __init__(self, rank, sent=None):
        self.rank, self.sent = rank, sent

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return 2

    def bcast(self, value, root=0):
        assert root == 0
        if self.rank == 0:
            self.sent = value
        return self.sent

    def allgather(self, value):  # `sent` plays the other rank's part
        return [value, self.sent] if self.rank == 0 else [self.sent, value]


def _agreed(comm, check):  # as `mlp train` agrees: its CommandError is the failure told as it is
    return agreed(comm, check, failure=CommandError)


def _on_every_rank(comm, work):
    return on_every_rank(comm, work, failure=CommandError)


@pytest.mark.parametrize(
    "error", [CommandError("--out x: the folder y does not exist"), OSError("disk gone")]
)
def test_a_check_failing_on_rank_0_is_raised_by_every_rank_together(error):
    def check():
        raise error

    root = _TwoRanksSeenFrom(0)
    with pytest.raises(
        type(error)
    ) as on_root:  # rank 0 raises the failure itself (a bug keeps its traceback)
        _agreed(root, check)
    with pytest.raises(CommandError) as on_other:  # rank 1 never runs the check, it gets rank 0's answer
        _agreed(_TwoRanksSeenFrom(1, sent=root.sent), lambda: pytest.fail("only rank 0 checks"))
    assert on_other.value.all_ranks and str(error) in str(on_other.value)
    if isinstance(error, CommandError):  # printed once, by rank 0; every rank returns 1, nothing is aborted
        assert on_root.value.all_ranks and str(on_root.value) == str(on_other.value)
    else:
        assert str(on_other.value) == "OSError on rank 0: disk gone"


def test_a_check_passing_on_rank_0_gives_its_value_there_and_none_elsewhere():
    root = _TwoRanksSeenFrom(0, sent="unset")
    assert _agreed(root, lambda: "model.npz") == "model.npz" and root.sent is None  # "all well" was sent
    assert _agreed(_TwoRanksSeenFrom(1, sent=None), lambda: pytest.fail("only rank 0 checks")) is None
    assert _agreed(None, lambda: "alone") == "alone"


def test_data_that_fails_on_some_ranks_is_one_error_raised_by_all_of_them():
    def fail():
        raise CommandError("no MNIST data found")

    with pytest.raises(CommandError) as both:  # every rank failed: the message as one process prints it
        _on_every_rank(_TwoRanksSeenFrom(0, sent="no MNIST data found"), fail)
    assert str(both.value) == "no MNIST data found" and both.value.all_ranks
    with pytest.raises(CommandError) as other:  # rank 1 alone failed: rank 0 stops too, naming rank 1
        _on_every_rank(_TwoRanksSeenFrom(0, sent="no MNIST data found"), lambda: "data")
    assert str(other.value) == "on rank 1 of 2: no MNIST data found" and other.value.all_ranks
    with pytest.raises(ZeroDivisionError):  # a bug stays raised, with its traceback, on its own rank
        _on_every_rank(_TwoRanksSeenFrom(1, sent=None), lambda: 1 / 0)
    assert _on_every_rank(_TwoRanksSeenFrom(1, sent=None), lambda: "data") == "data"


# ---- under mpiexec -n 2 ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def equivalence(tmp_path_factory):
    return _run_case("equivalence", tmp_path_factory.mktemp("equivalence"))


@pytest.fixture(scope="module")
def coherence(tmp_path_factory):
    folder = tmp_path_factory.mktemp("coherence")
    return _run_case("coherence", folder), folder


@pytest.mark.parametrize("name", list(EQUIVALENCE_RUNS))
def test_two_ranks_train_the_same_network_as_one_process(equivalence, name):
    X, y = data()
    options = EQUIVALENCE_RUNS[name]
    alone = mlp.fit(X, y, **options)
    rank0, rank1 = (result[name] for result in equivalence)
    _assert_identical(rank0["params"], rank1["params"])  # every rank took the same steps
    _assert_same_params(rank0["params"], _params(alone), rtol=1e-10)  # float64: only the sums' order differs
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "grad_norm", "update_norm"):
        if key in alone.history:
            np.testing.assert_allclose(
                np.array(rank0["history"][key], dtype=float),
                np.array(alone.history[key], dtype=float),
                rtol=1e-10,
                err_msg=key,
            )
            np.testing.assert_array_equal(
                np.array(rank0["history"][key], dtype=float),
                np.array(rank1["history"][key], dtype=float),
                err_msg=key,
            )


def test_dropout_masks_differ_per_rank_yet_runs_repeat(coherence):
    (rank0, rank1), _ = coherence
    first, second = rank0["dropout"]
    _assert_identical(first, second)  # the masks come from (seed, rank, epoch): a second run repeats
    _assert_identical(first, rank1["dropout"][0])  # and every rank still holds the same network
    X, y = data()
    alone = mlp.fit(
        X,
        y,
        hidden_sizes=[16, 8],
        batch_size=32,
        dtype="float64",
        seed=5,
        engine="numba",
        epochs=3,
        dropout=0.3,
    )
    assert not all(
        np.allclose(a, b) for a, b in zip(first, _params(alone), strict=True)
    )  # rank 1 drew its own masks


def test_early_stopping_and_callbacks_stop_every_rank_at_the_same_epoch(coherence):
    (rank0, rank1), _ = coherence
    assert rank0["early_stopping"]["epochs"] == rank1["early_stopping"]["epochs"]
    assert rank0["early_stopping"]["best_epoch"] == rank1["early_stopping"]["best_epoch"]
    X, y = data()
    alone = mlp.fit(
        X,
        y,
        hidden_sizes=[16, 8],
        batch_size=32,
        dtype="float64",
        seed=5,
        engine="numba",
        epochs=60,
        dropout=0.0,
        validation_split=0.25,
        early_stopping=True,
        patience=2,
        learning_rate=0.01,
    )
    assert rank0["early_stopping"]["epochs"] == len(alone.history["loss"]) < 60
    assert rank0["early_stopping"]["best_epoch"] == alone.best_epoch
    np.testing.assert_allclose(rank0["early_stopping"]["val_loss"], alone.history["val_loss"], rtol=1e-10)
    _assert_same_params(
        rank0["early_stopping"]["params"], _params(alone), rtol=1e-10
    )  # best weights restored
    assert rank0["callback_stop"] == rank1["callback_stop"] == 2  # rank 1's callback stopped both


def test_divergence_raises_on_every_rank_together(coherence):
    (rank0, rank1), _ = coherence
    assert rank0["nan"][0] == rank1["nan"][0] == "TrainingError"
    assert rank0["nan"][1] == rank1["nan"][1]


def test_ranks_must_agree_on_labels_and_data(coherence):
    (rank0, rank1), _ = coherence
    for result in (rank0, rank1):
        kind, message = result["classes"]
        assert kind == "ValueError" and "rank 1 has classes [0, 1, 7], rank 0 has [0, 1, 2]" in message
    assert rank1["bad_data"] == (
        "ValueError",
        "X contains NaN or infinity; clean or impute the data before training",
    )
    assert rank0["bad_data"][0] == "ValueError"
    assert rank0["bad_data"][1].startswith("rank 1 of 2 failed: ValueError: X contains NaN")


def test_the_generic_engine_asks_for_batches_of_at_least_one_row_per_rank(coherence):
    (rank0, rank1), _ = coherence
    assert rank0["xp_short_batch"] == rank1["xp_short_batch"]
    kind, message = rank0["xp_short_batch"]
    assert kind == "ValueError" and "leave a last batch of 1" in message and "engine='numba'" in message


def test_checkpoints_are_rank_0s_and_resume_exactly_with_the_same_ranks(coherence):
    (rank0, rank1), folder = coherence
    for result in (rank0, rank1):
        _assert_identical(result["resume"]["resumed"], result["resume"]["straight"])
        assert len(result["resume"]["history"]) == 4
    assert (folder / "run.ckpt").exists() and not (folder / "no-such-folder").exists()
    X, y = data()
    with pytest.raises(ValueError, match="ranks: checkpoint 2, now 1"):  # one process cannot continue it
        mlp.fit(
            X,
            y,
            hidden_sizes=[16, 8],
            batch_size=32,
            dtype="float64",
            seed=5,
            engine="numba",
            epochs=4,
            dropout=0.2,
            checkpoint=str(folder / "run.ckpt"),
            resume=True,
        )


def test_an_exception_on_one_rank_ends_the_job_with_its_message(tmp_path):
    done = _launch([sys.executable, SCRIPT, "failure", tmp_path], cwd=tmp_path, timeout=120)
    assert done.returncode != 0
    assert "rank 1 of 2 failed" in done.stderr and "RuntimeError: boom on rank 1 at epoch 2" in done.stderr
    assert not list(tmp_path.glob("rank*.pkl"))  # neither rank went on to finish


@pytest.mark.parametrize(
    ("case", "where", "environment"),
    [
        ("stopped", "the agreement on stopping", {}),  # SIGSTOP after epoch 1, comm_timeout=3
        ("absent", "fit's agreement before training", {"MLP_MPI_TIMEOUT": "3"}),  # never calls fit
    ],
)
def test_a_rank_that_stops_responding_ends_the_job_naming_it(tmp_path, monkeypatch, case, where, environment):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    started = time.monotonic()
    try:
        done = _launch([sys.executable, SCRIPT, case, tmp_path], cwd=tmp_path, timeout=90)
    finally:  # a stopped rank must not outlive the test, whatever the launcher did
        for pid in tmp_path.glob("rank*.pid"):
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid.read_text()), signal.SIGKILL)
    assert done.returncode != 0, done.stdout + done.stderr
    assert f"mlp: rank 0 of 2 waited 3 s at {where}; rank 1 did not arrive" in done.stderr, done.stderr
    assert "MLP_MPI_TIMEOUT" in done.stderr
    assert time.monotonic() - started < 60  # 3 s, a last roll call, the abort's grace and two imports
    assert not list(tmp_path.glob("rank*.pkl"))


def test_the_timeout_is_a_positive_number_of_seconds(monkeypatch):
    X, y = data()
    with pytest.raises(
        ValueError, match=r"^comm_timeout must be a positive number of seconds \(such as 600\), got 0$"
    ):
        mlp.fit(X, y, epochs=1, comm_timeout=0)
    monkeypatch.setenv("MLP_MPI_TIMEOUT", "soon")
    with pytest.raises(
        ValueError, match=r"^the environment variable MLP_MPI_TIMEOUT must be a positive number"
    ):
        resolve_timeout(None)
    mlp.fit(X, y, epochs=1)  # one process never reads it
    monkeypatch.setenv("MLP_MPI_TIMEOUT", " 2.5 ")
    assert resolve_timeout(None) == 2.5 and resolve_timeout(7) == 7.0
    monkeypatch.delenv("MLP_MPI_TIMEOUT")
    assert resolve_timeout(None) == 600


def test_the_estimators_train_over_mpi_and_every_rank_holds_the_same_model(tmp_path):
    estimators = pytest.importorskip("mlp.estimators", reason="the estimators need scikit-learn")
    rank0, rank1 = _run_case("estimators", tmp_path)
    for name in ("classifier", "regressor", "unseeded"):  # unseeded: rank 0's seed, agreed
        _assert_identical(rank0[name]["coefs"], rank1[name]["coefs"])
        np.testing.assert_array_equal(rank0[name]["predict"], rank1[name]["predict"])
        assert rank0[name]["loss_curve"] == rank1[name]["loss_curve"]
    X, y = data()
    options = dict(hidden_layer_sizes=(16,), max_iter=4, batch_size=32, dtype="float64", engine="numba")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 4 iterations: not converged
        alone = {
            "classifier": estimators.MLPClassifier(random_state=0, early_stopping=True, **options).fit(X, y),
            "regressor": estimators.MLPRegressor(random_state=0, **options).fit(X, X[:, 0]),
        }
    for name, model in alone.items():  # float64: one process's network up to the order of the sums
        _assert_same_params(rank0[name]["coefs"], [*model.coefs_, *model.intercepts_], rtol=1e-10)
        np.testing.assert_allclose(rank0[name]["loss_curve"], model.loss_curve_, rtol=1e-10)


def test_mpiexec_mlp_train_prints_and_saves_on_rank_0_only(tmp_path, mnist_dir):
    out, checkpoint = tmp_path / "model.npz", tmp_path / "run.ckpt"
    done = _launch(
        [
            sys.executable,
            "-m",
            "mlp",
            "train",
            "--data",
            mnist_dir,
            "--limit",
            "2000",
            "--epochs",
            "2",
            "--hidden",
            "32",
            "--progress",
            "no",
            "--seed",
            "1",
            "--out",
            out,
            "--checkpoint",
            checkpoint,
        ],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("model saved to") == 1
    assert done.stdout.count("epoch 2/2") == 1 and done.stdout.count("test accuracy") == 1
    model = mlp.load(out)
    assert model.n_features_in_ == 784 and len(model.history["loss"]) == 2
    assert checkpoint.exists()


def test_missing_data_on_every_rank_is_one_message_and_a_clean_exit(tmp_path):
    done = _launch(
        [
            sys.executable,
            "-m",
            "mlp",
            "train",
            "--data",
            tmp_path / "nothing-here",
            "--no-save",
            "--progress",
            "no",
        ],
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.count("mlp train: error: no MNIST data found") == 1, done.stderr
    assert "Abort" not in done.stderr and "rank" not in done.stderr


def test_a_command_line_error_found_by_rank_0_ends_every_rank_cleanly(tmp_path, mnist_dir):
    # only rank 0 checks --out (it alone writes) and tells the others: every rank exits with status 1
    # before reading data, rank 0 prints the error once, and nothing is aborted (no message to lose)
    done = _launch(
        [
            sys.executable,
            "-m",
            "mlp",
            "train",
            "--data",
            mnist_dir,
            "--limit",
            "500",
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--progress",
            "no",
            "--out",
            tmp_path / "missing" / "model.npz",
        ],
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.count("mlp train: error: --out") == 1 and "does not exist" in done.stderr
    assert "Abort" not in done.stderr and "data:" not in done.stdout


# ---- sharded=True: each rank passes only its rows ------------------------------------------------
SHARDED_SCRIPT = REPO_ROOT / "tests" / "mpi_scripts" / "sharded.py"


def _run_sharded(case, tmp_path, ranks=RANKS):
    """mpiexec -n RANKS tests/mpi_scripts/sharded.py CASE: what every rank pickled."""
    command = [_mpiexec(), "-n", str(ranks), sys.executable, str(SHARDED_SCRIPT), case, str(tmp_path)]
    try:
        done = subprocess.run(
            command, cwd=tmp_path, env=_environment(), capture_output=True, text=True, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{' '.join(command)} did not finish within {TIMEOUT}s\n{error.stdout}\n{error.stderr}")
    if case == "failure":
        return done
    assert done.returncode == 0, f"sharded {case} failed:\n{done.stdout}\n{done.stderr}"
    return [pickle.loads((tmp_path / f"rank{rank}.pkl").read_bytes()) for rank in range(ranks)]


@pytest.fixture(scope="module", params=[2, 3], ids=["2 ranks", "3 ranks"])
def sharded_equivalence(request, tmp_path_factory):
    ranks = request.param
    return ranks, _run_sharded("equivalence", tmp_path_factory.mktemp(f"sharded{ranks}"), ranks)


@pytest.fixture(scope="module")
def sharded_coherence(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sharded_coherence")
    return _run_sharded("coherence", folder), folder


def test_sharded_ranks_train_the_network_of_one_process_on_the_rows_concatenated(sharded_equivalence):
    # each rank passes only its rows (equal and unequal shards; with 2 unequal ones rank 0 holds class
    # 0 only): the model equals one process's on all the rows in rank order, both engines, float64
    ranks, results = sharded_equivalence
    X, y = sorted_data()
    for cut_name in SHARD_CUTS[ranks]:
        for name, options in SHARDED_RUNS.items():
            alone = mlp.fit(X, y, **options)
            first = results[0][cut_name, name]
            for other in results[1:]:
                _assert_identical(first["params"], other[cut_name, name]["params"])
            _assert_same_params(first["params"], _params(alone), rtol=1e-10)
            for key in ("loss", "accuracy", "val_loss", "val_accuracy", "grad_norm", "update_norm"):
                if key in alone.history:
                    np.testing.assert_allclose(
                        np.array(first["history"][key], dtype=float),
                        np.array(alone.history[key], dtype=float),
                        rtol=1e-10,
                        err_msg=f"{cut_name} {name} {key}",
                    )


def test_sharded_ranks_agree_on_classes_early_stopping_and_checkpoints(sharded_coherence):
    (rank0, rank1), folder = sharded_coherence
    X, y = sorted_data()
    assert rank0["classes_seen"] == [0] and rank1["classes_seen"] == [0, 1, 2]
    options = dict(hidden_sizes=[16, 8], batch_size=32, dtype="float64", seed=5, engine="numba", dropout=0.0)
    alone = mlp.fit(
        X, y, epochs=60, validation_split=0.25, early_stopping=True, patience=2, learning_rate=0.01, **options
    )
    for result in (rank0, rank1):
        stopped = result["early_stopping"]
        assert stopped["classes"] == [0, 1, 2]  # the union of the ranks' classes
        assert stopped["epochs"] == len(alone.history["loss"]) < 60
        assert stopped["best_epoch"] == alone.best_epoch
        np.testing.assert_allclose(stopped["val_loss"], alone.history["val_loss"], rtol=1e-10)
        _assert_same_params(stopped["params"], _params(alone), rtol=1e-10)
        _assert_identical(result["resume"]["resumed"], result["resume"]["straight"])
        kind, message = result["other_cut"]
        assert kind == "ValueError" and "shards: checkpoint [100, 200], now [150, 150]" in message
        kind, message = result["features"]
        assert kind == "ValueError" and "rank 1 has features 11, rank 0 has 12" in message
    # each rank's own validation_data: the metrics of one process on them concatenated in rank order
    cuts = SHARD_CUTS[2]["unequal"]
    held = np.concatenate([np.arange(cuts[r], cuts[r] + 20) for r in range(2)])
    alone = mlp.fit(X, y, epochs=2, validation_data=(X[held], y[held]), **options)
    for key in ("val_loss", "val_accuracy"):
        np.testing.assert_allclose(rank0["validation_data"][key], alone.history[key], rtol=1e-10)
        assert rank0["validation_data"][key] == rank1["validation_data"][key]
    with pytest.raises(ValueError, match="ranks: checkpoint 2, now 1"):  # one process cannot continue it
        mlp.fit(X, y, epochs=4, checkpoint=str(folder / "sharded.ckpt"), resume=True, **options)
    assert rank1["bad_data"] == (
        "ValueError",
        "X contains NaN or infinity; clean or impute the data before training",
    )
    assert rank0["bad_data"][1].startswith("rank 1 of 2 failed: ValueError: X contains NaN")


def test_an_exception_on_one_sharded_rank_ends_the_job_with_its_message(tmp_path):
    done = _run_sharded("failure", tmp_path)
    assert done.returncode != 0
    assert "rank 1 of 2 failed" in done.stderr and "RuntimeError: boom on rank 1 at epoch 2" in done.stderr
    assert not list(tmp_path.glob("rank*.pkl"))


def test_sharded_is_refused_with_augmentation_and_must_be_a_flag():
    X, y = data()
    with pytest.raises(TypeError, match="sharded must be True or False"):
        mlp.fit(X, y, epochs=1, sharded="yes")
    with pytest.raises(ValueError, match="augment does not work with sharded=True"):
        mlp.fit(X, y, epochs=1, sharded=True, augment="default")


@pytest.mark.parametrize("layout", ["idx", "idx.gz", "mlpd", "npz", "npz stored"])
def test_a_shard_reads_only_its_rows_of_every_file_layout(tmp_path, layout):
    from mlp.datasets.idx import write_idx
    from mlp.datasets.keras_npz import save_npz
    from mlp.datasets.mlpd import write_binary
    from mlp.datasets.shard import read_train_rows

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (103, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 103).astype(np.uint8)
    if layout.startswith("idx"):
        ext = ".gz" if layout.endswith("gz") else ""
        for base, array in (("train-images-idx3-ubyte", X), ("train-labels-idx1-ubyte", y)):
            write_idx(tmp_path / (base + ext), array)
        for base, array in (("t10k-images-idx3-ubyte", X[:5]), ("t10k-labels-idx1-ubyte", y[:5])):
            write_idx(tmp_path / (base + ext), array)
    elif layout == "mlpd":
        write_binary(tmp_path / "train.mlpd", X, y)
        write_binary(tmp_path / "test.mlpd", X[:5], y[:5])
    else:
        save_npz(tmp_path / "mnist.npz", (X, y), (X[:5], y[:5]), compress=layout == "npz")
    for ranks in (1, 2, 3):
        parts = [
            read_train_rows(tmp_path, "mnist", lambda n, r=r, size=ranks: batch_part(0, n, r, size))
            for r in range(ranks)
        ]
        np.testing.assert_array_equal(np.concatenate([part[0] for part in parts]), X)
        np.testing.assert_array_equal(np.concatenate([part[1] for part in parts]), y)
    X_part, y_part = read_train_rows(tmp_path, "mnist", lambda n: (40, 41))
    np.testing.assert_array_equal(X_part, X[40:41])
    np.testing.assert_array_equal(y_part, y[40:41])


def test_mpiexec_mlp_train_shard_reads_a_slice_per_rank_and_trains_the_whole_set_model(tmp_path, mnist_dir):
    # every rank reads only its half of the (gzip) IDX files; the model equals the whole-set run's
    common = ["-m", "mlp", "train", "--data", mnist_dir, "--limit", "2000", "--epochs", "2", "--hidden", "32"]
    common += ["--progress", "no", "--seed", "1", "--dropout", "0"]
    shard = _launch([sys.executable, *common, "--shard", "--out", tmp_path / "s.npz"], cwd=tmp_path)
    assert shard.returncode == 0, shard.stdout + shard.stderr
    assert "data: 1000 training and 10000 test images on rank 0 (--shard)" in shard.stdout
    whole = _launch([sys.executable, *common, "--out", tmp_path / "w.npz"], cwd=tmp_path)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    sharded, everything = mlp.load(tmp_path / "s.npz"), mlp.load(tmp_path / "w.npz")
    _assert_same_params(_params(sharded), _params(everything), rtol=1e-4)
    np.testing.assert_allclose(sharded.history["loss"], everything.history["loss"], rtol=1e-6)
