"""The batch-normalisation kernels (`kernels/_norm.py`) against the plain-loop references in
tests/reference.py, in float32 and float64: both placements (the activation fused into the forward
and the first backward pass for "before", into the second backward pass for "after"), one row, an
empty part, constant columns, a batch split into parts whose sums are added (as over MPI ranks)."""

import numpy as np
import pytest

pytest.importorskip("numba", reason="the kernels need Numba (the extra mlp-from-scratch[numba])")
import mlp_kernels as kernels

import mlp
from mlp.engines import numba_trainer
from tests import reference as ref

DTYPES = [np.float32, np.float64]
CODES = list(kernels.ACTIVATION_CODES.values())
SHAPES = [(2, 1), (3, 3), (7, 17), (64, 33)]
MOMENTUM = 0.1


def tol(dtype):
    """A few hundred roundings of the dtype: sums over the rows, a reciprocal square root."""
    return 512 * float(np.finfo(dtype).eps)


def assert_close(actual, expected, dtype, scale=1.0):
    rtol = tol(dtype)
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=rtol, atol=rtol * scale)


def layer(rng, shape, dtype):
    """H with per-column offsets and spreads, gamma, beta and running statistics away from 1 and 0."""
    k = shape[1]
    H = (rng.normal(size=shape) * rng.uniform(0.5, 3.0, k) + rng.uniform(-2.0, 2.0, k)).astype(dtype)
    gamma, beta = rng.uniform(0.5, 1.5, k).astype(dtype), rng.normal(size=k).astype(dtype)
    running_mean, running_var = rng.normal(size=k).astype(dtype), rng.uniform(0.5, 2.0, k).astype(dtype)
    return H, gamma, beta, running_mean, running_var


def batch_forward(H, gamma, beta, running_mean, running_var, code, n_rows=None):
    """The three forward calls of a training step on one process; returns (Y, Hhat, inv)."""
    k, dtype = H.shape[1], H.dtype
    sums, mean, squares, inv = np.empty((4, k), dtype=dtype)
    kernels.batch_norm_sums(H, sums)
    kernels.batch_norm_centred_squares(H, sums, H.shape[0], mean, squares)
    Hhat, Y = np.empty_like(H), np.empty_like(H)
    kernels.batch_norm_forward(
        H, mean, squares, H.shape[0], gamma, beta, MOMENTUM, running_mean, running_var, inv, Hhat, Y, code
    )
    return Y, Hhat, inv


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_with_batch_statistics(dtype, code, shape):
    H, gamma, beta, running_mean, running_var = layer(np.random.default_rng(0), shape, dtype)
    Y_ref, Hhat_ref, inv_ref, mean_ref, var_ref = ref.batch_norm_forward(
        H, gamma, beta, running_mean, running_var, MOMENTUM, code, training=True
    )
    Y, Hhat, inv = batch_forward(H, gamma, beta, running_mean, running_var, code)
    assert Y.dtype == Hhat.dtype == inv.dtype == running_mean.dtype == dtype
    assert_close(inv, inv_ref, dtype)
    assert_close(Hhat, Hhat_ref, dtype, scale=3.0)
    assert_close(Y, Y_ref, dtype, scale=3.0)
    assert_close(running_mean, mean_ref, dtype, scale=2.0)
    assert_close(running_var, var_ref, dtype)
    np.testing.assert_allclose(Hhat.astype(np.float64).mean(axis=0), 0.0, atol=tol(dtype) * 4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 17), *SHAPES])
def test_forward_with_running_statistics_leaves_them(dtype, code, shape):
    H, gamma, beta, running_mean, running_var = layer(np.random.default_rng(1), shape, dtype)
    before = running_mean.copy(), running_var.copy()
    Y_ref, Hhat_ref, inv_ref, _, _ = ref.batch_norm_forward(
        H, gamma, beta, running_mean, running_var, MOMENTUM, code, training=False
    )
    Hhat, Y, inv = np.empty_like(H), np.empty_like(H), np.empty_like(gamma)
    kernels.batch_norm_running_forward(H, gamma, beta, running_mean, running_var, inv, Hhat, Y, code)
    assert_close(inv, inv_ref, dtype)
    assert_close(Hhat, Hhat_ref, dtype, scale=3.0)
    assert_close(Y, Y_ref, dtype, scale=3.0)
    np.testing.assert_array_equal(running_mean, before[0])
    np.testing.assert_array_equal(running_var, before[1])


