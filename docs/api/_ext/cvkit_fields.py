"""Sphinx extension: cvkit's field blocks in docstrings, as reST that renders and raises no warning.

cvkit's docstrings write parameters and attributes one per line as ``name : what it is`` (the
description where numpydoc puts a type), continued on lines indented by four spaces, under a
numpy-style ``Parameters`` / ``Attributes`` header or as a block of their own (``ServiceConfig``'s
settings); the text after the block, at the left margin, is the docstring's own prose again
(numpydoc would swallow it into the last field). This turns each block into a bullet list of
``**name** -- description``, under a ``:Parameters:`` / ``:Attributes:`` field when it had a header,
before napoleon reads the rest (``Example:`` sections). Nothing is changed in the source.
"""
from __future__ import annotations

import re

FIELD = re.compile(r"^(\*{0,2}[A-Za-z_]\w*(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)*)\s+:(?:\s+(.*))?$")
HEADER = re.compile(r"^(Parameters|Other Parameters|Attributes|Returns|Raises|Yields)\b\s*(.*)$")
RULE = re.compile(r"^-{3,}\s*$")


def _is_field(line: str) -> bool:
    return bool(FIELD.match(line))


def _literal_names(text: str) -> str:
    """``name_`` words as literals: in reST a word ending in ``_`` is a link to a target of that name."""
    return re.sub(r"(?<![`\w])([A-Za-z]\w*_)(?![\w`])", r"``\1``", text)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _bullet(name: str, text: str, pad: str) -> str:
    names = ", ".join(f"**{n.strip()}**" for n in name.split(","))
    return f"{pad}* {names} -- {text}".rstrip()


def _fields(lines: list[str], i: int, pad: str) -> tuple[list[str], int]:
    """The field lines from ``lines[i]`` on as bullets (indented by ``pad``); returns them and the next index."""
    out: list[str] = []
    while i < len(lines):
        line = lines[i]
        match = FIELD.match(line)
        if match:
            out.append(_bullet(match.group(1), match.group(2) or "", pad))
            i += 1
        elif line.strip() == "":
            # a blank line: the block goes on if the next non-blank line is indented or is a field
            j = i
            while j < len(lines) and lines[j].strip() == "":
                j += 1
            if j < len(lines) and (_indent(lines[j]) >= 4 or _is_field(lines[j])):
                out.append("")
                i += 1
            else:
                break
        elif _indent(line) >= 4 and out:  # a continuation line: under the bullet's text
            out.append(pad + "  " + line[4:])
            i += 1
        else:
            break
    while out and out[-1] == "":
        out.pop()
    return out, i


def _starts_block(lines: list[str], i: int) -> bool:
    """A headerless block: a paragraph starting with a field line and holding at least two fields."""
    if not _is_field(lines[i]) or (i > 0 and lines[i - 1].strip()):
        return False
    fields, j = 0, i
    while j < len(lines) and lines[j].strip() and (_is_field(lines[j]) or _indent(lines[j]) >= 4):
        fields += _is_field(lines[j])
        j += 1
    return fields >= 2


def _gap(lines: list[str], i: int) -> list[str]:
    """A blank line to end a block, unless the docstring has one there already."""
    return [] if i < len(lines) and not lines[i].strip() else [""]


def convert(lines: list[str]) -> list[str]:
    """cvkit's docstring lines with every field block turned into reST bullets."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        header = HEADER.match(line)
        if header and i + 1 < len(lines) and RULE.match(lines[i + 1]):
            label, note = header.group(1), header.group(2).strip()
            i += 2
            while i < len(lines) and not lines[i].strip():
                i += 1
            body, i = _fields(lines, i, "   ")
            if not body:  # prose instead of fields: kept, under the label
                start = i
                while i < len(lines) and lines[i].strip():
                    i += 1
                body = ["   " + _literal_names(text) for text in lines[start:i]]
            out += [f":{label}:"] + ([f"   {note}", ""] if note else []) + body + _gap(lines, i)
        elif _starts_block(lines, i):
            body, i = _fields(lines, i, "")
            out += body + _gap(lines, i)
        else:
            out.append(line)
            i += 1
    return out


def _process(app, what, name, obj, options, lines: list[str]) -> None:
    lines[:] = convert(lines)


def setup(app):
    app.connect("autodoc-process-docstring", _process, priority=400)  # before napoleon (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
