"""What `mlp.fit` promises: batching, reproducibility, schedules, validation, early stopping,
callbacks, divergence errors, and a clear error for every kind of bad input."""

import math
import warnings

import numpy as np
import pytest

import mlp
from mlp import TrainingError, optimizers, schedules
from mlp.loop import evaluate
from tests.helpers import blobs


class CountingSGD(optimizers.SGD):
    """Records the batch size of every step, read from the bias gradient's caller."""

    def __init__(self):
        super().__init__()
        self.steps = 0

    def step(self, params, grads, state, *, lr, t, xp, is_weight=None):
        self.steps += 1
        assert t == self.steps
        super().step(params, grads, state, lr=lr, t=t, xp=xp, is_weight=is_weight)


@pytest.mark.parametrize("batch_size, steps", [(7, 3), (20, 1), (1, 20), ("full", 1), (None, 1), (100, 1)])
def test_batches_cover_the_data_and_keep_the_last_partial_batch(batch_size, steps):
    X, y = blobs(n=20)
    counter = CountingSGD()
    mlp.fit(X, y, hidden_sizes=[3], epochs=2, batch_size=batch_size, optimizer=counter, seed=0)
    assert counter.steps == 2 * steps


def test_same_seed_same_weights_and_different_seed_different_weights():
    X, y = blobs()
    a = mlp.fit(X, y, hidden_sizes=[6], epochs=3, batch_size=16, dropout=0.3, seed=11)
    b = mlp.fit(X, y, hidden_sizes=[6], epochs=3, batch_size=16, dropout=0.3, seed=11)
    c = mlp.fit(X, y, hidden_sizes=[6], epochs=3, batch_size=16, dropout=0.3, seed=12)
    np.testing.assert_array_equal(a.params[0][0], b.params[0][0])
    assert not np.array_equal(a.params[0][0], c.params[0][0])


def test_fit_never_modifies_the_callers_arrays():
    X, y = blobs()
    X64, X32 = X.copy(), X.astype(np.float32)
    before64, before32, before_y = X64.copy(), X32.copy(), y.copy()
    mlp.fit(X64, y, hidden_sizes=[4], epochs=2, dtype="float64", seed=0)
    mlp.fit(X32, y, hidden_sizes=[4], epochs=2, seed=0, validation_data=(X32, y))
    np.testing.assert_array_equal(X64, before64)
    np.testing.assert_array_equal(X32, before32)
    np.testing.assert_array_equal(y, before_y)


def test_epochs_zero_returns_the_initialised_model():
    X, y = blobs()
    model = mlp.fit(X, y, hidden_sizes=[5, 4], epochs=0, seed=0)
    assert model.layer_sizes == [6, 5, 4, 3]
    assert model.history["loss"] == []
    rng = np.random.default_rng(0)
    expected = mlp.initializers.he_normal(rng, 6, 5).astype(np.float32)
    np.testing.assert_array_equal(model.params[0][0], expected)
    assert np.all(model.params[0][1] == 0)


def test_history_records_every_epoch():
    X, y = blobs()
    model = mlp.fit(
        X, y, hidden_sizes=[8], epochs=4, batch_size=16, dropout=0.0, validation_split=0.25, seed=0
    )
    history = model.history
    assert history["epoch"] == [1, 2, 3, 4]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"):
        assert len(history[key]) == 4 and all(np.isfinite(history[key]))
    assert history["loss"][-1] < history["loss"][0]


def test_linear_model_and_one_hot_labels():
    X, y = blobs()
    one_hot = np.eye(3)[y]
    a = mlp.fit(X, y, hidden_sizes=[], epochs=3, seed=0)
    b = mlp.fit(X, one_hot, hidden_sizes=[], epochs=3, seed=0)
    assert len(a.params) == 1
    np.testing.assert_array_equal(a.params[0][0], b.params[0][0])
    assert b.classes_.tolist() == [0, 1, 2]
    assert a.score(X, y) == b.score(X, one_hot)