def backward(dA, A, Hhat, gamma, inv, H_act, code, placement, batch_statistics):
    """The two backward calls of one layer, as the engine makes them: (dH or dZ, dgamma, dbeta, db)."""
    k, dtype = dA.shape[1], dA.dtype
    dgamma, dbeta, db = np.empty((3, k), dtype=dtype)
    dY = dA.copy()
    first, second = (code, kernels.IDENTITY) if placement == "before" else (kernels.IDENTITY, code)
    kernels.batch_norm_backward_sums(dY, A, first, Hhat, dgamma, dbeta)
    inv_rows = 1.0 / dA.shape[0] if batch_statistics else 0.0
    dH = dY  # in place
    kernels.batch_norm_backward(dY, Hhat, gamma, inv, dbeta, dgamma, inv_rows, H_act, second, dH, db)
    return dH, dgamma, dbeta, db


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("shape", [(1, 3), *SHAPES])
@pytest.mark.parametrize("placement", ["before", "after"])
def test_backward(dtype, code, shape, placement):
    """before: A = act(BN(H)), dA at A; after: A = BN(act(Z)), dA at A, back to dZ through act'."""
    rng = np.random.default_rng(2)
    H, gamma, beta, running_mean, running_var = layer(rng, shape, dtype)
    batch_statistics = shape[0] >= 2
    if placement == "after":  # H is the activation's output here, as the forward pass leaves it
        H = ref.bias_activation_forward(H, np.zeros(shape[1], dtype), code).astype(dtype)
    fused = code if placement == "before" else kernels.IDENTITY
    if batch_statistics:
        Y, Hhat, inv = batch_forward(H, gamma, beta, running_mean, running_var, fused)
    else:
        Hhat, Y, inv = np.empty_like(H), np.empty_like(H), np.empty_like(gamma)
        kernels.batch_norm_running_forward(H, gamma, beta, running_mean, running_var, inv, Hhat, Y, fused)
    dA = rng.normal(size=shape).astype(dtype)
    dH, dgamma, dbeta, db = backward(dA, Y, Hhat, gamma, inv, H, code, placement, batch_statistics)

    ref_dH, ref_dgamma, ref_dbeta = ref.batch_norm_backward(dA, Y, fused, Hhat, gamma, inv, batch_statistics)
    if placement == "after":
        ref_dH = ref.activation_backward(ref_dH, H, code)
    scale = float(np.max(np.abs(gamma * inv))) * float(np.max(np.abs(dA))) * shape[0]
    assert_close(dgamma, ref_dgamma, dtype, scale=scale)
    assert_close(dbeta, ref_dbeta, dtype, scale=scale)
    assert_close(dH, ref_dH, dtype, scale=scale)
    assert_close(db, ref_dH.sum(axis=0), dtype, scale=scale)
    if batch_statistics and placement == "before":  # the centring leaves dH columns summing to 0
        np.testing.assert_allclose(db, 0.0, atol=tol(dtype) * scale)


