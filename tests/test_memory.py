"""Memory estimates before training and prediction (mlp._memory): refusals name the size and the option."""

import re
import tracemalloc

import numpy as np
import pytest

import mlp
from mlp import _memory
from mlp._memory import MemoryLimitError
from tests.helpers import blobs

GIB = 1 << 30


def test_the_limit_comes_from_the_environment_variable_or_the_system(monkeypatch):
    monkeypatch.setenv("MLP_MEMORY_LIMIT", "12345")
    assert _memory.available_bytes() == 12345
    monkeypatch.setenv("MLP_MEMORY_LIMIT", "2e9")
    assert _memory.available_bytes() == 2_000_000_000
    monkeypatch.setenv("MLP_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="MLP_MEMORY_LIMIT='lots' is not a number of bytes"):
        _memory.available_bytes()
    monkeypatch.delenv("MLP_MEMORY_LIMIT")
    assert 0 < _memory.available_bytes() < 1 << 50


def test_check_fits_names_the_size_and_the_option(monkeypatch):
    monkeypatch.setenv("MLP_MEMORY_LIMIT", str(GIB))
    _memory.check_fits(GIB, "a thing", "make it smaller")  # exactly the limit fits
    with pytest.raises(MemoryLimitError) as info:
        _memory.check_fits(3 * GIB, "training this network", "use smaller hidden_sizes")
    message = str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, MemoryError)
    assert "training this network needs about 3.0 GiB" in message and "only 1.0 GiB is available" in message
    assert "use smaller hidden_sizes" in message and "MLP_MEMORY_LIMIT" in message


def test_training_bytes_counts_parameters_optimizer_buffers_and_one_batch():
    sizes = [784, 256, 128, 10]
    n_params = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    sgd = _memory.training_bytes(
        sizes, batch_size=128, n_samples=60000, dtype="float32", optimizer_buffers=0, dropout=0.0
    )
    adam = _memory.training_bytes(
        sizes, batch_size=128, n_samples=60000, dtype="float32", optimizer_buffers=2, dropout=0.0
    )
    assert adam - sgd == 2 * n_params * 4
    assert sgd >= 2 * n_params * 4 + 128 * (784 + 256 + 128 + 10) * 4
    wide = _memory.training_bytes(
        [784, 10**9, 10], batch_size=128, n_samples=100, dtype="float64", optimizer_buffers=2, dropout=0.1
    )
    assert wide > 4 * 784 * 10**9 * 8  # Python integers: no overflow
    full = _memory.training_bytes(
        sizes, batch_size=None, n_samples=60000, dtype="float32", optimizer_buffers=0, dropout=0.0
    )
    assert full > sgd  # full batch: activations for every sample
    assert _memory.optimizer_buffers("adamw") == 2 and _memory.optimizer_buffers("sgd") == 0
    assert _memory.optimizer_buffers(mlp.optimizers.make_optimizer("momentum")) == 1


def test_fit_refuses_a_network_that_cannot_fit_before_allocating_it():
    X, y = blobs()
    with pytest.raises(
        ValueError, match=r"needs about [\d,.]+ GiB .*use smaller hidden_sizes or a smaller batch_size"
    ):
        mlp.fit(X, y, hidden_sizes=[10**8], epochs=1)  # the widest layer a model file holds: 300 GiB


def test_fit_respects_the_limit_from_the_environment(monkeypatch):
    X, y = blobs()
    monkeypatch.setenv("MLP_MEMORY_LIMIT", "1000")
    with pytest.raises(MemoryLimitError, match=re.escape("only 0.0 GiB is available")):
        mlp.fit(X, y, hidden_sizes=[4], epochs=1)
    monkeypatch.setenv("MLP_MEMORY_LIMIT", str(GIB))
    assert mlp.fit(X, y, hidden_sizes=[4], epochs=1, seed=0).layer_sizes == [6, 4, 3]


def test_prediction_chunks_follow_the_layer_widths():
    assert _memory.prediction_chunk_rows([784, 256, 128, 10], "float32") == 8192
    wide = _memory.prediction_chunk_rows([784, 256, 10**6], "float32")
    assert 1 <= wide <= 64
    assert _memory.prediction_chunk_rows([10**8, 10**8, 10**8], "float64") == 1
    assert _memory.prediction_chunk_rows([4, 3], "float32", budget_bytes=1) == 1


def _wide_model(n_classes=10**6):
    rng = np.random.default_rng(0)
    W = rng.normal(size=(4, n_classes)).astype(np.float32)
    return mlp.MLP(
        [(W, np.zeros(n_classes, np.float32))],
        activation="relu",
        loss="cross_entropy",
        classes=np.arange(n_classes),
    )


def test_predicting_a_million_classes_stays_within_the_chunk_budget():
    """One pass used to be 8192 rows x 10^6 classes (30 GiB); now a few rows at a time, and predict()
    keeps only the labels."""
    model = _wide_model()
    X = np.random.default_rng(1).normal(size=(100, 4)).astype(np.float32)
    tracemalloc.start()
    try:
        labels = model.predict(X)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert labels.shape == (100,)
    W = model.params[0][0]
    np.testing.assert_array_equal(labels, [np.argmax(row @ W) for row in X])
    assert peak < 2 * _memory.PREDICT_BUDGET, f"peak {peak / 2**20:.0f} MiB"


def test_asking_for_logits_that_cannot_fit_names_the_size(monkeypatch):
    model = _wide_model()
    monkeypatch.setenv("MLP_MEMORY_LIMIT", str(GIB))
    X = np.zeros((1000, 4), np.float32)  # 1000 x 10^6 float32 logits: 3.7 GiB
    with pytest.raises(
        MemoryLimitError, match=r"the logits for 1,000 rows and 1,000,000 outputs needs about 3.7 GiB"
    ):
        model.decision_function(X)
    with pytest.raises(MemoryLimitError, match="use predict"):
        model.predict_proba(X)
    assert model.predict(X[:200]).shape == (200,)


def test_chunked_prediction_gives_the_same_answers(monkeypatch):
    X, y = blobs(n=300)
    model = mlp.fit(X, y, hidden_sizes=[8], epochs=2, seed=0)
    whole = model.predict_proba(X)
    monkeypatch.setattr(model, "_chunk_rows", lambda: 7)  # 43 passes, the last one of 6 rows
    np.testing.assert_array_equal(model.predict_proba(X), whole)
    np.testing.assert_array_equal(model.predict(X), np.argmax(whole, axis=1))
    assert model.score(X, y) == float(np.mean(np.argmax(whole, axis=1) == y))


def test_the_command_line_can_name_its_own_flags(monkeypatch):
    monkeypatch.setenv("MLP_MEMORY_LIMIT", "1000")
    with pytest.raises(MemoryLimitError, match="use a smaller --hidden or --batch-size"):
        _memory.check_training_memory(
            [784, 100, 10], 128, 60000, "float32", "adam", 0.1, hint="use a smaller --hidden or --batch-size"
        )
    monkeypatch.setenv("MLP_MEMORY_LIMIT", str(GIB))
    assert _memory.check_training_memory([784, 100, 10], 128, 60000, "float32", "adam", 0.1) > 4 * 79510 * 4
