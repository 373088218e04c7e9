"""Proof, not hope: analytic gradients against central finite differences, optimizer steps against
their formulas, and the fused softmax cross-entropy at extreme logits."""

import math

import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the gradient checks draw cases with hypothesis (the test extra)")
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import mlp
from mlp import layers, losses, optimizers
from mlp.activations import ACTIVATIONS, KINKED, get_activation

xp = pytest.importorskip("array_api_compat.numpy")

STEP = 1e-6  # two-point central-difference step in float64 (kinked activations)
SMOOTH_STEP = 1e-4  # four-point central-difference step: O(h^4) error, far less rounding at h=1e-4
KINK_MARGIN = 1e-3  # pre-activations closer than this to 0 could cross the kink under the step


def relative_error(analytic, numeric, floor=0.0):
    """||a - n|| / max(||a|| + ||n||, floor) (0 when both are exactly zero).

    Per tensor the floor is 1e-3: a finite difference of a loss of order 1 cannot resolve better than
    ~1e-12 absolute, so a gradient of 1e-6 can only be checked to ~1e-6 relative. With the floor, a
    tiny tensor must still agree to 1e-10 absolute at the 1e-7 threshold."""
    denominator = max(np.linalg.norm(analytic) + np.linalg.norm(numeric), floor)
    return 0.0 if denominator == 0 else float(np.linalg.norm(analytic - numeric) / denominator)


TENSOR_FLOOR = 1e-3


def numeric_gradients(params, X, y, activation, loss, l2):
    """Central differences: (f(x+h) - f(x-h)) / 2h at kinks, else the fourth-order stencil
    (-f(x+2h) + 8f(x+h) - 8f(x-h) + f(x-2h)) / 12h, whose rounding error is small enough to
    resolve a 1e-7 relative error even on gradients of order 1e-5."""
    smooth = activation not in KINKED

    def value():
        return float(
            layers.loss_and_gradients(params, X, y, activation=activation, loss=loss, l2=l2, xp=xp)[0]
        )

    def at(flat, i, x):
        flat[i] = x
        return value()

    result = []
    for W, b in params:
        pair = []
        for p in (W, b):
            g = np.zeros_like(p)
            flat, gflat = p.reshape(-1), g.reshape(-1)
            for i in range(flat.size):
                x0 = flat[i]
                if smooth:
                    h = SMOOTH_STEP
                    gflat[i] = (
                        -at(flat, i, x0 + 2 * h)
                        + 8 * at(flat, i, x0 + h)
                        - 8 * at(flat, i, x0 - h)
                        + at(flat, i, x0 - 2 * h)
                    ) / (12 * h)
                else:
                    gflat[i] = (at(flat, i, x0 + STEP) - at(flat, i, x0 - STEP)) / (2 * STEP)
                flat[i] = x0
            pair.append(g)
        result.append(tuple(pair))
    return result


def min_abs_preactivation(params, X, activation):
    act, _ = get_activation(activation)
    smallest, A = math.inf, X
    for W, b in params[:-1]:
        Z = A @ W + b
        smallest = min(smallest, float(np.min(np.abs(Z))))
        A = act(Z, xp=xp)
    return smallest


