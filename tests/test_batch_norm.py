"""Batch normalisation (`batch_norm="before"` or `"after"` the activation of every hidden layer):
gradients against central differences, the running statistics against a plain NumPy reference,
inference with the running statistics, model files (format 3, and version 2 still loads), checkpoints,
the estimators, other array namespaces, and clear refusals of bad values."""

import itertools
import json
import math
import pickle

import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the gradient checks draw cases with hypothesis (the test extra)")
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import mlp
from mlp import layers
from mlp.activations import ACTIVATIONS, KINKED, get_activation
from mlp.engines import Trainer
from mlp.model import MLP
from mlp.model_file import ModelFileError
from mlp.optimizers import Adam
from mlp.schedules import Schedule
from tests.helpers import assert_lives_on, blobs, host_backends, put, tolerance

xp = pytest.importorskip("array_api_compat.numpy")

STEP = 1e-6  # central-difference step (float64); two-point at kinks
SMOOTH_STEP = 1e-4  # four-point stencil for smooth activations
KINK_MARGIN = 1e-3
EPS = layers.BATCH_NORM_EPS


# ---- a plain NumPy reference -----------------------------------------------------------------------
def reference_logits(params, norms, X, activation, placement, *, batch):
    """The network written out in NumPy: batch statistics (mean, biased variance) with batch=True,
    else the running statistics; also the per-layer (mean, unbiased variance) of what was normalised."""
    act, _ = get_activation(activation)
    A, seen = X, []
    for (W, b), (gamma, beta, mean, var) in zip(params[:-1], norms, strict=True):
        H = A @ W + b
        if placement == "after":
            H = act(H, xp=xp)
        if batch:
            m, v = H.mean(axis=0), H.var(axis=0)
            seen.append((m, H.var(axis=0, ddof=1)))
        else:
            m, v = mean, var
        Y = gamma * (H - m) / np.sqrt(v + EPS) + beta
        A = act(Y, xp=xp) if placement == "before" else Y
    W, b = params[-1]
    return A @ W + b, seen


def random_network(rng, sizes, *, spread=1.0):
    params = [
        (rng.normal(0, 1.5 / math.sqrt(a), size=(a, b)), rng.normal(0, 0.5, size=b))
        for a, b in itertools.pairwise(sizes)
    ]
    norms = [
        (
            rng.uniform(0.5, 1.5, size=k),
            rng.normal(0, 0.5 * spread, size=k),
            rng.normal(0, 0.5, size=k),
            rng.uniform(0.5, 2.0, size=k),
        )
        for k in sizes[1:-1]
    ]
    return params, norms


# ---- gradients ------------------------------------------------------------------------------------
def trainable(params, norms):
    """The arrays the optimizer trains, in its order: W0, b0, ..., gamma0, beta0, ..."""
    return [a for pair in params for a in pair] + [a for g, b, _, _ in norms for a in (g, b)]


def numeric_gradients(value, arrays, smooth):
    result = []
    for p in arrays:
        g = np.zeros_like(p)
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            x0 = flat[i]

            def at(x, flat=flat, i=i):
                flat[i] = x
                return value()

            if smooth:
                h = SMOOTH_STEP
                gflat[i] = (-at(x0 + 2 * h) + 8 * at(x0 + h) - 8 * at(x0 - h) + at(x0 - 2 * h)) / (12 * h)
            else:
                gflat[i] = (at(x0 + STEP) - at(x0 - STEP)) / (2 * STEP)
            flat[i] = x0
        result.append(g)
    return result


def activation_inputs(params, norms, X, activation, placement, statistics, masks):
    """The smallest |input| of the activation over every hidden layer (the kink guard)."""
    done = layers.forward_pass(
        params,
        X,
        activation,
        xp=xp,
        dropout_masks=masks,
        batch_norm=placement,
        norms=norms,
        statistics=statistics,
    )
    smallest = math.inf
    for layer, (W, b) in enumerate(params[:-1]):
        Z = done.inputs[layer] @ W + b
        if placement == "before":
            Z = layers.batch_norm_forward(Z, norms[layer], xp=xp, statistics=statistics)[0]
        smallest = min(smallest, float(np.min(np.abs(Z))))
    return smallest


