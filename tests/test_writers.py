"""Every writer of the command line and the API against what may already be at its path.

The writers, read off the code (everything that writes goes through mlp._files: atomic_write,
temporary_path, make_folder, refuse_special): `mlp train --out / --checkpoint / --plot` (and the
default models/ folder), `mlp convert` (npz, idx, csv, binary), `mlp download --to`; `MLP.save`,
`fit(checkpoint=...)`, the estimators' `model_.save`, every `mlp.plots` function's `path` and
`write_all`'s folder, `mlp.datasets.convert`, `mlp.datasets.download_mnist`. `mlp evaluate`,
`mlp predict` and `mlp info` write nothing.

Each is pointed at a user's file, a FIFO, a folder and (as root) a private device node made with
os.mknod, and must refuse it with one line naming the path, never block (a FIFO opened for writing
waits for a reader: every call here runs under a timeout), and leave the thing exactly as it was. A
writer replaces only a file of its own kind (a model, a checkpoint being resumed, a PNG, the data
format being written), atomically; that is checked at the end.
"""

import errno
import os
import re
import stat
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import mlp
from mlp._files import OutputPathError
from tests.helpers import REPO_ROOT, blobs

TIMEOUT = 120  # seconds for one command; a writer that blocks on a FIFO fails here instead of hanging
USER_BYTES = b"my notes, not to be overwritten\n"
IDX_FIRST = "train-images-idx3-ubyte"  # the first file download and convert write


# ---- the things in the way, and what they looked like before -------------------------------------
def _make(kind, path):
    if kind == "file":
        path.write_bytes(USER_BYTES)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
        (path / "inside.txt").write_bytes(USER_BYTES)
    elif kind == "device":  # a private node with /dev/null's numbers: harmless even if written to
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            pytest.skip("making a device node needs root")
        try:
            os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("this container may not make device nodes")
    return _look(path)


def _look(path):
    """What is at `path`: its kind, and its bytes, listing or device numbers."""
    info = os.lstat(path)
    if stat.S_ISREG(info.st_mode):
        return ("file", path.read_bytes())
    if stat.S_ISDIR(info.st_mode):
        return ("folder", sorted((p.name, p.read_bytes()) for p in path.iterdir()))
    if stat.S_ISFIFO(info.st_mode):
        return ("fifo", None)
    return ("device", info.st_rdev)


def _no_temporaries(folder):
    assert not [p.name for p in folder.iterdir() if ".mlp-" in p.name], list(folder.iterdir())


def _refusal_phrases(kind):
    return {
        "file": ("exists and is not",),
        "fifo": ("is not a regular file (it is a FIFO)",),
        "folder": ("is a folder",),
        "device": ("is not a regular file (it is a device)",),
    }[kind]


# ---- running a writer: the CLI in a subprocess, the API in a thread, both with a timeout ----------
def _cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    try:
        return subprocess.run(
            [sys.executable, "-m", "mlp", *map(str, args)],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"mlp {' '.join(map(str, args))} blocked for {TIMEOUT}s (writing into a FIFO?)")


def _api(call, fifo=None):
    """call() in a daemon thread: the exception it raised (None when it returned)."""
    outcome = {}

    def run():
        try:
            call()
        except BaseException as error:  # handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    if thread.is_alive():
        if fifo is not None:  # let the blocked writer go
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        pytest.fail(f"the writer blocked for {TIMEOUT}s (writing into a FIFO?)")
    return outcome.get("error")


def _assert_cli_refused(done, target, kind):
    assert done.returncode != 0, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert str(target) in lines[0] and any(p in lines[0] for p in _refusal_phrases(kind)), lines[0]


def _assert_api_refused(error, target, kind):
    assert isinstance(error, (OSError, ValueError)), repr(error)
    assert isinstance(error, OutputPathError), repr(error)
    text = str(error)
    assert "\n" not in text and str(target) in text, text
    assert any(p in text for p in _refusal_phrases(kind)), text


