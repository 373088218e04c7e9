"""mlp.fit's sample_weight and class_weight: the weighted mean loss of scikit-learn, on both engines.

Integer weights train the network that repeating rows trains, weights of 0 the one that dropping them
trains, class_weight is a product of per-row weights, the engines agree, the weighted gradient is the
derivative of the weighted loss, the weighted kernels match their plain-loop references, and bad
weights are refused with a message saying why.
"""

import itertools
import math

import numpy as np
import pytest

import mlp
from mlp import layers
from mlp.engines import numba_trainer
from mlp.loop import evaluate
from tests import reference as ref

xp = pytest.importorskip("array_api_compat.numpy")
ENGINES = ["xp", "numba"] if numba_trainer.NUMBA_AVAILABLE else ["xp"]
LOSSES = ["cross_entropy", "mse", "squared_error", "binary_cross_entropy", "poisson"]
EXACT = dict(rtol=1e-12, atol=1e-12)  # float64: the same sums in another order


def problem(loss, n=30, seed=0):
    """(X, y) for `loss`: labels for the class losses, a target matrix for the others."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    if loss in ("cross_entropy", "mse"):
        return X, np.arange(n) % 3  # every class present
    if loss == "binary_cross_entropy":
        return X, (rng.random((n, 2)) < 0.5).astype(float)
    if loss == "poisson":
        return X, rng.poisson(1.5, size=(n, 2)).astype(float)
    return X, rng.normal(size=(n, 2))


def run(X, y, loss, engine, **options):
    settings = dict(
        hidden_sizes=[5],
        activation="tanh",
        loss=loss,
        epochs=4,
        batch_size=None,
        shuffle=False,
        optimizer="sgd",
        learning_rate=0.2,
        schedule="constant",
        dtype="float64",
        seed=4,
        dropout=0.0,
        engine=engine,
    )
    return mlp.fit(X, y, **{**settings, **options})


def assert_same_network(a, b, **tolerance):
    for (Wa, ba), (Wb, bb) in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(Wa, Wb, **(tolerance or EXACT))
        np.testing.assert_allclose(ba, bb, **(tolerance or EXACT))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("loss", LOSSES)
def test_integer_weights_equal_repeated_rows(engine, loss):
    X, y = problem(loss)
    counts = np.arange(X.shape[0]) % 4  # 0 to 3 copies of each row
    repeated = np.repeat(np.arange(X.shape[0]), counts)
    weighted = run(X, y, loss, engine, sample_weight=counts)
    copies = run(X[repeated], y[repeated], loss, engine)
    assert_same_network(weighted, copies)
    np.testing.assert_allclose(weighted.history["loss"][1:], copies.history["loss"][1:], rtol=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_l2_term_is_scaled_by_rows_over_the_weight_sum_as_in_scikit_learn(engine):
    # scikit-learn's penalty is alpha / (2 * sum of weights) where it is alpha / (2 * rows) unweighted,
    # so weight_decay l2 (= alpha / rows) on the weighted rows is l2 * rows / sum(w) on the copies
    X, y = problem("cross_entropy")
    counts = np.arange(X.shape[0]) % 4
    repeated = np.repeat(np.arange(X.shape[0]), counts)
    weighted = run(X, y, "cross_entropy", engine, sample_weight=counts, weight_decay=0.01)
    copies = run(
        X[repeated], y[repeated], "cross_entropy", engine, weight_decay=0.01 * X.shape[0] / counts.sum()
    )
    assert_same_network(weighted, copies)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("loss", LOSSES)
def test_zero_weights_equal_dropped_rows(engine, loss):
    X, y = problem(loss)
    keep = np.arange(X.shape[0]) % 4 != 1  # every class keeps rows
    weighted = run(X, y, loss, engine, sample_weight=keep.astype(float))
    dropped = run(X[keep], y[keep], loss, engine)
    assert_same_network(weighted, dropped)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_batch_weighing_nothing_takes_no_step(engine):
    X, y = problem("cross_entropy", n=12)
    weights = np.r_[np.zeros(4), np.ones(8)]  # the first of three batches of 4 weighs 0
    skipped = run(X, y, "cross_entropy", engine, batch_size=4, epochs=1, sample_weight=weights)
    two_steps = run(X[4:], y[4:], "cross_entropy", engine, batch_size=4, epochs=1)
    assert_same_network(skipped, two_steps)


@pytest.mark.parametrize("engine", ENGINES)
def test_balanced_class_weight_is_the_product_of_per_row_weights(engine):
    from sklearn.utils.class_weight import compute_class_weight

    X, _ = problem("cross_entropy")
    y = np.r_[np.zeros(18, dtype=int), np.ones(9, dtype=int), np.full(3, 2)]
    sample_weight = np.linspace(0.5, 2.0, X.shape[0])
    per_class = compute_class_weight("balanced", classes=np.unique(y), y=y)
    explicit = run(X, y, "cross_entropy", engine, sample_weight=sample_weight * per_class[y])
    balanced = run(X, y, "cross_entropy", engine, sample_weight=sample_weight, class_weight="balanced")
    assert_same_network(balanced, explicit)
    by_label = run(X, y + 5, "cross_entropy", engine, class_weight={5: 1.0, 6: 2.0, 7: 4.0})
    rows = run(X, y + 5, "cross_entropy", engine, sample_weight=np.array([1.0, 2.0, 4.0])[y])
    assert_same_network(by_label, rows)


@pytest.mark.skipif(not numba_trainer.NUMBA_AVAILABLE, reason="the Numba engine needs Numba")
@pytest.mark.parametrize("loss", LOSSES)
def test_both_engines_train_the_same_weighted_network(loss):
    X, y = problem(loss, n=37)
    weights = np.random.default_rng(1).gamma(1.0, size=37) * (np.arange(37) % 5 != 0)
    options = dict(
        batch_size=8,
        shuffle=True,
        optimizer="adam",
        learning_rate=0.01,
        weight_decay=1e-3,
        clip_norm=1.0,
        dropout=0.2,
        validation_split=0.2,
        label_smoothing=0.1 if loss == "cross_entropy" else 0.0,
        sample_weight=weights,
    )
    generic = run(X, y, loss, "xp", **options)
    kernels = run(X, y, loss, "numba", **options)
    assert_same_network(generic, kernels, rtol=1e-10, atol=1e-12)
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(generic.history[key], kernels.history[key], rtol=1e-10)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_validation_loss_is_weighted_with_the_held_out_rows_weights(engine):
    X, y = problem("cross_entropy", n=40)
    weights = 1.0 + np.arange(40) % 4
    X_val, y_val, w_val = X[:10], y[:10], weights[:10]
    model = run(
        X[10:],
        y[10:],
        "cross_entropy",
        engine,
        sample_weight=weights[10:],
        epochs=1,
        validation_data=(X_val, y_val, w_val),
    )
    loss, accuracy = evaluate(model, X_val, y_val, w_val, xp=xp)
    logits = model.predict_proba(X_val)
    rows = -np.log(logits[np.arange(10), y_val])
    assert loss == pytest.approx(np.sum(w_val * rows) / w_val.sum(), rel=1e-10)
    assert model.history["val_loss"][-1] == pytest.approx(loss, rel=1e-12)
    hits = logits.argmax(axis=1) == y_val
    assert accuracy == pytest.approx(np.sum(w_val * hits) / w_val.sum())
    # validation_split: the held-out rows are those of the unweighted run, and keep their weights
    split = run(X, y, "cross_entropy", engine, sample_weight=weights, validation_split=0.25, epochs=1)
    assert np.isfinite(split.history["val_loss"][-1])


def test_weights_of_one_change_no_number():
    X, y = problem("cross_entropy")
    for engine in ENGINES:
        plain = run(X, y, "cross_entropy", engine, batch_size=7, shuffle=True, weight_decay=1e-3)
        ones = run(
            X,
            y,
            "cross_entropy",
            engine,
            batch_size=7,
            shuffle=True,
            weight_decay=1e-3,
            sample_weight=np.ones(X.shape[0]),
        )
        assert_same_network(plain, ones, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (dict(sample_weight=np.ones(29)), ValueError, r"shape \(30,\)"),
        (dict(sample_weight=np.ones((30, 1))), ValueError, r"shape \(30,\)"),
        (dict(sample_weight=np.r_[np.nan, np.ones(29)]), ValueError, "finite"),
        (dict(sample_weight=np.r_[-1.0, np.ones(29)]), ValueError, "negative"),
        (dict(sample_weight=np.zeros(30)), ValueError, "all 0"),
        (dict(sample_weight=np.array(["a"] * 30)), TypeError, "real numbers"),
        (dict(class_weight="balance"), ValueError, "'balanced'"),
        (dict(class_weight=[1.0, 2.0, 3.0]), TypeError, "dict"),
        (dict(class_weight={7: 1.0}), ValueError, "not a class"),
        (dict(class_weight={0: -1.0}), ValueError, "finite number >= 0"),
        (dict(class_weight={0: 0.0, 1: 0.0, 2: 0.0}), ValueError, "all 0"),
        (dict(loss="squared_error", class_weight="balanced"), ValueError, "classification loss"),
        (dict(validation_data=(np.ones((3, 4)), [0, 1, 2], -np.ones(3))), ValueError, "negative"),
    ],
)
def test_bad_weights_are_refused_with_a_clear_message(options, error, message):
    X, y = problem("cross_entropy")
    if options.get("loss") == "squared_error":
        y = y.astype(float)
    with pytest.raises(error, match=message):
        mlp.fit(X, y, hidden_sizes=[3], epochs=1, **options)


# ---- the weighted loss and its gradient ------------------------------------------------------------
pytest.importorskip("hypothesis", reason="the gradient check draws cases with hypothesis (the test extra)")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

H = 1e-4  # the fourth-order stencil's step (tanh is smooth)


@settings(max_examples=20, deadline=None)
@given(
    loss=st.sampled_from(LOSSES),
    rows=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    zeros=st.booleans(),
    l2=st.sampled_from([0.0, 0.05]),
    smoothing=st.sampled_from([0.0, 0.2]),
)
def test_the_weighted_gradient_is_the_derivative_of_the_weighted_loss(loss, rows, seed, zeros, l2, smoothing):
    rng = np.random.default_rng(seed)
    X, y = problem(loss, n=rows, seed=seed)
    if loss in ("cross_entropy", "mse"):
        y = rng.integers(0, 3, rows)
    w = rng.gamma(1.0, size=rows) * (rng.random(rows) < 0.6 if zeros else 1.0)
    row_weights = w / w.sum() if w.sum() > 0 else w
    smoothing = smoothing if loss == "cross_entropy" else 0.0
    sizes = [4, 3, 3 if loss in ("cross_entropy", "mse") else 2]
    params = [(rng.normal(size=(a, b)), rng.normal(size=b) * 0.1) for a, b in itertools.pairwise(sizes)]

    def value():
        return float(
            layers.loss_and_gradients(
                params,
                X,
                y,
                activation="tanh",
                loss=loss,
                l2=l2,
                xp=xp,
                row_weights=row_weights,
                label_smoothing=smoothing,
            )[0]
        )

    expected = value()
    if loss in ("cross_entropy", "mse"):  # the value itself: sum_i w_i l_i / sum_i w_i + the L2 term
        per_row = [
            float(
                layers.loss_and_gradients(
                    params,
                    X[i : i + 1],
                    y[i : i + 1],
                    activation="tanh",
                    loss=loss,
                    xp=xp,
                    label_smoothing=smoothing,
                )[0]
            )
            for i in range(rows)
        ]
        penalty = 0.5 * l2 * sum(float(np.sum(W * W)) for W, _ in params)
        assert expected == pytest.approx(float(np.dot(row_weights, per_row)) + penalty, rel=1e-12, abs=1e-12)
    grads = layers.loss_and_gradients(
        params,
        X,
        y,
        activation="tanh",
        loss=loss,
        l2=l2,
        xp=xp,
        row_weights=row_weights,
        label_smoothing=smoothing,
    )[1]
    for (W, b), (dW, db) in zip(params, grads, strict=True):
        for p, g in ((W, dW), (b, db)):
            flat, numeric = p.reshape(-1), np.zeros(p.size)
            for i in range(p.size):
                x0 = flat[i]
                at = []
                for step in (2 * H, H, -H, -2 * H):
                    flat[i] = x0 + step
                    at.append(value())
                flat[i] = x0
                numeric[i] = (-at[0] + 8 * at[1] - 8 * at[2] + at[3]) / (12 * H)
            analytic = np.asarray(g).reshape(-1)
            denominator = max(np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-3)
            assert np.linalg.norm(analytic - numeric) / denominator < 1e-7


# ---- the weighted kernels against the plain loops ---------------------------------------------------
KERNELS = {
    "cross_entropy": ("softmax_cross_entropy_sum_weighted", ref.softmax_cross_entropy),
    "mse": ("sigmoid_mse_sum_weighted", ref.sigmoid_mse),
    "squared_error": ("squared_error_sum_weighted", ref.squared_error),
    "binary_cross_entropy": ("sigmoid_binary_cross_entropy_sum_weighted", ref.sigmoid_binary_cross_entropy),
    "poisson": ("exp_poisson_sum_weighted", ref.exp_poisson),
}


@pytest.mark.skipif(not numba_trainer.NUMBA_AVAILABLE, reason="the kernels need Numba")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (5, 1), (7, 17)])
@pytest.mark.parametrize("in_place", [False, True])
def test_weighted_kernels_match_the_reference_loops(dtype, loss, shape, in_place):
    import mlp_kernels

    rng = np.random.default_rng(8)
    Z = rng.normal(0, 3, size=shape).astype(dtype)
    Z[0] = 0.0  # an all-zero row
    targets = {
        "binary_cross_entropy": lambda: (rng.random(shape) < 0.5).astype(dtype),
        "squared_error": lambda: rng.normal(size=shape).astype(dtype),
        "poisson": lambda: rng.poisson(2.0, shape).astype(dtype),
    }
    y = targets[loss]() if loss in targets else rng.integers(0, shape[1], shape[0]).astype(np.int64)
    w = rng.gamma(1.0, size=shape[0])
    w[-1] = 0.0  # a row that counts for nothing
    scale = 1.0 / max(w.sum(), 1e-3)
    name, reference = KERNELS[loss]
    expected = ref.weighted(reference, Z, y, w, scale)
    dZ = Z if in_place else np.full_like(Z, np.nan)
    Z_before = Z.copy()
    got = getattr(mlp_kernels, name)(Z, y, w, scale, dZ)
    got = got if isinstance(got, tuple) else (got,)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert math.isclose(got[0], expected[0], rel_tol=tol, abs_tol=tol * shape[0])
    if len(got) == 2:
        assert got[1] == expected[1]
    np.testing.assert_allclose(dZ, expected[-1], rtol=tol * 10, atol=tol * scale)
    assert np.all(dZ[-1] == 0.0)
    if not in_place:
        np.testing.assert_array_equal(Z, Z_before)


@pytest.mark.skipif(not numba_trainer.NUMBA_AVAILABLE, reason="the kernels need Numba")
def test_the_weighted_kernels_check_their_weights():
    import mlp_kernels

    Z, y = np.zeros((3, 2)), np.zeros(3, dtype=np.int64)
    for w, message in [
        (np.ones(2), "shape"),
        (np.ones(3, dtype=np.float32), "float64"),
        (np.array([1.0, -1.0, 1.0]), ">= 0"),
        (np.array([1.0, np.inf, 1.0]), "finite"),
    ]:
        with pytest.raises((TypeError, ValueError), match=message):
            mlp_kernels.softmax_cross_entropy_sum_weighted(Z, y, w, 1.0, np.empty_like(Z))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_checkpoint_resumes_with_the_same_weights_only(engine, tmp_path):
    X, y = problem("cross_entropy")
    weights = 1.0 + np.arange(X.shape[0]) % 3
    path = tmp_path / "run.ckpt"
    options = dict(batch_size=8, shuffle=True, sample_weight=weights, checkpoint=path)
    whole = run(X, y, "cross_entropy", engine, **{**options, "checkpoint": None})
    run(X, y, "cross_entropy", engine, **options, callbacks=lambda epoch, logs, model: epoch == 2)
    resumed = run(X, y, "cross_entropy", engine, **options, resume=True)
    assert_same_network(resumed, whole, rtol=0, atol=0)
    with pytest.raises(ValueError, match="sample_weight"):
        run(X, y, "cross_entropy", engine, **{**options, "sample_weight": weights[::-1].copy()}, resume=True)
    with pytest.raises(ValueError, match="sample_weight"):
        run(X, y, "cross_entropy", engine, **{**options, "sample_weight": None}, resume=True)


def test_weights_in_the_data_namespace_and_on_its_device_train_as_numpy_weights():
    xps = pytest.importorskip("array_api_strict")
    X, y = problem("cross_entropy", n=40)
    weights = 1.0 + np.arange(40) % 4
    options = dict(batch_size=8, shuffle=True, validation_split=0.25, class_weight="balanced")
    on_host = run(X, y, "cross_entropy", "xp", sample_weight=weights, **options)
    device = xps.Device("device1")  # array-api-strict's second device: nothing may cross to the default one
    moved = run(
        xps.asarray(X, device=device),
        xps.asarray(y, device=device),
        "cross_entropy",
        "xp",
        sample_weight=xps.asarray(weights, device=device),
        **options,
    )
    assert moved.params[0][0].device == device
    assert_same_network(moved, on_host, rtol=0, atol=0)
    np.testing.assert_array_equal(moved.history["val_loss"], on_host.history["val_loss"])


@pytest.mark.parametrize("loss", ["cross_entropy", "squared_error", "binary_cross_entropy"])
def test_the_weighted_loss_and_gradient_are_scikit_learns(loss):
    # scikit-learn 1.9's MLP._backprop with sample_weight and alpha: the library's loss with row
    # weights w / S and l2 = alpha / S (fit's weight_decay = alpha / n, scaled by n / S per batch)
    neural_network = pytest.importorskip("sklearn.neural_network")
    rng = np.random.default_rng(0)
    # one output for squared_error: scikit-learn's loss is the mean over the outputs, the library's the sum
    n, alpha, k = 12, 0.3, 1 if loss == "squared_error" else 3
    X = rng.normal(size=(n, 4))
    w = rng.gamma(1.0, size=n) * (np.arange(n) % 4 != 0)
    params = [(rng.normal(size=(4, 5)), rng.normal(size=5)), (rng.normal(size=(5, k)), rng.normal(size=k))]
    if loss == "cross_entropy":
        y = np.arange(n) % k
        Y, estimator, name, out = np.eye(k)[y], neural_network.MLPClassifier, "log_loss", "softmax"
    elif loss == "binary_cross_entropy":
        y = Y = (rng.random((n, k)) < 0.5).astype(float)
        estimator, name, out = neural_network.MLPClassifier, "log_loss", "logistic"
    else:
        y = Y = rng.normal(size=(n, k))
        estimator, name, out = neural_network.MLPRegressor, "squared_error", "identity"
    sk = estimator(hidden_layer_sizes=(5,), activation="tanh", alpha=alpha)
    sk.coefs_, sk.intercepts_ = [W.copy() for W, _ in params], [b.copy() for _, b in params]
    sk.n_layers_, sk.out_activation_, sk.loss = 3, out, name
    buffers = [[X, np.empty((n, 5)), np.empty((n, k))], [np.empty((n, 5)), np.empty((n, k))]]
    grads = [[np.empty_like(W) for W, _ in params], [np.empty_like(b) for _, b in params]]
    expected, dW, db = sk._backprop(X, Y, w, *buffers, *grads)
    value, ours, _ = layers.loss_and_gradients(
        params, X, y, activation="tanh", loss=loss, l2=alpha / w.sum(), xp=xp, row_weights=w / w.sum()
    )
    assert float(value) == pytest.approx(expected, rel=1e-13)
    for (gW, gb), W_grad, b_grad in zip(ours, dW, db, strict=True):
        np.testing.assert_allclose(gW, W_grad, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(gb, b_grad, rtol=1e-12, atol=1e-15)