@st.composite
def problems(draw):
    n_in = draw(st.integers(1, 4))
    hidden = draw(st.lists(st.integers(1, 5), min_size=1, max_size=2))
    n_classes = draw(st.integers(2, 3))
    n = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    params, norms = random_network(rng, [n_in, *hidden, n_classes])
    X, y = rng.normal(0, 1, size=(n, n_in)), rng.integers(0, n_classes, size=n)
    masks = None
    if draw(st.booleans()):
        masks = [(rng.random((n, k)) < 0.7) / 0.7 for k in hidden]
    return params, norms, X, y, masks


def relative_error(a, b):
    denominator = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denominator == 0 else float(np.linalg.norm(a - b) / denominator)


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(
    problem=problems(),
    placement=st.sampled_from(layers.BATCH_NORM_PLACEMENTS),
    activation=st.sampled_from(sorted(ACTIVATIONS)),
    training=st.booleans(),
    l2=st.sampled_from([0.0, 0.2]),
)
def test_gradients_match_central_differences(problem, placement, activation, training, l2):
    """Training (batch statistics, or the running ones for a batch of one row) and inference mode,
    with and without dropout masks, every activation, both placements."""
    params, norms, X, y, masks = problem
    statistics = layers.BatchStatistics(X.shape[0]) if training else None
    if training and X.shape[0] >= 2:  # a unit constant over the batch has no variance to normalise by
        first = X @ params[0][0]
        assume(np.min(np.ptp(first, axis=0)) > 1e-2)
    kinked = activation in KINKED
    if kinked:
        assume(activation_inputs(params, norms, X, activation, placement, statistics, masks) > KINK_MARGIN)
    options = dict(
        activation=activation,
        loss="cross_entropy",
        l2=l2,
        xp=xp,
        dropout_masks=masks,
        batch_norm=placement,
        norms=norms,
        statistics=statistics,
    )

    def value():
        return float(layers.loss_and_gradients(params, X, y, **options)[0])

    _, grads, _ = layers.loss_and_gradients(params, X, y, **options)
    assert len(grads) == len(params) + len(norms)  # (dW, db) per layer, then (dgamma, dbeta) per hidden layer
    analytic = [g for pair in grads for g in pair]
    numeric = numeric_gradients(value, trainable(params, norms), smooth=not kinked)
    whole_a = np.concatenate([g.ravel() for g in analytic])
    whole_n = np.concatenate([g.ravel() for g in numeric])
    assert relative_error(whole_a, whole_n) <= (1e-4 if kinked else 1e-7)
    for index, (a, n) in enumerate(zip(analytic, numeric, strict=True)):
        assert np.max(np.abs(a - n)) <= 1e-5 * max(1.0, np.max(np.abs(n))), f"array {index}"


def test_batch_statistics_and_running_update_match_numpy():
    rng = np.random.default_rng(0)
    params, norms = random_network(rng, [4, 6, 5, 3])
    X, y = rng.normal(size=(9, 4)), rng.integers(0, 3, size=9)
    for placement in layers.BATCH_NORM_PLACEMENTS:
        statistics = layers.BatchStatistics(9, momentum=0.3)
        done = layers.backprop(
            params, X, y, activation="tanh", loss="cross_entropy", xp=xp,
            batch_norm=placement, norms=norms, statistics=statistics,
        )  # fmt: skip
        expected, seen = reference_logits(params, norms, X, "tanh", placement, batch=True)
        np.testing.assert_allclose(done.logits, expected, rtol=1e-12)
        for (g, b, mean, var), (g0, b0, mean0, var0), (m, v) in zip(done.norms, norms, seen, strict=True):
            assert g is g0 and b is b0  # the trained arrays are the optimizer's business
            np.testing.assert_allclose(mean, 0.7 * mean0 + 0.3 * m, rtol=1e-12)
            np.testing.assert_allclose(var, 0.7 * var0 + 0.3 * v, rtol=1e-12)  # unbiased, as PyTorch
        # one row, and inference: the running statistics, kept
        for statistics in (layers.BatchStatistics(1), None):
            one = layers.backprop(
                params, X[:1], y[:1], activation="tanh", loss="cross_entropy", xp=xp,
                batch_norm=placement, norms=norms, statistics=statistics,
            )  # fmt: skip
            np.testing.assert_allclose(
                one.logits, reference_logits(params, norms, X[:1], "tanh", placement, batch=False)[0]
            )
            assert all(
                a is b
                for new, old in zip(one.norms, norms, strict=True)
                for a, b in zip(new, old, strict=True)
            )


