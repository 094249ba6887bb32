"""``PrecisionRecallWidget``: choose a confidence threshold by seeing what it costs and buys.

Why: in production a model can refuse to answer when it is unsure (send the photo to a person).
A higher threshold makes the answers it keeps more precise but keeps fewer of them. The widget
shows, for the threshold on its slider, the precision, the recall and the share of images kept,
and marks that point on the precision/recall curve, for all classes at once or one class against
the rest. The numbers come from :meth:`cvkit.evaluation.EvaluationReport.at_threshold`.
:meth:`PrecisionRecallWidget.apply_to` gives the model the chosen threshold, so it travels with
the saved model to every path that answers from it.

Example:
    >>> import cvkit
    >>> train, test = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
    >>> clf = cvkit.FeatureClassifier(verbose=False, random_state=0).fit(train)
    >>> from cvkit.widgets import PrecisionRecallWidget
    >>> PrecisionRecallWidget(cvkit.evaluate(clf, test))
    <PrecisionRecallWidget: 36 images, 4 classes, threshold 0.50>
"""
from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import ipywidgets as W
import numpy as np

from cvkit._validation import Interval, check_param
from cvkit.evaluation._report import EvaluationReport
from cvkit.widgets._display import esc

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["PrecisionRecallWidget"]

_ALL = "(all classes)"


