"""The Numba kernels (`kernels/`, imported as `mlp_kernels`) against the plain-loop references in tests/reference.py.

float32 and float64, awkward shapes (batch of 1, widths 1/3/17, all-zero rows, logits of +-1000,
dZ aliasing Z), Hypothesis-drawn shapes and values, optimizer steps over several iterations.
The module also runs (minus the Hypothesis and accuracy-sweep tests) under NUMBA_DISABLE_JIT=1 in
a subprocess, which checks the kernels' plain-Python meaning and the pure-Python fallbacks of the
scalar math helpers; inside that run JIT_DISABLED is True.
"""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

numba = pytest.importorskip("numba", reason="the kernels need Numba (the extra mlp-from-scratch[numba])")
pytest.importorskip("hypothesis", reason="the property tests need hypothesis (the test extra)")
import mlp_kernels as kernels  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from tests import reference as ref  # noqa: E402

JIT_DISABLED = bool(numba.config.DISABLE_JIT)
needs_jit = pytest.mark.skipif(JIT_DISABLED, reason="compiled kernels only")

DTYPES = [np.float32, np.float64]
CODES = list(kernels.ACTIVATION_CODES.values())
SHAPES = [(1, 1), (1, 17), (5, 1), (3, 3), (7, 17), (16, 33)]
LOSSES = {
    "softmax_cross_entropy": (kernels.softmax_cross_entropy_sum, ref.softmax_cross_entropy),
    "sigmoid_mse": (kernels.sigmoid_mse_sum, ref.sigmoid_mse),
}


def elementwise_tol(dtype):
    """For results a few roundings away from exact (activations, dropout, one optimizer step)."""
    return 32 * float(np.finfo(dtype).eps)


def accumulated_tol(dtype):
    """For sums over a batch and results carried over several optimizer steps."""
    return 4 * float(np.sqrt(np.finfo(dtype).eps))