def test_one_training_step_updates_the_running_statistics_as_numpy_does():
    """fit's first full-batch step: running = (1 - m) * (0 or 1) + m * the batch's statistics of the
    initial network (mean, unbiased variance)."""
    X, y = blobs(n=40)
    options = dict(hidden_sizes=[6, 4], batch_size="full", dtype="float64", seed=3, dropout=0.0)
    for placement in layers.BATCH_NORM_PLACEMENTS:
        start = mlp.fit(X, y, epochs=0, batch_norm=placement, **options)
        for gamma, beta, mean, var in start.norms:  # the initial values
            assert np.all(gamma == 1) and np.all(beta == 0) and np.all(mean == 0) and np.all(var == 1)
        stepped = mlp.fit(X, y, epochs=1, batch_norm=placement, batch_norm_momentum=0.25, **options)
        _, seen = reference_logits(start.params, start.norms, X, "relu", placement, batch=True)
        for (_, _, mean, var), (m, v) in zip(stepped.norms, seen, strict=True):
            np.testing.assert_allclose(mean, 0.25 * m, rtol=1e-10, atol=1e-14)
            np.testing.assert_allclose(var, 0.75 + 0.25 * v, rtol=1e-10)
        assert stepped.config["batch_norm"] == placement and stepped.config["batch_norm_momentum"] == 0.25


# ---- the model ------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=layers.BATCH_NORM_PLACEMENTS)
def trained(request):
    X, y = blobs(n=150)
    model = mlp.fit(
        X, y, hidden_sizes=[7, 5], epochs=4, batch_size=32, batch_norm=request.param, seed=1, dtype="float64"
    )
    return model, X, y


def test_predictions_use_the_running_statistics(trained):
    model, X, _ = trained
    expected, _ = reference_logits(model.params, model.norms, X, "relu", model.batch_norm, batch=False)
    np.testing.assert_allclose(model.decision_function(X), expected, rtol=1e-12)
    # a row's prediction does not depend on the rows beside it
    one_by_one = np.concatenate([model.predict_proba(X[i : i + 1]) for i in range(5)])
    np.testing.assert_allclose(one_by_one, model.predict_proba(X[:5]), rtol=1e-12)
    assert model.score(X, model.predict(X)) == 1.0


def test_the_model_describes_and_counts_its_normalisation(trained):
    model, _, _ = trained
    hidden = "bn relu" if model.batch_norm == "before" else "relu bn"
    assert f"6 -> 7 {hidden} -> 5 {hidden} -> 3 softmax" in repr(model)
    dense = sum(W.size + b.size for W, b in model.params)
    assert model.n_parameters == dense + 2 * (7 + 5)  # gamma and beta, not the running statistics
    assert [tuple(a.shape) for norm in model.norms for a in norm] == [(7,)] * 4 + [(5,)] * 4
    assert model.metadata()["batch_norm"] == model.batch_norm


def test_loss_and_gradients_gives_the_norms_gradients_after_the_dense_ones(trained):
    model, X, y = trained
    value, grads = model.loss_and_gradients(X[:20], y[:20])
    assert isinstance(value, float) and len(grads) == 3 + 2
    assert [tuple(g.shape) for g in grads[3]] == [(7,), (7,)]


def test_pickle_and_model_file_round_trip(trained, tmp_path):
    model, X, _ = trained
    for copy in (pickle.loads(pickle.dumps(model)), mlp.load(model.save(tmp_path / "m.npz"))):
        assert copy.batch_norm == model.batch_norm and repr(copy) == repr(model)
        for old, new in zip(model.norms, copy.norms, strict=True):
            for a, b in zip(old, new, strict=True):
                np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(copy.predict_proba(X), model.predict_proba(X))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:  # plain arrays, no pickle
        names = sorted(archive.files)
        metadata = json.loads(archive["metadata"].tobytes())
    expected = [f"{kind}{i}" for kind in ("W", "b") for i in range(3)]
    expected += [f"{kind}{i}" for kind in ("gamma", "beta", "mean", "var") for i in range(2)]
    assert names == sorted([*expected, "metadata"])
    assert metadata["format_version"] == 3 and metadata["batch_norm"] == model.batch_norm


