"""``CleanerWidget``: review suspect images (label issues, duplicates, top losses) and record decisions.

Why: an audit (:func:`cvkit.find_label_issues`, :func:`cvkit.find_duplicates`) or an evaluation's top
losses only *suggests*; a person decides. The widget pages through the suspects, shows the given and
the suggested label with the class probabilities (a duplicate pair side by side), and offers
relabel / exclude / keep. Every decision is written at once, atomically, to a corrections TSV beside
the data (see :mod:`cvkit.data._corrections`): it survives a kernel restart or a kill mid-write, and
opening the widget again resumes. Decisions belong to images, not to the page or filter shown, so
changing the filter loses nothing. Photos are never moved, changed or deleted: apply the file with
``dataset.with_corrections(path)`` and train on the result.

Example:
    >>> import tempfile
    >>> import cvkit
    >>> from cvkit.widgets import CleanerWidget
    >>> train, _ = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
    >>> issues = cvkit.find_label_issues(train, cv=3)
    >>> output = os.path.join(tempfile.mkdtemp(), "corrections.tsv")
    >>> w = CleanerWidget(issues, only_issues=False, output=output)
    >>> other = next(c for c in w.labels if c != w.current.given[0])
    >>> w.relabel(other)                         # what a click on that class's button does
    >>> fixed = train.with_corrections(output)
    >>> sum(a != b for a, b in zip(train.image_labels, fixed.image_labels))
    1
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as W
import numpy as np

from cvkit._io import atomic_write, folder_lock, image_key, portable_path, remove_stale_temporaries
from cvkit._validation import Options, check_param
from cvkit.data._corrections import DECISIONS, Decision, corrections_text, read_corrections
from cvkit.data._dataset import ImageDataset
from cvkit.data._images import PathLike
from cvkit.evaluation._report import EvaluationReport
from cvkit.widgets._display import ImageCache, esc, placeholder_html
from cvkit.widgets._labels_file import check_label
from cvkit.widgets._photo_issues import PHOTO_ISSUES, is_photo_issue_table, photo_issue_pages

__all__ = ["CleanerWidget", "CorrectionsFile", "Suspect", "SHOW_OPTIONS"]

#: What the "show" filter offers.
SHOW_OPTIONS = ("all", "undecided", "decided", "label issues", "duplicates", "top losses", "photo issues")


class CorrectionsFile:
    """Decisions about images, kept in memory and saved atomically to one corrections TSV.

    The same guarantees as :class:`~cvkit.widgets.LabelsFile`, with the same machinery
    (:func:`cvkit._io.atomic_write` under :func:`cvkit._io.folder_lock`): a save re-reads the file and applies only this
    writer's own changes on top, so two writers lose nothing; a kill mid-write leaves the old or
    the new file whole.

    Example:
        >>> import tempfile
        >>> store = CorrectionsFile(os.path.join(tempfile.mkdtemp(), "corrections.tsv"))
        >>> store.set("sample_data/bird/owl.jpg", "relabel", "fruit"); store.save()
        >>> CorrectionsFile(store.path).get("sample_data/bird/owl.jpg")
        Decision(decision='relabel', label='fruit')
    """

    def __init__(self, path: PathLike):
        self.path = image_key(path)
        if os.path.isdir(self.path):
            raise IsADirectoryError(f"{self.path}: is a folder; give a file name such as corrections.tsv")
        remove_stale_temporaries(self.path)
        self.decisions: dict[str, Decision] = read_corrections(self.path)
        self._seen = dict(self.decisions)

    def get(self, image: PathLike) -> Decision | None:
        """The decision about ``image``, or None."""
        return self.decisions.get(image_key(image))

    def set(self, image: PathLike, decision: str, label: str = "") -> None:
        """Record ``decision`` (relabel, exclude or keep) about ``image``; ``label`` for relabel."""
        check_param("decision", decision, [Options(DECISIONS)])
        label = check_label(label) if decision == "relabel" else ""
        self.decisions[image_key(image)] = Decision(decision, label)

    def clear(self, image: PathLike) -> None:
        """Forget the decision about ``image``."""
        self.decisions.pop(image_key(image), None)

    def save(self) -> None:
        """Merge with the file's current content (other writers' decisions are kept) and write it."""
        folder = os.path.dirname(self.path)
        os.makedirs(folder, exist_ok=True)
        with folder_lock(folder):
            merged = read_corrections(self.path)
            for key in dict.fromkeys([*self.decisions, *self._seen]):
                mine = self.decisions.get(key)
                if mine == self._seen.get(key):
                    continue
                if mine is None:
                    merged.pop(key, None)
                else:
                    merged[key] = mine
            atomic_write(self.path, corrections_text(merged, self.path))
            self.decisions = dict(merged)
            self._seen = dict(merged)


@dataclass
class Suspect:
    """One page of the cleaner: one image (or a duplicate pair) and why it is suspect."""

    kind: str                     # "label issue", "odd image", "duplicate", "top loss", "reviewed"
    paths: list[str]
    given: list[str]
    suggested: str | None = None
    proba: dict[str, float] = field(default_factory=dict)
    note: str = ""


def _from_issues(table: Any, only_issues: bool) -> list[Suspect]:
    classes = [c[2:] for c in table.columns if c.startswith("p_")]
    out = []
    for _, row in table.iterrows():
        issue, odd = bool(row.get("is_issue", False)), bool(row.get("is_outlier", False))
        if only_issues and not (issue or odd):
            continue
        kind = "label issue" if issue else "odd image" if odd else "reviewed"
        note = f"label quality {row['label_quality']:.2f}" if "label_quality" in row else ""
        out.append(Suspect(kind, [str(row["path"])], [str(row["given_label"])], str(row["suggested_label"]),
                           {c: float(row[f"p_{c}"]) for c in classes}, note))
    return out


def _from_pairs(table: Any) -> list[Suspect]:
    return [Suspect("duplicate", [str(r["path_a"]), str(r["path_b"])], [str(r["label_a"]), str(r["label_b"])],
                    note=f"{r['kind']} duplicate, similarity {float(r['similarity']):.3f}")
            for _, r in table.iterrows()]


def _from_report(report: EvaluationReport, k: int) -> list[Suspect]:
    if report.paths is None:
        raise ValueError("CleanerWidget: the EvaluationReport has no image paths; evaluate a dataset "
                         "(cvkit.evaluate(model, test)) to get them")
    order = np.argsort(-report.losses, kind="stable")[:k]
    return [Suspect("top loss", [report.paths[i]], [report.classes[report.y_true[i]]],
                    report.classes[int(report.proba[i].argmax())],
                    {c: float(p) for c, p in zip(report.classes, report.proba[i])},
                    f"loss {report.losses[i]:.2f}") for i in order]


def suspects_from(source: Any, only_issues: bool = True, top_losses: int = 20) -> list[Suspect]:
    """The suspects of one source: a ``find_label_issues`` table, a ``find_duplicates`` table or an
    :class:`~cvkit.evaluation.EvaluationReport` (its ``top_losses`` worst images).

    Example:
        >>> import cvkit
        >>> train, test = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
        >>> clf = cvkit.FeatureClassifier(verbose=False, random_state=0).fit(train)
        >>> [s.kind for s in suspects_from(cvkit.evaluate(clf, test), top_losses=2)]
        ['top loss', 'top loss']
    """
    if isinstance(source, EvaluationReport):
        return _from_report(source, top_losses)
    columns = set(getattr(source, "columns", ()))
    if {"path", "given_label", "suggested_label"} <= columns:
        return _from_issues(source, only_issues)
    if {"path_a", "path_b", "label_a", "label_b"} <= columns:
        return _from_pairs(source)
    if is_photo_issue_table(columns):  # find_image_issues, dataset.audit(), the cvkit audit table
        return [Suspect(**page) for page in photo_issue_pages(source)]
    raise TypeError("CleanerWidget takes find_label_issues or find_duplicates tables and EvaluationReports, "
                    f"not {type(source).__name__}" + (f" with columns {sorted(columns)}" if columns else ""))


def _default_output(suspects: list[Suspect]) -> str:
    """``corrections.tsv`` in the folder all the images share (the data folder)."""
    folders = [os.path.dirname(image_key(p)) for s in suspects for p in s.paths]
    if not folders:
        raise ValueError("CleanerWidget: no suspects and no output file given")
    common = os.path.commonpath(folders)
    if os.path.basename(common) in {g for s in suspects for g in s.given}:  # a class folder: go up
        common = os.path.dirname(common)
    return os.path.join(common, "corrections.tsv")


class _Panel:
    """The image, its labels and the decision buttons for one image of a page."""

    def __init__(self, owner: CleanerWidget, side: int, labels: Sequence[str]):
        w, h = owner.image_size
        self.title = W.HTML()
        self.image = W.Image(format="jpeg", layout=W.Layout(width=f"{w}px", height=f"{h}px", object_fit="contain"))
        self.placeholder = W.HTML(layout=W.Layout(display="none"))
        self.verdict = W.HTML()
        self.verdict.add_class("cvkit-cleaner-verdict")
        self.bars = W.HTML()
        self.bars.add_class("cvkit-cleaner-bars")
        self.decision = W.HTML()
        self.decision.add_class("cvkit-decision")
        self.relabel_buttons: dict[str, W.Button] = {}
        for name in labels:
            button = W.Button(description=name, tooltip=f"relabel this image {name!r}",
                              layout=W.Layout(width="auto"))
            button.add_class("cvkit-relabel-button")
            button.on_click(lambda _, name=name: owner.relabel(name, side))
            self.relabel_buttons[name] = button
        self.exclude_button = W.Button(description="exclude", icon="ban", tooltip="leave this image out")
        self.keep_button = W.Button(description="keep", icon="check", tooltip="the label is right")
        self.undo_button = W.Button(description="undo", icon="undo", tooltip="forget the decision")
        for b, css in ((self.exclude_button, "cvkit-cleaner-exclude"), (self.keep_button, "cvkit-cleaner-keep"),
                       (self.undo_button, "cvkit-cleaner-undo")):
            b.add_class(css)
        self.exclude_button.on_click(lambda _: owner.exclude(side))
        self.keep_button.on_click(lambda _: owner.keep(side))
        self.undo_button.on_click(lambda _: owner.undo(side))
        self.box = W.VBox([self.title, W.Box([self.image, self.placeholder]), self.verdict, self.bars,
                           W.HTML("relabel as:"), W.HBox(list(self.relabel_buttons.values()),
                                                          layout=W.Layout(flex_flow="row wrap")),
                           W.HBox([self.exclude_button, self.keep_button, self.undo_button]), self.decision],
                          layout=W.Layout(margin="0 12px 0 0", width=f"{w + 16}px"))


def _bars(proba: dict[str, float], given: str, suggested: str | None) -> str:
    rows = []
    for name, p in sorted(proba.items(), key=lambda kv: -kv[1]):
        colour = "#2a7" if name == suggested else "#c33" if name == given else "#89a"
        tag = " (given)" if name == given else ""
        rows.append(f'<div style="display:flex;align-items:center;font-size:12px;line-height:16px">'
                    f'<span style="width:110px;overflow:hidden">{esc(name)}{tag}</span>'
                    f'<span style="display:inline-block;height:10px;width:{max(1, round(140 * p))}px;'
                    f'background:{colour};margin-right:6px"></span>{p:.2f}</div>')
    return "".join(rows)


class CleanerWidget:
    """Page through suspect images and relabel, exclude or keep each; decisions saved at once.

    Parameters
    ----------
    *sources : ``find_label_issues`` and ``find_duplicates`` tables, EvaluationReports, and image-quality
        tables (``find_image_issues``, ``dataset.audit()``, ``cvkit audit``: blurry, dark... with their reason).
    output : the corrections TSV (resumed if it exists). Default: ``corrections.tsv`` in the data
        folder (the folder above the class folders the images share).
    labels : the classes offered for relabelling; default the classes the sources name.
    only_issues : from a label-issue table show only ``is_issue`` or ``is_outlier`` rows.
    top_losses : how many of a report's worst images to show.
    image_size : ``(width, height)`` box for each image, in pixels.

    Controls (attributes, for scripting and tests): ``show`` and ``class_filter`` (Dropdowns),
    ``previous_button``, ``next_button``, and ``panels`` (one per image of a page; each has
    ``relabel_buttons``, ``exclude_button``, ``keep_button``, ``undo_button``).

    Example:
        >>> import tempfile
        >>> import cvkit
        >>> train, test = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
        >>> clf = cvkit.FeatureClassifier(verbose=False, random_state=0).fit(train)
        >>> output = os.path.join(tempfile.mkdtemp(), "corrections.tsv")
        >>> w = CleanerWidget(cvkit.evaluate(clf, test), top_losses=3, output=output)
        >>> w.exclude()                                 # the worst image: leave it out
        >>> w
        <CleanerWidget: 1 decided of 3 suspects, saving to corrections.tsv>
    """

    def __init__(self, *sources: Any, output: PathLike | None = None, labels: Sequence[str] | None = None,
                 only_issues: bool = True, top_losses: int = 20, image_size: tuple[int, int] = (320, 240)):
        self.suspects: list[Suspect] = [s for src in sources for s in suspects_from(src, only_issues, top_losses)]
        self.store = CorrectionsFile(output if output is not None else _default_output(self.suspects))
        self.output = self.store.path
        found = [g for s in self.suspects for g in s.given if g] + [c for s in self.suspects for c in s.proba]
        names = list(labels) if labels is not None else sorted(set(found))
        self.labels = [check_label(x) for x in dict.fromkeys(names)]
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self._cache = ImageCache(self.image_size)
        self._updating = False
        self._build()
        self._visible = list(range(len(self.suspects)))
        self._pos = 0
        self._apply_filter()

    # ------------------------------------------------------------------ state
    @property
    def decisions(self) -> dict[str, Decision]:
        """``{image path: Decision}`` for every decided image (all filters, all pages)."""
        return dict(self.store.decisions)

    @property
    def visible(self) -> list[Suspect]:
        """The suspects the current filters show, in order."""
        return [self.suspects[i] for i in self._visible]

    @property
    def current(self) -> Suspect | None:
        """The suspect on screen (None when the filters match nothing)."""
        return self.suspects[self._visible[self._pos]] if self._visible else None

    def _decided(self, s: Suspect) -> bool:
        return all(self.store.get(p) is not None for p in s.paths)

    # ------------------------------------------------------------------ actions
    def relabel(self, label: str, side: int = 0) -> None:
        """Give image ``side`` (0, or 1 for a pair's right image) of the current page ``label``; saves."""
        self._decide(side, "relabel", label)

    def exclude(self, side: int = 0) -> None:
        """Leave image ``side`` of the current page out of the corrected dataset; saves."""
        self._decide(side, "exclude")

    def keep(self, side: int = 0) -> None:
        """Record that image ``side`` of the current page is fine as it is; saves."""
        self._decide(side, "keep")

    def undo(self, side: int = 0) -> None:
        """Forget the decision about image ``side`` of the current page; saves."""
        s = self._require(side)
        self.store.clear(s.paths[side])
        self._save()
        self._refresh()

    def next(self) -> None:
        """Show the next suspect the filters let through."""
        if self._pos < len(self._visible) - 1:
            self._pos += 1
        self._refresh()

    def previous(self) -> None:
        """Show the previous suspect."""
        self._pos = max(0, self._pos - 1)
        self._refresh()

    def go(self, position: int) -> None:
        """Show the suspect at ``position`` (0-based) among those the filters let through."""
        if not 0 <= position < len(self._visible):
            raise IndexError(f"position {position} out of range for {len(self._visible)} suspects shown")
        self._pos = position
        self._refresh()

    def to_dataset(self, dataset: ImageDataset) -> ImageDataset:
        """``dataset`` with the decisions applied (the same as ``dataset.with_corrections(output)``)."""
        return dataset.with_corrections(self.output)

    # ------------------------------------------------------------------ internals
    def _require(self, side: int) -> Suspect:
        s = self.current
        if s is None:
            raise IndexError("no suspect is shown (the filters match nothing)")
        if not 0 <= side < len(s.paths):
            raise IndexError(f"this page has {len(s.paths)} image(s); side {side} does not exist")
        return s

    def _decide(self, side: int, decision: str, label: str = "") -> None:
        s = self._require(side)
        self.store.set(s.paths[side], decision, label)
        if label and check_label(label) not in self.labels:
            self.labels.append(check_label(label))
        saved = self._save()
        if saved and self._decided(s) and self._pos < len(self._visible) - 1 and self.show.value != "undecided":
            self._pos += 1
        if self.show.value == "undecided":
            self._apply_filter()
        else:
            self._refresh()

    def _save(self) -> bool:
        try:
            self.store.save()
        except OSError as exc:
            self._error = f"could not save {self.output}: {exc.strerror or exc}"
            return False
        self._error = ""
        return True

    def _matches(self, s: Suspect) -> bool:
        show, cls = self.show.value, self.class_filter.value
        kinds = {"label issues": ("label issue", "odd image", "reviewed"), "duplicates": ("duplicate",),
                 "top losses": ("top loss",), "photo issues": PHOTO_ISSUES}
        if show in kinds and s.kind not in kinds[show]:
            return False
        if show == "undecided" and self._decided(s):
            return False
        if show == "decided" and not any(self.store.get(p) for p in s.paths):
            return False
        return cls == "all classes" or cls in s.given or cls == s.suggested

    def _apply_filter(self) -> None:
        """Recompute the shown suspects; stay on the same one if still shown, else the nearest after it."""
        before = self._visible[self._pos] if self._visible else -1
        self._visible = [i for i, s in enumerate(self.suspects) if self._matches(s)]
        after = [k for k, i in enumerate(self._visible) if i >= before]
        self._pos = after[0] if after else max(0, len(self._visible) - 1)
        self._refresh()

    def _build(self) -> None:
        self._error = ""
        self.show = W.Dropdown(options=SHOW_OPTIONS, value="all", description="show",
                               layout=W.Layout(width="220px"))
        self.class_filter = W.Dropdown(options=["all classes", *self.labels], value="all classes",
                                       description="class", layout=W.Layout(width="220px"))
        self.previous_button = W.Button(description="Previous", icon="arrow-left")
        self.next_button = W.Button(description="Next", icon="arrow-right")
        self.position = W.HTML()
        self.heading = W.HTML()
        self.status = W.HTML()
        for widget, css in ((self.show, "cvkit-cleaner-show"), (self.class_filter, "cvkit-cleaner-class"),
                            (self.previous_button, "cvkit-previous"), (self.next_button, "cvkit-next"),
                            (self.position, "cvkit-position"), (self.heading, "cvkit-cleaner-kind"),
                            (self.status, "cvkit-status")):
            widget.add_class(css)
        self.show.observe(lambda _: self._apply_filter(), names="value")
        self.class_filter.observe(lambda _: self._apply_filter(), names="value")
        self.previous_button.on_click(lambda _: self.previous())
        self.next_button.on_click(lambda _: self.next())
        self.panels = [_Panel(self, 0, self.labels), _Panel(self, 1, self.labels)]
        self.widget = W.VBox([
            W.HBox([self.show, self.class_filter]),
            self.heading,
            W.HBox([p.box for p in self.panels]),
            W.HBox([self.previous_button, self.position, self.next_button]),
            self.status,
        ])
        self.widget.add_class("cvkit-cleaner")

    def _show_panel(self, panel: _Panel, s: Suspect, side: int) -> None:
        path = s.paths[side]
        data, reason = self._cache.get(path)
        # the folder relative to the corrections file's folder (the data), as a user names it;
        # outside it, the folder's own name
        folder = os.path.dirname(image_key(path))
        relative = portable_path(folder, os.path.dirname(self.store.path))
        folder = os.path.basename(folder) if relative.startswith("..") else relative
        panel.title.value = (f"<b>{esc(os.path.basename(path))}</b> "
                             f'<span style="color:#666;font-size:11px">{esc(folder)}</span>')
        if data is not None:
            panel.image.value = data
            panel.image.layout.display, panel.placeholder.layout.display = None, "none"
        else:
            panel.placeholder.value = placeholder_html(reason or "unreadable", self.image_size)
            panel.image.layout.display, panel.placeholder.layout.display = "none", None
        given = s.given[side]
        verdict = f"given: <b>{esc(given)}</b>"
        if s.suggested is not None:
            colour = "#2a7" if s.suggested == given else "#c33"
            verdict += f' &middot; suggested: <b style="color:{colour}">{esc(s.suggested)}</b>'
        panel.verdict.value = verdict
        panel.bars.value = _bars(s.proba, given, s.suggested) if s.proba else ""
        d = self.store.get(path)
        panel.decision.value = ("<i>no decision yet</i>" if d is None else
                                f"decision: <b>{esc(d.decision)}</b>"
                                + (f" &rarr; <b>{esc(d.label)}</b>" if d.label else ""))
        for name, button in panel.relabel_buttons.items():
            button.button_style = ("success" if d is not None and d.label == name else
                                   "info" if name == s.suggested and name != given else "")
        panel.exclude_button.button_style = "danger" if d is not None and d.decision == "exclude" else ""
        panel.keep_button.button_style = "success" if d is not None and d.decision == "keep" else ""
        panel.box.layout.display = None

    def _refresh(self) -> None:
        self._updating = True
        try:
            s = self.current
            n_decided = sum(self._decided(x) for x in self.suspects)
            if s is None:
                self.heading.value = "<i>no suspect matches these filters</i>"
                for panel in self.panels:
                    panel.box.layout.display = "none"
                self.position.value = f"0 of 0 shown &middot; {n_decided} of {len(self.suspects)} decided"
            else:
                self.heading.value = (f'<b style="font-size:14px">{esc(s.kind)}</b> '
                                      f'<span style="color:#666">{esc(s.note)}</span>')
                for side, panel in enumerate(self.panels):
                    if side < len(s.paths):
                        self._show_panel(panel, s, side)
                    else:
                        panel.box.layout.display = "none"
                self.position.value = (f"{self._pos + 1} of {len(self._visible)} shown &middot; "
                                       f"{n_decided} of {len(self.suspects)} decided")
            self.status.value = (f'<span style="color:#b00"><b>{esc(self._error)}</b></span>' if self._error
                                 else f"decisions saved to {esc(os.path.basename(self.output))}"
                                 if os.path.exists(self.output) else "")
        finally:
            self._updating = False

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        n = sum(self._decided(s) for s in self.suspects)
        return (f"<CleanerWidget: {n} decided of {len(self.suspects)} suspects, "
                f"saving to {os.path.basename(self.output)}>")