def assert_close(actual, expected, rtol, scale=1.0, atol=0.0):
    """|actual - expected| <= rtol * (|expected| + scale) + atol, elementwise; scale is the
    magnitude of the terms a result is computed from, so results that cancel to ~0 are judged
    against it."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale + atol)


def subnormal_flush(dtype):
    """sigmoid may return 0 where the exact result is subnormal (below the smallest normal)."""
    return float(np.finfo(dtype).tiny)


def logits(rng, shape, dtype, spread=3.0):
    return (rng.standard_normal(shape) * spread).astype(dtype)


# ---------------------------------------------------------------- constants and dispatch


def test_activation_codes_are_the_shared_ones():
    assert kernels.ACTIVATION_CODES == {"identity": 0, "relu": 1, "leaky_relu": 2, "sigmoid": 3, "tanh": 4}
    assert (kernels.IDENTITY, kernels.RELU, kernels.LEAKY_RELU, kernels.SIGMOID, kernels.TANH) == (
        0,
        1,
        2,
        3,
        4,
    )
    assert [kernels.ACTIVATION_CODES[name] for name in ref.ACTIVATIONS] == CODES


def test_kernels_do_not_import_mlp():
    code = "import sys, mlp_kernels; mlp_kernels.warmup('float64'); assert 'mlp' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)


def test_a_local_kernels_folder_does_not_shadow_the_installed_package(tmp_path):
    """The kernels install as `mlp_kernels`: a folder named `kernels` in the working directory (or
    another distribution's `kernels` package) cannot replace them."""
    (tmp_path / "kernels").mkdir()
    (tmp_path / "kernels" / "__init__.py").write_text("raise ImportError('the wrong kernels')\n")
    code = "import mlp_kernels, mlp.engines.numba_trainer as e; assert e.NUMBA_AVAILABLE, e.import_error()"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


@needs_jit
def test_kernels_are_compiled_and_cached():
    from mlp_kernels import unchecked

    for name in unchecked.__all__:
        obj = getattr(unchecked, name)
        assert isinstance(obj, numba.core.registry.CPUDispatcher), name
        assert type(obj._cache).__name__ == "FunctionCache", name  # jit(cache=True)
        assert callable(getattr(kernels, name)) and getattr(kernels, name) is not obj  # the checked layer


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: kernels.gather_rows(np.zeros((4, 3)), np.array([0, 4]), np.zeros((2, 3))),
            ValueError,
            r"idx holds values outside \[0, 4\)",
        ),
        (
            lambda: kernels.gather_rows(np.zeros((4, 3)), np.array([0, 1]), np.zeros((2, 3), np.float32)),
            TypeError,
            "one dtype per call",
        ),
        (
            lambda: kernels.gather_rows(np.zeros((4, 3)), np.array([0, 1], np.int32), np.zeros((2, 3))),
            TypeError,
            "int64",
        ),
        (
            lambda: kernels.bias_activation_forward(np.zeros((4, 3)).T.copy().T, np.zeros(4), 1),
            ValueError,
            "C-contiguous",
        ),
        (
            lambda: kernels.bias_activation_forward(np.zeros((2, 3)), np.zeros(4), 1),
            ValueError,
            r"b has shape \(4,\)",
        ),
        (
            lambda: kernels.softmax_cross_entropy_sum(
                np.zeros((2, 3)), np.array([0, 3]), 1.0, np.zeros((2, 3))
            ),
            ValueError,
            "y holds values outside",
        ),
        (
            lambda: kernels.softmax_cross_entropy_sum(
                np.zeros((2, 3)), np.array([0, 1]), 1.0, np.zeros((3, 3))
            ),
            ValueError,
            "dZ has shape",
        ),
        (
            lambda: kernels.adam_step_fused(
                *[np.zeros(3)] * 4, 0.1, 0.9, 0.999, 1e-8, 0, 0.0, 0.0, np.inf, 1.0
            ),
            ValueError,
            "t must be",
        ),
        (
            lambda: kernels.sgd_step_fused(np.zeros(3), np.zeros(4), 0.1, 0.0, np.inf, 1.0),
            ValueError,
            "g has shape",
        ),
        (
            lambda: kernels.sgd_step_fused(np.zeros(3), np.zeros(3), 0.1, 0.0, 0.0, 1.0),
            ValueError,
            "clip_value",
        ),
        (lambda: kernels.dropout_forward(np.zeros((2, 3)), np.zeros((2, 3)), 0.0), ValueError, "keep_prob"),
        (
            lambda: kernels.sgd_step_fused([0.0], np.zeros(1), 0.1, 0.0, np.inf, 1.0),
            TypeError,
            "p must be a NumPy array",
        ),
    ],
)
def test_the_public_kernels_check_their_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("dtype", DTYPES)
def test_warmup_compiles_every_kernel(dtype):
    seconds = kernels.warmup(dtype)
    assert seconds >= 0.0
    assert kernels.warmup(dtype) < max(seconds, 1.0)
    if not JIT_DISABLED:
        for name in kernels.__all__:
            obj = getattr(kernels, name)
            if isinstance(obj, numba.core.registry.CPUDispatcher):
                assert obj.signatures, f"warmup did not compile {name}"


def test_warmup_rejects_other_dtypes():
    with pytest.raises(TypeError, match="float32 or float64"):
        kernels.warmup(np.int32)


@pytest.mark.parametrize("kernel", [kernels.bias_activation_forward, kernels.activation_backward])
def test_unknown_activation_code_raises(kernel):
    Z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="activation code"):
        kernel(Z, np.zeros((2, 3)) if kernel is kernels.activation_backward else np.zeros(3), 7)