def test_mse_with_sigmoid_output_learns():
    X, y = blobs(n=300)
    model = mlp.fit(
        X,
        y,
        hidden_sizes=[16],
        activation="sigmoid",
        loss="mse",
        optimizer="sgd",
        learning_rate=2.0,
        epochs=30,
        batch_size=10,
        schedule="constant",
        seed=0,
    )
    assert model.score(X, y) > 0.9
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0, rtol=1e-5)


def test_early_stopping_restores_the_best_weights():
    X, y = blobs(n=200, seed=5)
    X_val, y_val = blobs(n=60, seed=6)
    y_val = np.random.default_rng(0).permutation(y_val)  # noisy validation labels: the loss turns up
    model = mlp.fit(
        X,
        y,
        hidden_sizes=[32],
        epochs=40,
        learning_rate=0.01,
        schedule="constant",
        validation_data=(X_val, y_val),
        early_stopping=True,
        patience=3,
        seed=0,
    )
    val = model.history["val_loss"]
    best = int(np.argmin(val))
    assert len(val) == best + 1 + 3  # stopped `patience` epochs after the best
    assert model.best_epoch == best + 1
    y_index = np.searchsorted(model.classes_, y_val)
    restored_loss, _ = evaluate(model, X_val.astype(np.float32), y_index, xp=model._xp)
    assert restored_loss == pytest.approx(val[best], rel=1e-5)


def test_callback_can_stop_training_and_sees_logs():
    X, y = blobs()
    seen = []

    def stop_after_two(epoch, logs, model):
        seen.append((epoch, sorted(logs)))
        return epoch == 2

    model = mlp.fit(X, y, hidden_sizes=[4], epochs=10, callbacks=[stop_after_two], seed=0)
    assert [epoch for epoch, _ in seen] == [1, 2]
    assert "loss" in seen[0][1] and "accuracy" in seen[0][1]
    assert len(model.history["loss"]) == 2


def test_verbose_prints_every_n_epochs(capsys):
    X, y = blobs()
    mlp.fit(X, y, hidden_sizes=[4], epochs=5, verbose=2, seed=0)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[1] for line in lines] == ["2/5", "4/5", "5/5"]
    assert "loss" in lines[0] and "acc" in lines[0]
    mlp.fit(X, y, hidden_sizes=[4], epochs=2, verbose=0, seed=0)
    assert capsys.readouterr().out == ""


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_names_the_epoch_and_step():
    X, y = blobs()
    with pytest.raises(TrainingError, match=r"epoch 1, step \d+ of 4"):
        mlp.fit(
            X * 1e30,
            y,
            hidden_sizes=[4],
            epochs=3,
            batch_size=32,
            optimizer="sgd",
            learning_rate=1e10,
            schedule="constant",
            seed=0,
        )


def test_very_deep_and_wide_network_trains():
    X, y = blobs(n=256, d=20, k=4)
    sizes = [1000, 500, 300, 200, 400, 600, 800, 100, 50, 2000]
    model = mlp.fit(X, y, hidden_sizes=sizes, epochs=3, batch_size=64, seed=0)
    assert model.hidden_sizes == sizes
    assert model.history["loss"][-1] < model.history["loss"][0]
    assert model.score(X, y) > 0.5
    assert "1000 relu -> 500 relu" in repr(model)


# ---- schedules ----------------------------------------------------------------------------------
def test_schedules_follow_their_formulas():
    step = schedules.StepDecay(step_size=2, gamma=0.5)
    step.start(1.0, 10, 5)
    assert [step.lr(e, 0) for e in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    expo = schedules.ExponentialDecay(gamma=0.9)
    expo.start(2.0, 10, 5)
    assert expo.lr(3, 4) == pytest.approx(2.0 * 0.9**3)
    cosine = schedules.CosineDecay(warmup_epochs=1, min_lr=0.1)
    cosine.start(1.0, 5, 4)
    assert [cosine.lr(0, s) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert cosine.lr(1, 0) == pytest.approx(1.0)
    assert cosine.lr(3, 0) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 0.5)))
    assert cosine.lr(4, 3) > 0.1 and cosine.lr(4, 3) < 0.11
    plateau = schedules.ReduceOnPlateau(factor=0.5, patience=1)
    plateau.start(1.0, 10, 1)
    rates = []
    for loss in [1.0, 0.5, 0.6, 0.6, 0.6, 0.4]:
        plateau.epoch_end(0, loss)
        rates.append(plateau.lr(0, 0))
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]


