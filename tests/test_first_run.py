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


def _subcommand(name):
    from mlp.cli import build_parser

    return build_parser()[1][name]


@pytest.mark.parametrize("command", ["train", "download", "evaluate", "predict", "convert", "info"])
def test_every_option_has_help_and_says_its_default_at_most_once(command):
    parser = _subcommand(command)
    formatter = parser._get_formatter()
    for action in parser._actions:
        text = formatter._expand_help(action) if action.help else ""
        assert text.strip(), f"{action.option_strings} has no help"
        assert text.count("(default") <= 1, text
        assert "None" not in text and "True, False" not in text, text  # flags, not Python
        assert f"mlp {command} --help" not in text, text


def test_every_loss_the_help_names_is_accepted():
    from mlp.losses import LOSSES

    parser = _subcommand("train")
    loss = next(action for action in parser._actions if action.dest == "loss")
    named = {name for name in LOSSES if name in loss.help}
    assert named and named <= set(loss.choices)
    for name in loss.choices:
        assert parser.parse_args(["--loss", name]).loss == name


def test_the_recipe_banner_shows_the_settings_of_this_run(capsys, mnist_dir):
    from mlp.cli import main

    flags = ["--data", str(mnist_dir), "--limit", "200", "--no-save", "--seed", "0", "--log-every", "0"]
    assert main(["train", "--recipe", "classic_fullbatch", "--epochs", "2", "--hidden", "16", *flags]) == 0
    banner = capsys.readouterr().out.splitlines()[0]
    assert banner.startswith("recipe classic_fullbatch with --epochs, --hidden: 784-16-10 relu")
    assert banner.endswith(", 2 epochs") and "100" not in banner and "sgd 0.1" in banner


FIT_ONE_EPOCH = (
    "import mlp; from tests.helpers import blobs; X, y = blobs(); "
    "mlp.fit(X, y, hidden_sizes=[4], epochs=1, seed=0, verbose={verbose})"
)


def test_the_first_fit_says_once_that_it_compiles_the_kernels(tmp_path):
    pytest.importorskip("numba")
    import os

    from mlp.training import COMPILING

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}  # nothing compiled there yet
    first = _run("-c", FIT_ONE_EPOCH.format(verbose=1), env=env)
    assert first.returncode == 0, first.stderr
    assert first.stderr.count(COMPILING) == 1 and COMPILING not in first.stdout
    again = _run("-c", FIT_ONE_EPOCH.format(verbose=1), env=env)
    assert again.returncode == 0 and again.stderr == "", again.stderr  # loaded from the cache


def test_the_benchmarks_without_pytest_benchmark_name_the_extra():
    result = _run("-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:benchmark", "bench")
    assert result.returncode != 0
    assert 'the benchmarks need pytest-benchmark: pip install -e ".[bench]"' in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout and "INTERNALERROR" not in result.stdout


def test_an_error_from_fit_names_the_flags(capsys, mnist_dir):
    from mlp.cli import main

    flags = ["--data", str(mnist_dir), "--limit", "100", "--no-save", "--hidden", "4", "--epochs", "1"]
    assert main(["train", *flags, "--loss", "mse", "--label-smoothing", "0.1"]) == 1
    err = capsys.readouterr().err
    assert (
        err
        == "mlp train: error: --label-smoothing works with --loss cross_entropy only, not 'mse'; set it to 0\n"
    )


@pytest.mark.parametrize("flags", [["--progress", "maybe"], ["--lr", "-1"], ["--batch-size", "abc"]])
def test_a_bad_flag_value_is_told_in_flag_words(capsys, flags):
    """The command line says what the flag takes as typed on the command line, not fit's Python."""
    from mlp.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["train", "--no-save", *flags])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"mlp train: error: {flags[0]} ")
    assert "True" not in err and "None" not in err, err