# ---------------------------------------------------------------- gathering a mini-batch


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (9, 17), (30, 3)])
def test_gather_rows_and_labels(dtype, shape):
    rng = np.random.default_rng(0)
    X = logits(rng, shape, dtype)
    y = rng.integers(0, 10, shape[0]).astype(np.int64)
    idx = rng.permutation(shape[0])[: max(1, shape[0] // 2)].astype(np.int64)
    idx = np.concatenate([idx, idx[:1]])  # a repeated index is fine
    out = np.full((len(idx), shape[1]), np.nan, dtype=dtype)
    labels = np.full(len(idx), -1, dtype=np.int64)
    kernels.gather_rows(X, idx, out)
    kernels.gather_labels(y, idx, labels)
    np.testing.assert_array_equal(out, ref.gather_rows(X, idx))
    np.testing.assert_array_equal(labels, ref.gather_labels(y, idx))


# ---------------------------------------------------------------- bias + activation


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_bias_activation_forward(dtype, code, shape):
    rng = np.random.default_rng(1)
    Z = logits(rng, shape, dtype)
    Z[-1] = 0.0  # an all-zero row
    b = logits(rng, shape[1], dtype, spread=0.5)
    expected = ref.bias_activation_forward(Z, b, code)
    b_before = b.copy()
    kernels.bias_activation_forward(Z, b, code)
    assert Z.dtype == dtype
    np.testing.assert_array_equal(b, b_before)
    assert_close(Z, expected, elementwise_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("code", CODES)
def test_bias_activation_forward_extreme_inputs(dtype, code):
    Z = np.array([[-1000.0, -100.0, -20.0, -1e-3, -0.0, 0.0, 1e-7, 0.6, 20.0, 100.0, 1000.0]], dtype=dtype)
    b = np.zeros(Z.shape[1], dtype=dtype)
    expected = ref.bias_activation_forward(Z, b, code)
    kernels.bias_activation_forward(Z, b, code)
    assert np.all(np.isfinite(Z))
    assert_close(Z, expected, elementwise_tol(dtype), scale=0.0, atol=subnormal_flush(dtype))
    if code in (kernels.SIGMOID, kernels.TANH):
        assert Z[0, -1] == 1.0 and Z[0, 0] == (0.0 if code == kernels.SIGMOID else -1.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("code", CODES)
def test_nan_propagates_through_activations(dtype, code):
    Z = np.array([[np.nan, 1.0, -1.0]], dtype=dtype)
    kernels.bias_activation_forward(Z, np.zeros(3, dtype=dtype), code)
    assert np.isnan(Z[0, 0]) and np.all(np.isfinite(Z[0, 1:]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_activation_backward(dtype, code, shape):
    rng = np.random.default_rng(2)
    A = logits(rng, shape, dtype)
    kernels.bias_activation_forward(A, np.zeros(shape[1], dtype=dtype), code)  # a valid output
    A[0, 0] = 0.0  # the kink: relu'(0) = 0
    dA = logits(rng, shape, dtype)
    expected = ref.activation_backward(dA, A, code)
    A_before = A.copy()
    kernels.activation_backward(dA, A, code)
    np.testing.assert_array_equal(A, A_before)
    assert_close(dA, expected, elementwise_tol(dtype))
    if code in (kernels.RELU,):
        assert dA[0, 0] == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_activation_backward_with_the_bias_gradient_in_the_same_pass(dtype, code, shape):
    rng = np.random.default_rng(12)
    A = logits(rng, shape, dtype)
    kernels.bias_activation_forward(A, np.zeros(shape[1], dtype=dtype), code)
    dA = logits(rng, shape, dtype)
    expected = ref.activation_backward(dA, A, code)
    db = np.full(shape[1], np.nan, dtype=dtype)  # overwritten, not accumulated into
    kernels.activation_backward(dA, A, code, db)
    assert_close(dA, expected, elementwise_tol(dtype))
    assert_close(
        db,
        ref.bias_gradient(expected),
        accumulated_tol(dtype),
        scale=float(np.abs(expected).sum(axis=0).max()) or 1.0,
    )


@needs_jit
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("code", [kernels.SIGMOID, kernels.TANH])
def test_sigmoid_and_tanh_accuracy_sweep(dtype, code):
    """The vectorisable sigmoid/tanh stay within 4 ulp of a long-double reference over 1e-7..1e3."""
    eps = np.finfo(dtype).eps
    mags = np.geomspace(1e-7, 1e3, 20_001)
    Z = np.concatenate([-mags[::-1], [0.0], mags]).astype(dtype)[None, :]
    x = Z[0].astype(np.longdouble)
    exact = 1 / (1 + np.exp(-x)) if code == kernels.SIGMOID else np.tanh(x)
    kernels.bias_activation_forward(Z, np.zeros(Z.shape[1], dtype=dtype), code)
    normal = np.abs(exact) >= np.finfo(dtype).tiny  # sigmoid flushes to 0 where it would be subnormal
    ulps = np.abs(Z[0][normal] - exact[normal]) / (np.abs(exact[normal]) * eps)
    assert ulps.max() <= 4.0
    assert np.all(np.abs(Z[0][~normal]) <= np.finfo(dtype).tiny)


# ---------------------------------------------------------------- bias gradient and dropout


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [*SHAPES, (300, 5)])
def test_bias_gradient(dtype, shape):
    rng = np.random.default_rng(3)
    dZ = logits(rng, shape, dtype)
    db = np.full(shape[1], np.nan, dtype=dtype)  # overwritten, not accumulated into
    kernels.bias_gradient(dZ, db)
    assert_close(db, ref.bias_gradient(dZ), accumulated_tol(dtype), scale=float(np.abs(dZ).sum(axis=0).max()))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keep_prob", [1.0, 0.8, 0.5, 0.1])
@pytest.mark.parametrize("shape", [(1, 1), (7, 17), (16, 33)])
def test_dropout_forward_and_backward(dtype, keep_prob, shape):
    rng = np.random.default_rng(4)
    A = logits(rng, shape, dtype)
    U = np.empty(shape, dtype=dtype)
    rng.random(out=U, dtype=dtype)
    U.flat[0] = dtype(keep_prob) if keep_prob < 1 else U.flat[0]  # U == keep is dropped
    expected_A, expected_mask = ref.dropout_forward(A, U, keep_prob)
    kernels.dropout_forward(A, U, keep_prob)
    assert_close(A, expected_A, elementwise_tol(dtype))
    assert_close(U, expected_mask, elementwise_tol(dtype))
    if keep_prob == 1.0:
        assert np.all(U == 1.0)
    dA = logits(rng, shape, dtype)
    expected_dA = ref.dropout_backward(dA, U)
    kernels.dropout_backward(dA, U)
    assert_close(dA, expected_dA, elementwise_tol(dtype))


# ---------------------------------------------------------------- losses


def check_loss(kernel, reference, Z, y, scale, in_place, dz_scale=None):
    dtype = Z.dtype.type
    n = Z.shape[0]
    exp_loss, exp_correct, exp_dZ = reference(Z, y, scale)
    Z_before = Z.copy()
    dZ = Z if in_place else np.full_like(Z, np.nan)
    loss, correct = kernel(Z, y, scale, dZ)
    if not in_place:
        np.testing.assert_array_equal(Z, Z_before)
    assert isinstance(loss, float) and np.isfinite(loss)
    assert correct == exp_correct
    tol = accumulated_tol(dtype)
    assert_close(loss, exp_loss, tol, scale=n)
    assert np.all(np.isfinite(dZ))
    assert_close(dZ, exp_dZ, tol, scale=abs(scale) if dz_scale is None else dz_scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (5, 1), (7, 17), (16, 10)])
@pytest.mark.parametrize("in_place", [False, True])
def test_losses(dtype, loss, shape, in_place):
    rng = np.random.default_rng(5)
    Z = logits(rng, shape, dtype)
    Z[0] = 0.0  # an all-zero row: a tie everywhere, argmax is the first index
    y = rng.integers(0, shape[1], shape[0]).astype(np.int64)
    kernel, reference = LOSSES[loss]
    check_loss(kernel, reference, Z, y, 1.0 / shape[0], in_place)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("in_place", [False, True])
def test_losses_extreme_logits(dtype, loss, in_place):
    Z = np.array(
        [
            [1000.0, -1000.0, 0.0],
            [-1000.0, -1000.0, -1000.0],
            [1000.0, 1000.0, -1000.0],
            [-1000.0, 1000.0, 1000.0],
        ],
        dtype=dtype,
    )
    y = np.array([0, 0, 1, 2], dtype=np.int64)  # ties: the first maximum counts, so rows 0 and 1 are correct
    kernel, reference = LOSSES[loss]
    check_loss(kernel, reference, Z, y, 0.25, in_place)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_counts_first_maximum(dtype):
    Z = np.array([[1.0, 3.0, 3.0], [3.0, 3.0, 1.0], [2.0, 2.0, 2.0], [0.0, 0.0, 5.0]], dtype=dtype)
    dZ = np.empty_like(Z)
    assert kernels.softmax_cross_entropy_sum(Z, np.array([1, 1, 0, 2], dtype=np.int64), 1.0, dZ)[1] == 3
    assert kernels.sigmoid_mse_sum(Z, np.array([2, 0, 1, 2], dtype=np.int64), 1.0, dZ)[1] == 2


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_losses_nan_logit_gives_nan_loss(dtype, loss):
    Z = np.array([[0.5, np.nan, 1.0], [0.0, 1.0, 2.0]], dtype=dtype)
    kernel, _ = LOSSES[loss]
    value, _ = kernel(Z, np.array([0, 2], dtype=np.int64), 0.5, np.empty_like(Z))
    assert np.isnan(value)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (5, 1), (7, 17), (16, 10)])
@pytest.mark.parametrize("in_place", [False, True])
def test_squared_error(dtype, shape, in_place):
    rng = np.random.default_rng(6)
    Z = logits(rng, shape, dtype)
    Y = logits(rng, shape, dtype)
    Z[0] = 0.0  # an all-zero row
    Y[-1] = Z[-1]  # a row predicted exactly: zero loss and gradient
    expected_loss, expected_dZ = ref.squared_error(Z, Y, 1.0 / shape[0])
    dZ = Z if in_place else np.full_like(Z, np.nan)
    loss = kernels.squared_error_sum(Z, Y, 1.0 / shape[0], dZ)
    tol = accumulated_tol(dtype)
    assert isinstance(loss, float)
    assert_close(loss, expected_loss, tol, scale=shape[0])
    assert_close(dZ, expected_dZ, elementwise_tol(dtype), scale=1.0 / shape[0])
    assert np.all(dZ[-1] == 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (5, 1), (7, 17), (16, 10)])
@pytest.mark.parametrize("in_place", [False, True])
def test_sigmoid_binary_cross_entropy(dtype, shape, in_place):
    rng = np.random.default_rng(7)
    Z = logits(rng, shape, dtype)
    Y = (rng.random(shape) < 0.5).astype(dtype)
    Y[0] = 0.25  # soft targets are allowed
    Z[-1] = 0.0  # an all-zero row: loss log 2 per output
    expected_loss, expected_dZ = ref.sigmoid_binary_cross_entropy(Z, Y, 1.0 / shape[0])
    dZ = Z if in_place else np.full_like(Z, np.nan)
    loss = kernels.sigmoid_binary_cross_entropy_sum(Z, Y, 1.0 / shape[0], dZ)
    assert isinstance(loss, float)
    assert_close(loss, expected_loss, accumulated_tol(dtype), scale=shape[0])
    assert_close(dZ, expected_dZ, elementwise_tol(dtype), scale=1.0 / shape[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_binary_cross_entropy_extreme_logits(dtype):
    Z = np.array([[1000.0, -1000.0, 30.0, -30.0]], dtype=dtype)
    Y = np.array([[1.0, 0.0, 0.0, 1.0]], dtype=dtype)
    dZ = np.empty_like(Z)
    loss = kernels.sigmoid_binary_cross_entropy_sum(Z, Y, 1.0, dZ)
    # right with certainty costs 0, wrong by 30 costs about 30 each
    assert np.isfinite(loss) and loss == pytest.approx(60.0, rel=1e-6)
    np.testing.assert_allclose(dZ, [[0.0, 0.0, 1.0, -1.0]], atol=1e-6)
    assert np.isnan(
        kernels.sigmoid_binary_cross_entropy_sum(
            np.full((1, 1), np.nan, dtype), Y[:, :1].copy(), 1.0, dZ[:, :1]
        )
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (5, 1), (7, 17), (16, 10)])
@pytest.mark.parametrize("in_place", [False, True])
def test_exp_poisson(dtype, shape, in_place):
    rng = np.random.default_rng(8)
    Z = logits(rng, shape, dtype, spread=1.0)
    Y = rng.poisson(2.0, shape).astype(dtype)
    Y[0] = 0.0  # a row of zero counts: y log y is 0 there, the loss sum_k exp(z)
    Y[-1, 0] = 3.0
    Z[-1, 0] = np.log(Y[-1, 0])  # predicted exactly: (nearly) zero loss and gradient for that output
    expected_loss, expected_dZ = ref.exp_poisson(Z, Y, 1.0 / shape[0])
    # the magnitude of the terms: exp(Z) and Y (and Y log Y, Y Z, smaller than their sum here)
    magnitude = float(np.max(np.exp(Z.astype(np.float64)) + Y))
    dZ = Z if in_place else np.full_like(Z, np.nan)
    loss = kernels.exp_poisson_sum(Z, Y, 1.0 / shape[0], dZ)
    assert isinstance(loss, float) and np.isfinite(loss)
    assert_close(loss, expected_loss, accumulated_tol(dtype), scale=shape[0] * shape[1] * magnitude)
    assert_close(dZ, expected_dZ, elementwise_tol(dtype), scale=magnitude / shape[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_poisson_extreme_logits_and_nan(dtype):
    # exp(-1000) underflows to 0: the loss is written with log mu = z, so it stays finite (1000 * 2
    # for a count of 2, where scikit-learn's xlogy(y, y / exp(z)) would be infinite)
    Z = np.array([[-1000.0, -50.0, 30.0]], dtype=dtype)
    Y = np.array([[2.0, 0.0, 3.0]], dtype=dtype)
    dZ = np.empty_like(Z)
    loss = kernels.exp_poisson_sum(Z, Y, 1.0, dZ)
    expected = (2 * math.log(2) - 2 + 2000.0) + math.exp(-50.0) + (3 * math.log(3) - 3 - 90 + math.exp(30.0))
    assert np.isfinite(loss) and loss == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(dZ, [[-2.0, 0.0, math.exp(30.0) - 3]], rtol=1e-6, atol=1e-6)
    assert np.isnan(kernels.exp_poisson_sum(np.full((1, 1), np.nan, dtype), Y[:, :1].copy(), 1.0, dZ[:, :1]))
    with pytest.raises(ValueError, match=r"Y must hold values >= 0"):
        kernels.exp_poisson_sum(Z, -Y, 1.0, dZ)


@pytest.mark.parametrize("dtype", DTYPES)
def test_squared_error_extreme_and_nan_values(dtype):
    Z = np.array([[1e3, -1e3], [np.nan, 0.0]], dtype=dtype)
    Y = np.array([[-1e3, 1e3], [0.0, 0.0]], dtype=dtype)
    dZ = np.empty_like(Z)
    assert np.isnan(kernels.squared_error_sum(Z, Y, 0.5, dZ))
    loss = kernels.squared_error_sum(Z[:1].copy(), Y[:1].copy(), 0.5, dZ[:1])
    assert loss == pytest.approx(0.5 * 2 * 2000.0**2) and np.all(np.isfinite(dZ[0]))
    np.testing.assert_allclose(dZ[0], [1000.0, -1000.0])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: kernels.squared_error_sum(np.zeros((2, 3)), np.zeros((2, 2)), 1.0, np.zeros((2, 3))),
            ValueError,
            "Y has shape",
        ),
        (
            lambda: kernels.squared_error_sum(
                np.zeros((2, 3)), np.zeros((2, 3), np.float32), 1.0, np.zeros((2, 3))
            ),
            TypeError,
            "one dtype per call",
        ),
        (
            lambda: kernels.squared_error_sum(np.zeros((2, 3)), np.zeros(2, np.int64), 1.0, np.zeros((2, 3))),
            ValueError,
            "Y must be 2-D",
        ),
        (
            lambda: kernels.squared_error_sum(np.zeros((2, 3)), np.zeros((2, 3)), np.nan, np.zeros((2, 3))),
            ValueError,
            "scale",
        ),
        (
            lambda: kernels.sigmoid_binary_cross_entropy_sum(
                np.zeros((2, 3)), np.zeros((3, 3)), 1.0, np.zeros((2, 3))
            ),
            ValueError,
            "Y has shape",
        ),
        (
            lambda: kernels.sigmoid_binary_cross_entropy_sum(
                np.zeros((2, 3)), np.zeros((2, 3)), 1.0, np.zeros((2, 3)).T
            ),
            ValueError,
            "dZ has shape|C-contiguous",
        ),
        (
            lambda: kernels.exp_poisson_sum(
                np.zeros((2, 3)), np.zeros((2, 3), np.float32), 1.0, np.zeros((2, 3))
            ),
            TypeError,
            "one dtype per call",
        ),
    ],
)
def test_target_losses_check_their_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---------------------------------------------------------------- gradient processing and optimizers

OPTIMIZER_CASES = {  # (l2, clip_value, grad_scale): every term changes the result by percents
    "plain": (0.0, np.inf, 1.0),
    "l2": (0.3, np.inf, 1.0),
    "clip": (0.0, 0.5, 1.0),
    "all": (0.3, 0.7, 0.6),
}


def flat_params(rng, size, dtype):
    p = logits(rng, size, dtype, spread=1.0)
    g = logits(rng, size, dtype, spread=1.0)
    return p, g


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(OPTIMIZER_CASES))
@pytest.mark.parametrize("size", [1, 17, 257])
def test_grad_sq_norm(dtype, case, size):
    l2, clip_value, _ = OPTIMIZER_CASES[case]
    p, g = flat_params(np.random.default_rng(6), size, dtype)
    value = kernels.processed_grad_sq_norm(g, p, l2, clip_value)
    assert isinstance(value, float)
    assert_close(value, ref.grad_sq_norm(g, p, l2, clip_value), accumulated_tol(dtype))


