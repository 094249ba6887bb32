"""``ResultsWidget``: look at a model's predictions image by image, with filters and sorting.

Why: metrics say how often a model is wrong; looking at the images says why (a mislabelled photo,
two classes that look alike, a class the model never saw in that light). The widget shows each
image with its true and predicted class and a bar per class score, and can show only the mistakes
of one class, worst first.

Example:
    >>> import cvkit
    >>> train, test = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
    >>> clf = cvkit.FeatureClassifier(verbose=False, random_state=0).fit(train)
    >>> from cvkit.widgets import ResultsWidget
    >>> ResultsWidget(test, clf.predict_proba(test), classes=clf.classes_)
    <ResultsWidget: 36 images, 4 classes, 1 wrong>
    >>> ResultsWidget(test, cvkit.evaluate(clf, test))
    <ResultsWidget: 36 images, 4 classes, 1 wrong>
    >>> ResultsWidget(test, cvkit.evaluate(clf, test), decision_rule=clf.set_thresholds(0.9))  # "no decision" below 0.9
    <ResultsWidget: 36 images, 4 classes, 1 wrong, 8 with no decision>
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import ipywidgets as W
import numpy as np

from cvkit.data._dataset import ImageDataset
from cvkit.models._decision import DecisionRule
from cvkit.widgets._confusion import ConfusionGrid
from cvkit.widgets._display import ImageCache, esc, placeholder_html
from cvkit.widgets._heatmap_toggle import HeatmapToggle

__all__ = ["ResultsWidget", "SORT_OPTIONS", "SHOW_OPTIONS"]

#: values of the "show" control ("no decision" too when the widget has a rule with thresholds)
SHOW_OPTIONS = ("all", "correct", "incorrect")
NO_DECISION_OPTION, UNKNOWN_OPTION = "no decision", "unknown"
#: (label, value) pairs of the "sort by" control
SORT_OPTIONS = (("dataset order", "order"), ("confidence: high to low", "confidence"),
                ("confidence: low to high", "-confidence"), ("loss: high to low", "loss"))
_ALL = "(all)"


def _common_parent(paths: Sequence[str]) -> str | None:
    """The folder above the deepest folder shared by all ``paths`` (so a class folder stays in view)."""
    try:
        common = os.path.commonpath([os.path.abspath(os.path.dirname(p)) for p in paths])
    except ValueError:  # empty, or paths on different drives
        return None
    parent = os.path.dirname(common)
    return parent if parent and parent != common else None


def _is_report(obj: Any) -> bool:
    return hasattr(obj, "proba") and hasattr(obj, "y_true") and hasattr(obj, "classes")


class ResultsWidget:
    """Browse predictions: image, true and predicted class, and a bar chart of the class scores.

    Parameters
    ----------
    dataset : the images that were scored (an ImageDataset or a list of paths), in the rows' order.
        May be None when ``results`` is an EvaluationReport that knows its paths.
    results : an :class:`~cvkit.evaluation.EvaluationReport`, or the probabilities
        ``(n_images, n_classes)`` from ``predict_proba`` (rows of NaN = unreadable images).
    classes : class names of the probability columns; defaults to the report's classes, or the
        dataset's labels when they match the number of columns.
    max_bars : how many class scores to show (the highest ones), at most.
    image_size : ``(width, height)`` box the image is scaled to fit, in pixels.
    decision_rule : a model (anything with ``decision_rule_``, e.g. after ``set_thresholds`` or
        :func:`cvkit.load_model` of a folder with thresholds) or a
        :class:`~cvkit.models._decision.DecisionRule`: photos whose top probability is below their class's
        threshold are shown as "no decision" (what the model answers for them everywhere), and the
        ``show`` control gets a "no decision" choice. Given a model whose rule has an unknown cut
        (``set_unknown_threshold``), the images are scored for novelty by it and those above the cut
        are shown as "unknown" (with an "unknown" choice). The arg-max is still what "correct" and
        "incorrect" judge.
    heatmaps : a model (a fitted classifier, a loaded model or its folder) to draw heat maps with: a
        "heat map" checkbox (``heatmap_toggle.checkbox``) then overlays, on each photo looked at,
        where the model found the evidence for its answer (:func:`cvkit.explain`, made lazily).

    Controls (attributes): ``show`` (all / correct / incorrect), ``true_class`` and
    ``predicted_class`` (dropdowns, ``"(all)"`` for no filter), ``sort`` (dataset order, confidence
    either way, loss), ``previous_button``, ``next_button``, ``slider`` (1-based position among the
    images that pass the filters). ``indices`` lists the rows that pass, in display order;
    ``row`` is the row shown. With true labels, ``confusion`` (a
    :class:`~cvkit.widgets._confusion.ConfusionGrid`) shows the confusion matrix: a click on a cell
    (or :meth:`show_cell`) shows only the photos of true class i predicted as j, says so in
    ``cell_text`` ("showing: true X, predicted Y (n)"), and ``all_button`` (or :meth:`show_all`)
    goes back to all photos.

    Example:
        >>> import cvkit
        >>> train, test = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
        >>> clf = cvkit.FeatureClassifier(verbose=False, random_state=0).fit(train)
        >>> w = ResultsWidget(test, cvkit.evaluate(clf, test))
        >>> w.show.value = "incorrect"; w.sort.value = "loss"   # worst mistakes first
        >>> len(w.indices), w.row == w.indices[0]
        (1, True)
    """

    def __init__(self, dataset: ImageDataset | Sequence[str] | None, results: Any = None,
                 classes: Sequence[str] | None = None, max_bars: int = 10,
                 image_size: tuple[int, int] = (360, 300), decision_rule: Any = None, heatmaps: Any = None):
        if results is None and _is_report(dataset):
            dataset, results = None, dataset
        if results is None:
            raise TypeError("ResultsWidget needs results: an EvaluationReport or predict_proba output")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.max_bars = int(max_bars)
        self._load(dataset, results, classes)
        self._decide(decision_rule)
        self._cache = ImageCache(self.image_size)
        self.heatmap_toggle = None if heatmaps is None else HeatmapToggle(heatmaps, self.image_size)
        self._updating = False
        self._build()
        self._apply_filters()

    # ------------------------------------------------------------------ data
    def _load(self, dataset: Any, results: Any, classes: Sequence[str] | None) -> None:
        paths = None
        truth_names: list[str] | None = None
        if dataset is not None:
            paths = [os.fspath(p) for p in (dataset.paths if hasattr(dataset, "paths") else dataset)]
            if getattr(dataset, "targets", None) is not None:
                truth_names = list(dataset.image_labels)
        if _is_report(results):
            report = results
            self.classes: list[str] = list(report.classes)
            proba = np.asarray(report.proba, dtype=np.float64)
            truth_names = [self.classes[t] for t in report.y_true]
            if report.paths is not None:
                paths = list(report.paths)
            elif paths is None or len(paths) != len(proba):
                raise ValueError(f"the report has no image paths and the dataset has "
                                 f"{'none' if paths is None else len(paths)} for its {len(proba)} "
                                 "rows: pass the dataset the report was computed on")
        else:
            proba = np.asarray(results, dtype=np.float64)
            if proba.ndim != 2:
                raise ValueError(f"results must be an EvaluationReport or a 2-D array of probabilities "
                                 f"(n_images, n_classes), got shape {proba.shape}")
            if paths is None:
                raise ValueError("dataset is required with a probability array (to show the images)")
            if len(paths) != len(proba):
                raise ValueError(f"dataset has {len(paths)} images but results has {len(proba)} rows")
            if classes is None:
                labels = list(getattr(dataset, "labels", []) or [])
                if len(labels) != proba.shape[1]:
                    raise ValueError(f"results has {proba.shape[1]} columns: pass classes= (the "
                                     "model's classes_) to name them")
                classes = labels
            self.classes = [str(c) for c in classes]
            if len(self.classes) != proba.shape[1]:
                raise ValueError(f"classes has {len(self.classes)} names for {proba.shape[1]} columns")
        self.paths: list[str] = paths
        self.root = getattr(dataset, "root", None) or _common_parent(paths)
        self.proba: np.ndarray = proba
        index = {c: i for i, c in enumerate(self.classes)}
        n = len(proba)
        self.valid = ~np.isnan(proba).any(axis=1)
        self.y_pred = np.where(self.valid, np.nan_to_num(proba, nan=-1.0).argmax(axis=1), -1)
        self.confidence = np.where(self.valid, np.nan_to_num(proba).max(axis=1), np.nan)
        self.truth: list[str] | None = truth_names
        if truth_names is not None:
            # -1: a true class the model does not know (it can only be wrong on it)
            self.y_true = np.array([index.get(t, -1) for t in truth_names], dtype=np.int64)
            p_true = np.where(self.y_true >= 0,
                              proba[np.arange(n), np.maximum(self.y_true, 0)], 0.0)
            eps = np.finfo(np.float32).eps
            self.loss = np.where(self.valid, -np.log(np.clip(p_true, eps, 1 - eps)), np.nan)
            self.correct = self.valid & (self.y_pred == self.y_true)
        else:
            self.y_true = None
            self.loss = np.full(n, np.nan)
            self.correct = np.zeros(n, bool)

    def _decide(self, decision_rule: Any) -> None:
        """``rule`` and ``withheld`` (rows the rule answers "no decision") from a model or a rule."""
        rule = getattr(decision_rule, "decision_rule_", decision_rule)
        if rule is not None and not isinstance(rule, DecisionRule):
            raise TypeError("decision_rule must be a DecisionRule or a model with decision_rule_, "
                            f"not {type(decision_rule).__name__}")
        novelty = None
        if rule is not None and rule.unknown_cut is not None and getattr(decision_rule, "novelty_", None) is not None:
            novelty = decision_rule.novelty(self.paths)  # the model scores the images shown
        elif rule is not None:
            rule = dataclasses.replace(rule, unknown_cut=None)  # a bare rule: no novelty to apply its cut to
        self.rule: DecisionRule | None = rule
        self.withheld = np.zeros(len(self.proba), bool)
        self.unknown = np.zeros(len(self.proba), bool)
        if self.rule is not None and not self.rule.is_argmax:
            self.rule.check_classes(self.classes)
            _, decisions = self.rule.decide(self.proba, self.classes, novelty)
            self.withheld, self.unknown = decisions == "no_decision", decisions == "unknown"

    # ------------------------------------------------------------------ filtering
    @property
    def row(self) -> int | None:
        """Row (in the dataset/results order) of the image shown; None when nothing passes the filters."""
        return int(self.indices[self._pos]) if len(self.indices) else None

    @property
    def position(self) -> int:
        """Position (0-based) of the image shown among ``indices``. Setting it moves there."""
        return self._pos

    @position.setter
    def position(self, value: int) -> None:
        value = int(value)
        if not 0 <= value < max(1, len(self.indices)):
            raise IndexError(f"position {value} out of range for {len(self.indices)} images")
        self._pos = value
        self._refresh()

    def next(self) -> None:
        """Show the next image that passes the filters."""
        if self._pos + 1 < len(self.indices):
            self.position = self._pos + 1

    def previous(self) -> None:
        """Show the previous image that passes the filters."""
        if self._pos > 0:
            self.position = self._pos - 1

    def _apply_filters(self, *_: Any) -> None:
        if self._updating:
            return
        keep = np.ones(len(self.paths), bool)
        show = self.show.value
        if show == "correct":
            keep &= self.correct
        elif show == "incorrect":
            keep &= self.valid & ~self.correct
        elif show == NO_DECISION_OPTION:
            keep &= self.withheld
        elif show == UNKNOWN_OPTION:
            keep &= self.unknown
        if self.true_class.value != _ALL and self.truth is not None:
            keep &= np.array([t == self.true_class.value for t in self.truth])
        if self.predicted_class.value != _ALL:
            keep &= self.y_pred == self.classes.index(self.predicted_class.value)
        rows = np.flatnonzero(keep)
        key = self.sort.value
        if key == "confidence":   # NaN (unreadable) last in both directions
            rows = rows[np.argsort(-np.nan_to_num(self.confidence[rows], nan=-np.inf), kind="stable")]
        elif key == "-confidence":
            rows = rows[np.argsort(np.nan_to_num(self.confidence[rows], nan=np.inf), kind="stable")]
        elif key == "loss":
            rows = rows[np.argsort(-np.nan_to_num(self.loss[rows], nan=-np.inf), kind="stable")]
        self.indices: np.ndarray = rows
        self._pos = 0
        self._describe_cell()
        self._refresh()

    def show_cell(self, true: int | str, predicted: int | str) -> None:
        """Show only the photos of true class ``true`` predicted as ``predicted`` (names or indices)."""
        if self.truth is None:
            raise ValueError("ResultsWidget: the images have no true labels, so there is no confusion matrix")
        names = [self.classes[c] if isinstance(c, (int, np.integer)) else str(c) for c in (true, predicted)]
        for name in names:
            if name not in self.classes:
                raise ValueError(f"unknown class {name!r}; the classes are {self.classes}")
        self._updating = True
        try:
            self.show.value = "all"
            self.true_class.value, self.predicted_class.value = names
        finally:
            self._updating = False
        self._apply_filters()

    def show_all(self) -> None:
        """Drop the class and show filters: every photo again."""
        self._updating = True
        try:
            self.show.value = "all"
            self.true_class.value = self.predicted_class.value = _ALL
        finally:
            self._updating = False
        self._apply_filters()

    def _describe_cell(self) -> None:
        """The "showing: ..." line and the highlighted cell, from the filters (a click sets them)."""
        true, pred = self.true_class.value, self.predicted_class.value
        cell = None
        if self.show.value == "all" and true in self.classes and pred in self.classes:
            cell = (self.classes.index(true), self.classes.index(pred))
        if self.confusion is not None:
            self.confusion.highlight(cell)
        parts = ([self.show.value] if self.show.value != "all" else []) \
            + ([f"true <b>{esc(true)}</b>"] if true != _ALL else []) \
            + ([f"predicted <b>{esc(pred)}</b>"] if pred != _ALL else [])
        self.all_button.layout.display = None if parts else "none"
        self.cell_text.value = f"showing: {', '.join(parts) or 'all photos'} ({len(self.indices)})"

    # ------------------------------------------------------------------ widgets
    def _build(self) -> None:
        labelled = self.truth is not None
        thresholds = self.rule is not None and self.rule.thresholds is not None
        cut = self.rule is not None and self.rule.unknown_cut is not None
        self.show = W.ToggleButtons(options=list(SHOW_OPTIONS) + ([NO_DECISION_OPTION] if thresholds else [])
                                    + ([UNKNOWN_OPTION] if cut else []),
                                    value="all", description="show",
                                    disabled=not labelled,
                                    style={"button_width": "90px"})
        truth_options = [_ALL] + (sorted(set(self.truth) | set(self.classes)) if labelled else [])
        self.true_class = W.Dropdown(options=truth_options, value=_ALL, description="true class",
                                     disabled=not labelled)
        self.predicted_class = W.Dropdown(options=[_ALL] + self.classes, value=_ALL,
                                          description="predicted")
        sort_options = [o for o in SORT_OPTIONS if labelled or o[1] != "loss"]
        self.sort = W.Dropdown(options=sort_options, value="order", description="sort by")
        self.previous_button = W.Button(description="Previous", icon="arrow-left")
        self.next_button = W.Button(description="Next", icon="arrow-right")
        self.slider = W.IntSlider(value=1, min=1, max=1, description="image",
                                  continuous_update=False, layout=W.Layout(width="260px"))
        self.position_text = W.HTML()
        w, h = self.image_size
        self.title = W.HTML()
        self.image = W.Image(format="jpeg", layout=W.Layout(width=f"{w}px", height=f"{h}px",
                                                            object_fit="contain"))
        self.placeholder = W.HTML(layout=W.Layout(display="none"))
        self.verdict = W.HTML()
        n_bars = min(self.max_bars, len(self.classes))
        self._bar_names = [W.HTML(layout=W.Layout(width="130px")) for _ in range(n_bars)]
        self._bars = [W.FloatProgress(min=0.0, max=1.0, layout=W.Layout(width="200px"))
                      for _ in range(n_bars)]
        self._bar_values = [W.HTML(layout=W.Layout(width="60px")) for _ in range(n_bars)]
        self.bars = W.VBox([W.HBox([a, b, c]) for a, b, c in
                            zip(self._bar_names, self._bars, self._bar_values)])
        self.bars.add_class("cvkit-bars")
        for widget, css in [(self.verdict, "cvkit-verdict"), (self.position_text, "cvkit-position"),
                            (self.next_button, "cvkit-next"), (self.previous_button, "cvkit-previous")]:
            widget.add_class(css)

        for control in (self.show, self.true_class, self.predicted_class, self.sort):
            control.observe(self._apply_filters, names="value")
        self.previous_button.on_click(lambda _: self.previous())
        self.next_button.on_click(lambda _: self.next())
        self.slider.observe(self._on_slider, names="value")
        if self.heatmap_toggle is not None:
            self.heatmap_toggle.checkbox.observe(lambda _: self._refresh(), names="value")
        self.confusion = ConfusionGrid(self.classes, self.y_true, self.y_pred) if labelled else None
        if self.confusion is not None:
            self.confusion.on_select(self.show_cell)
        self.cell_text = W.HTML(layout=W.Layout(margin="0 12px 0 0"))
        self.all_button = W.Button(description="show all", icon="th")
        self.all_button.on_click(lambda _: self.show_all())
        self.cell_text.add_class("cvkit-cell-filter")
        self.all_button.add_class("cvkit-show-all")

        self.widget = W.VBox([
            W.HBox([self.show, self.sort, *([self.heatmap_toggle.checkbox] if self.heatmap_toggle else [])]),
            W.HBox([self.true_class, self.predicted_class]),
            W.HBox([self.previous_button, self.slider, self.next_button, self.position_text]),
            W.HBox([self.cell_text, self.all_button]),
            self.title,
            W.HBox([W.Box([self.image, self.placeholder]),
                    W.VBox([self.verdict, W.HTML("<b>class scores</b>"), self.bars],
                           layout=W.Layout(margin="0 0 0 16px"))]),
            *([self.confusion.widget] if self.confusion is not None else []),
        ])
        self.widget.add_class("cvkit-results")

    def _on_slider(self, change: dict) -> None:
        if not self._updating and len(self.indices):
            self.position = change["new"] - 1

    def _refresh(self) -> None:
        self._updating = True
        try:
            n_shown, n_all = len(self.indices), len(self.paths)
            self.slider.max = max(1, n_shown)
            self.slider.value = self._pos + 1 if n_shown else 1
            self.slider.disabled = n_shown <= 1
            if not n_shown:
                self.position_text.value = f"no image matches these filters ({n_all} images)"
                self.title.value = ""
                self.image.layout.display = "none"
                self.placeholder.layout.display = "none"
                self.verdict.value = ""
                for name, bar, value in zip(self._bar_names, self._bars, self._bar_values):
                    name.value, bar.value, value.value = "", 0.0, ""
                return
            self.position_text.value = f"{self._pos + 1} of {n_shown} shown ({n_all} images)"
            i = self.row
            path = self.paths[i]
            try:
                shown = os.path.relpath(path, self.root) if self.root else path
            except ValueError:  # another drive (Windows)
                shown = path
            self.title.value = (f"<b>{esc(os.path.basename(path))}</b> "
                                f'<span style="color:#666">{esc(shown)}</span>')
            data, reason = self._cache.get(path)
            if data is not None and self.heatmap_toggle is not None and self.heatmap_toggle.on and self.y_pred[i] >= 0:
                data, how = self.heatmap_toggle.get(path, self.classes[int(self.y_pred[i])])
                reason = how if data is None else None
                self.title.value += f' <span style="color:#666">· heat map: {esc(how)}</span>'
            if data is not None:
                self.image.value = data
                self.image.layout.display = None
                self.placeholder.layout.display = "none"
            else:
                self.placeholder.value = placeholder_html(reason or "unreadable", self.image_size)
                self.placeholder.layout.display = None
                self.image.layout.display = "none"
            self.verdict.value = self._verdict_html(i)
            self._fill_bars(i)
        finally:
            self._updating = False

    def _verdict_html(self, i: int) -> str:
        truth = self.truth[i] if self.truth is not None else None
        lines = []
        if truth is not None:
            lines.append(f"true: <b>{esc(truth)}</b>")
        if not self.valid[i]:
            lines.append('<span style="color:#b00">no prediction (the model could not read this image)</span>')
            return "<br>".join(lines)
        pred = self.classes[self.y_pred[i]]
        conf = self.confidence[i]
        if truth is None:
            colour, mark = "#333", ""
        elif self.correct[i]:
            colour, mark = "#080", " &#10003; correct"
        else:
            colour, mark = "#b00", " &#10007; wrong"
        lines.append(f'predicted: <b style="color:{colour}">{esc(pred)}</b> ({conf:.2f}){mark}')
        if self.withheld[i]:
            limit = self.rule.threshold_array(self.classes)[self.y_pred[i]]
            lines.append(f'answer: <b style="color:#a60">{esc(self.rule.no_decision_label)}</b> '
                         f'(below the threshold {limit:.2f} of {esc(pred)})')
        if self.unknown[i]:
            lines.append(f'answer: <b style="color:#a0a">{esc(self.rule.unknown_label)}</b> '
                         "(unlike the training photos)")
        if truth is not None:
            lines.append(f'<span style="color:#666">loss {self.loss[i]:.3f}</span>')
        return "<br>".join(lines)

    def _fill_bars(self, i: int) -> None:
        scores = self.proba[i]
        if not self.valid[i]:
            order = np.arange(len(self._bars))
        else:
            order = np.argsort(-scores, kind="stable")[:len(self._bars)]
        truth = self.y_true[i] if self.y_true is not None else -2
        self._shown_classes = [self.classes[int(c)] for c in order]
        for slot, c in enumerate(order):
            c = int(c)
            p = float(scores[c]) if self.valid[i] else 0.0
            name = esc(self.classes[c])
            self._bar_names[slot].value = f"<b>{name}</b>" if c == truth else name
            self._bars[slot].value = p
            if c == truth:
                style = "success"
            elif c == self.y_pred[i] and truth != -2:
                style = "danger"
            else:
                style = "info"
            self._bars[slot].bar_style = style
            self._bar_values[slot].value = f"{p:.2f}" if self.valid[i] else "n/a"

    @property
    def bar_values(self) -> dict[str, float]:
        """The class scores currently drawn as bars, ``{class: score}`` (what the chart shows)."""
        if self.row is None:
            return {}
        return {name: bar.value for name, bar in zip(self._shown_classes, self._bars)}

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        wrong = int((self.valid & ~self.correct).sum()) if self.truth is not None else None
        extra = f", {wrong} wrong" if wrong is not None else ""
        if self.withheld.any():
            extra += f", {int(self.withheld.sum())} with no decision"
        if self.unknown.any():
            extra += f", {int(self.unknown.sum())} unknown"
        return f"<ResultsWidget: {len(self.paths)} images, {len(self.classes)} classes{extra}>"
