"""Write the options table of mlp/options.py as reStructuredText when the build starts.

The table is never copied by hand: every build imports ``mlp.options.OPTIONS`` and writes
``docs/gen/options_table.rst.inc``, which ``options.rst`` includes. The file is rewritten only when its
text changes, so an unchanged table does not make Sphinx reread the page.
"""

from __future__ import annotations

from pathlib import Path


def _cell(value: object) -> str:
    text = " ".join(str(value).split())
    return text.replace("|", "\\|") if text else ""


def _sentence(value: object) -> str:
    text = _cell(value)
    return text if not text or text.endswith((".", "!", "?")) else text + "."


def _code(value: object) -> str:
    text = _cell(repr(value))
    return f"``{text}``"


def options_table() -> str:
    from mlp import options

    rows = [
        "..",
        "   Written by docs/_ext/options_table.py from mlp.options.OPTIONS at build time: do not edit.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 14 12 40 14 18 12",
        "   :class: mlp-options",
        "",
        "   * - ``mlp.fit``",
        "     - default",
        "     - meaning",
        "     - ``mlp train``",
        "     - estimators (default)",
        "     - C++ field",
    ]
    for option in options.OPTIONS.values():
        flag = option.flag
        if flag and option.cli_default is not options.SAME:
            flag = f"{flag} (default {option.command_line_default!r})"
        estimator = ""
        if option.estimator:
            estimator = f"``{option.estimator}`` ({_code(option.estimator_value)})"
        help_text = _sentence(option.help)
        if option.choices:
            help_text += " ``mlp train`` takes " + ", ".join(f"``{c}``" for c in option.choices) + "."
        if option.cli_note:
            help_text += " " + _sentence(option.cli_note)
        if option.estimator_note:
            help_text += " Estimators: " + _sentence(option.estimator_note)
        rows += [
            f"   * - ``{option.name}``",
            f"     - {_code(option.default)}",
            f"     - {help_text}",
            f"     - {'``' + _cell(flag) + '``' if flag else '(Python only)'}",
            f"     - {_cell(estimator) or '(not a parameter)'}",
            f"     - {'``' + option.cpp + '``' if option.cpp else ''}",
        ]
    rows += [
        "",
        "Set only at run time, never stored in the table: "
        + ", ".join(f"``{name}``" for name in options.RUNTIME_ONLY)
        + ".",
        "",
    ]
    return "\n".join(rows)


def write_table(app: object) -> None:
    target = Path(app.srcdir) / "gen" / "options_table.rst.inc"  # type: ignore[attr-defined]
    target.parent.mkdir(exist_ok=True)
    text = options_table()
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


def setup(app: object) -> dict[str, object]:
    app.connect("builder-inited", write_table)  # type: ignore[attr-defined]
    return {"parallel_read_safe": True, "parallel_write_safe": True}
