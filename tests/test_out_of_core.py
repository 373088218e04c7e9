"""Training from a memory-mapped X: no full copy, the same result as in memory, and the block order."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import mlp
from mlp._order import BLOCK_WINDOW, block_order
from mlp._validation import RawPixelsWarning
from mlp.engines import BaseTrainer
from mlp.engines import numba_trainer as numba_engine

ENGINES = [
    "xp",
    pytest.param(
        "numba", marks=pytest.mark.skipif(not numba_engine.NUMBA_AVAILABLE, reason="Numba is not installed")
    ),
]


def _data(n: int = 300, d: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)


def _mapped(X: np.ndarray, tmp_path, name: str = "X.npy") -> np.memmap:
    path = tmp_path / name
    np.save(path, X)
    return np.load(path, mmap_mode="r")


@pytest.mark.parametrize("engine", ENGINES)
def test_memmap_trains_as_the_same_rows_in_memory(engine, tmp_path):
    X, y = _data()
    mapped = _mapped(X, tmp_path)
    kwargs = dict(hidden_sizes=[8], epochs=2, batch_size=32, seed=3, engine=engine)
    in_memory, from_disk = mlp.fit(X, y, **kwargs), mlp.fit(mapped, y, **kwargs)
    for (W, b), (W_disk, b_disk) in zip(in_memory.params, from_disk.params, strict=True):
        np.testing.assert_array_equal(W, W_disk)
        np.testing.assert_array_equal(b, b_disk)
    np.testing.assert_array_equal(in_memory.predict(X), from_disk.predict(mapped))


def test_memmap_is_refused_where_it_would_be_copied(tmp_path):
    X, y = _data()
    with pytest.raises(TypeError, match="memory map of float64"):
        mlp.fit(_mapped(X.astype(np.float64), tmp_path, "x64.npy"), y, epochs=1)
    with pytest.raises(ValueError, match="Fortran"):
        mlp.fit(_mapped(np.asfortranarray(X), tmp_path, "f.npy"), y, epochs=1)
    with pytest.raises(ValueError, match="validation_data"):
        mlp.fit(_mapped(X, tmp_path), y, epochs=1, validation_split=0.2)
    X[-1, -1] = np.nan  # in the last chunk the checks read
    with pytest.raises(ValueError, match="NaN"):
        mlp.fit(_mapped(X, tmp_path, "nan.npy"), y, epochs=1)


# A child that maps a file larger than what is left under its address-space limit once the map is
# made: a full copy of the map (np.array) fails there, and fit, which never makes one, trains.
_CHILD = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    import mlp

    path, rows, engine = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    y = np.arange(rows) % 3
    mlp.fit(np.zeros((64, 64), np.float32), y[:64], hidden_sizes=[4], epochs=1, engine=engine)  # compile
    vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")) << 10
    X = np.load(path, mmap_mode="r")
    limit = vm + X.nbytes + X.nbytes // 2  # the map and half of it again: no room for a copy
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    model = mlp.fit(X, y, hidden_sizes=[4], epochs=1, batch_size=1024, shuffle_block=4096, engine=engine)
    assert model.predict(X).shape == (rows,)
    try:
        np.array(X)
    except MemoryError:
        print("trained; a copy failed")
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize("engine", ENGINES)
def test_memmap_larger_than_the_memory_left_trains(engine, tmp_path):
    rows, width = 200_000, 256  # 205 MB of float32
    path = tmp_path / "big.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, width))
    rng = np.random.default_rng(0)
    for start in range(0, rows, 20_000):
        X[start : start + 20_000] = rng.random((20_000, width), dtype=np.float32)
    X.flush()
    del X
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(rows), engine],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "MALLOC_ARENA_MAX": "2"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "trained; a copy failed" in done.stdout


def test_memmap_of_raw_pixels_warns(tmp_path):
    X, y = _data()
    pixels = _mapped(np.round(np.abs(X) * 60).astype(np.float32), tmp_path)
    with pytest.warns(RawPixelsWarning, match="raw pixel"):
        mlp.fit(pixels, y, epochs=1, hidden_sizes=[4])


@pytest.mark.parametrize(("n", "block"), [(1, 1), (10, 3), (100, 7), (64, 64), (5, 10), (1000, 16)])
def test_block_order_is_a_seeded_permutation(n, block):
    order = block_order(n, block, np.random.default_rng(7))
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    np.testing.assert_array_equal(order, block_order(n, block, np.random.default_rng(7)))
    # every window of BLOCK_WINDOW blocks holds whole blocks
    window = BLOCK_WINDOW * block
    for lo in range(0, n - n % window if n % block == 0 else 0, window):
        starts = np.unique(order[lo : lo + window] // block)
        assert starts.size == min(BLOCK_WINDOW, -(-n // block))


def test_block_order_mixes_blocks():
    order = block_order(10_000, 100, np.random.default_rng(0))
    assert not np.array_equal(order, np.sort(order))
    assert np.unique(order[:400] // 100).size == BLOCK_WINDOW  # a batch sees several blocks


def test_every_engine_draws_the_same_block_order(monkeypatch):
    X, y = _data()
    drawn: dict[str, list[np.ndarray]] = {}
    original = BaseTrainer.epoch_order

    def recording(self, n):
        order = original(self, n)
        drawn.setdefault(type(self).__name__, []).append(order)
        return order

    monkeypatch.setattr(BaseTrainer, "epoch_order", recording)
    engines = ["xp", "numba"] if numba_engine.NUMBA_AVAILABLE else ["xp"]
    for engine in engines:
        mlp.fit(X, y, hidden_sizes=[8], epochs=2, batch_size=32, seed=5, shuffle_block=20, engine=engine)
    orders = list(drawn.values())
    assert len(orders) == len(engines)
    for other in orders[1:]:
        for a, b in zip(orders[0], other, strict=True):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(orders[0][0], block_order(300, 20, _seeded_after_init(X, y)))


def _seeded_after_init(X, y):
    """The generator as fit leaves it for the first epoch: seed 5, the initial weights drawn."""
    rng = np.random.default_rng(5)
    from mlp.initializers import initial_parameters

    initial_parameters([X.shape[1], 8, 3], "he_normal", rng)
    return rng


@pytest.mark.parametrize("value", [0, -4, 2.5, "4096", True])
def test_bad_shuffle_block_is_refused(value):
    X, y = _data(40)
    with pytest.raises((TypeError, ValueError), match="shuffle_block"):
        mlp.fit(X, y, epochs=1, shuffle_block=value)
