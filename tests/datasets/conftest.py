"""The fixtures of tests/datasets/: network isolation (autouse), the real MNIST and the local mirrors."""

from tests.datasets.helpers import http_server, isolated, mirrors, raw_dir, real, small_idx  # noqa: F401
