"""Sphinx extension: ``.. cvkit-cli-help::`` writes ``cvkit --help`` and every ``cvkit COMMAND --help``.

The help texts are written for a terminal (aligned tables, indented examples, argparse's
``RawDescriptionHelpFormatter``), so the page shows them exactly as the terminal does, one literal
block per command, at a fixed width of 88 columns, read from the parser the console script uses
(``cvkit.cli``'s ``build_parser``): the page cannot drift from the command.
"""
from __future__ import annotations

import os

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

WIDTH = "88"


def help_texts() -> list[tuple[str, str, str]]:
    """``(command, one-line help, --help text)`` for ``cvkit`` itself, then each command in order."""
    from cvkit.cli._main import COMMANDS, build_parser

    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH  # argparse wraps at $COLUMNS: the same page on every machine
    try:
        top = build_parser()
        texts = [("cvkit", "the command and its sub-commands", top.format_help())]
        for cmd in COMMANDS:
            sub = next(a for a in build_parser(cmd.name)._subparsers._group_actions if a.choices)
            texts.append((f"cvkit {cmd.name}", cmd.help, sub.choices[cmd.name].format_help()))
        return texts
    finally:
        if before is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = before


class CliHelp(SphinxDirective):
    """One section per command: its one-line help, then its ``--help`` text as a literal block."""

    def run(self) -> list[nodes.Node]:
        lines: list[str] = []
        for title, summary, text in help_texts():
            heading = f"``{title}``"
            lines += [heading, "-" * len(heading), "", summary[0].upper() + summary[1:] + ".", "",
                      ".. code-block:: text", ""]
            lines += ["   " + line if line else "" for line in text.rstrip().splitlines()] + [""]
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source="<cvkit --help>"), node)
        return node.children


def setup(app):
    app.add_directive("cvkit-cli-help", CliHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