def test_history_records_the_scheduled_rate():
    X, y = blobs()
    model = mlp.fit(
        X,
        y,
        hidden_sizes=[4],
        epochs=4,
        learning_rate=0.1,
        schedule=schedules.StepDecay(step_size=1, gamma=0.5),
        seed=0,
    )
    assert model.history["lr"] == pytest.approx([0.1, 0.05, 0.025, 0.0125])


# ---- bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "X_change, y_change, error, message",
    [
        (
            lambda X: np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X),
            None,
            ValueError,
            "NaN or infinity",
        ),
        (
            lambda X: np.where(np.arange(X.size).reshape(X.shape) == 5, np.inf, X),
            None,
            ValueError,
            "NaN or infinity",
        ),
        (lambda X: X[:, 0], None, ValueError, "must be 2-D"),
        (lambda X: X[:0], lambda y: y[:0], ValueError, "empty"),
        (lambda X: X[:, :0], None, ValueError, "0 features"),
        (None, lambda y: y[:-1], ValueError, "different lengths"),
        (None, lambda y: y + 0.5, ValueError, "integer class labels"),
        (None, lambda y: y.astype(str), TypeError, "integer class labels"),
        (lambda X: X.astype(bool), None, TypeError, "real numbers"),
        (None, lambda y: np.eye(3)[y] * 0.5, ValueError, "one-hot"),
        (None, lambda y: y.reshape(-1, 1, 1), ValueError, "1-D class labels"),
    ],
)
def test_bad_data_gets_a_clear_error(X_change, y_change, error, message):
    X, y = blobs()
    X = X_change(X) if X_change else X
    y = y_change(y) if y_change else y
    with pytest.raises(error, match=message):
        mlp.fit(X, y, hidden_sizes=[4], epochs=1)


@pytest.mark.parametrize(
    "option, error, message",
    [
        (dict(hidden_sizes=[4, -1]), ValueError, "positive integers"),
        (dict(hidden_sizes=[4, 2.5]), ValueError, "positive integers"),
        (dict(hidden_sizes="wide"), ValueError, "positive integers"),
        (dict(epochs=-1), ValueError, "epochs"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(batch_size="half"), ValueError, "batch_size"),
        (dict(learning_rate=-0.1), ValueError, "learning_rate"),
        (dict(learning_rate=float("nan")), ValueError, "learning_rate"),
        (dict(dropout=1.0), ValueError, "dropout"),
        (dict(weight_decay=-1.0), ValueError, "weight_decay"),
        (dict(momentum=1.5, optimizer="momentum"), ValueError, "momentum"),
        (dict(clip_norm=0.0), ValueError, "clip_norm"),
        (dict(validation_split=1.0), ValueError, "validation_split"),
        (dict(activation="swish"), ValueError, "unknown activation 'swish'; choose one of"),
        (dict(loss="hinge"), ValueError, "unknown loss"),
        (dict(optimizer="lbfgs"), ValueError, "unknown optimizer"),
        (dict(schedule="linear"), ValueError, "unknown schedule"),
        (dict(init="zeros"), ValueError, "unknown init"),
        (dict(dtype="float16"), ValueError, "float32' or 'float64"),
        (dict(seed="0"), TypeError, "seed"),
        (dict(callbacks=[1]), TypeError, "callbacks"),
        (dict(hiden_sizes=[4]), TypeError, "hiden_sizes"),
        (dict(validation_data=(np.zeros((3, 6)),)), TypeError, "pair"),
    ],
)
def test_bad_options_get_a_clear_error(option, error, message):
    X, y = blobs()
    with pytest.raises(error, match=message):
        mlp.fit(X, y, **{"epochs": 1, **option})