def run_steps(name, dtype, size, case, steps=5, **hyper):
    """Run `steps` steps of a kernel and of its reference from the same start; compare the
    parameters and every state buffer after each step.  A fresh gradient each step."""
    l2, clip_value, grad_scale = OPTIMIZER_CASES[case]
    rng = np.random.default_rng(7)
    p, _ = flat_params(rng, size, dtype)
    n_state = {"sgd": 0, "momentum": 1, "rmsprop": 1, "adam": 2}[name]
    state = [np.zeros(size, dtype=dtype) for _ in range(n_state)]
    p_ref, state_ref = p.astype(np.float64), [s.astype(np.float64) for s in state]
    tol = accumulated_tol(dtype)
    for t in range(1, steps + 1):
        g = logits(rng, size, dtype, spread=1.0)
        g_before = g.copy()
        common = (l2, clip_value, grad_scale)
        if name == "sgd":
            kernels.sgd_step_fused(p, g, hyper["lr"], *common)
            p_ref = ref.sgd_step(p_ref, g, hyper["lr"], *common)
        elif name == "momentum":
            args = (hyper["lr"], hyper["mu"], hyper["nesterov"])
            kernels.momentum_step_fused(p, g, state[0], *args, *common)
            p_ref, v = ref.momentum_step(p_ref, g, state_ref[0], *args, *common)
            state_ref = [v]
        elif name == "rmsprop":
            args = (hyper["lr"], hyper["rho"], hyper["eps"])
            kernels.rmsprop_step_fused(p, g, state[0], *args, *common)
            p_ref, s = ref.rmsprop_step(p_ref, g, state_ref[0], *args, *common)
            state_ref = [s]
        else:
            args = (hyper["lr"], hyper["beta1"], hyper["beta2"], hyper["eps"], t, hyper["wd"])
            kernels.adam_step_fused(p, g, state[0], state[1], *args, *common)
            p_ref, m, v = ref.adam_step(p_ref, g, state_ref[0], state_ref[1], *args, *common)
            state_ref = [m, v]
        np.testing.assert_array_equal(g, g_before)  # the gradient buffer is never modified
        assert p.dtype == dtype and all(s.dtype == dtype for s in state)
        assert_close(p, p_ref, tol)
        for s, s_ref in zip(state, state_ref, strict=True):
            assert_close(s, s_ref, tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(OPTIMIZER_CASES))
