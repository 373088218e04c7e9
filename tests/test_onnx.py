"""ONNX export (mlp.onnx, MLP.to_onnx, the estimators' to_onnx, `mlp export`): onnxruntime runs the
exported graph and gets what predict and predict_proba give, to a tolerance from the dtype, for every
activation, every loss, float32 and float64, one row and many; bad paths and unsupported models get
one clear error.

The onnx extra (ndonnx, onnx, onnxruntime) comes with the test extra: without it these tests skip,
except in CI (CI set), where they must run."""

import importlib
import itertools
import json
import os
import sys
import warnings

import numpy as np
import pytest

import mlp
import mlp.cli
import mlp.onnx
from mlp.activations import ACTIVATIONS
from mlp.losses import CLASS_LOSSES, LOSSES, REGRESSION_LOSSES
from mlp.model import MLP
from tests.helpers import tolerance

LABELS = np.array([3, 5, 8, 13, 21, 34])  # original labels that are not the indices 0..K-1


def _module(name):
    if os.environ.get("CI"):
        return importlib.import_module(name)  # the test extra installs it: missing is a failure in CI
    try:
        return importlib.import_module(name)
    except ImportError:
        pytest.skip(f"{name} is not installed (the onnx extra: pip install -e '.[onnx]')")


@pytest.fixture(scope="module")
def ort():
    _module("ndonnx")
    _module("onnx")
    return _module("onnxruntime")


def run_onnx(ort, path, X):
    """{output name: array} of the file at path, run by onnxruntime on X."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {"X": X}), strict=True))


def random_model(activation, loss, dtype, *, seed=0, sizes=(7, 9, 5)):
    """A network of random weights (scaled so that the logits spread over a few units)."""
    rng = np.random.default_rng(seed)
    k = len(LABELS)
    widths = [*sizes, k]
    params = [
        (
            (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in) * 1.5).astype(dtype),
            rng.standard_normal(fan_out).astype(dtype) * 0.3,
        )
        for fan_in, fan_out in itertools.pairwise(widths)
    ]
    classes = LABELS if loss in CLASS_LOSSES else None
    return MLP(params, activation=activation, loss=loss, classes=classes)


def assert_same_labels(labels, expected, margin, tol):
    """Labels equal wherever the model's decision is clearer than the tolerance (a closer call may
    fall either way when the sums are done in another order)."""
    decided = margin > tol
    assert decided.mean() > 0.5  # most rows are compared
    np.testing.assert_array_equal(labels[decided], expected[decided])


def assert_matches(ort, model, path, X):
    """onnxruntime's outputs for X equal model.predict / predict_proba to the dtype's tolerance."""
    out = run_onnx(ort, path, X)
    tol = tolerance(model.dtype)
    if model.loss in REGRESSION_LOSSES:
        assert list(out) == ["predictions"]
        expected = model.predict(X)
        assert out["predictions"].dtype == np.dtype(model.dtype)
        assert out["predictions"].shape == expected.shape
        np.testing.assert_allclose(out["predictions"], expected, rtol=tol, atol=tol)
        return out
    assert list(out) == ["label", "probabilities"]
    proba = model.predict_proba(X)
    assert out["probabilities"].dtype == np.dtype(model.dtype)
    np.testing.assert_allclose(out["probabilities"], proba, rtol=tol, atol=tol)
    expected = model.predict(X)
    assert out["label"].shape == expected.shape
    assert out["label"].dtype == expected.dtype
    if model.loss == "binary_cross_entropy":
        margin = np.abs(proba - 0.5)
    else:
        top_two = np.sort(proba, axis=1)[:, -2:]
        margin = top_two[:, 1] - top_two[:, 0]
    assert_same_labels(out["label"], expected, margin, tol)
    return out


# ---- random networks: every activation, every loss, both dtypes, one row and many ---------------
def _network_cases():
    """Every (activation, loss, dtype). An export takes about a second (ndonnx evaluates the constant
    parts of the graph as it records them), so the quick run (-m "not slow") takes a covering set:
    every activation and every loss in both dtypes, ten exports; the rest are marked slow."""
    activations, losses = sorted(ACTIVATIONS), sorted(LOSSES)
    quick = {
        (activations[(i + 2 * j) % len(activations)], loss, dtype)
        for j, dtype in enumerate(["float32", "float64"])
        for i, loss in enumerate(losses)
    }
    return [
        pytest.param(*case, marks=() if case in quick else pytest.mark.slow)
        for case in itertools.product(activations, losses, ["float32", "float64"])
    ]


@pytest.mark.parametrize("activation, loss, dtype", _network_cases())
def test_onnxruntime_gives_predict_and_predict_proba(ort, tmp_path, activation, loss, dtype):
    model = random_model(activation, loss, dtype)
    path = tmp_path / "model.onnx"
    assert model.to_onnx(path) == path
    rng = np.random.default_rng(1)
    for rows in (1, 257):  # one file: the batch dimension is dynamic
        assert_matches(ort, model, path, rng.standard_normal((rows, 7)).astype(dtype))


@pytest.mark.parametrize("placement", ["before", "after"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batch_norm_runs_with_the_running_statistics(ort, tmp_path, placement, dtype):
    """A batch-normalised network exports in inference mode: onnxruntime gives predict's outputs."""
    plain = random_model("tanh", "cross_entropy", dtype)
    rng = np.random.default_rng(2)
    norms = [
        tuple(
            values.astype(dtype)
            for values in (
                rng.uniform(0.5, 1.5, k),
                rng.normal(0, 0.5, k),
                rng.normal(0, 0.5, k),
                rng.uniform(0.5, 2.0, k),
            )
        )
        for k in plain.hidden_sizes
    ]
    model = MLP(
        plain.params,
        activation="tanh",
        loss="cross_entropy",
        classes=LABELS,
        batch_norm=placement,
        norms=norms,
    )
    path = model.to_onnx(tmp_path / "model.onnx")
    for rows in (1, 33):
        assert_matches(ort, model, path, rng.standard_normal((rows, 7)).astype(dtype))
    props = {entry.key: entry.value for entry in mlp.onnx.onnx_model(model).metadata_props}
    assert props["batch_norm"] == placement


