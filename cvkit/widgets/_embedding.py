"""``EmbeddingWidget``: the map of a dataset (:func:`cvkit.plot_embedding`) to point at and select from.

Why: the static map shows a photo sitting in another class's cloud, or a class split in two islands;
the next questions are "which photo is that?" and "let me fix those". Here hovering a point shows
its path and label (and the photo beside the map), a click shows the photo, and dragging a box
selects a region: its photos are listed, and "send to annotation" opens an
:class:`~cvkit.widgets.AnnotationWidget` on exactly those photos to relabel them. The new labels go
to the annotation widget's own file (``output``, saved after every click); no photo and no file of
the user's is changed.

Design: the points are drawn by :class:`~cvkit.widgets._scatter.ScatterPlot`, a small SVG anywidget
(anywidget is already a cvkit dependency; no bqplot, plotly or ipympl needed), which sends hover,
click and box events to Python. Everything the browser can do has a method that does the same from
code: :meth:`EmbeddingWidget.select_point`, :meth:`EmbeddingWidget.select_box` (in map units),
:meth:`EmbeddingWidget.send_to_annotation`.

Example:
    >>> import numpy as np, os, tempfile
    >>> features = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0]])
    >>> w = EmbeddingWidget(features, labels=["cat", "cat", "dog"], paths=["a.jpg", "b.jpg", "c.jpg"],
    ...                     method="pca", output=os.path.join(tempfile.mkdtemp(), "relabel.tsv"))
    >>> w
    <EmbeddingWidget: 3 photos, 2 labels, 0 selected>
    >>> w.select_box((w.table.x.min(), w.table.x.max()), (w.table.y.min(), w.table.y.max()))
    >>> w.selected_paths
    ['a.jpg', 'b.jpg', 'c.jpg']
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import ipywidgets as W
import numpy as np

from cvkit._io import image_key
from cvkit.evaluation._embedding import embedding_coordinates, marked_rows
from cvkit.widgets._annotation import AnnotationWidget
from cvkit.widgets._display import ImageCache, esc, placeholder_html
from cvkit.widgets._scatter import ScatterPlot

__all__ = ["EmbeddingWidget", "PALETTE"]

#: label colours (matplotlib's tab10, as plot_embedding uses)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
_LISTED = 30  # photos named in the selection list (the rest are counted)


def _unit(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``values`` scaled to [0, 1] (a constant column sits in the middle) and the scale used."""
    low, span = float(values.min()), float(np.ptp(values))
    if span == 0:
        return np.full(len(values), 0.5), low - 0.5, 1.0
    return (values - low) / span, low, span


