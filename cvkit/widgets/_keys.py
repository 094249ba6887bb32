"""``KeyListener``: keyboard shortcuts for a widget, as a tiny anywidget (ipywidgets has no key events).

Why: labelling hundreds of photos by mouse is slow; with keys it is one press per photo. The
listener renders the list of shortcuts and, once the page is loaded, listens to key presses inside
the enclosing widget (the nearest ancestor with the CSS class ``host_class``), so a click anywhere
in that widget gives it the keys. Presses inside text boxes are left alone, and JupyterLab's own
notebook shortcuts (``1`` = heading, ``x`` = cut cell...) are suppressed there. Each listed key is
sent to Python, where :meth:`KeyListener.on_key` callbacks receive it. The JavaScript is inline
(no CDN): it works offline.

Example:
    >>> keys = KeyListener(shortcut_keys=["x", "ArrowLeft"], help_html="<kbd>x</kbd> excludes")
    >>> pressed = []
    >>> keys.on_key(pressed.append)
    >>> keys.press("x"); keys.press("q")          # what a key press in the browser sends
    >>> pressed
    ['x']
"""
from __future__ import annotations

from collections.abc import Callable

import anywidget
import traitlets

__all__ = ["KeyListener"]

_ESM = r"""
function render({ model, el }) {
  const box = document.createElement("div");
  box.className = "cvkit-keys";
  box.tabIndex = 0;
  box.setAttribute("data-lm-suppress-shortcuts", "true");
  const show = () => { box.innerHTML = model.get("help_html"); };
  show();
  model.on("change:help_html", show);
  el.appendChild(box);
  const onKey = (e) => {
    const t = e.target;
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(t && t.tagName);
    if (t && (typing || t.isContentEditable)) return;
    if (e.ctrlKey || e.metaKey || e.altKey || !model.get("shortcut_keys").includes(e.key)) return;
    e.preventDefault();
    e.stopPropagation();
    model.send({ key: e.key });
  };
  let host = null, tries = 0;
  const attach = () => {
    const found = el.closest("." + model.get("host_class"));
    if (!found && tries++ < 50) { setTimeout(attach, 100); return; }
    host = found || box;
    if (!host.hasAttribute("tabindex")) host.setAttribute("tabindex", "0");
    host.setAttribute("data-lm-suppress-shortcuts", "true");
    host.addEventListener("keydown", onKey);
  };
  attach();
  return () => { if (host) host.removeEventListener("keydown", onKey); };
}
export default { render };
"""

_CSS = """
.cvkit-keys { font-size: 12px; color: #555; padding: 2px 6px; border: 1px dashed #bbb; border-radius: 4px; }
.cvkit-keys:focus { outline: 2px solid #4a90d9; }
.cvkit-keys kbd { border: 1px solid #aaa; border-radius: 3px; padding: 0 4px; background: #f6f6f6; }
"""


class KeyListener(anywidget.AnyWidget):
    """Shows ``help_html`` and sends presses of ``shortcut_keys`` (``KeyboardEvent.key`` names) to Python.

    (``keys`` and ``help`` are taken: ipywidgets uses ``keys`` for the list of synced traits.)
    """

    _esm = _ESM
    _css = _CSS
    shortcut_keys = traitlets.List(traitlets.Unicode(), default_value=[]).tag(sync=True)
    help_html = traitlets.Unicode("").tag(sync=True)
    host_class = traitlets.Unicode("cvkit-annotation").tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._callbacks: list[Callable[[str], None]] = []
        self.on_msg(self._on_message)

    def on_key(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(key)`` for every listed key pressed in the browser."""
        self._callbacks.append(callback)

    def press(self, key: str) -> None:
        """Act as if ``key`` were pressed in the browser (for scripts and tests); unlisted keys are ignored."""
        if key in self.shortcut_keys:
            for callback in list(self._callbacks):
                callback(key)

    def _on_message(self, _widget: object, content: dict, _buffers: object) -> None:
        if isinstance(content, dict) and isinstance(content.get("key"), str):
            self.press(content["key"])
