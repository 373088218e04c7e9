"""What a new user sees in the first hour: progress bars only on a terminal, early stopping that says
what it did, runnable module entry points with a quiet stderr, and --help that agrees with the parser."""

import subprocess
import sys

import pytest

import mlp
from tests.helpers import REPO_ROOT, blobs


def _run(*args, **kwargs):
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300, **kwargs
    )


def test_auto_progress_draws_no_bar_into_a_redirected_stderr(capsys):
    pytest.importorskip("tqdm")
    X, y = blobs()
    mlp.fit(X, y, hidden_sizes=[8], epochs=2, batch_size=16, seed=0, progress="auto")
    assert capsys.readouterr().err == ""


def test_train_with_stderr_in_a_pipe_prints_no_progress_bar(mnist_dir, tmp_path):
    pytest.importorskip("tqdm")
    result = _run(
        "-m", "mlp", "train", "--data", str(mnist_dir), "--limit", "256", "--epochs", "2", "--hidden", "8",
        "--no-save", "--seed", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "epoch 1/2" in result.stdout
    assert "step/s" not in result.stderr and "\r" not in result.stderr and "epoch" not in result.stderr


def _stopping_run(capsys, **options):
    X, y = blobs(300)
    model = mlp.fit(
        X, y, hidden_sizes=[8], epochs=60, early_stopping=True, patience=2, min_delta=0.5,
        validation_split=0.2, learning_rate=0.05, seed=0, **options,
    )  # fmt: skip
    return model, capsys.readouterr().out


def test_early_stopping_says_where_it_stopped_and_which_weights_it_kept(capsys):
    model, out = _stopping_run(capsys, verbose=10)
    trained = len(model.history["loss"])
    assert trained < 60
    last = out.strip().splitlines()[-1]
    assert last == (
        f"early stopping at epoch {trained}: val_loss has not improved for 2 epochs; "
        f"restored the weights of epoch {model.best_epoch} (val_loss "
        f"{model.history['val_loss'][model.best_epoch - 1]:.4f})"
    )
    assert _stopping_run(capsys, verbose=0)[1] == ""


def test_python_m_mlp_options_keeps_stderr_empty():
    result = _run("-m", "mlp.options")
    assert result.returncode == 0 and result.stderr == ""
    assert "hidden_sizes" in result.stdout
    header = _run("-m", "mlp.options", "--cpp-header")
    assert header.returncode == 0 and header.stderr == ""
    assert header.stdout == (REPO_ROOT / "cpp" / "src" / "train_defaults.hpp").read_text()
