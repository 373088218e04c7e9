"""Tests of mlp.datasets, one file per module of the package (fixtures: conftest.py, helpers.py)."""
