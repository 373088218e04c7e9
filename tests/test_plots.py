"""mlp.plots: every figure renders to a valid PNG; confusion matrix and report on hand-made labels."""

import io
import math
import sys

import numpy as np
import pytest

import mlp
from mlp import metrics, plots

pytest.importorskip("matplotlib", reason="pictures need matplotlib (the extra mlp-from-scratch[plot])")
Image = pytest.importorskip("PIL.Image")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ---- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mnist(mnist_dir):
    (X_train, y_train), (X_test, y_test) = mlp.datasets.load_mnist(mnist_dir)
    return X_train[:5000], y_train[:5000], X_test[:1000], y_test[:1000]


@pytest.fixture(scope="module")
def model(mnist):
    """One hidden layer, trained without validation data: val_* are all NaN."""
    X_train, y_train, _, _ = mnist
    return mlp.fit(X_train, y_train, hidden_sizes=[64], epochs=2, seed=0)


@pytest.fixture(scope="module")
def linear_model(mnist):
    """No hidden layer: the first layer is the output layer."""
    X_train, y_train, _, _ = mnist
    return mlp.fit(X_train[:1000], y_train[:1000], hidden_sizes=[], epochs=1, seed=0)


def check_png(path, *, min_side=200, max_side=4000):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    assert min_side <= width <= max_side and min_side <= height <= max_side, (width, height)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], (
        "a temporary file was left behind"
    )
    return width, height


def is_red(colour):
    from matplotlib.colors import to_rgba

    return to_rgba(colour) == to_rgba(plots.WRONG_COLOUR)


def image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


# ---- confusion matrix and report: pure NumPy ----------------------------------------------
Y_TRUE = [0, 0, 1, 2, 2, 2]
Y_PRED = [0, 1, 1, 2, 0, 2]


def test_confusion_matrix_on_hand_made_labels():
    expected = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    for labels in (None, 3, [0, 1, 2], np.array([0, 1, 2])):
        matrix = metrics.confusion_matrix(Y_TRUE, Y_PRED, labels)
        assert matrix.dtype == np.int64
        np.testing.assert_array_equal(matrix, expected)
    # more classes than present: empty rows and columns
    np.testing.assert_array_equal(metrics.confusion_matrix(Y_TRUE, Y_PRED, 4)[3], [0, 0, 0, 0])
    # labels in a chosen order reorder rows and columns alike
    np.testing.assert_array_equal(
        metrics.confusion_matrix(Y_TRUE, Y_PRED, [2, 0, 1]), [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    )


def test_confusion_matrix_with_label_values_and_strings():
    np.testing.assert_array_equal(metrics.confusion_matrix([3, 7, 7], [7, 7, 3]), [[0, 1], [1, 1]])
    np.testing.assert_array_equal(
        metrics.confusion_matrix(["cat", "dog", "dog"], ["cat", "cat", "dog"], ["dog", "cat"]),
        [[1, 1], [0, 1]],
    )


def test_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="not in labels"):
        metrics.confusion_matrix([0, 1, 5], [0, 1, 1], 3)
    with pytest.raises(ValueError, match="3 labels but y_pred has 2"):
        metrics.confusion_matrix([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="repeated"):
        metrics.confusion_matrix([0, 1], [0, 1], [0, 1, 1])


def test_classification_report_values():
    scores, text = metrics.classification_report(Y_TRUE, Y_PRED, [0, 1, 2])
    expected = {  # by hand from the matrix above
        0: (1 / 2, 1 / 2, 1 / 2, 2),
        1: (1 / 2, 1 / 1, 2 * 0.5 * 1 / 1.5, 1),
        2: (2 / 2, 2 / 3, 2 * (2 / 3) / (5 / 3), 3),
    }
    for label, (precision, recall, f1, support) in expected.items():
        entry = scores[label]
        assert entry["precision"] == pytest.approx(precision)
        assert entry["recall"] == pytest.approx(recall)
        assert entry["f1"] == pytest.approx(f1)
        assert entry["support"] == support
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["macro avg"]["precision"] == pytest.approx((0.5 + 0.5 + 1) / 3)
    assert scores["macro avg"]["f1"] == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)
    assert scores["weighted avg"]["recall"] == pytest.approx(scores["accuracy"])  # always so
    assert scores["weighted avg"]["support"] == 6

    lines = text.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1", "support"]
    assert lines[2].split() == ["0", "0.500", "0.500", "0.500", "2"]
    assert lines[4].split() == ["2", "1.000", "0.667", "0.800", "3"]
    assert "accuracy" in text and "macro avg" in text and "weighted avg" in text
    assert str(metrics.classification_report(Y_TRUE, Y_PRED)) == text