def test_one_regression_output_comes_out_one_dimensional(ort, tmp_path):
    rng = np.random.default_rng(0)
    params = [(rng.standard_normal((4, 3)), np.zeros(3)), (rng.standard_normal((3, 1)), np.zeros(1))]
    for loss in sorted(REGRESSION_LOSSES):
        model = MLP(params, activation="tanh", loss=loss, classes=None)
        model.to_onnx(tmp_path / f"{loss}.onnx")
        out = assert_matches(ort, model, tmp_path / f"{loss}.onnx", rng.standard_normal((5, 4)))
        assert out["predictions"].shape == (5,)


def test_the_file_states_its_opset_batch_dimension_and_model(ort, tmp_path):
    onnx = importlib.import_module("onnx")
    model = random_model("relu", "cross_entropy", "float32")
    model.config["preprocessing"] = {"input": "pixels / 255"}
    model.to_onnx(tmp_path / "m.onnx")
    proto = onnx.load(str(tmp_path / "m.onnx"))
    assert mlp.onnx.OPSET == 21
    assert {entry.domain or "ai.onnx": entry.version for entry in proto.opset_import}["ai.onnx"] == 21
    props = {entry.key: entry.value for entry in proto.metadata_props}
    assert props["opset"] == "21"
    assert json.loads(props["classes"]) == LABELS.tolist()
    assert json.loads(props["layer_sizes"]) == model.layer_sizes
    assert props["activation"] == "relu" and props["loss"] == "cross_entropy" and props["dtype"] == "float32"
    assert json.loads(props["preprocessing"]) == {"input": "pixels / 255"}
    assert proto.producer_name == "mlp-from-scratch"
    for value in [*proto.graph.input, *proto.graph.output]:
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [value.name for value in proto.graph.input] == ["X"]