class PrecisionRecallWidget:
    """A threshold slider with precision, recall and coverage, and the PR curve with the point marked.

    Parameters
    ----------
    report : an :class:`~cvkit.evaluation.EvaluationReport` (from ``cvkit.evaluate``).
    threshold : where the slider starts.
    class_name : ``None`` for all classes (an image is kept when its top score reaches the
        threshold; precision is the accuracy on kept images, recall the share of all images kept
        and right) or a class name (one vs rest: images whose score for that class reaches the
        threshold are flagged as that class).
    figsize : size of the figure in inches.

    Controls (attributes): ``threshold`` (FloatSlider), ``class_selector`` (Dropdown, ``"(all
    classes)"`` or a class). ``values`` is the dict shown (precision, recall, coverage,
    n_covered); ``figure`` is the matplotlib Figure drawn for the current settings; ``plot`` (an
    ``Image`` widget) shows it as SVG, so lines and text stay sharp on high-resolution screens.

    Example:
        >>> import cvkit
        >>> train, test = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
        >>> clf = cvkit.FeatureClassifier(verbose=False, random_state=0).fit(train)
        >>> w = PrecisionRecallWidget(cvkit.evaluate(clf, test), threshold=0.8)
        >>> w.values == w.report.at_threshold(0.8)                     # the numbers shown
        True
        >>> w.class_selector.value = "bird"                            # one class against the rest
        >>> w.values["n_covered"] == w.report.at_threshold(0.8, "bird")["n_covered"]
        True
    """

    def __init__(self, report: EvaluationReport, threshold: float = 0.5,
                 class_name: str | None = None, figsize: tuple[float, float] = (9.0, 3.6)):
        if not hasattr(report, "at_threshold"):
            raise TypeError(f"report must be an EvaluationReport (cvkit.evaluate(...)), not "
                            f"{type(report).__name__}")
        check_param("threshold", threshold, [Interval(float, 0, 1)])
        if class_name is not None and class_name not in report.classes:
            raise ValueError(f"class_name {class_name!r} is not one of the classes {report.classes}")
        self.report = report
        self.figsize = figsize
        self._curves: dict[str | None, Any] = {}
        self.threshold = W.FloatSlider(value=float(threshold), min=0.0, max=1.0, step=0.01,
                                       description="threshold", readout_format=".2f",
                                       continuous_update=False, layout=W.Layout(width="420px"))
        self.class_selector = W.Dropdown(options=[_ALL] + list(report.classes),
                                         value=_ALL if class_name is None else class_name,
                                         description="class")
        self.numbers = W.HTML()
        self.numbers.add_class("cvkit-pr-numbers")
        # SVG in an <img>, at the figure's size in CSS pixels (80 per inch): crisp at any zoom
        self.plot = W.Image(format="svg+xml", layout=W.Layout(width=f"{round(80 * figsize[0])}px",
                                                              height=f"{round(80 * figsize[1])}px"))
        self.threshold.observe(self._update, names="value")
        self.class_selector.observe(self._update, names="value")
        self.widget = W.VBox([W.HBox([self.class_selector, self.threshold]), self.numbers, self.plot])
        self.widget.add_class("cvkit-precision-recall")
        self.figure: Figure | None = None
        self._figure_class: str | None = None
        self._update()

    @property
    def class_name(self) -> str | None:
        """The selected class, or None for all classes."""
        value = self.class_selector.value
        return None if value == _ALL else value

    def apply_to(self, model: Any) -> Any:
        """Give ``model`` the threshold on the slider: for all classes, or (a class selected) for that
        class alone, keeping the model's thresholds for the others. The model then answers "no
        decision" below it in every path once saved (``clf.save``; for a saved folder,
        :func:`cvkit.models.save_thresholds` with ``model.decision_rule_.thresholds``). Returns the model.

        Example:
            >>> import cvkit
            >>> train, test = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
            >>> clf = cvkit.FeatureClassifier(verbose=False).fit(train)
            >>> w = PrecisionRecallWidget(cvkit.evaluate(clf, test), threshold=0.6)
            >>> w.class_selector.value = "bird"
            >>> w.apply_to(clf).decision_rule_.thresholds
            {'bird': 0.6, 'flower': 0.0, 'fruit': 0.0, 'vegetable': 0.0}
        """
        value = round(float(self.threshold.value), 4)
        if self.class_name is None:
            return model.set_thresholds(value)
        current = getattr(model, "decision_rule_", None)
        kept = current.threshold_array(model.classes_) if current is not None else np.zeros(len(model.classes_))
        thresholds = {str(c): float(t) for c, t in zip(model.classes_, kept)}
        thresholds[self.class_name] = value
        return model.set_thresholds(thresholds)

    def _curve(self, class_name: str | None) -> Any:
        """``threshold_curve`` at every distinct score (capped at ~400 points) and a 0.01 grid."""
        if class_name not in self._curves:
            proba = self.report.proba
            scores = proba.max(axis=1) if class_name is None else \
                proba[:, self.report.classes.index(class_name)]
            distinct = np.unique(scores)
            if len(distinct) > 300:
                distinct = np.unique(np.quantile(scores, np.linspace(0, 1, 300)))
            grid = np.unique(np.concatenate([np.linspace(0, 1, 101), distinct]))
            self._curves[class_name] = self.report.threshold_curve(class_name, thresholds=grid)
        return self._curves[class_name]

    def _update(self, *_: Any) -> None:
        t = float(self.threshold.value)
        name = self.class_name
        self.values: dict[str, float] = self.report.at_threshold(t, name)
        self.numbers.value = self._numbers_html(self.values, name)
        if self.figure is None or self._figure_class != name:
            self._new_figure(name)
        self._move_marker(t)
        self.plot.value = self._render_svg()

    def _render_svg(self) -> bytes:
        """The figure as SVG: sharp lines and text at any screen resolution or browser zoom.

        Why not PNG: a raster drawn at 80 dpi is scaled up on high-resolution screens and its
        text looks soft. The SVG's ids are salted with a constant and it carries no date, so the
        same figure always gives the same bytes.
        """
        import matplotlib

        buf = io.BytesIO()
        with matplotlib.rc_context({"svg.hashsalt": "cvkit", "svg.fonttype": "path"}):
            self.figure.savefig(buf, format="svg", metadata={"Date": None})
        return buf.getvalue()

    def _numbers_html(self, v: dict, name: str | None) -> str:
        def pct(x: float) -> str:
            return "n/a" if x != x else f"{x:.1%}"
        n = len(self.report)
        if name is None:
            what = (f"kept {v['n_covered']} of {n} images ({pct(v['coverage'])}): those whose top "
                    "score reaches the threshold")
            prec = "precision (accuracy of kept images)"
            rec = "recall (share of all images kept and right)"
        else:
            what = (f"flagged as <b>{esc(name)}</b>: {v['n_covered']} of {n} images "
                    f"({pct(v['coverage'])})")
            prec = f"precision ({esc(name)} vs rest)"
            rec = f"recall ({esc(name)} vs rest)"
        return (f'<div style="font-size:14px">{prec}: <b>{pct(v["precision"])}</b> &nbsp;&middot;&nbsp; '
                f'{rec}: <b>{pct(v["recall"])}</b><br>{what}</div>')

    def _new_figure(self, name: str | None) -> None:
        """Draw the curves for ``name`` once; moving the threshold only moves the marker and line."""
        from matplotlib.figure import Figure

        curve = self._curve(name)
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        fig = Figure(figsize=self.figsize, dpi=80)
        FigureCanvasAgg(fig)
        ax_pr, ax_t = fig.subplots(1, 2)
        ok = curve["precision"].notna()
        ax_pr.plot(curve["recall"][ok], curve["precision"][ok], color="#1f77b4", label="curve")
        (self._marker,) = ax_pr.plot([], [], "o", color="#d62728", markersize=9, label="threshold")
        ax_pr.set_xlim(-0.02, 1.02)
        ax_pr.set_ylim(-0.02, 1.05)
        ax_pr.set_xlabel("recall")
        ax_pr.set_ylabel("precision")
        ax_pr.set_title("all classes (top score)" if name is None else f"{name} vs rest")
        ax_pr.grid(alpha=0.3)
        self._empty_note = ax_pr.text(0.5, 0.5, "no image reaches\nthis threshold", ha="center",
                                      va="center", color="#d62728", transform=ax_pr.transAxes)
        self._legend_ax = ax_pr

        ax_t.plot(curve["threshold"], curve["precision"], label="precision", color="#1f77b4")
        ax_t.plot(curve["threshold"], curve["recall"], label="recall", color="#ff7f0e")
        ax_t.plot(curve["threshold"], curve["coverage"], label="kept", color="#2ca02c", linestyle="--")
        self._vline = ax_t.axvline(0.5, color="#d62728")
        ax_t.set_xlim(0, 1)
        ax_t.set_ylim(-0.02, 1.05)
        ax_t.set_xlabel("threshold")
        ax_t.set_title("as the threshold moves")
        ax_t.legend(loc="lower left")
        ax_t.grid(alpha=0.3)
        fig.tight_layout()
        self.figure, self._figure_class = fig, name

    def _move_marker(self, t: float) -> None:
        v = self.values
        defined = v["precision"] == v["precision"]
        self._marker.set_data([v["recall"]] if defined else [], [v["precision"]] if defined else [])
        self._marker.set_label(f"threshold {t:.2f}")
        legend = self._legend_ax.get_legend()
        if legend is not None:
            legend.remove()
        if defined:
            self._legend_ax.legend(handles=[self._marker], loc="lower left")
        self._empty_note.set_visible(not defined)
        self._vline.set_xdata([t, t])

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        return (f"<PrecisionRecallWidget: {len(self.report)} images, {len(self.report.classes)} "
                f"classes, threshold {self.threshold.value:.2f}>")
