"""One progress-bar helper for the whole package (downloads, training).

    with progress_bar(total, "epoch 3", unit="step") as bar:
        for batch in batches:
            ...
            bar.update(1)

A tqdm bar on stderr when ``enabled`` is True, or "auto" and stderr is a terminal; a silent
stand-in otherwise, so callers never test for tqdm themselves. tqdm is optional: "auto" without it
is silent, ``enabled=True`` without it raises ImportError with the install command.
"""

from __future__ import annotations

import sys
from typing import Literal, Protocol

__all__ = ["progress_bar"]

_INSTALL_HINT = 'progress bars need tqdm: pip install "mlp-from-scratch[progress]"'


class ProgressBar(Protocol):
    """What callers use of a bar: a tqdm bar, or the silent `_NoBar`."""

    def __enter__(self) -> ProgressBar: ...
    def __exit__(self, *exc_info: object) -> bool | None: ...
    def update(self, n: int = 1) -> bool | None: ...
    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None: ...
    def close(self) -> None: ...


class _NoBar:
    """The silent stand-in: the same methods as a tqdm bar, doing nothing."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc_info: object) -> Literal[False]:
        return False

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except (ValueError, OSError):  # a closed or detached stream
        return False


def progress_bar(
    total: int | None, desc: str, *, enabled: bool | str = "auto", unit: str = "step", leave: bool = False
) -> ProgressBar:
    """A context manager with ``.update(n)``: a tqdm bar on stderr, or a silent stand-in.

    total: the number of units expected (None when unknown). desc: the label at the left.
    enabled: True (a bar, or ImportError without tqdm), False (silent), or "auto" (a bar when
    stderr is a terminal and tqdm is installed). unit: what one update counts; "B" shows bytes
    scaled to KiB/MiB. leave: keep the finished bar on screen.
    """
    if enabled not in (True, False, "auto"):
        raise ValueError(f'enabled must be True, False or "auto", got {enabled!r}')
    stream = sys.stderr
    auto = isinstance(enabled, str)
    if auto:
        enabled = stream is not None and _is_terminal(stream)
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        if auto:
            return _NoBar()
        raise ImportError(_INSTALL_HINT) from None
    scale = dict(unit_scale=True, unit_divisor=1024) if unit == "B" else {}
    return tqdm(total=total, desc=desc, unit=unit, leave=leave, file=stream, **scale)