# ---- a small trained model and data for the API writers ------------------------------------------
@pytest.fixture(scope="module")
def small():
    X, y = blobs(n=60, d=4, k=3)
    return mlp.fit(X, y, hidden_sizes=[3], epochs=1, seed=0), X, y


def _plot_writers():
    plots = pytest.importorskip("mlp.plots")
    pytest.importorskip("matplotlib")

    def images(model, X, y):
        X16 = np.tile(X, (1, 4))[:, :16]
        return mlp.fit(X16, y, hidden_sizes=[3], epochs=1, seed=0), X16

    return {
        "plot_history": lambda m, X, y, p: plots.plot_history(m.history, p),
        "plot_gradient_norms": lambda m, X, y, p: plots.plot_gradient_norms(
            {"grad_norm": [[1.0, 2.0]], "epoch": [1]}, p
        ),
        "plot_predictions": lambda m, X, y, p: plots.plot_predictions(
            *images(m, X, y), y, p, n=4, image_shape=(4, 4)
        ),
        "plot_confusion_matrix": lambda m, X, y, p: plots.plot_confusion_matrix(m, X, y, p),
        "plot_confident_mistakes": lambda m, X, y, p: plots.plot_confident_mistakes(
            *images(m, X, y), y, p, n=4, image_shape=(4, 4)
        ),
        "plot_first_layer_weights": lambda m, X, y, p: plots.plot_first_layer_weights(
            images(m, X, y)[0], p, n=3, image_shape=(4, 4)
        ),
    }