def test_prediction_checks_the_width_and_unknown_labels():
    X, y = blobs()
    model = mlp.fit(X, y, hidden_sizes=[4], epochs=1, seed=0)
    with pytest.raises(ValueError, match="X has 5 features but the model was trained on 6"):
        model.predict(X[:, :5])
    with pytest.raises(ValueError, match="not trained on"):
        model.score(X, y + 10)
    with pytest.raises(ValueError, match="not trained on"):
        mlp.fit(X, y, hidden_sizes=[4], epochs=1, validation_data=(X, y + 10))
    assert model.predict(X[0:1]).shape == (1,)


def test_huge_layers_are_refused_before_anything_is_allocated(monkeypatch):
    X, y = blobs()
    # 10**8 is the widest a model file holds (10**9 is refused as that); 8 GB cannot hold its training
    monkeypatch.setenv("MLP_MEMORY_LIMIT", "8e9")
    with pytest.raises(ValueError, match=r"GiB.*hidden_sizes") as caught:
        mlp.fit(X, y, hidden_sizes=[10**8], epochs=1)
    assert isinstance(caught.value, MemoryError)  # also a MemoryError, for callers that catch that


def test_a_checkpoint_path_in_a_missing_folder_fails_before_training(tmp_path):
    X, y = blobs()
    calls = []
    with pytest.raises(ValueError, match=r"checkpoint.*does not exist"):
        mlp.fit(
            X,
            y,
            epochs=3,
            checkpoint=tmp_path / "missing" / "ckpt.npz",
            callbacks=[lambda *a: calls.append(a)],
        )
    assert calls == []


def test_raw_pixels_give_a_warning_that_says_how_to_scale():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(60, 8)).astype(np.uint8)
    y = rng.integers(0, 3, 60)
    with pytest.warns(UserWarning, match=r"raw pixel values\? Scale them to \[0, 1\] first \(X / 255.0\)"):
        mlp.fit(X, y, epochs=1, hidden_sizes=[4])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mlp.fit(X / 255.0, y, epochs=1, hidden_sizes=[4])


def test_image_shaped_X_gets_the_reshape_hint():
    with pytest.raises(ValueError, match=r"X.reshape\(X.shape\[0\], -1\)"):
        mlp.fit(np.zeros((10, 28, 28)), np.arange(10) % 2, epochs=1)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan, 2.0**70])
def test_float_labels_that_are_not_whole_countable_numbers_are_refused(bad):
    X, y = blobs(n=20)
    labels = y.astype(float)
    labels[3] = bad
    with pytest.raises(ValueError, match=r"labels|NaN or infinity|2\*\*53"):
        mlp.fit(X, labels, epochs=1)


def test_seed_none_is_drawn_recorded_and_repeatable(capsys):
    X, y = blobs()
    first = mlp.fit(X, y, epochs=2, hidden_sizes=[4], verbose=1)
    seed = first.config["seed"]
    assert f"seed {seed} (pass seed={seed} to repeat this run)" in capsys.readouterr().out
    again = mlp.fit(X, y, epochs=2, hidden_sizes=[4], seed=seed)
    np.testing.assert_array_equal(first.params[0][0], again.params[0][0])


@pytest.mark.parametrize("patience, says", [(1, "for 1 epoch"), (2, "for 2 epochs")])
def test_the_early_stopping_line_counts_epochs_in_words(patience, says):
    from mlp.loop import Best, Stopping, stopping_report

    line = stopping_report(4, Best(0.5, None, 3), Stopping(patience=patience), True, False, True)
    assert line == f"early stopping at epoch 5: val_loss has not improved {says}"
