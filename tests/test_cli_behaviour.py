"""The command line the way people use it: where the model goes, paths checked before training, help
with defaults, --quiet/--engine/--threads, strict parsing, errors that name the subcommand, a short
missing-data message, evaluate reading only the test split, gradient norms printed and plotted."""

import shutil
import time

import pytest

import mlp
from mlp.cli import main
from tests.helpers import REPO_ROOT

QUICK = ["--hidden", "16", "--epochs", "1", "--limit", "2000", "--seed", "0"]


def train(capsys, mnist_dir, *extra):
    code = main(["train", "--data", str(mnist_dir), *QUICK, *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_without_out_saves_to_a_default_file_and_says_where(capsys, mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = train(capsys, mnist_dir)
    assert code == 0
    saved = list((tmp_path / "models").glob("mlp-*.npz"))
    assert len(saved) == 1 and f"model saved to models/{saved[0].name}" in out
    assert mlp.load(saved[0]).hidden_sizes == [16]


def test_a_default_model_folder_that_cannot_be_made_is_one_line_before_training(
    capsys, mnist_dir, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").write_text("a file where the folder would go")
    code, out, err = train(capsys, mnist_dir)
    assert code == 1 and "epoch" not in out
    assert err.startswith("mlp train: error: cannot make the default model folder models/")
    assert "--out PATH or --no-save" in err and len(err.strip().splitlines()) == 1


def test_no_save_keeps_nothing(capsys, mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = train(capsys, mnist_dir, "--no-save")
    assert code == 0 and "model saved" not in out and not (tmp_path / "models").exists()


@pytest.mark.parametrize("flag", ["--out", "--plot", "--checkpoint"])
def test_output_paths_are_checked_before_training(capsys, mnist_dir, tmp_path, flag):
    target = tmp_path / "missing" / "folder" / "thing.npz"
    if flag == "--plot":
        (tmp_path / "a-file").write_text("x")
        target = tmp_path / "a-file"
    started = time.perf_counter()
    code = main(["train", "--data", str(mnist_dir), "--epochs", "50", flag, str(target)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(f"mlp train: error: {flag}") and len(err.strip().splitlines()) == 1
    assert time.perf_counter() - started < 30  # refused up front, not after 50 epochs


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    for fragment in (
        "--engine",
        "--threads",
        "--quiet",
        "--min-delta",
        "--no-shuffle",
        "(default: 25)",
        "(default: adam)",
        "xavier_uniform",
        "(default: auto)",
    ):
        assert fragment in text


def test_quiet_prints_only_where_the_model_went(capsys, mnist_dir, tmp_path):
    code, out, err = train(capsys, mnist_dir, "--quiet", "--out", str(tmp_path / "m.npz"))
    assert code == 0 and err == ""
    assert out.strip().splitlines() == [f"model saved to {tmp_path / 'm.npz'}"]


def test_log_every_zero_prints_no_epoch_lines(capsys, mnist_dir, tmp_path):
    code, out, _ = train(capsys, mnist_dir, "--log-every", "0", "--out", str(tmp_path / "m.npz"))
    assert code == 0 and "epoch 1/1" not in out and "test accuracy" in out


@pytest.mark.parametrize("engine", ["xp", "numba"])
def test_engine_and_threads_flags_train(capsys, mnist_dir, tmp_path, engine):
    code, out, _ = train(
        capsys, mnist_dir, "--engine", engine, "--threads", "1", "--out", str(tmp_path / "m.npz")
    )
    assert code == 0 and "epoch 1/1" in out


@pytest.mark.parametrize("hidden", ["128,,64", "128,", ",64", "12x", "0", "-5"])
def test_hidden_is_parsed_strictly(capsys, hidden):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--hidden", hidden])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith("mlp train: error: --hidden must hold")


@pytest.mark.parametrize(
    "args, says",
    [
        (["--limit", "0"], "--limit must be >= 1, got 0"),
        (["--limit", "ten"], "--limit takes an integer, got 'ten'"),
        (["--epochs", "-1"], "--epochs must be an integer >= 0, got -1"),
        (
            ["--threads", "0"],
            "--threads takes an integer >= 1, got 0 (leave --threads out for one thread per idle core, "
            "decided every epoch); for example --threads 1 keeps training on one core",
        ),
    ],
)
def test_a_bad_flag_value_is_one_line_in_the_same_form(capsys, args, says):
    with pytest.raises(SystemExit) as stop:
        main(["train", *args])
    (line,) = capsys.readouterr().err.splitlines()
    assert stop.value.code == 2 and line.startswith(f"mlp train: error: {says}"), line
    assert "argument --" not in line and "None" not in line


def test_a_resume_mismatch_names_every_option_as_its_flag(capsys, mnist_dir, tmp_path):
    checkpoint = str(tmp_path / "ckpt.npz")
    code, _, err = train(capsys, mnist_dir, "--checkpoint", checkpoint, "--no-save")
    assert code == 0, err
    again = ["--checkpoint", checkpoint, "--resume", "--hidden", "8", "--epochs", "2", "--no-save"]
    code, _, err = train(capsys, mnist_dir, *again)
    (line,) = err.splitlines()
    assert code == 1 and "(--hidden: checkpoint [16], now [8]; --epochs: checkpoint 1, now 2)" in line, line
    assert line.endswith(
        "the number of epochs cannot be changed on resume, not even raised to train longer: resume with "
        "--epochs 1, or train for --epochs 2 from the start with another checkpoint path"
    ), line


def test_an_unknown_flag_names_the_subcommand(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--epoch", "3"])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err.startswith("mlp train: error: unrecognized arguments: --epoch 3") and "mlp train --help" in err


def test_missing_data_error_is_short_and_shows_the_flag_and_the_download_command(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.setenv("MLP_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path))
    code = main(["train", "--data", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and len(err) < 400
    assert "--data" in err and "mlp download" in err and "mlp.datasets" not in err


def test_evaluate_reads_only_the_test_split(capsys, mnist_dir, tmp_path):
    folder = tmp_path / "test-only"
    folder.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(mnist_dir / name, folder / name)
    model_path = tmp_path / "m.npz"
    assert train(capsys, mnist_dir, "--out", str(model_path))[0] == 0
    code = main(["evaluate", str(model_path), "--data", str(folder)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "on 10000 test images" in captured.out


def test_log_gradients_are_printed_and_plotted(capsys, mnist_dir, tmp_path):
    pytest.importorskip("matplotlib", reason="pictures need matplotlib")
    code, out, _ = train(
        capsys,
        mnist_dir,
        "--log-gradients",
        "--plot",
        str(tmp_path / "pictures"),
        "--out",
        str(tmp_path / "m.npz"),
    )
    assert code == 0 and "grad_norm " in out
    assert (tmp_path / "pictures" / "gradients.png").stat().st_size > 1000


def test_seed_is_drawn_printed_and_repeatable(capsys, mnist_dir, tmp_path):
    code, out, _ = train(capsys, mnist_dir, "--out", str(tmp_path / "a.npz"))
    assert code == 0
    model = mlp.load(tmp_path / "a.npz")
    assert model.config["seed"] == 0 and "seed 0" in out
    code = main(
        [
            "train",
            "--data",
            str(mnist_dir),
            "--hidden",
            "16",
            "--epochs",
            "1",
            "--limit",
            "2000",
            "--out",
            str(tmp_path / "b.npz"),
        ]
    )
    out = capsys.readouterr().out
    seed = mlp.load(tmp_path / "b.npz").config["seed"]
    assert code == 0 and f"pass --seed {seed} to repeat this run" in out


def test_gitignore_covers_the_default_outputs():
    ignored = (REPO_ROOT / ".gitignore").read_text().splitlines()
    assert "/models/" in ignored and "/pictures/" in ignored


def test_the_model_records_mnist_preprocessing_only_from_the_command_line(capsys, mnist_dir, tmp_path):
    assert train(capsys, mnist_dir, "--out", str(tmp_path / "m.npz"))[0] == 0
    assert mlp.load(tmp_path / "m.npz").config["preprocessing"]["input"] == "pixels / 255"


def test_a_network_too_big_for_memory_is_one_line_before_training(capsys, mnist_dir, tmp_path):
    code = main(["train", "--data", str(mnist_dir), "--hidden", "10000000", "--out", str(tmp_path / "m.npz")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "GiB" in err and "hidden" in err
    assert not (tmp_path / "m.npz").exists()


def test_no_data_anywhere_and_a_failed_download_is_one_short_line(capsys, tmp_path, monkeypatch):
    """No --data, nothing in $MLP_DATA_DIR or the cache, and every mirror down (here a closed port on
    127.0.0.1): one short line that shows --data and `mlp download`, not the Python-level advice."""
    from mlp import datasets

    monkeypatch.delenv("MLP_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(
        datasets.download, "DEFAULT_MIRRORS", {"mnist": ["http://127.0.0.1:9/"], "fashion-mnist": []}
    )
    code = main(["train", "--epochs", "1", "--no-save"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and len(err) < 300, err
    assert err.startswith("mlp train: error: no MNIST data found and the download failed")
    assert "--data" in err and "mlp download" in err and "load_mnist" not in err
