"""Lint, format and types: the tree passes `ruff check`, `ruff format --check` and `mypy` as configured
in pyproject.toml ([tool.ruff], [tool.mypy]). Each test fails with the tool's own report.

ruff and mypy come with the test extra; without them a test is skipped, except in CI (CI set), where
they must run.
"""

import importlib.util
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT

# The whole tree: setup.py, the generators under cpp/, docs/ and examples/ too (pyproject.toml's
# [tool.ruff] exclude leaves out the fuzz corpus and build outputs; .gitignore is respected).
PATHS = ["."]


def _run(module, *args, timeout=600):
    """`python -m module args...` in the repository root: (exit status, stdout + stderr)."""
    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI"):
            pytest.fail(
                f"{module} is not installed, but CI is set: it must run there (pip install -e '.[test]')"
            )
        pytest.skip(f"{module} is not installed (it comes with the test extra: pip install -e '.[test]')")
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return result.returncode, (result.stdout + result.stderr).strip()


def test_ruff_check_finds_nothing():
    code, report = _run("ruff", "check", "--no-fix", "--output-format", "concise", *PATHS)
    assert code == 0, f"ruff check {' '.join(PATHS)}:\n{report}"


def test_ruff_format_leaves_every_file_as_it_is():
    code, report = _run("ruff", "format", "--check", "--diff", *PATHS)
    assert code == 0, f"ruff format --check {' '.join(PATHS)} (run ruff format on these files):\n{report}"


def test_mypy_finds_no_type_errors():
    code, report = _run("mypy")  # the files and settings are pyproject.toml's [tool.mypy]
    assert code == 0, f"mypy:\n{report}"
