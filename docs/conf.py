"""Sphinx configuration of the mlp documentation.

Build (warnings are errors, cross-references checked):

    python -m sphinx -W --keep-going -n -b html docs docs/_build/html

The gallery (examples/) runs during the build; it reads MNIST through $MLP_DATA_DIR.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import mlp  # noqa: E402

# numpydoc reads the docstrings of names the modules import; array_api_compat's is_writeable_array
# has a "Warning" section numpydoc does not know. Not ours, and not shown on any page.
warnings.filterwarnings("ignore", message="Unknown section Warning", category=UserWarning)

project = "mlp"
author = "the mlp authors"
copyright = "the mlp authors, MIT licence"
version = release = mlp.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_design",  # the cards of the home page
    "sphinx_gallery.gen_gallery",
    "myst_parser",  # bench/RESULTS.md and cpp/README.md, shown as they are
    "options_table",  # docs/_ext: the options table from mlp.options.OPTIONS
    "repo_pages",  # docs/_ext: copies those Markdown files into gen/ when the build starts
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

exclude_patterns = ["_build", "auto_examples/*.ipynb", "**.ipynb_checkpoints"]
templates_path = ["_templates"]
html_static_path = ["_static"]
html_css_files = ["mlp.css"]
html_theme = "pydata_sphinx_theme"
html_title = f"mlp {release}"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
    "secondary_sidebar_items": {"**": ["page-toc", "sourcelink"], "options": [], "index": []},
}
# The home page and the wide options table use the whole width.
html_sidebars = {"index": [], "getting_started": [], "options": []}
html_show_sourcelink = False

# ---- API reference ---------------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
# numpydoc renders the docstrings; its class-member tables would list every inherited method again.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False


# ---- nitpicky cross-references: what cannot resolve, and why ----------------------------------------
nitpick_ignore = [
    # Arrays are typed as mlp._array_api.Array (an alias of Any: the standard has no array class) and
    # namespaces as Namespace (a module); neither is a documented class.
    ("py:class", "Array"),
    ("py:class", "Namespace"),
    ("py:class", "Device"),
    ("py:class", "DType"),
    ("py:class", "Params"),
    # Type variables of decorators (mlp.distributed, mlp.augment) and aliases that only annotate.
    ("py:class", "mlp.distributed.T"),
    ("py:class", "mlp.distributed.F"),
    ("py:obj", "mlp.augment.T"),
    ("py:class", "mlp.augment.T"),
    ("py:class", "Callback"),
    # matplotlib and Pillow classes in the return types of mlp.plots and mlp.images (not linked, as
    # the standard library is not: see below).
    ("py:class", "Figure"),
    ("py:class", "matplotlib.figure.Figure"),
    ("py:class", "PILImage"),
    # The estimators' private base class (mlp.estimators.base), shown by show-inheritance.
    ("py:class", "mlp.estimators.base.BaseMLP"),
]
nitpick_ignore_regex = [
    # The standard library, NumPy, scikit-learn and mpi4py are not linked: intersphinx would fetch
    # their inventories from sites CI cannot reach (it reaches PyPI only), so names of theirs in
    # signatures cannot resolve.
    (
        "py:.*",
        r"(typing|collections|os|pathlib|numpy|np|sklearn|mpi4py|threading|concurrent|types|dataclasses|io|enum)(\..*)?",
    ),
    (
        "py:.*",
        r"(Any|Callable|Sequence|Iterable|Iterator|Mapping|NamedTuple|Generator|PathLike|Path|Literal|TextIO|BinaryIO|Self|TypeVar|ModuleType|Thread|ndarray|Intracomm|Comm)",
    ),
    # Private helpers that public signatures name (the underscore modules are not part of the API).
    ("py:.*", r"mlp\._.*"),
    ("py:.*", r"mlp\.(engines|loop|training|_validation)\..*"),
]


def _skip_member(app, what, name, obj, skip, options):
    # scikit-learn adds set_fit_request, set_score_request, ... to every estimator; their docstrings
    # point into scikit-learn's own user guide.
    if (name.startswith("set_") and name.endswith("_request")) or name == "get_metadata_routing":
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)


# ---- the gallery -------------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",  # every example runs
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "within_subsection_order": "FileNameSortKey",
    "reference_url": {"mlp": None},
    # the first shows the figures of mlp.plots, made without pyplot (docs/_ext/gallery_scraper.py)
    "image_scrapers": ("gallery_scraper.scrape_mlp_figures", "matplotlib"),
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "show_memory": False,
    "min_reported_time": 1,
}

# The examples read MNIST from $MLP_DATA_DIR; a checkout beside shared/ finds it there too.
if "MLP_DATA_DIR" not in os.environ:
    beside = HERE.parent.parent / "shared" / "data" / "mnist"
    if beside.is_dir():
        os.environ["MLP_DATA_DIR"] = str(beside)
