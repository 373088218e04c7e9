"""A sphinx-gallery image scraper for the figures of mlp.plots.

mlp.plots makes its figures without pyplot (no global state), so sphinx-gallery's matplotlib
scraper, which asks pyplot for its figures, does not see them. This one shows every such Figure
that an example's code block left in a variable (``fig = mlp.plots.plot_history(...)``), once. It
runs before the matplotlib scraper, and leaves alone the figures pyplot manages (those are the
matplotlib scraper's), also after that scraper has closed them.
"""

from __future__ import annotations

import weakref
from typing import Any

_shown: weakref.WeakSet[Any] = weakref.WeakSet()  # figures seen: ids of collected ones are reused


def scrape_mlp_figures(block: Any, block_vars: dict[str, Any], gallery_conf: dict[str, Any]) -> str:
    from matplotlib.figure import Figure
    from sphinx_gallery.scrapers import figure_rst

    paths = []
    for value in list(block_vars["example_globals"].values()):
        if not isinstance(value, Figure) or value in _shown:
            continue
        _shown.add(value)
        if value.canvas.manager is None:  # pyplot's own figures are the matplotlib scraper's
            path = next(block_vars["image_path_iterator"])
            value.savefig(path, dpi=100)
            paths.append(path)
    return figure_rst(paths, gallery_conf["src_dir"])
