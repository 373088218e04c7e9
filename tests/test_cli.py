"""The command line through subprocesses: exit codes, one-line messages, files written."""

import os
import subprocess
import sys

import numpy as np
import pytest

import mlp

pytestmark = pytest.mark.slow


def run(*args, env=None, cwd=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "mlp", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=600,
    )


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def trained_model(mnist_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    model_path = folder / "model.npz"
    checkpoint = folder / "ckpt.npz"
    result = run(
        "train",
        "--data",
        mnist_dir,
        "--hidden",
        "32",
        "--epochs",
        "2",
        "--limit",
        "20000",
        "--validation-split",
        "0.1",
        "--out",
        model_path,
        "--checkpoint",
        checkpoint,
        "--seed",
        "1",
    )
    assert result.returncode == 0, result.stderr
    return model_path, checkpoint, result.stdout


def test_train_reports_epochs_accuracy_and_saves(trained_model):
    model_path, checkpoint, stdout = trained_model
    assert "epoch 1/2" in stdout and "epoch 2/2" in stdout and "val_acc" in stdout
    assert "test accuracy 0." in stdout and "training time" in stdout
    model = mlp.load(model_path)
    assert model.hidden_sizes == [32] and len(model.history["loss"]) == 2
    assert checkpoint.exists()


def test_resume_continues_from_the_checkpoint(trained_model, mnist_dir, tmp_path):
    _, checkpoint, _ = trained_model
    out = tmp_path / "resumed.npz"
    result = run(
        "train",
        "--data",
        mnist_dir,
        "--hidden",
        "32",
        "--epochs",
        "2",
        "--limit",
        "20000",
        "--validation-split",
        "0.1",
        "--checkpoint",
        checkpoint,
        "--resume",
        "--out",
        out,
        "--seed",
        "1",
    )
    assert result.returncode == 0, result.stderr
    assert "epoch 1/2" not in result.stdout  # both epochs were already done
    np.testing.assert_array_equal(mlp.load(out).params[0][0], mlp.load(trained_model[0]).params[0][0])


def test_evaluate_prints_accuracy_report_and_confusion_matrix(trained_model, mnist_dir):
    result = run("evaluate", trained_model[0], "--data", mnist_dir)
    assert result.returncode == 0, result.stderr
    assert "accuracy 0." in result.stdout and "precision" in result.stdout and "recall" in result.stdout
    assert "confusion matrix" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.strip().startswith(tuple("0123456789"))]
    assert len(rows) >= 20  # ten report rows and ten matrix rows


def test_info_describes_the_model(trained_model):
    result = run("info", trained_model[0])
    assert result.returncode == 0, result.stderr
    assert "784 -> 32 relu -> 10 softmax" in result.stdout and "epochs trained: 2" in result.stdout


def test_convert_writes_the_binary_files_the_cpp_port_reads(mnist_dir, tmp_path):
    result = run("convert", mnist_dir, tmp_path / "bin", "--format", "binary")
    assert result.returncode == 0, result.stderr
    X, y = mlp.datasets.read_binary(tmp_path / "bin" / "test.mlpd")
    assert X.shape[0] == 10000 and y.shape == (10000,)


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", "--epochs", "x"], ["--epochs must be an integer >= 0, got 'x'"]),
        (["train", "--hidden", "12,-3"], ["--hidden", "positive"]),
        (["train", "--batch-size", "half"], ["--batch-size"]),
        (["train", "--optimizer", "lbfgs"], ["unknown --optimizer 'lbfgs'; choose one of"]),
        (["train", "--resume"], ["--resume needs --checkpoint"]),
        (["train", "--data", "{empty}"], ["no MNIST data found"]),
        (["train", "--lr", "-1"], ["--lr must be in (0.0, inf), got -1"]),  # before any data is read
        (["train", "--data", "{mnist}", "--device", "tpu", "--limit", "100"], ["--device tpu"]),
        (["evaluate", "{missing}"], ["no such model file"]),
        (["evaluate", "{garbage}"], ["not an .npz file"]),
        (["info", "{garbage}"], ["not an .npz file"]),
        (["convert", "{empty}", "{empty}/out", "--format", "npz"], ["no MNIST data found"]),
        (["frobnicate"], ["invalid choice"]),
    ],
)
def test_bad_flags_and_files_give_one_line_and_a_non_zero_exit(args, fragments, tmp_path, mnist_dir):
    garbage = tmp_path / "garbage.npz"
    garbage.write_text("not a model")
    (tmp_path / "empty").mkdir()
    names = {
        "empty": tmp_path / "empty",
        "missing": tmp_path / "missing.npz",
        "garbage": garbage,
        "mnist": mnist_dir,
    }
    result = run(*[a.format(**names) for a in args])
    assert_one_line_error(result, *fragments)


def test_gpu_without_cupy_says_how_to_get_it_before_reading_data(tmp_path):
    import importlib.util

    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed here: --device gpu may work")
    result = run("train", "--device", "gpu", "--data", tmp_path / "nowhere")
    assert_one_line_error(result, "--device gpu", 'pip install "mlp-from-scratch[gpu]"')
    assert "data:" not in result.stdout


def test_predict_reads_handwritten_digit_pictures(trained_model, mnist_dir, tmp_path):
    from PIL import Image

    _, (X_test, y_test) = mlp.datasets.load_mnist(mnist_dir)
    paths = []
    for index in range(10):
        ink = (X_test[index].reshape(28, 28) * 255).astype(np.uint8)
        paper = Image.fromarray(255 - ink).resize((140, 140))  # dark digit on white paper, larger
        canvas = Image.new("L", (200, 180), color=255)
        canvas.paste(paper, (40, 10))  # off-centre
        path = tmp_path / f"digit{index}.png"
        canvas.save(path)
        paths.append(path)
    result = run("predict", trained_model[0], *paths)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 10 and all("probability" in line for line in lines)
    predicted = [int(line.split(":")[1].split()[0]) for line in lines]
    assert sum(p == t for p, t in zip(predicted, y_test[:10].tolist(), strict=True)) >= 8

    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    assert_one_line_error(run("predict", trained_model[0], not_an_image), "notes.png")


def test_train_with_plot_writes_png_pictures(mnist_dir, tmp_path):
    folder = tmp_path / "pictures"
    result = run(
        "train", "--data", mnist_dir, "--hidden", "16", "--epochs", "1", "--limit", "2000", "--plot", folder
    )
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(
        ["history.png", "predictions.png", "confusion_matrix.png", "mistakes.png", "first_layer.png"]
    )
    for path in folder.iterdir():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