@st.composite
def problems(draw):
    n_in = draw(st.integers(1, 5))
    hidden = draw(st.lists(st.integers(1, 6), min_size=0, max_size=3))
    n_classes = draw(st.integers(2, 4))
    n = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 1, size=(n, n_in))
    y = rng.integers(0, n_classes, size=n)
    sizes = [n_in, *hidden, n_classes]
    init = mlp.initializers.initial_parameters(sizes, "glorot_normal", rng)
    # Biases are not zero here so their gradients are exercised away from the initial point.
    params = [(W * 1.5, rng.normal(0, 0.5, size=b.shape)) for W, b in init]
    # Targets of the losses on a target matrix: real values (squared_error), probabilities in
    # [0, 1] (binary_cross_entropy; 0/1 rows are the usual case, any value in between is allowed)
    # and counts >= 0 (poisson; zeros included, where y log y is 0).
    targets = {
        "squared_error": rng.normal(0, 1, size=(n, n_classes)),
        "binary_cross_entropy": rng.random((n, n_classes)),
        "poisson": rng.poisson(1.5, size=(n, n_classes)).astype(np.float64),
    }
    return params, X, y, targets


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(
    problem=problems(),
    activation=st.sampled_from(sorted(ACTIVATIONS)),
    loss=st.sampled_from(sorted(losses.LOSSES)),
    l2=st.sampled_from([0.0, 0.3]),
)
def test_gradients_match_central_differences(problem, activation, loss, l2):
    params, X, y, targets = problem
    y = targets.get(loss, y)
    kinked = activation in KINKED
    if kinked and len(params) > 1:
        assume(min_abs_preactivation(params, X, activation) > KINK_MARGIN)
    _, analytic, _ = layers.loss_and_gradients(params, X, y, activation=activation, loss=loss, l2=l2, xp=xp)
    numeric = numeric_gradients(params, X, y, activation, loss, l2)
    threshold = 1e-4 if kinked else 1e-7
    whole_analytic = np.concatenate([g.ravel() for pair in analytic for g in pair])
    whole_numeric = np.concatenate([g.ravel() for pair in numeric for g in pair])
    assert relative_error(whole_analytic, whole_numeric) <= threshold, "the whole gradient vector"
    for layer, ((dW, db), (nW, nb)) in enumerate(zip(analytic, numeric, strict=True)):
        assert relative_error(dW, nW, TENSOR_FLOOR) <= threshold, f"dW of layer {layer}"
        assert relative_error(db, nb, TENSOR_FLOOR) <= threshold, f"db of layer {layer}"


def test_model_loss_and_gradients_matches_layers_and_excludes_dropout():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 3, size=20)
    model = mlp.fit(X, y, hidden_sizes=[5], epochs=0, dropout=0.5, weight_decay=0.1, dtype="float64", seed=1)
    value, grads = model.loss_and_gradients(X, y)
    assert isinstance(value, float)
    again, _grads_again = model.loss_and_gradients(X, y)  # deterministic: no dropout inside
    assert value == again
    expected, expected_grads, _ = layers.loss_and_gradients(
        model.params, X, y, activation="relu", loss="cross_entropy", l2=0.1, xp=xp
    )
    assert value == pytest.approx(float(expected))
    np.testing.assert_allclose(grads[0][0], expected_grads[0][0])


def test_dropout_gradients_match_central_differences_for_a_fixed_mask():
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(5, 3)), rng.integers(0, 3, size=5)
    params = [
        (W, rng.normal(0, 0.3, size=b.shape))
        for W, b in mlp.initializers.initial_parameters([3, 4, 4, 3], "glorot_normal", rng)
    ]
    masks = [(rng.random((5, 4)) < 0.6) / 0.6 for _ in range(2)]

    def value():
        return float(
            layers.loss_and_gradients(
                params, X, y, activation="tanh", loss="cross_entropy", xp=xp, dropout_masks=masks
            )[0]
        )

    _, analytic, _ = layers.loss_and_gradients(
        params, X, y, activation="tanh", loss="cross_entropy", xp=xp, dropout_masks=masks
    )
    W = params[0][0]
    numeric = np.zeros_like(W)
    for index in np.ndindex(W.shape):
        original = W[index]
        W[index] = original + STEP
        plus = value()
        W[index] = original - STEP
        minus = value()
        W[index] = original
        numeric[index] = (plus - minus) / (2 * STEP)
    assert relative_error(analytic[0][0], numeric) <= 1e-7


# ---- the fused softmax cross-entropy -------------------------------------------------------------
def test_softmax_cross_entropy_is_finite_and_exact_for_extreme_logits():
    Z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0], [0.0, 0.0, 1000.0]])
    y = np.array([0, 1, 0])
    loss, dZ = losses.softmax_cross_entropy(Z, y, xp=xp)
    assert np.isfinite(float(loss)) and np.all(np.isfinite(dZ))
    # Row losses: 0, log(3), 1000.
    assert float(loss) == pytest.approx((0.0 + math.log(3.0) + 1000.0) / 3)
    np.testing.assert_allclose(dZ[0], [0.0, 0.0, 0.0], atol=1e-300)
    np.testing.assert_allclose(dZ[1], np.array([1 / 3, 1 / 3 - 1, 1 / 3]) / 3)
    np.testing.assert_allclose(dZ[2], np.array([-1.0, 0.0, 1.0]) / 3)
    for dtype in (np.float32, np.float64):
        loss32, dZ32 = losses.softmax_cross_entropy(Z.astype(dtype), y, xp=xp)
        assert np.isfinite(float(loss32)) and np.all(np.isfinite(dZ32))


