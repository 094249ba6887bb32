"""The cleaner's pages from image-quality tables: :func:`cvkit.find_image_issues`, ``dataset.audit()``
and the ``cvkit audit`` table (whose ``problem`` column mixes label mistakes, outliers, duplicates,
leaks and the photo checks: blurry, dark, bright, near_constant, small, odd_aspect, grayscale,
orientation, unreadable).

Why a module of its own: :mod:`cvkit.widgets._cleaner` turns these rows into its pages; the rules for
reading the tables live here, so the cleaner stays small. Each page is a dict of
:class:`~cvkit.widgets._cleaner.Suspect`'s fields; a photo issue's ``note`` is the check's ``reason``
(a sentence: what was measured and against what), which the cleaner shows beside the kind.

Example:
    >>> import pandas as pd
    >>> table = pd.DataFrame({"path": ["a.jpg"], "label": ["cat"], "issue": ["dark"], "score": [0.05],
    ...                       "reason": ["mean brightness 0.05, below 0.2"]})
    >>> is_photo_issue_table(table.columns), photo_issue_pages(table)
    (True, [{'kind': 'dark', 'paths': ['a.jpg'], 'given': ['cat'], 'note': 'mean brightness 0.05, below 0.2'}])
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cvkit.data._quality import ISSUES

__all__ = ["PHOTO_ISSUES", "is_photo_issue_table", "photo_issue_pages"]

#: the kinds of page a photo check makes (the cleaner's "photo issues" filter shows them)
PHOTO_ISSUES = tuple(ISSUES)


def is_photo_issue_table(columns: Iterable[str]) -> bool:
    """Whether a table's ``columns`` are those of ``find_image_issues`` or of ``cvkit audit``."""
    columns = set(columns)
    return "path" in columns and "reason" in columns and bool({"issue", "problem"} & columns)


def _text(value: Any) -> str:
    return "" if value is None or value != value else str(value)  # NaN (an empty cell) -> ""


def _page(row: dict) -> dict | None:
    kind = _text(row.get("issue") or row.get("problem"))
    path, label = _text(row.get("path")), _text(row.get("label"))
    if kind in PHOTO_ISSUES:
        return {"kind": kind, "paths": [path], "given": [label], "note": _text(row.get("reason"))}
    if kind in ("leak", "duplicate"):  # cvkit audit: the pair
        return {"kind": "duplicate", "paths": [path, _text(row.get("other_path"))],
                "given": [label, _text(row.get("other_label"))],
                "note": f"{kind}, similarity {float(row.get('similarity')):.3f}"}
    if kind.startswith("label") or kind == "outlier":  # cvkit audit: label, outlier, label+outlier
        quality = row.get("label_quality")
        suggested = _text(row.get("suggested_label")) or None
        return {"kind": "label issue" if kind.startswith("label") else "odd image", "paths": [path],
                "given": [label], "suggested": suggested,
                "note": f"label quality {float(quality):.2f}" if _text(quality) else
                f"ood score {float(row.get('ood_score')):.3f}"}
    return None


def photo_issue_pages(table: Any) -> list[dict]:
    """One page per row of an image-quality table (or of the ``cvkit audit`` table), in its order."""
    pages = [_page(row) for row in table.to_dict("records")]
    return [p for p in pages if p is not None]
