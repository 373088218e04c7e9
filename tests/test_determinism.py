"""A seed repeats a run on the same machine: with deterministic=True the BLAS threads stay fixed
whatever the automatic policy would choose (faked here, as in tests/test_threads.py), and the
library's own kernels give the same bits with 1 and 2 Numba threads."""

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import mlp
from mlp import _threads
from mlp.cli import build_parser
from mlp.engines import numba_trainer
from tests.helpers import REPO_ROOT

threadpoolctl = pytest.importorskip("threadpoolctl")
ENGINES = [
    "xp",
    pytest.param("numba", marks=pytest.mark.skipif(not numba_trainer.NUMBA_AVAILABLE, reason="no Numba")),
]


class PolicySaying:
    """The automatic policy faked to answer `threads` every epoch, counting how often it was asked."""

    def __init__(self, threads):
        self.threads, self.asked = threads, 0

    def cores_free(self):
        self.asked += 1
        return self.threads

    def epoch_ended(self):
        pass


def digits(n=384, seed=0):
    """784 features and batches of 128: the shapes of the issue, where OpenBLAS rounds 1 and 2 threads
    differently."""
    rng = np.random.default_rng(seed)
    return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)


def weights_under_policy(monkeypatch, threads, **options):
    """The trained weights, as bytes, with the automatic policy answering `threads`; and that policy."""
    policy = PolicySaying(threads)
    monkeypatch.setattr(_threads, "MONITOR", policy)
    X, y = digits()
    model = mlp.fit(X, y, hidden_sizes=[128, 64], epochs=2, batch_size=128, seed=3, **options)
    return [a.tobytes() for pair in model.get_weights() for a in pair], policy, model


def most_blas_threads():
    pools = _threads._pools().lib_controllers
    return max((lib.num_threads for lib in pools), default=0)


@pytest.mark.parametrize("engine", ENGINES)
def test_deterministic_gives_the_same_weights_whatever_the_policy_would_choose(monkeypatch, engine):
    one, policy_one, model = weights_under_policy(monkeypatch, 1, engine=engine, deterministic=True)
    two, policy_two, _ = weights_under_policy(monkeypatch, 2, engine=engine, deterministic=True)
    assert one == two
    assert policy_one.asked == policy_two.asked == 0  # the load is never read
    assert model.config["deterministic"] is True and model.config["n_threads"] == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_without_deterministic_the_policy_decides_and_the_thread_count_shows(monkeypatch, engine):
    """The counterpart: the policy is asked every epoch, and where this BLAS rounds 1 and 2 threads
    differently (OpenBLAS does for these shapes) the weights differ, which deterministic=True prevents."""
    if most_blas_threads() < 2:
        pytest.skip("the BLAS runs one thread here (OPENBLAS_NUM_THREADS=1?): no second count to compare")
    one, policy, model = weights_under_policy(monkeypatch, 1, engine=engine)
    two, _, _ = weights_under_policy(monkeypatch, 2, engine=engine)
    assert policy.asked == 2
    assert "deterministic" not in model.config and "n_threads" not in model.config
    if one == two:
        pytest.skip("this BLAS rounds these products the same with 1 and 2 threads")


def test_deterministic_keeps_an_explicit_thread_count(monkeypatch):
    _, policy, model = weights_under_policy(monkeypatch, 1, deterministic=True, n_threads=2)
    assert policy.asked == 0
    assert model.config["n_threads"] == 2


def test_fit_threads_is_the_count_every_epoch_gets():
    assert _threads.fit_threads(None, False) is None
    assert _threads.fit_threads(None, True) == _threads.DETERMINISTIC_THREADS == 1
    assert _threads.fit_threads(3, True) == 3
    assert _threads.fit_threads(3, False) == 3


def test_the_blas_runs_the_fixed_count_in_every_epoch(monkeypatch):
    seen = []
    original = _threads.thread_limits

    def watched(n_threads=None, **kwargs):
        seen.append(n_threads)
        return original(n_threads, **kwargs)

    monkeypatch.setattr("mlp.loop.thread_limits", watched)
    weights_under_policy(monkeypatch, 2, deterministic=True)
    assert seen == [1, 1]


def test_estimators_take_deterministic(monkeypatch):
    estimators = pytest.importorskip("mlp.estimators", reason="the estimators need scikit-learn")
    X, y = digits(n=256)
    coefs = []
    for threads in (1, 2):
        policy = PolicySaying(threads)
        monkeypatch.setattr(_threads, "MONITOR", policy)
        model = estimators.MLPClassifier(
            hidden_layer_sizes=(128,), max_iter=2, random_state=0, deterministic=True, n_iter_no_change=99
        )
        with pytest.warns(Warning):  # scikit-learn's ConvergenceWarning after 2 iterations
            model.fit(X, y)
        coefs.append([c.tobytes() for c in model.coefs_])
        assert policy.asked == 0
    assert coefs[0] == coefs[1]


def test_the_command_line_takes_deterministic():
    _, subcommands = build_parser()
    train = subcommands["train"]
    assert train.parse_args(["--deterministic"]).deterministic is True
    assert train.parse_args([]).deterministic is False
    assert "--deterministic" in train.format_help()


# ---- the library's own kernels: no thread count in their results ---------------------------------
def test_no_kernel_is_compiled_parallel():
    config = pytest.importorskip("mlp_kernels._config")
    assert "parallel" not in config.JIT_OPTIONS
    for path in (REPO_ROOT / "kernels").glob("*.py"):
        code = path.read_text()
        assert not re.search(r"\bprange\s*\(|import[^\n]*\bprange\b|parallel\s*=\s*True", code), path


KERNELS_UNDER_THREADS = textwrap.dedent(
    """
    import numba, numpy as np, threadpoolctl
    import mlp
    from mlp import _threads

    class LeavesThePoolsAlone:
        def cores_free(self):
            return None
        def epoch_ended(self):
            pass

    _threads.MONITOR = LeavesThePoolsAlone()  # so fit keeps the Numba threads set below
    rng = np.random.default_rng(0)
    X = rng.standard_normal((301, 37)).astype(np.float32)
    y = rng.integers(0, 5, 301)
    Y = rng.random((301, 3)).astype(np.float32)
    w = rng.random(301)
    runs = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        assert numba.get_num_threads() == threads
        with threadpoolctl.threadpool_limits(1):
            a = mlp.fit(X, y, engine="numba", hidden_sizes=[33, 17], batch_size=50, epochs=2, seed=1,
                        dropout=0.2, clip_norm=1.0, max_norm=3.0, sample_weight=w)
            b = mlp.fit(X, Y, engine="numba", loss="squared_error", hidden_sizes=[9], activation="tanh",
                        optimizer="rmsprop", batch_size=64, epochs=2, seed=2)
        runs.append(b"".join(p.tobytes() for m in (a, b) for pair in m.get_weights() for p in pair)
                    + np.asarray(a.history["loss"] + b.history["loss"]).tobytes())
    print("same" if runs[0] == runs[1] else "different")
    """
)


@pytest.mark.skipif(not numba_trainer.NUMBA_AVAILABLE, reason="no Numba")
def test_kernels_give_the_same_bits_with_one_and_two_numba_threads():
    """In a fresh process (starting Numba's thread pool here would change what other tests see)."""
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", KERNELS_UNDER_THREADS], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "same"