@pytest.mark.parametrize("dtype", DTYPES)
def test_constant_columns_normalise_to_beta(dtype):
    H = np.zeros((5, 3), dtype=dtype)
    H[:, 1] = 7.0
    gamma, beta = np.full(3, 2.0, dtype), np.array([0.5, -1.0, 3.0], dtype)
    running_mean, running_var = np.zeros(3, dtype), np.ones(3, dtype)
    Y, Hhat, inv = batch_forward(H, gamma, beta, running_mean, running_var, kernels.IDENTITY)
    np.testing.assert_array_equal(Hhat, 0.0)
    np.testing.assert_array_equal(Y, np.broadcast_to(beta, H.shape))
    assert_close(inv, np.full(3, 1.0 / np.sqrt(1e-5)), dtype)
    assert_close(running_mean, [0.0, 0.7, 0.0], dtype)
    assert_close(running_var, [0.9, 0.9, 0.9], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_an_empty_part_adds_zeros(dtype):
    H, dY = np.empty((0, 4), dtype=dtype), np.empty((0, 4), dtype=dtype)
    sums, mean, squares, dgamma, dbeta, db = np.full((6, 4), np.nan, dtype=dtype)
    kernels.batch_norm_sums(H, sums)
    kernels.batch_norm_centred_squares(H, np.ones(4, dtype), 8, mean, squares)
    kernels.batch_norm_backward_sums(dY, dY, kernels.RELU, dY, dgamma, dbeta)
    kernels.batch_norm_backward(dY, dY, mean, mean, mean, mean, 0.125, dY, kernels.TANH, dY, db)
    for vector in (sums, squares, dgamma, dbeta, db):
        np.testing.assert_array_equal(vector, 0.0)
    np.testing.assert_array_equal(mean, 0.125)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("placement", ["before", "after"])
def test_parts_with_summed_sums_match_the_whole_batch(dtype, placement):
    """Three parts (one of them empty) whose column sums are added between the calls, as the MPI
    allreduce does, normalise and differentiate as the whole batch does."""
    rng = np.random.default_rng(3)
    H, gamma, beta, running_mean, running_var = layer(rng, (11, 6), dtype)
    code = kernels.TANH
    fused, second = (code, kernels.IDENTITY) if placement == "before" else (kernels.IDENTITY, code)
    whole_mean, whole_var = running_mean.copy(), running_var.copy()
    Y, Hhat, inv = batch_forward(H, gamma, beta, whole_mean, whole_var, fused)
    dA = rng.normal(size=H.shape).astype(dtype)
    dH, dgamma, dbeta, db = backward(dA, Y, Hhat, gamma, inv, H, code, placement, True)

    parts = [slice(0, 4), slice(4, 4), slice(4, 11)]
    k, N = H.shape[1], H.shape[0]
    sums = [np.empty(k, dtype) for _ in parts]
    for part, s in zip(parts, sums, strict=True):
        kernels.batch_norm_sums(H[part], s)
    total, mean, squares = sum(sums), np.empty(k, dtype), [np.empty(k, dtype) for _ in parts]
    for part, s in zip(parts, squares, strict=True):
        kernels.batch_norm_centred_squares(np.ascontiguousarray(H[part]), total, N, mean, s)
    total_squares = sum(squares)
    parts_dH, S, part_db = [], [], np.zeros(k, np.float64)
    for index, part in enumerate(parts):
        Hp = np.ascontiguousarray(H[part])
        Yp, Hhatp, invp = np.empty_like(Hp), np.empty_like(Hp), np.empty(k, dtype)
        rm, rv = running_mean.copy(), running_var.copy()
        kernels.batch_norm_forward(
            Hp, mean, total_squares, N, gamma, beta, MOMENTUM, rm, rv, invp, Hhatp, Yp, fused
        )
        assert_close(Yp, Y[part], dtype, scale=3.0)
        if index == 0:
            assert_close(rm, whole_mean, dtype, scale=2.0)
            assert_close(rv, whole_var, dtype)
        dYp = np.ascontiguousarray(dA[part])
        dg, dbt = np.empty((2, k), dtype)
        kernels.batch_norm_backward_sums(dYp, Yp, fused, Hhatp, dg, dbt)
        S.append((dbt, dg))
        parts_dH.append((Hp, Hhatp, Yp, dYp, invp))
    S1, S2 = sum(s[0] for s in S), sum(s[1] for s in S)
    scale = float(np.max(np.abs(gamma * inv))) * float(np.max(np.abs(dA))) * N
    assert_close(S1, dbeta, dtype, scale=scale)
    assert_close(S2, dgamma, dtype, scale=scale)
    for part, (Hp, Hhatp, _, dYp, invp) in zip(parts, parts_dH, strict=True):
        dbp = np.empty(k, dtype)
        kernels.batch_norm_backward(dYp, Hhatp, gamma, invp, S1, S2, 1.0 / N, Hp, second, dYp, dbp)
        assert_close(dYp, dH[part], dtype, scale=scale)
        part_db += dbp
    assert_close(part_db, db, dtype, scale=scale)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_propagates(dtype):
    H = np.ones((4, 2), dtype=dtype)
    H[1, 0] = np.nan
    Y, _, _ = batch_forward(
        H, np.ones(2, dtype), np.zeros(2, dtype), np.zeros(2, dtype), np.ones(2, dtype), 1
    )
    assert np.isnan(Y[:, 0]).all() and np.isfinite(Y[:, 1]).all()


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: kernels.batch_norm_sums(np.zeros((2, 3)), np.zeros(4)), ValueError, r"sums has shape"),
        (
            lambda: kernels.batch_norm_sums(np.zeros((2, 3)), np.zeros(3, np.float32)),
            TypeError,
            "one dtype per call",
        ),
        (
            lambda: kernels.batch_norm_centred_squares(
                np.zeros((3, 2)), *np.zeros((1, 2)), 2, *np.zeros((2, 2))
            ),
            ValueError,
            r"n_rows must be an integer >= 3",
        ),
        (
            lambda: kernels.batch_norm_forward(
                np.zeros((1, 2)),
                *np.zeros((2, 2)),
                1,
                *np.ones((2, 2)),
                0.1,
                *np.ones((3, 2)),
                np.zeros((1, 2)),
                np.zeros((1, 2)),
                1,
            ),
            ValueError,
            r"n_rows must be an integer >= 2",
        ),
        (
            lambda: kernels.batch_norm_forward(
                np.zeros((2, 2)),
                *np.zeros((2, 2)),
                2,
                *np.ones((2, 2)),
                0.0,
                *np.ones((3, 2)),
                np.zeros((2, 2)),
                np.zeros((2, 2)),
                1,
            ),
            ValueError,
            "momentum",
        ),
        (
            lambda: kernels.batch_norm_running_forward(
                np.zeros((2, 2)), *np.ones((5, 2)), np.zeros((2, 2)), np.zeros((2, 2)), 9
            ),
            ValueError,
            "unknown activation code",
        ),
        (
            lambda: kernels.batch_norm_backward(
                np.zeros((2, 2)),
                np.zeros((2, 2)),
                *np.ones((4, 2)),
                2.0,
                np.zeros((2, 2)),
                0,
                np.zeros((2, 2)),
                np.zeros(2),
            ),
            ValueError,
            "inv_rows",
        ),
        (
            lambda: kernels.batch_norm_backward_sums(
                np.zeros((2, 2)), np.zeros((3, 2)), 0, np.zeros((2, 2)), *np.zeros((2, 2))
            ),
            ValueError,
            r"A has shape",
        ),
    ],
)
def test_the_kernels_check_their_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---- the Numba engine against the generic path ------------------------------------------------------


