"""What users install: the sdist and the wheel built from this checkout, not the editable checkout the
rest of the suite imports.

Once per session `python -m build` makes the sdist and, from it, the wheel. Then: `twine check
--strict` on both (the README is the long description and must render); the wheel holds every .py file
of mlp/ and kernels/ (as mlp_kernels) and the py.typed marker; the sdist holds the C++ port, its test
data, the golden vectors and the licence, and nothing generated; a fresh virtual environment gets the
wheel (not editable) and runs tests/installed_smoke.py from a folder outside the checkout; the C++ port
builds from the unpacked sdist and passes its ctest suite.

Building needs setuptools from the package index and the install needs the dependencies: without a
network (or without `build`, `twine`, cmake) these tests skip with the reason, except when $CI is
set: then they fail, so CI cannot pass without having installed what users install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from types import SimpleNamespace

import pytest

import mlp
from mlp.cli import main
from tests.helpers import REPO_ROOT

SMOKE = Path(__file__).with_name("installed_smoke.py")
KERNELS_FOLDER, KERNELS_PACKAGE = "kernels", "mlp_kernels"
SMOKE_EXTRAS = "numba,sklearn,plot,progress"
# At most two compile jobs: CI machines and the development VM have two cores.
JOBS = str(min(2, max(1, os.cpu_count() or 1)))
# What pip and build print when the package index cannot be reached (then skip, outside CI).
OFFLINE_SIGNS = (
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "No matching distribution found",
    "Could not fetch URL",
    "ConnectTimeoutError",
)
# Folders and files that a build, a test run or an editor leaves behind: never in the sdist.
GENERATED_FOLDERS = {
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    ".mypy_cache",
    ".ruff_cache",
    ".benchmarks",
    ".venv",
    ".git",
    "models",
    "dist",
}
GENERATED_SUFFIXES = {".pyc", ".pyo", ".o", ".so", ".a", ".whl"}


def _unavailable(message):
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: the packaging tests must run, not skip)")
    pytest.skip(message)


def _run(command, *, timeout, what, **kwargs):
    """Run a command; on failure skip when the package index was unreachable (outside CI), else fail
    with the tail of its output."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        output = result.stdout[-4000:] + "\n" + result.stderr[-4000:]
        if any(sign in output for sign in OFFLINE_SIGNS):
            _unavailable(f"{what}: the package index cannot be reached:\n{output[-1000:]}")
        pytest.fail(f"{what} failed ({' '.join(map(str, command))}):\n{output}")
    return result


def _require_module(name):
    try:
        __import__(name)
    except ImportError:
        _unavailable(f"{name} is not installed (it is in the test extra: pip install -e '.[test]')")


def checkout_python_files():
    """The wheel paths of every .py file of the checkout's packages: mlp/** and kernels/** (installed
    as mlp_kernels)."""
    files = set()
    for folder, package in (("mlp", "mlp"), (KERNELS_FOLDER, KERNELS_PACKAGE)):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            files.add(PurePosixPath(package, *path.relative_to(REPO_ROOT / folder).parts).as_posix())
    return files


def checkout_modules():
    """The dotted names of the modules those files are (packages by their __init__.py)."""
    names = set()
    for file in checkout_python_files():
        parts = file.removesuffix(".py").split("/")
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _tracked_files(*folders):
    """The files git tracks under these folders that exist in this checkout; None without git."""
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        return None
    result = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "ls-files", "-z", "--", *folders], capture_output=True, timeout=60
    )
    if result.returncode != 0:
        return None
    names = [name for name in result.stdout.decode().split("\0") if name]
    return {name for name in names if (REPO_ROOT / name).is_file()}


def generated(path, sdist_top):
    """Why a file of the sdist (a path inside its top folder, e.g. mlp_from_scratch-0.1.0) counts as
    generated, or None. setuptools writes its own metadata folder, NAME.egg-info, into every sdist:
    that one, at the top, is expected."""
    parts = PurePosixPath(path).parts
    own_metadata = sdist_top.rsplit("-", 1)[0] + ".egg-info"
    for depth, folder in enumerate(parts[:-1]):
        if folder in GENERATED_FOLDERS or folder.startswith("build"):
            return f"inside a {folder}/ folder"
        if folder.endswith(".egg-info") and (depth, folder) != (0, own_metadata):
            return f"inside {folder}/"
    if PurePosixPath(path).suffix in GENERATED_SUFFIXES:
        return f"a {PurePosixPath(path).suffix} file"
    if path in ("bench/results.json",):
        return "benchmark output"
    return None


