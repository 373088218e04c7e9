"""The process's surroundings never end a command in a traceback or a hang: no writable cache for the
compiled kernels, bad environment variables, a full disk or a closed pipe on stdout, an ASCII-only
terminal, a FIFO where an image should be.

Most tests run `python -m mlp` in a subprocess, since what they check happens at import or at exit.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO_ROOT

numba = pytest.importorskip("numba")


def _env(**changes):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "MLP_MEMORY"))}
    env.pop("PYTHONIOENCODING", None)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _mlp(*args, env=None, timeout=120, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "mlp", *args],
        env=_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def _one_line(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


# ---- no writable cache for the compiled kernels -----------------------------------------------------
TRAIN_ONE_EPOCH = (
    "import numpy as np, mlp; from tests.helpers import blobs; X, y = blobs(); "
    "m = mlp.fit(X.astype(np.float32), y, hidden_sizes=[8], epochs=1, engine='numba', seed=0); "
    "print('trained', m.score(X.astype(np.float32), y) > 0.5)"
)


HELP_COMPILES = (  # `mlp --help` in-process, then how many kernel signatures were compiled
    "import contextlib, mlp_kernels.unchecked as u\nfrom mlp.cli import main\n"
    "with contextlib.suppress(SystemExit):\n    main(['--help'])\n"
    "print('compiled', sum(len(getattr(u, name).signatures) for name in u.__all__))"
)


@pytest.mark.skipif(
    not hasattr(numba.config, "CACHE_LOCATOR_CLASSES"), reason="this Numba cannot restrict its cache locators"
)
def test_no_writable_cache_folder_is_a_one_line_warning_not_a_crash(tmp_path):
    # Numba looks for a cache folder through its locators; pointing the only one allowed at a path
    # below a file leaves none, which is what a read-only install under a user without HOME meets.
    (tmp_path / "a-file").write_text("")
    env = _env(
        NUMBA_CACHE_LOCATOR_CLASSES="UserProvidedCacheLocator",
        NUMBA_CACHE_DIR=str(tmp_path / "a-file" / "cache"),
        PYTHONPATH=str(REPO_ROOT),
    )
    result = _mlp("--help", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: mlp")
    note = _one_line(result.stderr)
    assert "KernelCacheWarning" in note and "NUMBA_CACHE_DIR" in note
    helped = subprocess.run(
        [sys.executable, "-c", HELP_COMPILES], env=env, capture_output=True, text=True, timeout=120
    )
    assert helped.stdout.strip().splitlines()[-1] == "compiled 0", helped.stderr
    trained = subprocess.run(
        [sys.executable, "-c", TRAIN_ONE_EPOCH],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert trained.stdout.strip() == "trained True"
    assert trained.stderr.count("KernelCacheWarning") == 1


def _read_only_copy(base):
    """mlp and mlp_kernels copied into a folder nobody may write to (sources only)."""
    root = base / "site"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO_ROOT / "mlp", root / "mlp", ignore=ignore)
    shutil.copytree(REPO_ROOT / "kernels", root / "mlp_kernels", ignore=ignore)
    for folder, _dirs, files in os.walk(root):
        for name in files:
            os.chmod(os.path.join(folder, name), 0o444)
        os.chmod(folder, 0o555)
    return root


@pytest.mark.skipif(not hasattr(os, "setuid") or os.geteuid() != 0, reason="needs root to become nobody")
def test_an_unprivileged_user_without_home_runs_a_read_only_install():
    base = Path(tempfile.mkdtemp())  # pytest's own folders are private to root
    os.chmod(base, 0o755)
    try:
        _run_as_nobody(_read_only_copy(base))
    finally:
        for folder, _dirs, _files in os.walk(base):
            os.chmod(folder, 0o755)
        shutil.rmtree(base)


def _run_as_nobody(root):
    env = _env(HOME="/nonexistent", PYTHONPATH=str(root), XDG_CACHE_HOME=None, PYTHONDONTWRITEBYTECODE="1")

    def become_nobody():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)

    def run(*args):
        return subprocess.run(
            [sys.executable, *args],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=300,
            preexec_fn=become_nobody,
        )

    try:
        where = run("-c", "import mlp, mlp_kernels; print(mlp.__file__); print(mlp_kernels.__file__)")
    except PermissionError as error:  # the interpreter itself lives where nobody may not go
        pytest.skip(f"user nobody cannot run {sys.executable}: {error}")
    if where.returncode != 0 or not all(line.startswith(str(root)) for line in where.stdout.split()):
        pytest.skip(f"user nobody cannot run this interpreter on the copy: {where.stderr[-300:]}")
    helped = run("-m", "mlp", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "KernelCacheWarning" in _one_line(helped.stderr)
    code = (
        "import numpy as np, mlp; rng = np.random.default_rng(0); X = rng.random((64, 5), np.float32); "
        "y = (X[:, 0] > 0.5).astype(np.int64); "
        "m = mlp.fit(X, y, hidden_sizes=[4], epochs=1, engine='numba', seed=0); print(m.layer_sizes)"
    )
    trained = run("-c", code)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert trained.stdout.strip() == "[5, 4, 2]"


# ---- environment variables --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, value, says",
    [
        ("MLP_MEMORY_LIMIT", "1e400", "is not a number of bytes"),
        ("MLP_MEMORY_LIMIT", "nan", "is not a number of bytes"),
        ("MLP_MEMORY_LIMIT", "lots", "is not a number of bytes"),
        ("MLP_MEMORY_LIMIT", "-5", "must be a non-negative number of bytes"),
        ("NUMBA_NUM_THREADS", "0", "is not a positive integer"),
        ("NUMBA_NUM_THREADS", "-2", "is not a positive integer"),
        ("NUMBA_NUM_THREADS", "many", "is not a positive integer"),
        ("MLP_DATA_DIR", "{file}", "is a file, not a folder"),
    ],
)
def test_a_bad_environment_variable_is_one_line_and_exit_2(tmp_path, name, value, says):
    (tmp_path / "notes.txt").write_text("not data")
    value = value.format(file=tmp_path / "notes.txt")
    result = _mlp("info", str(tmp_path / "model.npz"), env=_env(**{name: value}))
    assert result.returncode == 2, result.stderr
    line = _one_line(result.stderr)
    assert line.startswith(f"mlp info: error: {name}={value!r} {says}"), line
    assert "unset it" in line  # and the accepted form


def test_the_memory_limit_variable_is_a_value_error_in_the_api(monkeypatch):
    from mlp import _memory

    for value in ("1e400", "inf", "-inf", "nan"):
        monkeypatch.setenv("MLP_MEMORY_LIMIT", value)
        with pytest.raises(ValueError, match=rf"MLP_MEMORY_LIMIT='{value}' .*such as 8000000000 or 8e9"):
            _memory.available_bytes()
    monkeypatch.setenv("MLP_MEMORY_LIMIT", "8e9")
    assert _memory.available_bytes() == 8_000_000_000


def test_the_data_folder_variable_is_checked_in_the_api(tmp_path, monkeypatch):
    from mlp import datasets

    monkeypatch.setenv("MLP_DATA_DIR", str(tmp_path / "notes.txt"))
    (tmp_path / "notes.txt").write_text("not data")
    with pytest.raises(ValueError, match=r"MLP_DATA_DIR='.*notes.txt' is a file, not a folder; point it at"):
        datasets.load_mnist(download=False)
    rng = np.random.default_rng(0)
    splits = [(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n) % 10) for n in (6, 4)]
    datasets.save_npz(tmp_path / "mnist.npz", *splits)
    monkeypatch.setenv("MLP_DATA_DIR", str(tmp_path / "mnist.npz"))  # a data file itself still works
    (X, _), (Xt, _) = datasets.load_mnist(download=False)
    assert len(X) == 6 and len(Xt) == 4


def test_no_home_at_all_names_what_to_set(monkeypatch):
    from pathlib import Path as PathType

    from mlp import datasets

    def no_home(cls=None):
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(PathType, "home", classmethod(no_home))
    with pytest.raises(ValueError, match="HOME is not set and XDG_CACHE_HOME is not an absolute path; set"):
        datasets.default_cache_dir()


def test_numba_threads_variable_in_the_api():
    code = (
        "import numpy as np, mlp\n"
        "try:\n    import mlp_kernels\nexcept ImportError as error:\n"
        "    assert isinstance(error, ValueError), error\n"
        "X = np.zeros((8, 3), np.float32); y = np.arange(8) % 2\n"
        "try:\n    mlp.fit(X, y, epochs=1)\nexcept ValueError as error:\n    print(error)\n"
        "print(mlp.fit(X, y, epochs=1, engine='xp', verbose=0).layer_sizes[0])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(NUMBA_NUM_THREADS="0"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    message, engine_xp = result.stdout.strip().splitlines()
    assert message.startswith("NUMBA_NUM_THREADS='0' is not a positive integer; set it to")
    assert engine_xp == "3"  # the array-API engine does not need Numba


# ---- standard output that cannot be written ----------------------------------------------------------
@pytest.fixture(scope="module")
def digit_model(tmp_path_factory):
    """A small saved classifier of 28x28 images, and the folder it is in."""
    import mlp

    folder = tmp_path_factory.mktemp("model")
    rng = np.random.default_rng(0)
    model = mlp.fit(
        rng.random((30, 784), np.float32),
        np.arange(30) % 3,
        hidden_sizes=[4],
        epochs=1,
        engine="xp",
        verbose=0,
    )
    model.save(folder / "model.npz")
    return folder / "model.npz"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_a_full_disk_on_stdout_is_one_line(digit_model):
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "mlp", "info", str(digit_model)],
            env=_env(),
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1
    line = _one_line(result.stderr)
    assert line.startswith("mlp info: error: cannot write to standard output: No space left on device"), line


def test_a_closed_pipe_on_stdout_ends_quietly(digit_model):
    process = subprocess.Popen(
        [sys.executable, "-m", "mlp", "info", str(digit_model)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()  # as `| head -c1` does once it has its byte, here before the first
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert stderr == ""


@pytest.mark.parametrize(
    "encoding",
    [
        dict(LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0"),  # an ASCII-only locale
        dict(LC_ALL="C", PYTHONIOENCODING="ascii"),  # a strict ASCII stream
        dict(PYTHONIOENCODING="utf-8"),  # a strict UTF-8 stream and a name that is not UTF-8
    ],
    ids=["C-locale", "ascii-stream", "utf8-stream"],
)
def test_a_path_the_terminal_cannot_encode_is_printed_as_given(digit_model, tmp_path, encoding):
    Image = pytest.importorskip("PIL.Image")
    pixels = np.zeros((28, 28), np.uint8)
    pixels[4:24, 12:16] = 255
    image = os.fsencode(tmp_path) + b"/chiffre-\xc3\xa9-\xff.png"  # UTF-8 "e acute", then a stray byte
    Image.fromarray(pixels).save(os.fsdecode(image), format="PNG")
    result = subprocess.run(
        [sys.executable, "-m", "mlp", "predict", str(digit_model), image],
        env=_env(**encoding),
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b"Traceback" not in result.stderr
    (line,) = result.stdout.splitlines()
    # the name's bytes as given, or escaped where the stream's encoding lacks the character
    assert line.startswith(os.fsencode(tmp_path) + b"/chiffre-") and b"\xff.png: " in line
    assert b"probability" in line


# ---- a FIFO where a file should be -------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_predict_refuses_a_fifo_at_once(digit_model, tmp_path):
    pytest.importorskip("PIL")
    fifo = tmp_path / "digit.png"
    os.mkfifo(fifo)
    result = _mlp("predict", str(digit_model), str(fifo), timeout=60)
    assert result.returncode == 1
    assert _one_line(result.stderr) == (
        f"mlp predict: error: {fifo} is not a regular file (a device, pipe or socket); give an image file"
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_readers_of_images_and_data_refuse_a_fifo_without_waiting(tmp_path):
    pytest.importorskip("PIL")
    from mlp import datasets
    from mlp.images import load_digit

    fifo = tmp_path / "train-images-idx3-ubyte"
    os.mkfifo(fifo)
    outcome = {}

    def attempt(name, read):
        try:
            read(fifo)
        except ValueError as error:
            outcome[name] = str(error)

    def read_all():
        attempt("image", load_digit)
        attempt("idx", datasets.read_idx)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    reader.join(timeout=30)
    if reader.is_alive():  # unblock the thread: open the FIFO for writing once
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("a reader blocked on the FIFO")
    assert "not a regular file" in outcome["image"] and "not a regular file" in outcome["idx"]