def _rewrite(source, target, change_metadata=None, drop=(), arrays=None):
    with np.load(source, allow_pickle=False) as archive:
        contents = {name: archive[name] for name in archive.files if name not in drop}
    metadata = json.loads(contents["metadata"].tobytes())
    if change_metadata is not None:
        change_metadata(metadata)
    contents["metadata"] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    contents.update(arrays or {})
    np.savez(target, **contents)
    return target


def test_a_network_without_hidden_layers_saves_and_loads_with_batch_norm_set(tmp_path):
    # nothing to normalise: no norms, and the file must still be written and read back
    X, y = blobs()
    model = mlp.fit(X, y, hidden_sizes=(), batch_norm="before", epochs=1, seed=0, verbose=0)
    assert model.norms == []
    loaded = mlp.load(model.save(tmp_path / "linear.npz"))
    assert loaded.batch_norm == "before" and loaded.norms == []
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_saving_norms_that_do_not_match_the_hidden_layers_is_refused(trained, tmp_path):
    from mlp.model_file import save_model_file

    model, _, _ = trained
    params = [(np.asarray(W), np.asarray(b)) for W, b in model.params]
    norms = [tuple(np.asarray(a) for a in norm) for norm in model.norms]
    for batch_norm, stored in ((None, norms), (model.batch_norm, norms[:1])):
        with pytest.raises(ValueError, match="one norm per hidden layer"):
            save_model_file(tmp_path / "m.npz", params, {"batch_norm": batch_norm}, norms=stored)


def test_version_2_files_still_load_as_models_without_batch_norm(tmp_path):
    X, y = blobs()
    plain = mlp.fit(X, y, hidden_sizes=[5], epochs=1, seed=0)

    def as_version_2(metadata):
        metadata["format_version"] = 2
        del metadata["batch_norm"]  # version 2 had no such field

    path = _rewrite(plain.save(tmp_path / "v3.npz"), tmp_path / "v2.npz", as_version_2)
    loaded = mlp.load(path)
    assert loaded.batch_norm is None and loaded.norms == []
    np.testing.assert_array_equal(loaded.predict_proba(X), plain.predict_proba(X))


def test_malformed_batch_norm_files_are_refused(trained, tmp_path):
    model, _, _ = trained
    path = model.save(tmp_path / "m.npz")
    cases = {
        "an older version": (lambda m: m.update(format_version=2), (), None, "needs format version 3"),
        "an unknown placement": (
            lambda m: m.update(batch_norm="middle"),
            (),
            None,
            "'batch_norm' must be null",
        ),
        "a missing array": (None, ("gamma1.npy", "gamma1"), None, "gamma1"),
        "a wrong shape": (None, (), {"beta0": np.zeros(3)}, r"beta0 has shape \(3,\), expected \(7,\)"),
        "a negative variance": (None, (), {"var1": -np.ones(5)}, "var1 holds a negative variance"),
        "infinity": (None, (), {"mean0": np.full(7, np.inf)}, "mean0 contains NaN or infinity"),
    }
    for name, (change, drop, arrays, message) in cases.items():
        bad = _rewrite(path, tmp_path / f"{name}.npz", change, drop, arrays)
        with pytest.raises(ModelFileError, match=message):
            mlp.load(bad)


