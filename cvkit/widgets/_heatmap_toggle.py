"""The results widget's "heat map" toggle: the photo shown with the map of the class it was given.

Why lazily: a heat map costs a forward pass (and, for a model folder, loading its Keras graph), so
none is made until the toggle is switched on, and then only for the photos actually looked at; each
is kept (a few dozen at most) so going back and forth is instant. The map is the one
:func:`cvkit.explain` makes (exact CAM for cvkit's linear heads), for the *predicted* class: where the
model found the evidence for what it answered.

Example:
    >>> import cvkit
    >>> clf = cvkit.FeatureClassifier(verbose=False).fit("sample_data")
    >>> toggle = HeatmapToggle(clf, (240, 200))
    >>> data, method = toggle.get("sample_data/bird/owl.jpg", "bird")
    >>> data[:2] == b"\\xff\\xd8", method       # a JPEG of the overlay, and how the map was made
    (True, 'cam')
"""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

import ipywidgets as W

from cvkit.widgets._display import encode_fitted

__all__ = ["HeatmapToggle"]


class HeatmapToggle:
    """A ``checkbox`` ("heat map") and overlays made on demand by :func:`cvkit.explain` for ``model``.

    ``get(path, target)`` returns ``(JPEG bytes fitted to box, method)`` or ``(None, reason)`` when no
    map can be made for that photo (unreadable, or a model folder without a Keras graph).
    """

    def __init__(self, model: Any, box: tuple[int, int], capacity: int = 32):
        self.model = model
        self.box = (int(box[0]), int(box[1]))
        self.capacity = int(capacity)
        self._items: OrderedDict[tuple[str, str], tuple[bytes | None, str]] = OrderedDict()
        self.checkbox = W.Checkbox(value=False, description="heat map", indent=False,
                                   layout=W.Layout(width="110px"))
        self.checkbox.add_class("cvkit-heatmap-toggle")

    @property
    def on(self) -> bool:
        return bool(self.checkbox.value)

    def get(self, path: str, target: str) -> tuple[bytes | None, str]:
        key = (os.fspath(path), str(target))
        if key not in self._items:
            self._items[key] = self._make(*key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return self._items[key]

    def _make(self, path: str, target: str) -> tuple[bytes | None, str]:
        import warnings

        from cvkit.evaluation import explain

        try:
            if isinstance(self.model, (str, os.PathLike)):  # a folder: loaded once, its Keras graph read once
                from cvkit.models import load_model
                self.model = load_model(self.model)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # an unreadable photo: its reason is shown instead
                found = explain(self.model, [path], target=target, verbose=False)
        except (OSError, ValueError) as exc:  # e.g. a LiteRT-only folder: say why, keep browsing
            return None, str(exc).split("\n")[0]
        overlay = found.overlays()[0]
        if overlay is None:
            return None, "no heat map: the photo could not be read"
        data, _ = encode_fitted(overlay, self.box)
        return data, found.method