# ---- the version, in one place ------------------------------------------------------------------------
def test_version_has_one_home_and_mlp_version_prints_it(capsys):
    source = (REPO_ROOT / "pyproject.toml").read_text()
    project = source.split("\n[project]\n", 1)[1].split("\n[", 1)[0]  # the [project] table alone
    assert 'dynamic = ["version"]' in project and 'attr = "mlp._version.__version__"' in source
    assert not any(line.startswith("version") for line in project.splitlines()), "a second version"
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"mlp {mlp.__version__}\n"


def test_changelog_and_licence():
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    release, dev, _ = mlp.__version__.partition(".dev")
    if dev:  # between releases (0.2.0.dev0): its changes are under [Unreleased], 0.2.0 is still to come
        assert f"## [{release}]" not in changelog, "a development version of a release already made"
    else:
        assert f"## [{release}]" in changelog, "CHANGELOG.md has no section for the current version"
    licence = (REPO_ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "Copyright (c) 2026 the mlp authors" in licence


# ---- the built distributions -------------------------------------------------------------------------
@pytest.fixture(scope="session")
def dists(tmp_path_factory):
    """The sdist and the wheel, built once per session with `python -m build` (the wheel from the sdist)."""
    _require_module("build")
    out = tmp_path_factory.mktemp("dist")
    _run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO_ROOT)],
        timeout=600,
        what="python -m build",
    )
    (wheel,), (sdist,) = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
    with zipfile.ZipFile(wheel) as archive:
        wheel_files = set(archive.namelist())
    with tarfile.open(sdist) as archive:
        members = [member.name for member in archive.getmembers() if member.isfile()]
    top = members[0].split("/")[0]
    sdist_files = {name.removeprefix(top + "/") for name in members}
    return SimpleNamespace(
        wheel=wheel, sdist=sdist, wheel_files=wheel_files, sdist_files=sdist_files, top=top
    )


def test_twine_check_strict(dists):
    """The metadata is valid and the README renders as the long description, for both files."""
    _require_module("twine")
    result = _run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dists.wheel), str(dists.sdist)],
        timeout=120,
        what="twine check --strict",
    )
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_wheel_holds_every_module_and_the_typing_marker(dists):
    missing = sorted(checkout_python_files() - dists.wheel_files)
    assert not missing, (
        f"the wheel lacks {len(missing)} .py file(s) of the checkout (a package left out of "
        "discovery in setup.py?): " + ", ".join(missing)
    )
    assert "mlp/py.typed" in dists.wheel_files, "the wheel lacks mlp/py.typed"
    dist_info = {
        name.split("/")[0] for name in dists.wheel_files if name.split("/")[0].endswith(".dist-info")
    }
    top_level = {name.split("/")[0] for name in dists.wheel_files} - dist_info
    assert top_level == {"mlp", KERNELS_PACKAGE}, f"unexpected top-level names in the wheel: {top_level}"
    compiled = sorted(name for name in dists.wheel_files if PurePosixPath(name).suffix in GENERATED_SUFFIXES)
    assert not compiled, f"compiled files in the wheel: {compiled}"
    (info,) = dist_info
    with zipfile.ZipFile(dists.wheel) as archive:
        metadata = archive.read(f"{info}/METADATA").decode()
    assert f"\nVersion: {mlp.__version__}\n" in metadata
    assert "\nLicense-Expression: MIT\n" in metadata
    for classifier in ("Typing :: Typed", "Programming Language :: Python :: 3.13"):
        assert f"\nClassifier: {classifier}\n" in metadata
    assert "\nClassifier: License ::" not in metadata  # the license expression says it
    assert f"{info}/licenses/LICENSE" in dists.wheel_files


def test_sdist_holds_the_sources_and_nothing_generated(dists):
    files = dists.sdist_files
    required = {
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "pyproject.toml",
        "setup.py",
        "MANIFEST.in",
        "cpp/CMakeLists.txt",
        "cpp/fuzz/CMakeLists.txt",
        "cpp/tests/cli_test.cmake",
        "cpp/tests/data/tiny/train.mlpd",
        "tests/golden/golden_float32.bin",
        "tests/golden/golden_float64.bin",
        "tests/installed_smoke.py",
    }
    required |= {f"cpp/src/{path.name}" for path in (REPO_ROOT / "cpp" / "src").glob("*.[ch]pp")}
    required |= {path.relative_to(REPO_ROOT).as_posix() for path in (REPO_ROOT / "tests").glob("*.py")}
    # Every file git tracks where the builds and the tests read (in CI: every file of the clone).
    tracked = _tracked_files("cpp", "tests", "mlp", KERNELS_FOLDER)
    if tracked is not None:
        required |= {name for name in tracked if not generated(name, dists.top)}
    missing = sorted(required - files)
    assert not missing, f"the sdist lacks {len(missing)} file(s): " + ", ".join(missing)
    extra = sorted(f"{name} ({reason})" for name in files if (reason := generated(name, dists.top)))
    assert not extra, f"the sdist holds {len(extra)} generated file(s): " + ", ".join(extra[:40])