def test_the_graph_is_the_forward_pass_not_a_copy(ort, monkeypatch, tmp_path):
    """The export runs mlp.layers.forward itself: a change there shows in the file."""
    model = random_model("relu", "squared_error", "float64")
    X = np.random.default_rng(2).standard_normal((4, 7))
    original = mlp.layers.forward

    def doubled(params, X, activation, **kwargs):
        logits, inputs, outputs = original(params, X, activation, **kwargs)
        return logits * 2.0, inputs, outputs

    monkeypatch.setattr(mlp.layers, "forward", doubled)
    model.to_onnx(tmp_path / "m.onnx")
    monkeypatch.undo()
    np.testing.assert_allclose(run_onnx(ort, tmp_path / "m.onnx", X)["predictions"], 2.0 * model.predict(X))


# ---- real MNIST ----------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mnist_test_set_through_onnxruntime(ort, mnist_dir, tmp_path, dtype):
    (X_train, y_train), (X_test, y_test) = mlp.datasets.load_mnist(mnist_dir)
    model = mlp.fit(
        X_train[:6000],
        y_train[:6000],
        hidden_sizes=[64],
        epochs=2,
        batch_size=128,
        optimizer="adam",
        learning_rate=1e-3,
        dtype=dtype,
        seed=0,
    )
    model.to_onnx(tmp_path / "mnist.onnx")
    X = np.asarray(X_test, dtype=dtype)
    out = assert_matches(ort, model, tmp_path / "mnist.onnx", X)
    np.testing.assert_array_equal(out["label"], model.predict(X))  # all 10,000 classes, not just most
    assert float(np.mean(out["label"] == y_test)) > 0.8  # a trained network (84 % after 2 short epochs)


# ---- the estimators ------------------------------------------------------------------------------
@pytest.fixture
def estimators():
    _module("sklearn")
    from mlp.estimators import MLPClassifier, MLPRegressor

    return MLPClassifier, MLPRegressor


def _quiet_fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a few iterations are enough here
        return estimator.fit(X, y)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_to_onnx_gives_its_string_labels(ort, estimators, tmp_path, n_classes):
    MLPClassifier, _ = estimators
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 4))
    names = np.array(["cat", "dog", "emu"][:n_classes])
    y = names[np.argmax(X[:, :n_classes], axis=1)]
    clf = _quiet_fit(MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0), X, y)
    clf.to_onnx(tmp_path / "clf.onnx")
    out = run_onnx(ort, tmp_path / "clf.onnx", X)
    tol = tolerance("float64")
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(out["probabilities"], proba, rtol=tol, atol=tol)
    assert out["probabilities"].shape == (90, n_classes)
    top_two = np.sort(proba, axis=1)[:, -2:]
    assert_same_labels(out["label"].astype(str), clf.predict(X), top_two[:, 1] - top_two[:, 0], tol)


def test_multilabel_classifier_and_regressor_to_onnx(ort, estimators, tmp_path):
    MLPClassifier, MLPRegressor = estimators
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 5)).astype(np.float32)
    Y = (X[:, :3] > 0).astype(int)
    clf = _quiet_fit(MLPClassifier(hidden_layer_sizes=(6,), max_iter=20, random_state=0), X, Y)
    clf.to_onnx(tmp_path / "multilabel.onnx")
    out = run_onnx(ort, tmp_path / "multilabel.onnx", X)
    tol = tolerance("float32")
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(out["probabilities"], proba, rtol=tol, atol=tol)
    assert_same_labels(out["label"], clf.predict(X), np.abs(proba - 0.5), tol)
    for targets in (X[:, 0] * 2.0, X[:, :2] @ np.array([[1.0, 2.0], [0.5, -1.0]])):
        reg = _quiet_fit(MLPRegressor(hidden_layer_sizes=(6,), max_iter=20, random_state=0), X, targets)
        reg.to_onnx(tmp_path / "regression.onnx")
        predictions = run_onnx(ort, tmp_path / "regression.onnx", X)["predictions"]
        assert predictions.shape == reg.predict(X).shape
        np.testing.assert_allclose(predictions, reg.predict(X), rtol=tol, atol=tol)