def test_a_resumed_run_with_batch_norm_equals_an_uninterrupted_one(tmp_path):
    X, y = blobs(n=100)
    options = dict(
        hidden_sizes=[6, 4], epochs=4, batch_size=16, batch_norm="before", seed=2, dtype="float64",
        validation_split=0.2, early_stopping=True, patience=10,
    )  # fmt: skip
    uninterrupted = mlp.fit(X, y, **options)
    path = tmp_path / "run.npz"
    mlp.fit(X, y, checkpoint=path, callbacks=[lambda epoch, logs, model: epoch == 2], **options)
    resumed = mlp.fit(X, y, checkpoint=path, resume=True, **options)
    for a, b in zip(
        [x for g in (*uninterrupted.params, *uninterrupted.norms) for x in g],
        [x for g in (*resumed.params, *resumed.norms) for x in g],
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_restores_the_best_epochs_norms():
    X, y = blobs(n=120, seed=3)
    seen = {}

    def remember(epoch, logs, model):
        seen[epoch] = [np.array(a) for norm in model.norms for a in norm]

    model = mlp.fit(
        X, y, hidden_sizes=[6], epochs=8, batch_size=16, batch_norm="after", seed=4, dtype="float64",
        validation_split=0.25, early_stopping=True, patience=8, learning_rate=0.3, optimizer="sgd",
        callbacks=[remember],
    )  # fmt: skip
    best = [np.array(a) for norm in model.norms for a in norm]
    for a, b in zip(best, seen[model.best_epoch], strict=True):
        np.testing.assert_array_equal(a, b)


# ---- the generic engine ---------------------------------------------------------------------------
def test_the_optimizer_order_and_what_counts_as_a_weight():
    X, y = blobs()
    model = mlp.fit(X, y, hidden_sizes=[5, 4], epochs=0, batch_norm="after", seed=0)
    trainer = Trainer(
        model, optimizer=Adam(), learning_rate=0.01, schedule=Schedule(), epochs=1, batch_size=32
    )
    (W0, b0), (W1, b1), (W2, b2) = model.params
    (g0, be0, _, _), (g1, be1, _, _) = model.norms
    assert [
        p is q for p, q in zip(trainer.flat_params, [W0, b0, W1, b1, W2, b2, g0, be0, g1, be1], strict=True)
    ]
    assert trainer.is_weight == [True, False] * 3 + [False] * 4  # no L2, decay or max-norm on gamma, beta


def test_decay_and_max_norm_leave_gamma_and_beta_alone_and_clipping_sees_them():
    X, y = blobs()
    options = dict(hidden_sizes=[5], epochs=1, batch_size=32, batch_norm="before", seed=0, dtype="float64")
    # with no gradient at all (learning rate tiny) only decay could move gamma; adamw's decay must not
    model = mlp.fit(X, y, optimizer="adamw", weight_decay=0.5, learning_rate=1e-12, max_norm=1e-3, **options)
    np.testing.assert_allclose(model.norms[0][0], 1.0, atol=1e-9)
    # clip_norm: the global norm over every gradient, gamma's and beta's included
    clipped = mlp.fit(
        X, y, optimizer="sgd", clip_norm=1e-9, learning_rate=1.0, schedule="constant", **options
    )
    start = mlp.fit(X, y, epochs=0, **{k: v for k, v in options.items() if k != "epochs"})
    moved = [
        np.linalg.norm(a - b)
        for a, b in zip(
            trainable(clipped.params, clipped.norms), trainable(start.params, start.norms), strict=True
        )
    ]
    assert sum(m * m for m in moved) ** 0.5 <= 5 * 1e-9  # 5 steps of norm at most 1e-9


def test_a_batch_of_one_row_uses_and_keeps_the_running_statistics():
    X, y = blobs(n=33)
    model = mlp.fit(
        X, y, hidden_sizes=[5], epochs=1, batch_size=32, batch_norm="before", seed=0, shuffle=False
    )
    # partial_fit with one row: gamma and beta learn, the running statistics stay
    clf = mlp.MLPClassifier(hidden_layer_sizes=(5,), batch_norm="before", random_state=0)
    clf.partial_fit(X[:10], y[:10], classes=[0, 1, 2])
    before = [np.array(a) for a in clf.model_.norms[0]]
    clf.partial_fit(X[10:11], y[10:11])
    after = clf.model_.norms[0]
    np.testing.assert_array_equal(after[2], before[2])
    np.testing.assert_array_equal(after[3], before[3])
    assert not np.array_equal(after[0], before[0]) or not np.array_equal(after[1], before[1])
    assert np.all(np.isfinite(model.predict_proba(X)))


# ---- other namespaces ---------------------------------------------------------------------------
@pytest.mark.parametrize("placement", layers.BATCH_NORM_PLACEMENTS)
def test_every_host_namespace_trains_what_numpy_trains(placement):
    X, y = blobs()
    options = dict(
        hidden_sizes=[8, 5], epochs=2, batch_size=32, seed=0, dtype="float64", batch_norm=placement
    )
    reference = mlp.fit(X, y, **options)
    rtol = tolerance("float64")
    for name_xp, device in host_backends():
        model = mlp.fit(put(X, name_xp, device), put(y, name_xp, device), **options)
        for norm, expected in zip(model.norms, reference.norms, strict=True):
            for a, b in zip(norm, expected, strict=True):
                assert_lives_on(a, name_xp, device)
                np.testing.assert_allclose(mlp._array_api.to_numpy(a), b, rtol=rtol, atol=rtol)
        proba = model.predict_proba(put(X, name_xp, device))
        assert_lives_on(proba, name_xp, device)
        np.testing.assert_allclose(
            mlp._array_api.to_numpy(proba), reference.predict_proba(X), rtol=rtol, atol=rtol
        )


# ---- the estimators and the options -------------------------------------------------------------
def test_the_estimators_take_batch_norm():
    X, y = blobs(n=200)
    clf = mlp.MLPClassifier(
        hidden_layer_sizes=(8,), batch_norm="after", max_iter=30, learning_rate_init=0.02, random_state=0
    ).fit(X, y)
    assert clf.model_.batch_norm == "after" and clf.score(X, y) > 0.9
    reg = mlp.MLPRegressor(hidden_layer_sizes=(8,), batch_norm="before", batch_norm_momentum=0.5, max_iter=5,
                           random_state=0).fit(X, X[:, 0])  # fmt: skip
    assert len(reg.model_.norms) == 1
    stopped = mlp.MLPClassifier(hidden_layer_sizes=(8,), batch_norm="before", early_stopping=True, max_iter=8,
                                random_state=0).fit(X, y)  # fmt: skip
    assert stopped.model_.norms[0][0].shape == (8,)
    with pytest.raises(ValueError, match="warm_start"):
        clf.set_params(warm_start=True, batch_norm=None).fit(X, y)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(batch_norm="middle"), r"unknown batch_norm 'middle'; choose one of None, 'before' or 'after'"),
        (dict(batch_norm=True), "unknown batch_norm True"),
        (dict(batch_norm="before", batch_norm_momentum=0.0), "batch_norm_momentum"),
        (dict(batch_norm="before", batch_norm_momentum=1.5), "batch_norm_momentum"),
    ],
)
def test_bad_values_are_refused_clearly(options, message):
    X, y = blobs()
    with pytest.raises(ValueError, match=message):
        mlp.fit(X, y, hidden_sizes=[4], epochs=1, **options)