KINDS = ["file", "fifo", "folder", "device"]
API_FILE_WRITERS = [
    "MLP.save",
    "fit(checkpoint=)",
    "fit(checkpoint=, resume=True)",
    "MLPClassifier.model_.save",
    "convert npz",
    "convert binary",
    "download_mnist",
    "plot_history",
    "plot_gradient_norms",
    "plot_predictions",
    "plot_confusion_matrix",
    "plot_confident_mistakes",
    "plot_first_layer_weights",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("writer", API_FILE_WRITERS)
def test_api_writers_refuse_what_is_in_the_way_and_leave_it_alone(writer, kind, small, tmp_path, mnist_dir):
    model, X, y = small
    folder = tmp_path / "out"
    folder.mkdir()
    name = {
        "convert npz": "mnist.npz",
        "convert binary": "train.mlpd",
        "download_mnist": IDX_FIRST,
    }.get(writer, "target.png" if writer.startswith("plot_") else "target.npz")
    target = folder / name
    before = _make(kind, target)
    if writer == "MLP.save":
        call = lambda: model.save(target)  # noqa: E731
    elif writer.startswith("fit(checkpoint="):
        resume = "resume" in writer
        call = lambda: mlp.fit(X, y, hidden_sizes=[3], epochs=1, seed=0, checkpoint=target, resume=resume)  # noqa: E731
    elif writer == "MLPClassifier.model_.save":
        from mlp.estimators import MLPClassifier

        with warnings.catch_warnings():  # two iterations do not converge, as intended
            warnings.simplefilter("ignore")
            estimator = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(X, y)
        call = lambda: estimator.model_.save(target)  # noqa: E731
    elif writer.startswith("convert"):
        fmt = writer.split()[1]
        call = lambda: mlp.datasets.convert(mnist_dir, target if fmt == "npz" else folder, fmt)  # noqa: E731
    elif writer == "download_mnist":
        call = lambda: mlp.datasets.download_mnist(  # noqa: E731
            folder, mirrors=["http://127.0.0.1:9/"], use_default_mirrors=False, timeout=5, deadline=10
        )
    else:
        draw = _plot_writers()[writer]
        call = lambda: draw(model, X, y, target)  # noqa: E731
    error = _api(call, fifo=target if kind == "fifo" else None)
    _assert_api_refused(error, target, kind)
    assert _look(target) == before
    _no_temporaries(folder)


CLI_FILE_WRITERS = [
    "train --out",
    "train --checkpoint",
    "train --plot",
    "convert npz",
    "convert binary",
    "download --to",
]


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("writer", CLI_FILE_WRITERS)
def test_cli_writers_refuse_what_is_in_the_way_and_leave_it_alone(writer, kind, tmp_path, mnist_dir):
    folder = tmp_path / "out"
    folder.mkdir()
    name = {
        "train --plot": "history.png",
        "convert npz": "mnist.npz",
        "convert binary": "train.mlpd",
        "download --to": IDX_FIRST,
    }.get(writer, "target.npz")
    target = folder / name
    before = _make(kind, target)
    train = [
        "train",
        "--data",
        mnist_dir,
        "--limit",
        "200",
        "--epochs",
        "1",
        "--hidden",
        "4",
        "--progress",
        "no",
    ]
    args = {
        "train --out": [*train, "--out", target],
        "train --checkpoint": [*train, "--no-save", "--checkpoint", target],
        "train --plot": [*train, "--no-save", "--plot", folder],
        "convert npz": ["convert", mnist_dir, target, "--format", "npz"],
        "convert binary": ["convert", mnist_dir, folder, "--format", "binary"],
        "download --to": ["download", "--to", folder],
    }[writer]
    if writer == "train --plot":
        pytest.importorskip("matplotlib")
    # download --to needs no network: its first file is refused before any mirror is tried
    done = _cli(*args, cwd=tmp_path)
    _assert_cli_refused(done, target, kind)
    assert "data:" not in done.stdout  # refused before any data was read, let alone trained on
    assert _look(target) == before
    _no_temporaries(folder)


FOLDER_WRITERS = [
    "train --plot",
    "convert idx",
    "convert csv",
    "download --to",
    "default models/",
    "write_all",
]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["file", "fifo", "device"])
@pytest.mark.parametrize("writer", FOLDER_WRITERS)
def test_writers_of_a_folder_refuse_a_file_fifo_or_device_there(writer, kind, small, tmp_path, mnist_dir):
    target = tmp_path / ("models" if writer == "default models/" else "pictures")
    before = _make(kind, target)
    if writer == "write_all":
        plots = pytest.importorskip("mlp.plots")
        pytest.importorskip("matplotlib")
        model, X, y = small
        error = _api(lambda: plots.write_all(model, X, y, target, image_shape=(2, 2)))
        assert isinstance(error, OutputPathError) and str(target) in str(error), repr(error)
    else:
        args = {
            "train --plot": ["train", "--data", mnist_dir, "--no-save", "--plot", target],
            "convert idx": ["convert", mnist_dir, target, "--format", "idx"],
            "convert csv": ["convert", mnist_dir, target, "--format", "csv"],
            "download --to": ["download", "--to", target],
            "default models/": ["train", "--data", mnist_dir, "--limit", "50", "--epochs", "1"],
        }[writer]
        if writer == "train --plot":
            pytest.importorskip("matplotlib")
        done = _cli(*args, cwd=tmp_path)
        assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr and target.name in done.stderr, done.stderr
        assert ("not a regular file" if kind != "file" else "is not a folder") in done.stderr, done.stderr
    assert _look(target) == before