def test_sigmoid_is_stable_for_extreme_inputs():
    sigmoid, _ = get_activation("sigmoid")
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        values = sigmoid(np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0]), xp=xp)
    np.testing.assert_allclose(values, [0.0, 1 / (1 + math.exp(30)), 0.5, 1 / (1 + math.exp(-30)), 1.0])


# ---- optimizer steps against their formulas --------------------------------------------------------
def run_steps(optimizer, steps=3, lr=0.1, is_weight=None):
    rng = np.random.default_rng(0)
    p = rng.normal(size=(4, 3))
    gradients = [rng.normal(size=(4, 3)) for _ in range(steps)]
    params = [p.copy()]
    state = optimizer.init_state(params, xp=xp)
    for t, g in enumerate(gradients, start=1):
        optimizer.step(params, [g], state, lr=lr, t=t, xp=xp, is_weight=is_weight)
    return p, gradients, params[0]


def test_sgd_step():
    p, gradients, result = run_steps(optimizers.SGD())
    np.testing.assert_allclose(result, p - 0.1 * sum(gradients))


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_and_nesterov_steps(nesterov):
    opt = optimizers.Nesterov(momentum=0.8) if nesterov else optimizers.Momentum(momentum=0.8)
    p, gradients, result = run_steps(opt)
    v, expected = np.zeros_like(p), p.copy()
    for g in gradients:
        v = 0.8 * v + g
        expected -= 0.1 * (g + 0.8 * v) if nesterov else 0.1 * v
    np.testing.assert_allclose(result, expected, rtol=1e-12)


def test_rmsprop_step():
    p, gradients, result = run_steps(optimizers.RMSProp(rho=0.9, eps=1e-8))
    s, expected = np.zeros_like(p), p.copy()
    for g in gradients:
        s = 0.9 * s + 0.1 * g * g
        expected -= 0.1 * g / (np.sqrt(s) + 1e-8)
    np.testing.assert_allclose(result, expected, rtol=1e-12)


@pytest.mark.parametrize("decay", [0.0, 0.05])
def test_adam_and_adamw_steps(decay):
    opt = optimizers.AdamW(weight_decay=decay) if decay else optimizers.Adam()
    p, gradients, result = run_steps(opt, steps=4)
    m, v, expected = np.zeros_like(p), np.zeros_like(p), p.copy()
    for t, g in enumerate(gradients, start=1):
        expected -= 0.1 * decay * expected
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        m_hat, v_hat = m / (1 - 0.9**t), v / (1 - 0.999**t)
        expected -= 0.1 * m_hat / (np.sqrt(v_hat) + 1e-8)
    np.testing.assert_allclose(result, expected, rtol=1e-12)


def test_adamw_does_not_decay_biases():
    _, _, decayed = run_steps(optimizers.AdamW(weight_decay=0.5), is_weight=[False])
    _, _, plain = run_steps(optimizers.Adam(), is_weight=[False])
    np.testing.assert_allclose(decayed, plain)


def test_clipping_by_value_then_global_norm():
    g1, g2 = np.array([3.0, -4.0, 0.5]), np.array([[10.0, 0.0]])
    clipped = optimizers.clip_gradients([g1, g2], clip_value=2.0, xp=xp)
    np.testing.assert_allclose(clipped[0], [2.0, -2.0, 0.5])
    np.testing.assert_allclose(clipped[1], [[2.0, 0.0]])
    both = optimizers.clip_gradients([g1, g2], clip_value=2.0, clip_norm=1.0, xp=xp)
    norm = math.sqrt(4 + 4 + 0.25 + 4)
    np.testing.assert_allclose(both[0], np.array([2.0, -2.0, 0.5]) / norm)
    assert float(optimizers.global_norm(both, xp=xp)) == pytest.approx(1.0)
    small = optimizers.clip_gradients([np.array([0.1, 0.2])], clip_norm=1.0, xp=xp)
    np.testing.assert_allclose(small[0], [0.1, 0.2])
    np.testing.assert_allclose(g1, [3.0, -4.0, 0.5])  # inputs untouched
