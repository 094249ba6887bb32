"""``ScatterPlot``: a clickable, box-selectable scatter plot as a tiny anywidget (SVG, inline JavaScript).

Why: ipywidgets has no scatter plot, and cvkit depends on no plotting widget library (no bqplot,
plotly or ipympl); ``anywidget`` (already a dependency, for :mod:`cvkit.widgets._keys`) lets a
few lines of JavaScript draw the points as SVG and send pointer events back to Python. Works
offline (no CDN) and in JupyterLab, Notebook 7 and VS Code.

What the browser does: hovering a point shows its ``tip`` next to the pointer and sends
``{"hover": i}``; a click on a point sends ``{"click": i}``; dragging a box on the background sends
``{"box": [u0, u1, v0, v1]}`` in the plot's unit square (``u`` left to right, ``v`` bottom to top).
Python receives them through :meth:`ScatterPlot.on_event` callbacks; :meth:`ScatterPlot.emit` does
the same from code (scripts and tests). ``selected`` (point indices) is drawn bold.

Example:
    >>> plot = ScatterPlot(points=[[0.0, 0.0, "#1f77b4", "", False, "a.jpg"],
    ...                            [1.0, 1.0, "#ff7f0e", "#000", True, "b.jpg"]])
    >>> seen = []
    >>> plot.on_event(lambda kind, value: seen.append((kind, value)))
    >>> plot.emit("click", 1); plot.emit("box", [0.5, 1.0, 0.5, 1.0])
    >>> seen
    [('click', 1), ('box', [0.5, 1.0, 0.5, 1.0])]
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

__all__ = ["ScatterPlot", "EVENTS"]

#: the messages the browser sends: a point hovered or clicked, a box dragged
EVENTS = ("hover", "click", "box")

_ESM = r"""
const NS = "http://www.w3.org/2000/svg";
function render({ model, el }) {
  const wrap = document.createElement("div");
  wrap.className = "cvkit-scatter";
  const svg = document.createElementNS(NS, "svg");
  const tip = document.createElement("div");
  tip.className = "cvkit-scatter-tip";
  wrap.appendChild(svg); wrap.appendChild(tip); el.appendChild(wrap);
  const pad = 14;
  let drag = null, rect = null;
  const W = () => model.get("width"), H = () => model.get("height");
  const px = (u) => pad + u * (W() - 2 * pad);
  const py = (v) => H() - pad - v * (H() - 2 * pad);
  const unit = (x, y) => [(x - pad) / (W() - 2 * pad), (H() - pad - y) / (H() - 2 * pad)];
  const local = (e) => { const b = svg.getBoundingClientRect(); return [e.clientX - b.left, e.clientY - b.top]; };
  const draw = () => {
    svg.setAttribute("width", W()); svg.setAttribute("height", H());
    svg.innerHTML = "";
    const bg = document.createElementNS(NS, "rect");
    bg.setAttribute("width", W()); bg.setAttribute("height", H());
    bg.setAttribute("class", "cvkit-scatter-bg");
    svg.appendChild(bg);
    const chosen = new Set(model.get("selected"));
    const r = model.get("radius");
    model.get("points").forEach((p, i) => {
      const [u, v, colour, ring, cross, text] = p;
      const g = document.createElementNS(NS, "g");
      g.setAttribute("class", "cvkit-point" + (chosen.has(i) ? " cvkit-point-selected" : ""));
      g.setAttribute("data-index", i);
      const c = document.createElementNS(NS, "circle");
      c.setAttribute("cx", px(u)); c.setAttribute("cy", py(v));
      c.setAttribute("r", chosen.has(i) ? r + 2 : r);
      c.setAttribute("fill", colour);
      c.setAttribute("stroke", chosen.has(i) ? "#000" : "none");
      c.setAttribute("stroke-width", chosen.has(i) ? 2 : 0);
      g.appendChild(c);
      if (ring) {  // a ring around the point, apart from it (a red ring shows on a red point too)
        const o = document.createElementNS(NS, "circle");
        o.setAttribute("cx", px(u)); o.setAttribute("cy", py(v));
        o.setAttribute("r", (chosen.has(i) ? r + 2 : r) + 3.5);
        o.setAttribute("fill", "none"); o.setAttribute("stroke", ring); o.setAttribute("stroke-width", 2);
        o.setAttribute("class", "cvkit-point-ring");
        g.appendChild(o);
      }
      if (cross) {
        const s = r + 3, x = px(u), y = py(v);
        const d = `M${x - s},${y - s}L${x + s},${y + s}M${x - s},${y + s}L${x + s},${y - s}`;
        const path = document.createElementNS(NS, "path");
        path.setAttribute("d", d); path.setAttribute("stroke", "#333"); path.setAttribute("stroke-width", 1.5);
        g.appendChild(path);
      }
      g.addEventListener("mouseenter", (e) => {
        tip.textContent = text; tip.style.display = "block";
        const [x, y] = local(e); tip.style.left = (x + 12) + "px"; tip.style.top = (y + 12) + "px";
        model.send({ hover: i });
      });
      g.addEventListener("mouseleave", () => { tip.style.display = "none"; });
      g.addEventListener("mousedown", (e) => { e.stopPropagation(); });
      g.addEventListener("click", (e) => { e.stopPropagation(); model.send({ click: i }); });
      svg.appendChild(g);
    });
  };
  svg.addEventListener("mousedown", (e) => {
    drag = local(e);
    rect = document.createElementNS(NS, "rect");
    rect.setAttribute("class", "cvkit-scatter-box");
    svg.appendChild(rect);
    e.preventDefault();
  });
  svg.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const [x, y] = local(e);
    rect.setAttribute("x", Math.min(x, drag[0])); rect.setAttribute("y", Math.min(y, drag[1]));
    rect.setAttribute("width", Math.abs(x - drag[0])); rect.setAttribute("height", Math.abs(y - drag[1]));
  });
  const finish = (e) => {
    if (!drag) return;
    const [x, y] = local(e);
    if (Math.abs(x - drag[0]) > 3 && Math.abs(y - drag[1]) > 3) {
      const a = unit(drag[0], drag[1]), b = unit(x, y);
      model.send({ box: [Math.min(a[0], b[0]), Math.max(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[1], b[1])] });
    }
    drag = null; if (rect) { rect.remove(); rect = null; }
  };
  svg.addEventListener("mouseup", finish);
  svg.addEventListener("mouseleave", finish);
  draw();
  model.on("change:points", draw); model.on("change:selected", draw);
  model.on("change:width", draw); model.on("change:height", draw);
}
export default { render };
"""

_CSS = """
.cvkit-scatter { position: relative; display: inline-block; user-select: none; }
.cvkit-scatter-bg { fill: #fafafa; stroke: #ccc; cursor: crosshair; }
.cvkit-scatter-box { fill: rgba(31, 78, 153, 0.12); stroke: #1f4e99; stroke-dasharray: 4 2; }
.cvkit-point { cursor: pointer; }
.cvkit-point:hover circle:first-child { stroke: #000; stroke-width: 2; }
.cvkit-scatter-tip { position: absolute; display: none; pointer-events: none; background: #fff;
  border: 1px solid #999; border-radius: 3px; padding: 2px 5px; font-size: 11px; white-space: nowrap;
  box-shadow: 0 1px 3px rgba(0,0,0,.2); z-index: 10; }
"""


class ScatterPlot(anywidget.AnyWidget):
    """Points ``[u, v, colour, ring colour or "", cross, tip]`` (``u``, ``v`` in [0, 1]) drawn as SVG."""

    _esm = _ESM
    _css = _CSS
    points = traitlets.List([]).tag(sync=True)
    selected = traitlets.List(traitlets.Int(), default_value=[]).tag(sync=True)
    width = traitlets.Int(520).tag(sync=True)
    height = traitlets.Int(420).tag(sync=True)
    radius = traitlets.Int(4).tag(sync=True)

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._callbacks: list[Callable[[str, Any], None]] = []
        self.on_msg(self._on_message)

    def on_event(self, callback: Callable[[str, Any], None]) -> None:
        """Call ``callback(kind, value)`` for each browser event (``kind`` in :data:`EVENTS`)."""
        self._callbacks.append(callback)

    def emit(self, kind: str, value: Any) -> None:
        """Act as if the browser had sent the event (for scripts and tests)."""
        if kind not in EVENTS:
            raise ValueError(f"unknown event {kind!r}; the events are {list(EVENTS)}")
        for callback in list(self._callbacks):
            callback(kind, value)

    def _on_message(self, _widget: object, content: dict, _buffers: object) -> None:
        if isinstance(content, dict) and len(content) == 1:
            (kind, value), = content.items()
            if kind in EVENTS:
                self.emit(kind, value)