def test_classification_report_class_without_examples_or_predictions_scores_zero():
    scores, text = metrics.classification_report([0, 1], [0, 1], 3)
    assert scores[2] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert scores[0]["f1"] == 1.0 and scores["accuracy"] == 1.0
    assert "nan" not in text


def test_missing_matplotlib_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "mlp-from-scratch\[plot\]"'):
        plots.plot_history({"loss": [1.0], "accuracy": [0.5]})
    with pytest.raises(ImportError, match=r'pip install "mlp-from-scratch\[plot\]"'):
        plots.plot_confusion_matrix(np.eye(3, dtype=int), path=tmp_path / "cm.png")
    assert not list(tmp_path.iterdir())
    # the pure functions do not need it
    assert metrics.confusion_matrix([0, 1], [1, 1]).sum() == 2
    assert metrics.classification_report([0, 1], [1, 1]).scores["accuracy"] == 0.5


# ---- figures ----------------------------------------------------------------------------
def test_history_without_validation_draws_training_lines_only(model, tmp_path):
    assert np.all(np.isnan(model.history["val_loss"]))
    fig = plots.plot_history(model.history, tmp_path / "history.png")
    check_png(tmp_path / "history.png")
    loss_ax, accuracy_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["training"]
    assert [line.get_label() for line in accuracy_ax.lines] == ["training"]
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), model.history["loss"])
    assert plots.plot_history(model) is not None  # the model itself is accepted too


def test_history_with_validation_draws_both(tmp_path):
    history = {
        "epoch": [1, 2, 3],
        "loss": [1.0, 0.5, 0.4],
        "accuracy": [0.6, 0.8, 0.9],
        "val_loss": [1.1, 0.6, 0.55],
        "val_accuracy": [0.55, 0.75, 0.85],
    }
    fig = plots.plot_history(history, tmp_path / "h.png")
    check_png(tmp_path / "h.png")
    for ax in fig.axes:
        assert [line.get_label() for line in ax.lines] == ["training", "validation"]
    with pytest.raises(ValueError, match="no epochs"):
        plots.plot_history({"loss": []})


def test_predictions_mark_wrong_ones_in_red(model, mnist, tmp_path):
    _, _, X_test, y_test = mnist
    fig = plots.plot_predictions(model, X_test, y_test, tmp_path / "p.png", n=25)
    check_png(tmp_path / "p.png")
    predicted = model.predict(X_test[:25])
    axes = image_axes(fig)
    assert len(axes) == 25
    for ax, p, t in zip(axes, predicted, y_test[:25], strict=True):
        title = ax.title
        assert title.get_text() == f"pred {p} / true {t}"
        assert is_red(title.get_color()) == (p != t)
    assert len(image_axes(plots.plot_predictions(model, X_test[:7], None, n=25))) == 7


def test_confusion_matrix_plot_from_model_and_from_counts(model, mnist, tmp_path):
    _, _, X_test, y_test = mnist
    fig = plots.plot_confusion_matrix(model, X_test, y_test, path=tmp_path / "cm.png")
    check_png(tmp_path / "cm.png")
    expected = metrics.confusion_matrix(y_test, model.predict(X_test), model.classes_)
    ax = fig.axes[0]
    cells = [int(text.get_text()) for text in ax.texts]
    assert cells == expected.ravel().tolist()
    assert sum(cells) == len(y_test)

    fig = plots.plot_confusion_matrix(np.array([[5, 1], [2, 7]]), labels=["no", "yes"])
    assert [t.get_text() for t in fig.axes[0].texts] == ["5", "1", "2", "7"]
    with pytest.raises(ValueError, match="square"):
        plots.plot_confusion_matrix(np.ones((2, 3)))
    with pytest.raises(ValueError, match="X and y"):
        plots.plot_confusion_matrix(model)


