"""In CI every optional dependency the suite exercises is installed, so nothing that should run skips."""

import importlib
import os

import pytest

OPTIONAL = ["array_api_strict", "numba", "sklearn", "matplotlib", "PIL", "tqdm", "hypothesis"]


@pytest.mark.skipif(not os.environ.get("CI"), reason="only CI promises every optional dependency")
@pytest.mark.parametrize("module", OPTIONAL)
def test_ci_has_every_optional_dependency(module):
    importlib.import_module(module)
