"""``ConfusionGrid``: a confusion matrix made of buttons, one per (true class, predicted class) cell.

Why: the matrix says which classes the model mixes up; a click on a cell should show the photos
behind that number (issue 27, "show why"). Each button shows its count and is shaded by its share
of the true class's photos (green on the diagonal, red off it), so the big mistakes stand out.
:class:`~cvkit.widgets.ResultsWidget` shows one under its photos and, on a click, filters its photos
to that cell.

Example:
    >>> grid = ConfusionGrid(["cat", "dog"], y_true=[0, 0, 1, 1], y_pred=[0, 1, 1, 1])
    >>> grid.matrix.tolist()
    [[1, 1], [0, 2]]
    >>> picked = []
    >>> grid.on_select(lambda i, j: picked.append((i, j)))
    >>> grid.buttons[0, 1].click()      # what a click on the cell "true cat, predicted dog" does
    >>> picked
    [(0, 1)]
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import ipywidgets as W
import numpy as np

from cvkit.widgets._display import esc

__all__ = ["ConfusionGrid", "cell_colour"]

_CELL = "56px"


def cell_colour(share: float, diagonal: bool) -> str:
    """The cell's background: white for 0, full green (diagonal) or red (mistakes) for 1."""
    share = float(min(max(share, 0.0), 1.0))
    full = (46, 160, 67) if diagonal else (207, 34, 46)
    r, g, b = (round(255 + (c - 255) * share) for c in full)
    return f"#{r:02x}{g:02x}{b:02x}"


class ConfusionGrid:
    """Counts of ``(true i, predicted j)`` as a grid of buttons; :meth:`on_select` gets the clicks.

    Parameters
    ----------
    classes : the class names (rows: true class; columns: predicted class).
    y_true, y_pred : class indices per photo; negative values (a true class the model does not know,
        an unreadable photo) are left out of the counts.

    Attributes: ``matrix`` (counts), ``buttons`` (dict ``(i, j) -> Button``; empty cells are
    disabled), ``widget`` (the grid with its class names), ``selected`` (the highlighted cell or None).
    """

    def __init__(self, classes: Sequence[str], y_true: Sequence[int], y_pred: Sequence[int]):
        self.classes = [str(c) for c in classes]
        k = len(self.classes)
        t, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
        ok = (t >= 0) & (p >= 0) & (t < k) & (p < k)
        self.matrix = np.zeros((k, k), dtype=np.int64)
        np.add.at(self.matrix, (t[ok], p[ok]), 1)
        self.selected: tuple[int, int] | None = None
        self._callbacks: list[Callable[[int, int], None]] = []
        self.buttons: dict[tuple[int, int], W.Button] = {}
        rows = self.matrix.sum(axis=1)
        for i in range(k):
            for j in range(k):
                n = int(self.matrix[i, j])
                share = n / rows[i] if rows[i] else 0.0
                button = W.Button(description=str(n), disabled=n == 0,
                                  tooltip=f"true {self.classes[i]}, predicted {self.classes[j]}: "
                                          f"{n} photos ({share:.0%} of {self.classes[i]})",
                                  layout=W.Layout(width=_CELL, height="32px", margin="1px"))
                button.style.button_color = cell_colour(share, i == j)
                button.style.text_color = "white" if share > 0.55 else "black"
                button.add_class("cvkit-confusion-cell")
                button.add_class(f"cvkit-cell-{i}-{j}")
                button.on_click(lambda _, i=i, j=j: self.select(i, j))
                self.buttons[i, j] = button
        self.widget = self._layout()

    def _layout(self) -> W.Widget:
        k = len(self.classes)
        name = "overflow:hidden;text-overflow:ellipsis;white-space:nowrap;font-size:12px"
        head = [W.HTML("<small>true &darr; predicted &rarr;</small>", layout=W.Layout(width="110px"))]
        head += [W.HTML(f'<div style="{name};text-align:center" title="{esc(c)}">{esc(c)}</div>',
                        layout=W.Layout(width=_CELL, margin="1px")) for c in self.classes]
        rows = [W.HBox(head)]
        for i, c in enumerate(self.classes):
            label = W.HTML(f'<div style="{name};line-height:32px" title="{esc(c)}">{esc(c)}</div>',
                           layout=W.Layout(width="110px"))
            rows.append(W.HBox([label] + [self.buttons[i, j] for j in range(k)]))
        box = W.VBox([W.HTML("<b>confusion matrix</b> <small>(click a cell to see its photos)</small>"),
                      *rows])
        box.add_class("cvkit-confusion")
        return box

    def on_select(self, callback: Callable[[int, int], None]) -> None:
        """Call ``callback(i, j)`` when the cell true ``i``, predicted ``j`` is clicked."""
        self._callbacks.append(callback)

    def select(self, i: int, j: int) -> None:
        """Act as a click on cell ``(i, j)``: highlight it and tell the callbacks."""
        if (i, j) not in self.buttons:
            raise IndexError(f"no cell ({i}, {j}) in a {len(self.classes)}-class matrix")
        self.highlight((i, j))
        for callback in list(self._callbacks):
            callback(i, j)

    def highlight(self, cell: tuple[int, int] | None) -> None:
        """Outline ``cell`` (None: no cell), without calling the callbacks."""
        self.selected = cell
        for key, button in self.buttons.items():
            button.layout.border = "3px solid #1f4e99" if key == cell else ""
