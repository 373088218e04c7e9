"""The process's surroundings never end a command in a traceback or a hang: no writable cache for the
compiled kernels, bad environment variables, a full disk or a closed pipe on stdout, an ASCII-only
terminal, a FIFO where an image should be.

Most tests run `python -m mlp` in a subprocess, since what they check happens at import or at exit.
"""

import os
import shutil
import stat
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
    for folder, dirs, files in os.walk(root):
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