def test_an_unfitted_estimator_is_refused(ort, estimators, tmp_path):
    from sklearn.exceptions import NotFittedError

    MLPClassifier, MLPRegressor = estimators
    for estimator in (MLPClassifier(), MLPRegressor()):
        with pytest.raises(NotFittedError):
            estimator.to_onnx(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


# ---- errors --------------------------------------------------------------------------------------
def test_bad_output_paths_are_refused_in_one_line(ort, tmp_path):
    model = random_model("relu", "cross_entropy", "float32")
    with pytest.raises(OSError, match="is a folder"):
        model.to_onnx(tmp_path)
    with pytest.raises(OSError, match="does not exist"):
        model.to_onnx(tmp_path / "missing" / "m.onnx")
    with pytest.raises(OSError, match="not a regular file"):
        model.to_onnx(os.devnull)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    with pytest.raises(OSError, match="is not an ONNX model"):
        model.to_onnx(notes)
    assert notes.read_text() == "my notes\n"
    model.to_onnx(tmp_path / "m.onnx")
    model.to_onnx(tmp_path / "m.onnx")  # an ONNX file is replaced
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m.onnx", "notes.txt"]  # no temporaries


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_refused(ort, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="FIFO"):
        random_model("relu", "mse", "float32").to_onnx(fifo)


def test_unsupported_models_get_a_clear_error(ort, tmp_path):
    model = random_model("relu", "cross_entropy", "float32")
    model.loss = "hinge"
    with pytest.raises(ValueError, match="cannot export a model with loss='hinge' to ONNX"):
        model.to_onnx(tmp_path / "m.onnx")
    model = random_model("relu", "cross_entropy", "float32")
    model.activation = "swish"
    with pytest.raises(ValueError, match="activation='swish'"):
        model.to_onnx(tmp_path / "m.onnx")
    model = random_model("relu", "cross_entropy", "float32")
    model.classes_ = None
    with pytest.raises(ValueError, match="without its classes"):
        model.to_onnx(tmp_path / "m.onnx")
    half = [(W.astype(np.float16), b.astype(np.float16)) for W, b in model.params]
    with pytest.raises(ValueError, match="float16"):
        MLP(half, activation="relu", loss="squared_error", classes=None).to_onnx(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("missing", ["ndonnx", "onnx"])
def test_missing_packages_name_the_install_command(tmp_path, monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # `import missing` raises ImportError
    model = random_model("relu", "cross_entropy", "float32")
    with pytest.raises(ImportError, match=r'pip install "mlp-from-scratch\[onnx\]"'):
        model.to_onnx(tmp_path / "m.onnx")
    model.save(tmp_path / "m.npz")
    assert mlp.cli.main(["export", str(tmp_path / "m.npz"), str(tmp_path / "m.onnx")]) == 1
    assert not (tmp_path / "m.onnx").exists()


# ---- the command line ----------------------------------------------------------------------------
def test_mlp_export_writes_a_file_onnxruntime_runs(ort, tmp_path, capsys):
    model = random_model("tanh", "mse", "float64")
    model.save(tmp_path / "m.npz")
    code = mlp.cli.main(["export", "--format", "onnx", str(tmp_path / "m.npz"), str(tmp_path / "m.onnx")])
    assert code == 0
    assert "opset 21" in capsys.readouterr().out
    assert_matches(ort, mlp.load(tmp_path / "m.npz"), tmp_path / "m.onnx", np.ones((3, 7)))


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        (["MISSING.npz", "m.onnx"], "no such model file"),
        (["m.npz", "."], "is a folder"),
        (["m.npz", "nowhere/m.onnx"], "does not exist"),
        (["m.npz", "m.npz"], "is not an ONNX model"),
    ],
)
def test_mlp_export_fails_in_one_line(ort, tmp_path, monkeypatch, capsys, arguments, fragment):
    monkeypatch.chdir(tmp_path)
    random_model("relu", "cross_entropy", "float32").save(tmp_path / "m.npz")
    before = (tmp_path / "m.npz").read_bytes()
    assert mlp.cli.main(["export", *arguments]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mlp export: error: ") and fragment in err
    assert len(err.strip().splitlines()) == 1
    assert (tmp_path / "m.npz").read_bytes() == before


def test_mlp_export_refuses_another_format(capsys):
    with pytest.raises(SystemExit) as exit_info:
        mlp.cli.main(["export", "--format", "tflite", "m.npz", "m.onnx"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