class EmbeddingWidget:
    """Point at and select photos on the map of a dataset; send a selection to relabelling.

    Parameters
    ----------
    data : an ImageDataset, a folder or list of photos (featurized with the cached featurizer), or an
        array of features ``(n, d)`` with their ``paths``; ignored (may be None) with ``coordinates``.
    labels : one label per photo (replaces or supplies the dataset's).
    label_issues, duplicates, report : marks, as :func:`cvkit.plot_embedding` takes them: label issues
        ringed in black, duplicates crossed, the report's wrong answers ringed in red.
    paths : the photo of each feature row, when ``data`` is an array of features.
    coordinates : :func:`cvkit.embedding_coordinates`'s table, to reuse a map already made.
    method, random_state, featurizer : as :func:`cvkit.embedding_coordinates`.
    output : the labels file the annotation widget writes (resumed if it exists).
    size : ``(width, height)`` of the map in pixels.

    Attributes: ``table`` (the coordinates, plus boolean ``label_issue``, ``duplicate``, ``wrong``),
    ``plot`` (the scatter), ``selected`` (row positions in ``table``), ``selected_paths``, ``shown``
    (the row whose photo is shown), ``send_button``, ``clear_button``, ``annotation`` (the last
    AnnotationWidget sent to), ``widget``.
    """

    def __init__(self, data: Any, labels: Sequence[str] | None = None, *, label_issues: Any = None,
                 duplicates: Any = None, report: Any = None, paths: Sequence[str] | None = None,
                 coordinates: Any = None, method: str = "auto", random_state: int | None = 0,
                 featurizer: Any = None, output: str | os.PathLike = "relabel.tsv",
                 size: tuple[int, int] = (520, 420)):
        table = coordinates if coordinates is not None else embedding_coordinates(
            data, labels, method=method, random_state=random_state, featurizer=featurizer)
        table = table.copy()
        if paths is not None:
            paths = [os.fspath(p) for p in paths]
            if len(paths) != int(table.attrs.get("n_input", len(table))):
                raise ValueError(f"{len(paths)} paths for {table.attrs.get('n_input', len(table))} feature rows")
            table["path"] = [paths[i] for i in table.index]
        if len(table) == 0:
            raise ValueError("EmbeddingWidget: no photos to map")
        for column, marks in (("label_issue", label_issues), ("duplicate", duplicates), ("wrong", report)):
            table[column] = marked_rows(marks, table, column)
        self.table = table
        self.output = os.fspath(output)
        self.classes = sorted({str(v) for v in table.label if str(v)})
        self._predicted = self._predictions(report)
        self.u, self._x0, self._xs = _unit(table.x.to_numpy(dtype=float))
        self.v, self._y0, self._ys = _unit(table.y.to_numpy(dtype=float))
        self.selected: list[int] = []
        self.shown: int | None = None
        self.annotation: AnnotationWidget | None = None
        self._cache = ImageCache((240, 200))
        self._build(size)
        self._refresh_selection()

    # ------------------------------------------------------------------ selection
    @property
    def selected_paths(self) -> list[str]:
        """The photos selected, in the map's row order."""
        return [str(self.table.path.iloc[i]) for i in self.selected]

    def select_point(self, row: int) -> None:
        """Select one photo (what a click on its point does) and show it."""
        row = int(row)
        if not 0 <= row < len(self.table):
            raise IndexError(f"point {row} out of range for {len(self.table)} points")
        self.selected = [row]
        self.show_point(row)
        self._refresh_selection()

    def select_box(self, x_range: tuple[float, float], y_range: tuple[float, float]) -> None:
        """Select the photos with ``x`` and ``y`` in these ranges (map units, ends included)."""
        x, y = self.table.x.to_numpy(dtype=float), self.table.y.to_numpy(dtype=float)
        (x_lo, x_hi), (y_lo, y_hi) = sorted(map(float, x_range)), sorted(map(float, y_range))
        self.selected = np.flatnonzero((x >= x_lo) & (x <= x_hi) & (y >= y_lo) & (y <= y_hi)).tolist()
        if self.selected:
            self.show_point(self.selected[0])
        self._refresh_selection()

    def clear_selection(self) -> None:
        """Select nothing."""
        self.selected = []
        self._refresh_selection()

    def send_to_annotation(self) -> AnnotationWidget:
        """An :class:`AnnotationWidget` on exactly the selected photos (labels: the map's classes),
        writing to ``output``; it is also shown under the map."""
        paths = self.selected_paths
        if not paths:
            raise ValueError("select photos first (drag a box on the map, or click a point)")
        if not all(paths):
            raise ValueError("these points have no photo paths: pass paths= with the features")
        self.annotation = AnnotationWidget(paths, labels=self.classes or None, output=self.output)
        self.annotation_area.children = (W.HTML(f"<b>relabel the {len(paths)} selected photos</b> "
                                                f"(saved to {esc(self.output)})"), self.annotation.widget)
        return self.annotation

    # ------------------------------------------------------------------ widgets
    def _predictions(self, report: Any) -> dict[str, str]:
        if report is None or getattr(report, "paths", None) is None:
            return {}
        return {image_key(p): report.classes[int(q)] for p, q in zip(report.paths, report.y_pred)}

    def _colours(self) -> dict[str, str]:
        return {c: PALETTE[k % len(PALETTE)] for k, c in enumerate(self.classes)}

    def _points(self) -> list[list[Any]]:
        colour = self._colours()
        t = self.table
        points = []
        for k in range(len(t)):
            ring = "#d62728" if t.wrong.iloc[k] else "#000000" if t.label_issue.iloc[k] else ""
            label, path = str(t.label.iloc[k]), str(t.path.iloc[k])
            tip = f"{label or '(no label)'} · {path or f'row {t.index[k]}'}"
            points.append([float(self.u[k]), float(self.v[k]), colour.get(label, "#999999"), ring,
                           bool(t.duplicate.iloc[k]), tip])
        return points

    def _legend(self) -> str:
        items = [f'<span style="color:{c}">&#9679;</span> {esc(name)}' for name, c in self._colours().items()]
        counts = [(n, what) for n, what in ((int(self.table.label_issue.sum()), "&#9711; label issue"),
                                            (int(self.table.duplicate.sum()), "&#10005; duplicate"),
                                            (int(self.table.wrong.sum()),
                                             '<span style="color:#d62728">&#9711;</span> wrong answer')) if n]
        items += [f"{what} ({n})" for n, what in counts]
        method = esc(self.table.attrs.get("method", ""))
        return (f'<div style="font-size:12px">{" &nbsp; ".join(items)}<br><span style="color:#666">'
                f"{len(self.table)} photos, {method}. Hover a point to see it, click to select it, "
                "drag a box to select a region.</span></div>")

    def _build(self, size: tuple[int, int]) -> None:
        self.plot = ScatterPlot(points=self._points(), width=int(size[0]), height=int(size[1]),
                                radius=4 if len(self.table) > 200 else 5)
        self.plot.on_event(self._on_event)
        self.image = W.Image(format="jpeg", layout=W.Layout(width="240px", height="200px", object_fit="contain"))
        self.placeholder = W.HTML(layout=W.Layout(display="none"))
        self.details = W.HTML("<i>hover or click a point</i>", layout=W.Layout(width="260px"))
        self.count = W.HTML()
        self.listing = W.HTML(layout=W.Layout(max_height="160px", overflow="auto"))
        self.send_button = W.Button(description="send to annotation", icon="tags", button_style="primary",
                                    layout=W.Layout(width="180px"))
        self.clear_button = W.Button(description="clear selection", layout=W.Layout(width="140px"))
        self.send_button.on_click(lambda _: self.send_to_annotation())
        self.clear_button.on_click(lambda _: self.clear_selection())
        self.annotation_area = W.VBox()
        for widget, css in ((self.details, "cvkit-embedding-details"), (self.count, "cvkit-embedding-count"),
                            (self.listing, "cvkit-embedding-list"), (self.send_button, "cvkit-send-annotation"),
                            (self.clear_button, "cvkit-clear-selection")):
            widget.add_class(css)
        self.widget = W.VBox([
            W.HTML(self._legend()),
            W.HBox([self.plot, W.VBox([W.Box([self.image, self.placeholder]), self.details],
                                      layout=W.Layout(margin="0 0 0 12px"))]),
            W.HBox([self.count, self.send_button, self.clear_button]),
            self.listing,
            self.annotation_area,
        ])
        self.widget.add_class("cvkit-embedding")

    def _on_event(self, kind: str, value: Any) -> None:
        if kind == "hover":
            self.show_point(int(value))
        elif kind == "click":
            self.select_point(int(value))
        elif kind == "box":
            u0, u1, v0, v1 = (float(a) for a in value)
            self.select_box((self._x0 + u0 * self._xs, self._x0 + u1 * self._xs),
                            (self._y0 + v0 * self._ys, self._y0 + v1 * self._ys))

    def show_point(self, row: int) -> None:
        """Show one photo beside the map: the photo, its path, label and marks."""
        self.shown = row = int(row)
        t = self.table
        path, label = str(t.path.iloc[row]), str(t.label.iloc[row])
        data, reason = self._cache.get(path) if path else (None, "no photo path for this point")
        if data is not None:
            self.image.value, self.image.layout.display, self.placeholder.layout.display = data, None, "none"
        else:
            self.placeholder.value = placeholder_html(reason or "unreadable", (240, 200))
            self.image.layout.display, self.placeholder.layout.display = "none", None
        marks = [what for column, what in (("label_issue", "label issue"), ("duplicate", "duplicate"))
                 if t[column].iloc[row]]
        if t.wrong.iloc[row]:
            marks.append(f"wrong answer (predicted {esc(self._predicted.get(image_key(path), '?'))})")
        self.details.value = (f"<b>{esc(os.path.basename(path) or f'row {t.index[row]}')}</b><br>"
                              f'<span style="color:#666;font-size:11px;word-break:break-all">{esc(path)}</span>'
                              f"<br>label: <b>{esc(label or '(none)')}</b>"
                              + "".join(f'<br><span style="color:#b00">{m}</span>' for m in marks))

    def _refresh_selection(self) -> None:
        self.plot.selected = list(self.selected)
        n = len(self.selected)
        self.count.value = f"<b>{n} selected</b>&nbsp;" if n else "<i>nothing selected</i>&nbsp;"
        self.send_button.disabled = self.clear_button.disabled = n == 0
        rows = [f"{esc(self.table.label.iloc[i])} &middot; {esc(self.table.path.iloc[i])}"
                for i in self.selected[:_LISTED]]
        if n > _LISTED:
            rows.append(f"&hellip; and {n - _LISTED} more")
        self.listing.value = '<div style="font-size:12px">' + "<br>".join(rows) + "</div>"

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        return (f"<EmbeddingWidget: {len(self.table)} photos, {len(self.classes)} labels, "
                f"{len(self.selected)} selected>")