def test_confident_mistakes_are_wrong_and_sorted(model, mnist, tmp_path):
    _, _, X_test, y_test = mnist
    fig = plots.plot_confident_mistakes(model, X_test, y_test, tmp_path / "m.png", n=16)
    check_png(tmp_path / "m.png")
    titles = [ax.title.get_text() for ax in image_axes(fig)]
    assert len(titles) == 16
    percents = []
    for title in titles:
        first, second = title.split("\n")  # "pred 7 (98%)" / "true 2"
        predicted, percent = first.removeprefix("pred ").split(" (")
        assert predicted != second.removeprefix("true ")
        percents.append(int(percent.rstrip("%)")))
    assert percents == sorted(percents, reverse=True)


def test_confident_mistakes_without_mistakes_says_so(model, mnist, tmp_path):
    _, _, X_test, _ = mnist
    fig = plots.plot_confident_mistakes(model, X_test[:20], model.predict(X_test[:20]), tmp_path / "none.png")
    check_png(tmp_path / "none.png", min_side=100)
    assert "No mistakes" in fig.texts[0].get_text()


def test_first_layer_weights_of_a_hidden_layer(model, tmp_path):
    fig = plots.plot_first_layer_weights(model, tmp_path / "w.png", n=16)
    check_png(tmp_path / "w.png")
    axes = image_axes(fig)
    assert len(axes) == 16
    W = model.get_weights()[0][0]
    np.testing.assert_array_equal(axes[3].images[0].get_array(), W[:, 3].reshape(28, 28))
    assert "First hidden layer" in fig.get_suptitle()
    with pytest.raises(ValueError, match="784 inputs"):
        plots.plot_first_layer_weights(model, image_shape=(20, 20))


def test_first_layer_weights_without_hidden_layer_shows_class_weights(linear_model, tmp_path):
    fig = plots.plot_first_layer_weights(linear_model, tmp_path / "w.png", n=64)
    check_png(tmp_path / "w.png")
    axes = image_axes(fig)
    assert len(axes) == 10  # n is capped at the number of columns
    assert [ax.title.get_text() for ax in axes] == [f"class {k}" for k in range(10)]
    assert "No hidden layer" in fig.get_suptitle()


def test_write_all_writes_five_pngs(linear_model, mnist, tmp_path):
    _, _, X_test, y_test = mnist
    folder = tmp_path / "new" / "plots"
    paths = plots.write_all(linear_model, X_test[:300], y_test[:300], folder)
    assert [p.name for p in paths] == [
        "history.png",
        "predictions.png",
        "confusion_matrix.png",
        "mistakes.png",
        "first_layer.png",
    ]
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in paths)
    for path in paths:
        check_png(path)


def test_arrays_of_another_namespace_are_copied_to_the_host(tmp_path):
    xp = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(0)
    X = rng.random((60, 16), dtype=np.float32)
    y = (X[:, 0] > 0.5).astype(np.int64)
    model = mlp.fit(xp.asarray(X), xp.asarray(y), hidden_sizes=[4], epochs=1, seed=0)
    X_xp, y_xp = xp.asarray(X), xp.asarray(y)
    plots.plot_predictions(model, X_xp, y_xp, n=4, image_shape=(4, 4))
    plots.plot_confusion_matrix(model, X_xp, y_xp)
    plots.plot_confident_mistakes(model, X_xp, y_xp, n=4, image_shape=(4, 4))
    plots.plot_first_layer_weights(model, tmp_path / "w.png", image_shape=(4, 4))
    check_png(tmp_path / "w.png", min_side=100)
    assert metrics.confusion_matrix(y_xp, model.predict(X_xp), 2).sum() == 60
    assert not math.isnan(metrics.classification_report(y_xp, model.predict(X_xp)).scores["accuracy"])
