"""A trained model is never lost: every limit a save can hit is refused before training where it is
known (hidden layers, widths), what only the run decides (the history's size) is shortened at save
time with a warning, and `mlp train` saves first, then scores and plots, so a failure there (or a
test split with labels the training data never held) still leaves the model on disk; when --out
itself cannot be written, a rescue file holds it and the error says where. Also under MPI."""

import errno
import json
import re
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest

import mlp
from mlp import model_file
from mlp.cli import main
from mlp.model_file import MetadataTrimmedWarning
from tests.helpers import blobs


# ---- refused before training: what a model file cannot hold --------------------------------------
@pytest.mark.parametrize(
    ("hidden", "message"),
    [([2] * 1001, "at most 1000 hidden layers"), ([10**8 + 1], "layer widths at most 100,000,000")],
)
def test_fit_refuses_a_network_no_model_file_can_hold_before_training(hidden, message):
    X, y = blobs(n=20, d=3, k=2)
    epochs = []
    with pytest.raises(ValueError, match=re.escape(message)):
        mlp.fit(X, y, hidden_sizes=hidden, epochs=1, callbacks=[lambda *args: epochs.append(args)])
    assert epochs == []
    assert mlp.fit(X, y, hidden_sizes=[2] * 1000, epochs=0).hidden_sizes == [2] * 1000  # the limit itself


def test_mlp_train_refuses_too_many_hidden_layers_in_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "mlp", "train", "--hidden", ",".join(["2"] * 1001), "--no-save"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    err = done.stderr.strip()
    assert (
        err.startswith("mlp train: error: --hidden has 1001 layers") and "at most 1000 hidden layers" in err
    )
    assert "\n" not in err


# ---- shortened at save time: metadata over the format's limit -------------------------------------
def _metadata_bytes(path):
    with zipfile.ZipFile(path) as archive:
        raw = archive.read("metadata.npy")
    return len(raw) - raw.index(b"\n") - 1  # the JSON after the .npy header


@pytest.fixture
def small_limit(monkeypatch):
    """The metadata limit cut to 3,000 bytes, for writer and reader alike (the real 16 MiB takes a
    run of some 200,000 epochs, or a deep net's gradient logs, to fill)."""
    monkeypatch.setattr(model_file, "MAX_METADATA_BYTES", 3000)
    return 3000


def test_gradient_logs_then_the_oldest_epochs_are_left_out_and_the_model_still_saves(small_limit, tmp_path):
    X, y = blobs(n=40, d=3, k=2)
    model = mlp.fit(X, y, hidden_sizes=[4, 4, 4], epochs=12, seed=0, log_gradients=True)
    with pytest.warns(
        MetadataTrimmedWarning, match=r"written without the per-layer logs history\['grad_norm'"
    ):
        model.save(tmp_path / "logged.npz")
    loaded = mlp.load(tmp_path / "logged.npz")
    assert "grad_norm" not in loaded.history and loaded.history["epoch"] == list(range(1, 13))
    assert _metadata_bytes(tmp_path / "logged.npz") <= small_limit

    model.history = {key: values * 40 for key, values in model.history.items() if key != "grad_norm"}
    model.history["epoch"] = list(range(1, len(model.history["epoch"]) + 1))
    with pytest.warns(MetadataTrimmedWarning, match=r"the oldest [0-9,]+ of 480 epochs of history"):
        model.save(tmp_path / "long.npz")
    kept = mlp.load(tmp_path / "long.npz").history["epoch"]
    assert 0 < len(kept) < 480 and kept[-1] == 480 and kept == list(range(481 - len(kept), 481))
    assert small_limit - 200 < _metadata_bytes(tmp_path / "long.npz") <= small_limit  # as many as fit