def assert_same_networks(fused, generic, rtol, atol):
    assert fused.batch_norm == generic.batch_norm and len(fused.norms) == len(generic.norms) > 0
    last = len(generic.params) - 1
    for layer, ((W, b), (W2, b2)) in enumerate(zip(generic.params, fused.params, strict=True)):
        np.testing.assert_allclose(W2, W, rtol=rtol, atol=atol)
        # normalised right after it, a hidden bias has a gradient of rounding noise (~1e-17), which
        # Adam and RMSprop scale up to steps of up to lr * 1e-17 / eps
        noise = 1e-9 if fused.batch_norm == "before" and layer < last else 0.0
        np.testing.assert_allclose(b2, b, rtol=rtol, atol=max(atol, noise))
    for norm, norm2 in zip(generic.norms, fused.norms, strict=True):
        for name, a, a2 in zip(("gamma", "beta", "running_mean", "running_var"), norm, norm2, strict=True):
            assert a2.dtype == a.dtype, name
            noise = 1e-9 if fused.batch_norm == "before" and name == "running_mean" else 0.0  # tracks b
            np.testing.assert_allclose(a2, a, rtol=rtol, atol=max(atol, noise), err_msg=name)


ENGINE_CASES = [
    dict(),
    dict(dropout=0.2, activation="tanh"),
    dict(sample_weight=True, optimizer="nesterov", weight_decay=1e-3, clip_norm=0.5),
    dict(batch_size=23, optimizer="momentum", activation="sigmoid"),  # 300 rows: a last batch of one
    dict(optimizer="adamw", weight_decay=1e-2, activation="leaky_relu", batch_norm_momentum=0.5),
    dict(optimizer="rmsprop", loss="mse", clip_value=0.01, max_norm=1.0),
    dict(batch_size="full", optimizer="sgd", activation="identity"),
]


