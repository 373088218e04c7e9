"""Show Markdown files of the repository (bench/RESULTS.md, cpp/README.md) as pages of the docs.

They stay where they are, the one place their numbers are written; when the build starts they are
copied with the pictures beside them into ``docs/gen/repo/`` (ignored by git), where MyST reads them,
so a relative image link such as ``results.png`` resolves as it does on the repository's own pages.
"""

from __future__ import annotations

import shutil
from pathlib import Path

# repository path -> where it goes under docs/gen/repo/
PAGES = {"bench/RESULTS.md": "bench/RESULTS.md", "cpp/README.md": "cpp/README.md"}


def copy_pages(app: object) -> None:
    source = Path(app.srcdir)  # type: ignore[attr-defined]
    repo = source.parent
    target = source / "gen" / "repo"
    for path, name in PAGES.items():
        src, dst = repo / path, target / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        for extra in [src, *sorted(src.parent.glob("*.png"))]:
            out = dst.parent / extra.name if extra != src else dst
            if not out.exists() or out.read_bytes() != extra.read_bytes():
                shutil.copyfile(extra, out)


def setup(app: object) -> dict[str, object]:
    app.connect("builder-inited", copy_pages)  # type: ignore[attr-defined]
    return {"parallel_read_safe": True, "parallel_write_safe": True}