def test_a_checkpoint_with_too_much_history_is_still_written_and_resumable(small_limit, tmp_path):
    X, y = blobs(n=40, d=3, k=2)
    options = dict(hidden_sizes=[4] * 6, epochs=12, seed=0, log_gradients=True, checkpoint=tmp_path / "c.npz")
    with pytest.warns(MetadataTrimmedWarning, match="checkpoint .* written without the per-layer logs"):
        mlp.fit(X, y, **options, callbacks=[lambda epoch, logs, model: epoch == 6])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetadataTrimmedWarning)
        resumed = mlp.fit(X, y, **options, resume=True)
    assert resumed.history["epoch"][-1] == 12  # went on from epoch 6 to 12


def test_mlp_train_warns_in_one_line_and_saves_a_readable_model(small_limit, mnist_dir, tmp_path, capsys):
    out, checkpoint = tmp_path / "m.npz", tmp_path / "c.npz"
    args = ["train", "--data", mnist_dir, "--limit", "300", "--epochs", "8", "--hidden", "8,8,8,8,8,8,8,8"]
    args += ["--log-gradients", "--progress", "no", "-q", "--out", out, "--checkpoint", checkpoint]
    assert main(list(map(str, args))) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2, err  # the checkpoint's once (not after every epoch), then the model's
    assert err[0].startswith(f"mlp train: warning: checkpoint {checkpoint}: the metadata was over")
    assert err[1].startswith(f"mlp train: warning: model file {out}: the metadata was over")
    assert "grad_norm" not in mlp.load(out).history


# ---- mlp train: save first; whatever fails afterwards, the model is on disk -----------------------
def _train(mnist_dir, *extra, limit=300):
    return [
        "train", "--data", str(mnist_dir), "--limit", str(limit), "--epochs", "1", "--hidden", "8",
        "--progress", "no", "--seed", "0", *map(str, extra),
    ]  # fmt: skip