@pytest.mark.parametrize("placement", ["before", "after"])
@pytest.mark.parametrize(
    "options", ENGINE_CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults"
)
def test_engines_agree_in_float64_with_batch_norm(placement, options):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 20)) * rng.uniform(0.2, 5.0, 20) + rng.uniform(-3, 3, 20)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int) + (X[:, 3] > 1)
    options = dict(options)
    weights = rng.uniform(0.0, 2.0, 300) if options.pop("sample_weight", False) else None
    kwargs = dict(
        hidden_sizes=[16, 8], epochs=4, batch_size=32, seed=0, dtype="float64", batch_norm=placement
    )
    kwargs.update(options)
    generic = mlp.fit(X, y, engine="xp", sample_weight=weights, **kwargs)
    fused = mlp.fit(X, y, engine="numba", sample_weight=weights, **kwargs)
    assert_same_networks(fused, generic, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fused.history["loss"], generic.history["loss"], rtol=1e-11)
    np.testing.assert_allclose(fused.predict_proba(X), generic.predict_proba(X), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("placement, optimizer", [("before", "momentum"), ("after", "adam")])
def test_engines_agree_in_float32_with_batch_norm(placement, optimizer):
    """(Not Adam "before": there the hidden biases' gradients are float32 rounding noise, ~1e-7 of
    the others, which Adam turns into steps of up to lr, different on each engine.)"""
    rng = np.random.default_rng(6)
    X = (rng.normal(size=(512, 30)) * 3 + 1).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    kwargs = dict(
        hidden_sizes=[32, 16], epochs=2, batch_size=64, seed=1, batch_norm=placement, optimizer=optimizer
    )
    generic = mlp.fit(X, y, engine="xp", **kwargs)
    fused = mlp.fit(X, y, engine="numba", **kwargs)
    assert fused.dtype == "float32"
    for (W, _), (W2, _) in zip(generic.params, fused.params, strict=True):
        assert np.linalg.norm(W2 - W) / np.linalg.norm(W) < 1e-4
    for norm, norm2 in zip(generic.norms, fused.norms, strict=True):
        for a, a2 in zip(norm, norm2, strict=True):
            assert a2.dtype == np.float32
            np.testing.assert_allclose(a2, a, rtol=1e-4, atol=1e-4)
    assert fused.history["loss"][-1] == pytest.approx(generic.history["loss"][-1], rel=1e-5)


@pytest.mark.parametrize("placement", ["before", "after"])
@pytest.mark.filterwarnings("ignore:Got `batch_size` less than 1:UserWarning")  # one-row calls
def test_engines_agree_on_partial_fit_with_batch_norm(placement):
    """Batches of several rows and of one row (the running statistics, not moved) through partial_fit."""
    rng = np.random.default_rng(7)
    X, y = rng.normal(size=(40, 6)) + 2.0, rng.integers(0, 3, 40)
    models = []
    for engine in ("xp", "numba"):
        model = mlp.MLPClassifier(
            hidden_layer_sizes=(7, 5), batch_size=8, random_state=0, engine=engine, batch_norm=placement
        )
        for lo, hi in ((0, 16), (16, 17), (17, 40), (39, 40)):
            model.partial_fit(X[lo:hi], y[lo:hi], classes=[0, 1, 2])
        models.append(model)
    generic, fused = (m.model_ for m in models)
    assert_same_networks(fused, generic, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(models[1].loss_curve_, models[0].loss_curve_, rtol=1e-10)


def test_the_flat_buffer_holds_gamma_and_beta_after_the_biases():
    rng = np.random.default_rng(8)
    X, y = rng.normal(size=(64, 5)), rng.integers(0, 2, 64)
    model = mlp.fit(X, y, hidden_sizes=[4, 3], epochs=1, batch_size=16, seed=0, dtype="float64",
                    engine="xp", batch_norm="after")  # fmt: skip
    trainer = numba_trainer.NumbaTrainer(
        model,
        optimizer=mlp.optimizers.Adam(),
        learning_rate=1e-2,
        schedule=mlp.schedules.make_schedule(None),
        epochs=1,
        batch_size=16,
        rng=np.random.default_rng(0),
    )
    sizes = (5 * 4 + 4 * 3 + 3 * 2) + (4 + 3 + 2)
    assert trainer.flat.shape == (sizes + 2 * (4 + 3),)
    gamma1, beta1 = model.norms[1][:2]
    assert np.shares_memory(gamma1, trainer.flat) and np.shares_memory(beta1, trainer.flat)
    np.testing.assert_array_equal(
        trainer.flat[sizes:], np.concatenate([a for n in model.norms for a in n[:2]])
    )
    assert len(trainer.state) == 2 * (2 * 3 + 2 * 2)  # m and v of W0 b0 W1 b1 W2 b2 gamma0 beta0 gamma1 beta1
    running_mean = model.norms[0][2]
    trainer.run_epoch(X, y)
    assert model.norms[0][2] is running_mean and np.any(running_mean != 0)  # updated in place
    assert np.any(trainer.grad_flat[sizes:] != 0)


@pytest.mark.parametrize("first, second", [("numba", "xp"), ("xp", "numba")])
def test_checkpoints_resume_across_engines_with_batch_norm(tmp_path, first, second):
    """The optimizer state in the generic order (gamma and beta after every W and b), the norms
    and the running statistics go through a checkpoint from one engine to the other."""
    rng = np.random.default_rng(9)
    X, y = rng.normal(size=(200, 8)) + 1.0, rng.integers(0, 3, 200)
    kwargs = dict(hidden_sizes=[12, 6], epochs=4, batch_size=32, seed=0, dtype="float64", batch_norm="after")
    path = tmp_path / "checkpoint.npz"
    mlp.fit(X, y, engine=first, checkpoint=path, callbacks=[lambda e, logs, m: e == 1], **kwargs)
    resumed = mlp.fit(X, y, engine=second, checkpoint=path, resume=True, **kwargs)
    straight = mlp.fit(X, y, engine=first, **kwargs)
    assert len(resumed.history["loss"]) == 4
    assert_same_networks(resumed, straight, rtol=1e-10, atol=1e-10)  # Adam: a ~0 gradient is noise