# ---- what a writer may replace: a file of its own kind, atomically ------------------------------
def test_each_writer_replaces_only_a_file_of_its_own_kind(small, tmp_path, mnist_dir):
    model, X, y = small
    other = mlp.fit(X, y, hidden_sizes=[5], epochs=1, seed=1)
    path = other.save(tmp_path / "model.npz")
    model.save(path)  # a model over a model: replaced
    assert mlp.load(path).hidden_sizes == [3]

    checkpoint = tmp_path / "run.npz"
    options = dict(hidden_sizes=[3], epochs=2, seed=0, checkpoint=checkpoint)
    mlp.fit(X, y, **options, callbacks=[lambda epoch, logs, m: epoch == 1])
    with pytest.raises(
        OutputPathError, match=re.escape("already holds a training checkpoint; pass resume=True")
    ):
        mlp.fit(X, y, **options)
    resumed = mlp.fit(X, y, **options, resume=True)  # continued, as asked
    assert len(resumed.history["loss"]) == 2
    with pytest.raises(
        OutputPathError, match=re.escape("exists and is not an mlp model file (it holds an mlp training")
    ):
        model.save(checkpoint)  # a model never replaces a checkpoint
    with pytest.raises(
        OutputPathError, match=re.escape("exists and is not an mlp checkpoint (it holds an mlp model")
    ):
        mlp.fit(X, y, **{**options, "checkpoint": path}, resume=True)

    written = mlp.datasets.convert(mnist_dir, tmp_path / "data", "binary")
    assert written == mlp.datasets.convert(mnist_dir, tmp_path / "data", "binary")  # a rerun replaces its own
    with pytest.raises(OutputPathError, match=re.escape("exists and is not a Keras-style MNIST .npz")):
        mlp.datasets.convert(mnist_dir, path, "npz")  # never a trained model
    assert mlp.load(path).hidden_sizes == [3]

    plots = pytest.importorskip("mlp.plots")
    pytest.importorskip("matplotlib")
    picture = tmp_path / "h.png"
    plots.plot_history(model.history, picture)
    plots.plot_history(model.history, picture)  # a PNG over a PNG
    assert picture.read_bytes().startswith(b"\x89PNG")
    _no_temporaries(tmp_path)


# ---- a symbolic link at the path: it stays, and the file it names is what is written -------------
def test_a_link_at_the_path_stays_and_the_file_it_names_is_replaced(small, tmp_path):
    """`MLP.save("link.npz")` with link.npz -> m.npz used to leave a plain file where the link was
    (os.replace on the link's path). Now the link stays and the file it names is replaced; the
    own-kind and non-regular checks apply to that file; a dangling link gets its file written."""
    model, X, y = small
    real = mlp.fit(X, y, hidden_sizes=[5], epochs=1, seed=1).save(tmp_path / "m.npz")
    link = tmp_path / "link.npz"
    link.symlink_to("m.npz")
    model.save(link)
    assert link.is_symlink() and os.readlink(link) == "m.npz"
    assert mlp.load(real).hidden_sizes == [3]

    elsewhere = tmp_path / "elsewhere"  # the temporary file goes beside the target, not the link
    elsewhere.mkdir()
    across = tmp_path / "across.npz"
    across.symlink_to(elsewhere / "model.npz")
    model.save(across)  # a dangling link: the file it names is written
    assert across.is_symlink() and mlp.load(elsewhere / "model.npz").hidden_sizes == [3]
    model.save(across)  # and replaced, through the link, the next time
    assert across.is_symlink() and mlp.load(across).hidden_sizes == [3]

    notes = tmp_path / "notes.txt"
    notes.write_bytes(USER_BYTES)
    to_notes = tmp_path / "notes.npz"
    to_notes.symlink_to(notes)
    with pytest.raises(OutputPathError) as info:
        model.save(to_notes)
    message = f"model file {to_notes} exists and is not an mlp model file (it holds something else)"
    assert str(info.value) == message + "; give another path or delete it"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    to_fifo = tmp_path / "fifo.npz"
    to_fifo.symlink_to(fifo)
    error = _api(lambda: model.save(to_fifo), fifo=fifo)
    assert str(error) == f"model file {to_fifo} is not a regular file (it is a FIFO); give another path"
    assert notes.read_bytes() == USER_BYTES and to_notes.is_symlink() and to_fifo.is_symlink()
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    _no_temporaries(tmp_path)
    _no_temporaries(elsewhere)


