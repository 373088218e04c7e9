"""Which packages the distribution installs; everything else about it is in pyproject.toml.

Found, not listed, so that a new subpackage cannot be forgotten: every package under mlp/, and the
Numba kernels, whose folder kernels/ installs as the top-level package mlp_kernels. pyproject.toml can
either list packages or discover them under their folder's name, not rename a discovered one, hence
this file. tests/test_packaging.py builds the wheel and fails on any .py file of mlp/ or kernels/ that
is missing from it.
"""

from setuptools import find_packages, setup

KERNELS_FOLDER, KERNELS_PACKAGE = "kernels", "mlp_kernels"

setup(
    packages=[
        *find_packages(include=["mlp", "mlp.*"]),
        *(
            KERNELS_PACKAGE + name.removeprefix(KERNELS_FOLDER)
            for name in find_packages(include=[KERNELS_FOLDER, KERNELS_FOLDER + ".*"])
        ),
    ],
    package_dir={KERNELS_PACKAGE: KERNELS_FOLDER},
)
