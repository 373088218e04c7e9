"""Standard output on a full disk (/dev/full, where every write fails with ENOSPC): what argparse prints
(--help, --version) and `python -m mlp.options` end in one line on stderr and exit status 1, as a
command's own output does, never a silent 0 or a traceback."""

import os
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")


def _run_into_full_disk(*args, unbuffered=False):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "PYTHONIOENCODING")}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"  # each write fails at once, inside argparse (which drops OSError)
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, *args],
            env=env,
            cwd=REPO_ROOT,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return result.returncode, lines[0]


@pytest.mark.parametrize(
    "args, unbuffered, name",
    [
        (["--help"], False, "mlp"),
        (["--help"], True, "mlp"),
        (["--version"], False, "mlp"),
        (["--version"], True, "mlp"),
        (["train", "--help"], False, "mlp train"),
        (["download", "--help"], True, "mlp download"),
    ],
)
def test_help_and_version_into_a_full_disk_are_one_line(args, unbuffered, name):
    code, line = _run_into_full_disk("-m", "mlp", *args, unbuffered=unbuffered)
    assert code == 1
    assert line == f"{name}: error: cannot write to standard output: No space left on device"


@pytest.mark.parametrize("args", [[], ["--cpp-header"], ["--help"]])
@pytest.mark.parametrize("unbuffered", [False, True])
def test_the_options_table_into_a_full_disk_is_one_line(args, unbuffered):
    code, line = _run_into_full_disk("-m", "mlp.options", *args, unbuffered=unbuffered)
    assert code == 1
    assert line == "python -m mlp.options: error: cannot write to standard output: No space left on device"