def test_the_refusals_say_why():
    X, y = blobs()
    with pytest.raises(ValueError, match="lbfgs"):
        mlp.MLPClassifier(solver="lbfgs", batch_norm="before").fit(X, y)
    with pytest.raises(ValueError, match="'before' or 'after'"):
        MLP([(np.zeros((2, 3)), np.zeros(3)), (np.zeros((3, 2)), np.zeros(2))],
            activation="relu", loss="cross_entropy", classes=None, batch_norm="sideways")  # fmt: skip
    with pytest.raises(ValueError, match=r"needs norms shaped \(3,\)"):
        MLP([(np.zeros((2, 3)), np.zeros(3)), (np.zeros((3, 2)), np.zeros(2))],
            activation="relu", loss="cross_entropy", classes=None, batch_norm="before",
            norms=[(np.ones(4), np.zeros(4), np.zeros(4), np.ones(4))])  # fmt: skip


def test_the_command_line_takes_the_flags():
    from mlp.cli import build_parser

    parser, _ = build_parser()
    args = parser.parse_args(["train", "--batch-norm", "after", "--batch-norm-momentum", "0.2"])
    assert args.batch_norm == "after" and args.batch_norm_momentum == 0.2
    assert parser.parse_args(["train"]).batch_norm is None


def test_auto_picks_the_numba_engine_for_batch_norm_when_it_is_installed():
    from mlp.engines import choose_engine
    from mlp.engines.numba_trainer import NUMBA_AVAILABLE, NumbaTrainer

    X, _ = blobs()
    expected = NumbaTrainer if NUMBA_AVAILABLE else Trainer
    assert choose_engine("auto", X, Adam(), "cross_entropy", batch_norm="after") is expected
    assert choose_engine("xp", X, Adam(), "cross_entropy", batch_norm="before") is Trainer