@pytest.mark.slow
def test_a_training_split_missing_classes_is_scored_on_what_it_can_and_saved(mnist_dir, tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert main(_train(mnist_dir, "--out", out, limit=3)) == 0
    printed = capsys.readouterr().out
    assert f"model saved to {out}" in printed
    assert re.search(
        r"test accuracy [0-9.]+ on the [0-9]+ of 10000 test images whose labels the training", printed
    )
    assert "never appeared in it" in printed
    model = mlp.load(out)
    assert len(model.classes_) < 10


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["score", "plot"])
def test_a_failure_in_scoring_or_plotting_keeps_the_saved_model(
    stage, mnist_dir, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "m.npz"

    def fail(*args, **kwargs):
        raise RuntimeError(f"{stage} broke")

    extra = []
    if stage == "score":
        monkeypatch.setattr(mlp.MLP, "score", fail)
    else:
        pytest.importorskip("matplotlib")
        monkeypatch.setattr("mlp.plots.write_all", fail)
        extra = ["--plot", tmp_path / "pictures"]
    assert main(_train(mnist_dir, "--out", out, *extra)) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{stage} broke (the model is saved in {out})" in err
    assert mlp.load(out).n_features_in_ == 784


@pytest.mark.slow
def test_when_the_out_folder_vanishes_during_training_a_rescue_file_keeps_the_model(
    mnist_dir, tmp_path, capsys, monkeypatch
):
    folder = tmp_path / "vanishing"
    folder.mkdir()
    out = folder / "m.npz"
    real_fit = mlp.fit

    def fit_then_remove_the_folder(*args, **kwargs):
        model = real_fit(*args, **kwargs)
        shutil.rmtree(folder)
        return model

    monkeypatch.setattr(mlp, "fit", fit_then_remove_the_folder)
    monkeypatch.chdir(tmp_path)
    assert main(_train(mnist_dir, "--out", out)) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"cannot write model file {out}: the folder does not exist" in err
    rescued = Path(re.search(r"the trained model was saved to (\S+) instead", err)[1])
    assert rescued.parent == Path(".") or rescued.parent == tmp_path
    assert mlp.load(tmp_path / rescued.name).n_features_in_ == 784


@pytest.mark.slow
def test_a_full_disk_at_the_end_puts_the_model_in_a_rescue_file_beside_out(
    mnist_dir, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "m.npz"
    real_save = mlp.MLP.save

    def save(self, path):
        if Path(path) == out:
            raise OSError(errno.ENOSPC, f"cannot write model file {out}: No space left on device")
        return real_save(self, path)

    monkeypatch.setattr(mlp.MLP, "save", save)
    assert main(_train(mnist_dir, "--out", out)) == 1
    err = capsys.readouterr().err.strip()
    rescued = Path(re.search(r"the trained model was saved to (\S+) instead", err)[1])
    assert rescued.parent == tmp_path and rescued.name.startswith("m.rescued-")
    assert mlp.load(rescued).n_features_in_ == 784 and not out.exists()
    with zipfile.ZipFile(rescued) as archive:  # the whole model: history and config kept
        raw = archive.read("metadata.npy")
    assert json.loads(raw[raw.index(b"\n") + 1 :])["history"]["epoch"] == [1]


def _small_model():
    X, y = blobs(n=20, d=3, k=2)
    return mlp.fit(X, y, hidden_sizes=[2], epochs=1, verbose=0)


def test_when_no_rescue_file_can_be_written_the_line_names_what_was_tried(tmp_path, monkeypatch):
    from mlp import cli

    out = tmp_path / "m.npz"
    copies = []

    def no_save(self, path):
        raise OSError(f"cannot write model file {path}: No space left on device")

    def no_copy(model, **kwargs):
        copies.append(kwargs)
        raise MemoryError("no memory for a copy")

    monkeypatch.setattr(mlp.MLP, "save", no_save)
    monkeypatch.setattr(cli, "_host_copy", no_copy)
    monkeypatch.chdir(tmp_path)
    model = _small_model()
    with pytest.raises(cli.CommandError) as info:
        cli._save_trained(model, str(out))
    message = str(info.value)
    assert "\n" not in message and message.endswith("the model is lost")
    assert message.startswith(f"cannot write model file {out}: No space left on device; no rescue file")
    assert message.endswith(
        "; a copy without history and config failed: no memory for a copy): the model is lost"
    )
    assert f"(tried {tmp_path / 'm.rescued-'}" in message  # beside --out (here also the current folder)
    assert message.count("m.rescued-") == 2  # ... and in the temporary folder
    assert len(copies) == 1  # built lazily, and once, not once per folder


def test_the_copy_for_a_rescue_is_made_only_when_needed(tmp_path, monkeypatch):
    from mlp import cli

    out = tmp_path / "m.npz"
    real_save = mlp.MLP.save
    copies = []

    def save(self, path):
        if Path(path) == out:
            raise OSError(f"cannot write model file {out}: No space left on device")
        return real_save(self, path)

    monkeypatch.setattr(mlp.MLP, "save", save)
    monkeypatch.setattr(cli, "_host_copy", lambda *a, **k: copies.append(k))
    with pytest.raises(cli.CommandError, match=r"the trained model was saved to (\S+) instead") as info:
        cli._save_trained(_small_model(), str(out))
    rescued = Path(re.search(r"saved to (\S+) instead", str(info.value))[1])
    assert rescued.parent == tmp_path and mlp.load(rescued).n_features_in_ == 3
    assert copies == []  # the whole model went into the rescue file: no copy was made


# ---- the same over MPI: rank 0 saves first ----------------------------------------------------------
@pytest.mark.slow
def test_mpiexec_mlp_train_with_a_split_missing_classes_saves_the_model(mnist_dir, tmp_path):
    from tests.test_mpi import _launch

    out = tmp_path / "m.npz"
    done = _launch([sys.executable, "-m", "mlp", *_train(mnist_dir, "--out", out, limit=4)], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("model saved to") == 1 and done.stdout.count("never appeared in it") == 1
    assert "Traceback" not in done.stderr
    assert len(mlp.load(out).classes_) < 10