@pytest.mark.parametrize("size", [1, 17, 257])
def test_sgd_step(dtype, case, size):
    run_steps("sgd", dtype, size, case, lr=0.1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(OPTIMIZER_CASES))
@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_step(dtype, case, nesterov):
    run_steps("momentum", dtype, 33, case, lr=0.1, mu=0.9, nesterov=nesterov)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(OPTIMIZER_CASES))
def test_rmsprop_step(dtype, case):
    run_steps("rmsprop", dtype, 33, case, lr=0.01, rho=0.9, eps=1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(OPTIMIZER_CASES))
@pytest.mark.parametrize("wd", [0.0, 0.5])
@pytest.mark.parametrize("size", [1, 257])
def test_adam_step(dtype, case, wd, size):
    run_steps("adam", dtype, size, case, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, wd=wd)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_first_step_moves_each_parameter_by_lr(dtype):
    """With bias correction the first Adam step is -lr * g / (|g| + eps), about -lr * sign(g)."""
    p = np.zeros(5, dtype=dtype)
    g = np.array([3.0, -2.0, 0.5, -1e-3, 7.0], dtype=dtype)
    m, v = np.zeros_like(p), np.zeros_like(p)
    kernels.adam_step_fused(p, g, m, v, 0.01, 0.9, 0.999, 1e-8, 1, 0.0, 0.0, np.inf, 1.0)
    g64 = g.astype(np.float64)
    assert_close(p, -0.01 * g64 / (np.abs(g64) + 1e-8), elementwise_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_clipping_keeps_nan(dtype):
    p = np.zeros(3, dtype=dtype)
    g = np.array([np.nan, 5.0, -5.0], dtype=dtype)
    assert np.isnan(kernels.processed_grad_sq_norm(g, p, 0.0, 1.0))
    kernels.sgd_step_fused(p, g, 1.0, 0.0, 1.0, 1.0)
    assert np.isnan(p[0]) and p[1] == -1.0 and p[2] == 1.0


# ---------------------------------------------------------------- Hypothesis


def float_arrays(dtype, shape, bound):
    elements = st.floats(-bound, bound, width=np.dtype(dtype).itemsize * 8, allow_subnormal=False)
    return hnp.arrays(dtype, shape, elements=elements)


@st.composite
def batches(draw, max_rows=6, max_cols=20, bound=1000.0):
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(st.tuples(st.integers(1, max_rows), st.integers(1, max_cols)))
    Z = draw(float_arrays(dtype, shape, bound))
    y = np.array(
        draw(st.lists(st.integers(0, shape[1] - 1), min_size=shape[0], max_size=shape[0])), dtype=np.int64
    )
    return Z, y


@needs_jit
@settings(max_examples=100, deadline=None)
@given(data=batches(bound=100.0), code=st.sampled_from(CODES))
def test_hypothesis_bias_activation_forward_and_backward(data, code):
    Z, _ = data
    dtype = Z.dtype.type
    b = Z[0].copy()
    expected = ref.bias_activation_forward(Z, b, code)
    kernels.bias_activation_forward(Z, b, code)
    assert_close(Z, expected, elementwise_tol(dtype), scale=0.0, atol=subnormal_flush(dtype))
    dA = np.ones_like(Z) * dtype(0.5)
    expected = ref.activation_backward(dA, Z, code)
    kernels.activation_backward(dA, Z, code)
    assert_close(dA, expected, elementwise_tol(dtype))


@needs_jit
@settings(max_examples=100, deadline=None)
@given(
    data=batches(), loss=st.sampled_from(sorted(LOSSES)), in_place=st.booleans(), scale=st.floats(1e-3, 10.0)
)
def test_hypothesis_losses(data, loss, in_place, scale):
    Z, y = data
    kernel, reference = LOSSES[loss]
    check_loss(kernel, reference, Z, y, scale, in_place)


@needs_jit
@settings(max_examples=50, deadline=None)
@given(
    dtype=st.sampled_from(DTYPES),
    size=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
    case=st.sampled_from(sorted(OPTIMIZER_CASES)),
    wd=st.sampled_from([0.0, 0.1]),
    lr=st.floats(1e-4, 0.5),
)
def test_hypothesis_adam_step(dtype, size, seed, case, wd, lr):
    rng = np.random.default_rng(seed)
    p, g = flat_params(rng, size, dtype)
    m, v = logits(rng, size, dtype, 0.1), np.abs(logits(rng, size, dtype, 0.1))
    l2, clip_value, grad_scale = OPTIMIZER_CASES[case]
    args = (lr, 0.9, 0.999, 1e-8, 3, wd, l2, clip_value, grad_scale)
    p_ref, m_ref, v_ref = ref.adam_step(p, g, m, v, *args)
    kernels.adam_step_fused(p, g, m, v, *args)
    tol = accumulated_tol(dtype)
    assert_close(p, p_ref, tol)
    assert_close(m, m_ref, tol)
    assert_close(v, v_ref, tol)


# ---------------------------------------------------------------- the same tests without the JIT


@needs_jit
def test_module_passes_with_jit_disabled():
    """NUMBA_DISABLE_JIT=1 turns every kernel into plain Python (how one debugs them with pdb) and
    the math helpers into their NumPy fallbacks; the small-shape tests must still pass."""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-x",
        "-p",
        "no:cacheprovider",
        "-k",
        "not hypothesis and not jit_disabled and not do_not_import",
        str(Path(__file__).resolve()),
    ]
    result = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