# ---- the installed wheel, used as a user would -------------------------------------------------------
@pytest.fixture(scope="session")
def installed_python(dists, tmp_path_factory):
    """The Python of a fresh virtual environment holding the wheel (not editable) and the smoke's extras."""
    venv = tmp_path_factory.mktemp("venv")
    # No pip inside: this environment's pip installs into it (--python), which saves bootstrapping one.
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=300, what="python -m venv")
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            f"{dists.wheel}[{SMOKE_EXTRAS}]",
        ],
        timeout=900,
        what=f"pip install the wheel with [{SMOKE_EXTRAS}]",
        env=_outside_env(),  # a PYTHONPATH to the checkout would show pip its egg-info as installed
    )
    return python


def _outside_env():
    """The environment without anything that points Python at the checkout or at another environment."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env["PYTHONNOUSERSITE"] = "1"
    return env


@pytest.mark.slow
def test_installed_wheel_works_from_outside_the_checkout(installed_python, mnist_dir, tmp_path):
    """tests/installed_smoke.py, copied to a folder outside the checkout and run there: every public
    name and module imports from the installed package, mlp.fit and the estimators train, a model file
    round-trips, and the `mlp` script prints its help and version and trains on a slice of MNIST."""
    assert not tmp_path.resolve().is_relative_to(REPO_ROOT)
    script = tmp_path / SMOKE.name
    shutil.copy(SMOKE, script)
    modules = tmp_path / "modules.json"
    modules.write_text(json.dumps(sorted(checkout_modules())))
    work = tmp_path / "work"
    work.mkdir()
    arguments = ["--checkout", REPO_ROOT, "--modules", modules, "--data", mnist_dir, "--work", work]
    result = subprocess.run(
        [str(installed_python), str(script), *map(str, arguments)],
        cwd=tmp_path,
        env=_outside_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, (
        f"the installed package failed its smoke test:\n{result.stdout}\n{result.stderr[-6000:]}"
    )
    assert result.stdout.rstrip().endswith("installed smoke: passed"), result.stdout


def test_cpp_port_builds_from_the_sdist(dists, tmp_path):
    """The unpacked sdist is enough to build the C++ port (Release) and pass its ctest suite, whose
    golden test reads the vectors at ../tests/golden as in the checkout."""
    missing = [tool for tool in ("cmake", "ctest") if shutil.which(tool) is None]
    if not any(shutil.which(cxx) for cxx in (os.environ.get("CXX", "c++"), "c++", "g++", "clang++")):
        missing.append("a C++ compiler (c++/g++/clang++)")
    if missing:
        _unavailable("cannot build the C++ port from the sdist: missing " + ", ".join(missing))
    with tarfile.open(dists.sdist) as archive:
        # The "data" filter (no links out, no device files) where this Python has it (3.12, 3.11.4).
        archive.extractall(tmp_path, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    source, build = tmp_path / dists.top / "cpp", tmp_path / "build"
    _run(
        ["cmake", "-S", str(source), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"],
        timeout=300,
        what="cmake configure",
    )
    _run(["cmake", "--build", str(build), "-j", JOBS], timeout=900, what="cmake --build")
    _run(["ctest", "--test-dir", str(build), "--output-on-failure"], timeout=300, what="ctest")
    help_text = _run([str(build / "mlp-cpp"), "--help"], timeout=60, what="mlp-cpp --help").stdout
    assert "train" in help_text
    model = tmp_path / "tiny.npz"
    arguments = [
        "train",
        "--data",
        source / "tests" / "data" / "tiny",
        "--epochs",
        1,
        "--seed",
        0,
        "--out",
        model,
    ]
    trained = _run(
        [str(build / "mlp-cpp"), *map(str, arguments)],
        timeout=120,
        what="mlp-cpp train",
    ).stdout
    assert "test accuracy" in trained and model.is_file()