# ---- a failed write names the file ----------------------------------------------------------------
@pytest.mark.parametrize("where", ["write", "fsync"])
def test_a_full_disk_while_checkpointing_names_the_checkpoint(where, tmp_path, monkeypatch):
    X, y = blobs(n=60, d=4, k=3)
    checkpoint = tmp_path / "run.npz"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if where == "write":
        monkeypatch.setattr("mlp.model_file.np.savez", full)
    else:
        monkeypatch.setattr("mlp._files.os.fsync", full)
    with pytest.raises(OSError) as info:
        mlp.fit(X, y, hidden_sizes=[3], epochs=1, seed=0, checkpoint=checkpoint)
    assert str(info.value) == f"cannot write checkpoint {checkpoint}: No space left on device"
    assert info.value.errno == errno.ENOSPC
    assert not checkpoint.exists()
    _no_temporaries(tmp_path)


def test_a_file_size_limit_names_the_file_in_one_line_on_the_command_line(tmp_path, mnist_dir):
    pytest.importorskip("resource")
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, resource.RLIM_INFINITY))\n"
        "from mlp.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    checkpoint = tmp_path / "run.npz"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache-unused"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script, "train", "--data", mnist_dir, "--limit", "100", "--epochs", "1",
         "--hidden", "64", "--no-save", "--progress", "no", "--checkpoint", checkpoint, "--engine", "xp"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.strip() == f"mlp train: error: cannot write checkpoint {checkpoint}: File too large"
    assert not checkpoint.exists()
    _no_temporaries(tmp_path)


@pytest.mark.slow
def test_mlp_train_checkpoint_refuses_anything_but_a_checkpoint_it_was_told_to_resume(tmp_path, mnist_dir):
    train = ["train", "--data", mnist_dir, "--limit", "200", "--epochs", "1", "--hidden", "4"]
    train += ["--progress", "no", "--seed", "0", "--no-save"]
    keras = mlp.datasets.convert(mnist_dir, tmp_path / "mnist.npz", "npz")[0]
    model = mlp.fit(*blobs(n=20, d=3, k=2), hidden_sizes=[2], epochs=1).save(tmp_path / "model.npz")
    for path, holds in ((keras, "something else"), (model, "an mlp model")):
        before = path.read_bytes()
        for resume in ([], ["--resume"]):
            done = _cli(*train, "--checkpoint", path, *resume, cwd=tmp_path)
            _assert_cli_refused(done, path, "file")
            assert f"is not an mlp checkpoint (it holds {holds}); give another path" in done.stderr
            assert "data:" not in done.stdout  # refused before any data was read
        assert path.read_bytes() == before

    checkpoint = tmp_path / "run.npz"
    assert _cli(*train, "--checkpoint", checkpoint, cwd=tmp_path).returncode == 0
    before = checkpoint.read_bytes()
    done = _cli(*train, "--checkpoint", checkpoint, cwd=tmp_path)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "already holds a training checkpoint; pass --resume to continue it or remove it" in done.stderr
    assert checkpoint.read_bytes() == before
    done = _cli(*train, "--checkpoint", checkpoint, "--resume", cwd=tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("where", ["download", "unpack"])
def test_a_full_disk_while_downloading_names_the_file_and_tries_no_other_mirror(
    where, tmp_path, monkeypatch, mnist_dir
):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if where == "download":  # writing the downloaded bytes to the temporary .part file
        monkeypatch.setattr("mlp.datasets.download._copy_response", full)
    else:  # writing the unpacked, verified file into place
        monkeypatch.setattr("mlp._files.os.fsync", full)
    folder = tmp_path / "cache"
    mirror = Path(mnist_dir).resolve().as_uri() + "/"
    with pytest.raises(OSError) as info:
        mlp.datasets.download_mnist(folder, mirrors=[mirror], use_default_mirrors=False, split="test")
    assert str(info.value) == f"cannot write {folder / 't10k-images-idx3-ubyte'}: No space left on device"
    assert info.value.errno == errno.ENOSPC and not isinstance(info.value, mlp.datasets.DownloadError)
    assert sorted(p.name for p in folder.iterdir()) == []  # no temporary or partial file left
