"""``AnnotationWidget``: label a folder of images by clicking, one image at a time, in a notebook.

Every click is saved at once (atomically) to a TSV that :meth:`cvkit.ImageDataset.from_table`
reads directly, and opening the widget again on the same file resumes where you stopped, so labels
survive a kernel restart. Images are only ever read, never moved, renamed or changed.

Example:
    >>> import tempfile
    >>> from cvkit.widgets import AnnotationWidget
    >>> output = os.path.join(tempfile.mkdtemp(), "labels.tsv")
    >>> w = AnnotationWidget("sample_data/fruit", labels=["apple", "pear"], output=output)
    >>> w                                       # in Jupyter: the widget itself
    <AnnotationWidget: 0 labelled of 26 images, 2 labels, saving to labels.tsv>
    >>> w.label_buttons["apple"].click()        # what a click does: label, save, next image
    >>> w.to_dataset().counts()                 # the labelled images so far
    {'apple': 1}
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import ipywidgets as W
import numpy as np

from cvkit._io import image_key, portable_path
from cvkit._validation import Interval, Options, check_param
from cvkit.data._dataset import ImageDataset
from cvkit.data._images import PathLike
from cvkit.widgets._display import ImageCache, esc, placeholder_html
from cvkit.widgets._keys import KeyListener
from cvkit.widgets._labels_file import LabelsFile, check_label
from cvkit.widgets._ordering import ORDERS, UncertaintyRanker, describe, reorder, resolve_images

__all__ = ["AnnotationWidget"]

#: reason written for images excluded by the user (unreadable ones get their read error instead)
USER_EXCLUDED = "excluded by the user"


class AnnotationWidget:
    """Label images by clicking: one button per class, saved to a TSV after every change.

    Parameters
    ----------
    images : a folder (searched recursively), a list of image paths, or an ImageDataset.
    labels : the class names to offer as buttons. More can be added in the widget's "add label"
        box; labels already in ``output`` are offered too. Defaults to the dataset's classes.
    output : the TSV file to write (and to resume from if it exists). Its folder is created.
    skip_labelled : start with "skip labelled images" on: Previous/Next then only visit images
        that have neither a label nor an exclusion.
    auto_advance : go to the next image after a label or exclusion is chosen.
    image_size : ``(width, height)`` box the image is scaled to fit, in pixels.
    order : ``"folder"``, ``"random"`` (seeded by ``random_state``) or ``"uncertain"``: random until
        2 classes have labels, then every ``refit_every`` labels a model is refitted on cached
        features and the unlabelled photos are reordered, most uncertain (``uncertainty``: margin
        or entropy) first, its guess pre-selected (Enter accepts) and its CV accuracy shown.

    Keyboard (click the widget first): ``1``-``9`` pick a label, ``←``/``→`` move, ``Backspace``
    undoes the last change, ``x`` excludes, ``Enter`` accepts the model's suggestion. Unreadable
    images can only be excluded (their label buttons are disabled).

    The widget shows each image (or, for an unreadable one, a placeholder with the reason), its
    file name and path, its current label and the progress. Controls, reachable as attributes for
    scripting and tests: ``label_buttons`` (dict label -> Button), ``exclude_button``,
    ``clear_button``, ``new_label`` (Text) and ``add_label_button``, ``previous_button``,
    ``next_button``, ``slider`` (1-based position), ``skip_toggle``, ``keys`` (the key listener:
    ``keys.press("1")`` does what pressing 1 does), ``model_info``.

    The TSV keeps ``path<TAB>label`` rows (paths relative to the TSV's folder); excluded images
    and the list of labels are stored in ``#`` comment lines that ``from_table`` ignores.

    Example:
        >>> import tempfile
        >>> import cvkit
        >>> output = os.path.join(tempfile.mkdtemp(), "labels.tsv")
        >>> w = AnnotationWidget(["sample_data/bird/crow.jpg", "sample_data/bird/owl.jpg"], ["bird", "other"],
        ...                      output=output)
        >>> w.label_buttons["bird"].click()     # what a click in the notebook does
        >>> w.label("other")                    # the same from code, for the second image
        >>> cvkit.ImageDataset.from_table(output).counts()
        {'bird': 1, 'other': 1}
    """

    def __init__(self, images: Any, labels: Sequence[str] | None = None,
                 output: PathLike = "labels.tsv", skip_labelled: bool = False,
                 auto_advance: bool = True, image_size: tuple[int, int] = (480, 360),
                 order: str = "folder", refit_every: int = 10, uncertainty: str = "margin",
                 random_state: int | None = 0, featurizer: Any = None):
        paths, root, dataset_labels = resolve_images(images)
        # one entry per image, in order; duplicates would make two positions share one label
        self.paths: list[str] = list(dict.fromkeys(paths))
        if not self.paths:
            raise ValueError("no images to annotate")
        check_param("order", order, [Options(ORDERS)])
        check_param("refit_every", refit_every, [Interval(int, 1, None)])
        self.order, self.refit_every = order, refit_every
        if order != "folder":
            self.paths = [self.paths[i] for i in np.random.default_rng(random_state).permutation(len(self.paths))]
        self.ranker = UncertaintyRanker(featurizer, uncertainty, random_state=random_state) \
            if order == "uncertain" else None
        self.suggestions: dict[str, tuple[str, float]] = {}
        self._fitted_at: int | None = None
        self._history: list[tuple[str, str | None, str | None]] = []
        self.root = root
        self.auto_advance = auto_advance
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.store = LabelsFile(output)
        self.output = self.store.path
        if isinstance(labels, str):  # "cat,dog", as papermill passes -p labels "cat,dog"
            labels = [name for name in labels.split(",") if name.strip()]
        offered = list(labels) if labels is not None else dataset_labels
        from_file = list(self.store.labels)
        self.store.labels = []
        for name in list(offered) + from_file:
            self.store.add_label(name)
        self._cache = ImageCache(self.image_size)
        self._updating = False
        self._build(skip_labelled)
        self._index = 0
        if self.ranker is not None and self.n_labelled >= self.refit_every:
            self._refit(after=-1)
        self.index = self._first_pending()

    # ------------------------------------------------------------------ state
    @property
    def labels(self) -> list[str]:
        """The class names offered, in button order."""
        return list(self.store.labels)

    @property
    def annotations(self) -> dict[str, str]:
        """``{image path: label}`` for the images of this widget that have a label."""
        return {p: lab for p in self.paths if (lab := self.store.label_of(p)) is not None}

    @property
    def excluded(self) -> dict[str, str]:
        """``{image path: reason}`` for the images of this widget that were excluded."""
        return {p: self.store.excluded[k] for p in self.paths
                if (k := image_key(p)) in self.store.excluded}

    @property
    def n_labelled(self) -> int:
        """How many of this widget's images have a label."""
        return sum(self.store.label_of(p) is not None for p in self.paths)

    @property
    def n_excluded(self) -> int:
        """How many of this widget's images were excluded."""
        return sum(self.store.is_excluded(p) for p in self.paths)

    def _pending(self, i: int) -> bool:
        return self._pending_path(self.paths[i])

    def _first_pending(self) -> int:
        return next((i for i in range(len(self.paths)) if self._pending(i)), 0)

    @property
    def index(self) -> int:
        """Position (0-based) of the image shown. Setting it jumps there."""
        return self._index

    @index.setter
    def index(self, value: int) -> None:
        value = int(value)
        if not 0 <= value < len(self.paths):
            raise IndexError(f"image index {value} out of range for {len(self.paths)} images")
        self._index = value
        self._refresh()

    @property
    def current_path(self) -> str:
        """Path of the image shown."""
        return self.paths[self._index]

    # ------------------------------------------------------------------ actions
    def label(self, name: str) -> None:
        """Give the current image the class ``name`` (added as a new label if needed); saves.

        An unreadable image cannot be labelled (it would not be in the dataset): ValueError.
        """
        _, read_error = self._cache.get(self.current_path)
        if read_error is not None:
            raise ValueError(f"{os.path.basename(self.current_path)} cannot be read ({read_error}); "
                             "it can only be excluded")
        new = check_label(name) not in self.store.labels
        self._remember()
        self.store.set_label(self.current_path, name)
        if new:
            self._make_label_buttons()
        self._changed(advance=True)

    def exclude(self, reason: str | None = None) -> None:
        """Leave the current image out of the dataset; saves. Unreadable images record why."""
        if reason is None:
            _, read_error = self._cache.get(self.current_path)
            reason = read_error or USER_EXCLUDED
        self._remember()
        self.store.exclude(self.current_path, reason)
        self._changed(advance=True)

    def clear(self) -> None:
        """Remove the current image's label or exclusion; saves."""
        self._remember()
        self.store.clear(self.current_path)
        self._changed(advance=False)

    def undo(self) -> None:
        """Undo the last label, exclusion or clear made in this widget (and show that image); saves."""
        if not self._history:
            self._refresh(note="nothing to undo")
            return
        path, label, reason = self._history.pop()
        self.store.clear(path)
        if label is not None:
            self.store.set_label(path, label)
        elif reason is not None:
            self.store.exclude(path, reason)
        self._save()
        self.index = self.paths.index(path)

    def accept(self) -> None:
        """Label the current image with the model's suggestion (``order="uncertain"``), if any."""
        suggestion = self.suggestions.get(self.current_path)
        if suggestion is None:
            self._refresh(note="no suggestion for this image yet")
        else:
            self.label(suggestion[0])

    def press(self, key: str) -> None:
        """Do what pressing ``key`` does: 1-9 label, ArrowLeft/ArrowRight move, Backspace undo,
        x exclude, Enter accept the suggestion. Refusals (an unreadable image) go to the status line."""
        actions = {"ArrowRight": self.next, "ArrowLeft": self.previous, "Backspace": self.undo,
                   "x": self.exclude, "X": self.exclude, "Enter": self.accept}
        try:
            if len(key) == 1 and key in "123456789" and int(key) <= len(self.store.labels):
                self.label(self.store.labels[int(key) - 1])
            elif key in actions:
                actions[key]()
        except ValueError as exc:
            self._refresh(note=str(exc))

    def add_label(self, name: str) -> str:
        """Offer a new class (a new button); saved so it is offered again after a restart."""
        label = check_label(name)
        if label in self.store.labels:
            return label
        self.store.add_label(label)
        self._make_label_buttons()
        self._save()
        self._refresh()
        return label

    def next(self) -> None:
        """Show the next image (the next unlabelled one when "skip labelled images" is on)."""
        self._step(+1)

    def previous(self) -> None:
        """Show the previous image (the previous unlabelled one when skipping labelled images)."""
        self._step(-1)

    def go(self, index: int) -> None:
        """Show the image at ``index`` (0-based)."""
        self.index = index

    def to_dataset(self, **kwargs: Any) -> ImageDataset:
        """The labelled images so far, read back from the TSV with ``ImageDataset.from_table``."""
        if not self.output.exists():
            self._save()
        return ImageDataset.from_table(self.output, **kwargs)

    def save(self) -> None:
        """Write the TSV now (the widget already saves after every change)."""
        self._save(raise_errors=True)

    # ------------------------------------------------------------------ internals
    def _remember(self) -> None:
        p = self.current_path
        self._history.append((p, self.store.label_of(p), self.store.excluded.get(image_key(p))))

    def _refit(self, after: int) -> None:
        """Refit the ranker on the labels so far; reorder the pending images after position ``after``."""
        labelled = self.annotations
        if self.ranker.fit(list(labelled), list(labelled.values())):
            self._fitted_at = len(labelled)
            self.paths, self.suggestions = reorder(self.paths, after, self._pending_path, self.ranker)

    def _pending_path(self, path: str) -> bool:
        return self.store.label_of(path) is None and not self.store.is_excluded(path)

    def _step(self, direction: int) -> None:
        n = len(self.paths)
        i = self._index + direction
        if self.skip_toggle.value:
            while 0 <= i < n and not self._pending(i):
                i += direction
        if 0 <= i < n:
            self.index = i
        else:
            where = "after" if direction > 0 else "before"
            what = "unlabelled images" if self.skip_toggle.value else "images"
            self._refresh(note=f"no more {what} {where} this one")

    def _changed(self, advance: bool) -> None:
        saved = self._save()
        if saved and self.ranker is not None and \
                self.n_labelled - (self._fitted_at or 0) >= self.refit_every:
            self._refit(after=self._index)
        if advance and self.auto_advance and saved and self._index < len(self.paths) - 1:
            before = self._index
            self._step(+1)
            if self._index != before:
                return
        self._refresh()

    def _save(self, raise_errors: bool = False) -> bool:
        try:
            self.store.save(order=self.paths)
        except OSError as exc:
            message = f"could not save {self.output}: {exc.strerror or exc}"
            self._save_error = message
            self.status.value = f'<span style="color:#b00"><b>{esc(message)}</b></span>'
            if raise_errors:
                raise
            warnings.warn(message, RuntimeWarning, stacklevel=3)
            return False
        self._last_saved = f"saved {self.output.name}"
        self._save_error = ""
        return True

    def _build(self, skip_labelled: bool) -> None:
        self._last_saved = ""
        self._save_error = ""
        w, h = self.image_size
        self.title = W.HTML()
        self.image = W.Image(format="jpeg", layout=W.Layout(width=f"{w}px", height=f"{h}px",
                                                            object_fit="contain"))
        self.placeholder = W.HTML(layout=W.Layout(display="none"))
        self.current_label = W.HTML()
        self.label_box = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.label_buttons: dict[str, W.Button] = {}
        self.exclude_button = W.ToggleButton(description="exclude image", icon="ban",
                                             tooltip="leave this image out of the dataset")
        self.clear_button = W.Button(description="clear", tooltip="remove this image's label")
        self.new_label = W.Text(placeholder="new label", layout=W.Layout(width="160px"))
        self.add_label_button = W.Button(description="add label", icon="plus")
        self.previous_button = W.Button(description="Previous", icon="arrow-left")
        self.next_button = W.Button(description="Next", icon="arrow-right")
        self.slider = W.IntSlider(value=1, min=1, max=len(self.paths), description="image",
                                  continuous_update=False, layout=W.Layout(width="360px"))
        self.skip_toggle = W.Checkbox(value=bool(skip_labelled), description="skip labelled images",
                                      indent=False)
        self.progress = W.IntProgress(min=0, max=len(self.paths), layout=W.Layout(width="240px"))
        self.progress_text = W.HTML()
        self.status = W.HTML()
        self.model_info = W.HTML()
        self.keys = KeyListener(shortcut_keys=[*"123456789", "ArrowLeft", "ArrowRight", "Backspace", "x", "X",
                                               "Enter"])
        self.keys.on_key(self.press)

        for widget, css in [(self.exclude_button, "cvkit-exclude"), (self.clear_button, "cvkit-clear"),
                            (self.new_label, "cvkit-new-label"), (self.add_label_button, "cvkit-add-label"),
                            (self.previous_button, "cvkit-previous"), (self.next_button, "cvkit-next"),
                            (self.slider, "cvkit-slider"), (self.skip_toggle, "cvkit-skip"),
                            (self.status, "cvkit-status"), (self.current_label, "cvkit-current-label"),
                            (self.progress_text, "cvkit-progress"), (self.model_info, "cvkit-model-info")]:
            widget.add_class(css)

        self.exclude_button.observe(self._on_exclude, names="value")
        self.clear_button.on_click(lambda _: self.clear())
        self.add_label_button.on_click(self._on_add_label)
        self.previous_button.on_click(lambda _: self.previous())
        self.next_button.on_click(lambda _: self.next())
        self.slider.observe(self._on_slider, names="value")
        self._make_label_buttons()

        self.widget = W.VBox([
            self.title,
            W.Box([self.image, self.placeholder]),
            self.current_label,
            self.label_box,
            W.HBox([self.exclude_button, self.clear_button, self.new_label, self.add_label_button]),
            W.HBox([self.previous_button, self.slider, self.next_button, self.skip_toggle]),
            W.HBox([self.progress, self.progress_text]),
            self.model_info,
            self.keys,
            self.status,
        ])
        self.widget.add_class("cvkit-annotation")

    def _make_label_buttons(self) -> None:
        for name in self.store.labels:
            if name not in self.label_buttons:
                button = W.Button(description=name, tooltip=f"label this image {name!r}")
                button.add_class("cvkit-label-button")
                button.on_click(lambda _, name=name: self.press_label(name))
                self.label_buttons[name] = button
        self.label_box.children = tuple(self.label_buttons[n] for n in self.store.labels)
        keys = " ".join(f"<kbd>{i + 1}</kbd> {esc(n)}" for i, n in enumerate(self.store.labels[:9]))
        self.keys.help_html = (f"keys: {keys} &middot; <kbd>&larr;</kbd>/<kbd>&rarr;</kbd> move &middot; "
                               "<kbd>Backspace</kbd> undo &middot; <kbd>x</kbd> exclude"
                               + (" &middot; <kbd>Enter</kbd> accept suggestion" if self.order == "uncertain" else ""))

    def press_label(self, name: str) -> None:
        """A label button's click: :meth:`label`, with a refusal shown in the status line."""
        try:
            self.label(name)
        except ValueError as exc:
            self._refresh(note=str(exc))

    def _on_exclude(self, change: dict) -> None:
        if self._updating:
            return
        if change["new"]:
            self.exclude()
        else:
            self.clear()

    def _on_add_label(self, _: Any) -> None:
        text = self.new_label.value
        try:
            label = self.add_label(text)
        except ValueError as exc:
            self.status.value = f'<span style="color:#b00">cannot add label: {esc(exc)}</span>'
            return
        self.new_label.value = ""
        self.status.value = f"added label <b>{esc(label)}</b>"

    def _on_slider(self, change: dict) -> None:
        if not self._updating:
            self.index = change["new"] - 1

    def _display_path(self, path: str) -> str:
        return portable_path(path, self.root) if self.root else path

    def _refresh(self, note: str = "") -> None:
        path = self.current_path
        data, reason = self._cache.get(path)
        label = self.store.label_of(path)
        excluded = self.store.is_excluded(path)
        self._updating = True
        try:
            self.title.value = (f"<b>{esc(os.path.basename(path))}</b> "
                                f'<span style="color:#666">{esc(self._display_path(path))}</span>')
            if data is not None:
                self.image.value = data
                self.image.layout.display = None
                self.placeholder.layout.display = "none"
            else:
                self.placeholder.value = placeholder_html(reason or "unreadable", self.image_size)
                self.placeholder.layout.display = None
                self.image.layout.display = "none"
            if label is not None:
                self.current_label.value = f"label: <b>{esc(label)}</b>"
            elif excluded:
                why = self.store.excluded[image_key(path)]
                self.current_label.value = (f'<span style="color:#b00">excluded</span>'
                                            f'{(" (" + esc(why) + ")") if why else ""}')
            elif reason is not None:
                self.current_label.value = ('not labelled: <span style="color:#b00">unreadable, '
                                            'exclude it?</span>')
            else:
                self.current_label.value = '<span style="color:#666">not labelled</span>'
            suggested = self.suggestions.get(path, ("", 0.0))
            if label is None and not excluded and suggested[0]:
                self.current_label.value += (f' &middot; model suggests <b style="color:#1a6fb0">'
                                             f'{esc(suggested[0])}</b> ({suggested[1]:.2f}): Enter accepts')
            for name, button in self.label_buttons.items():
                button.button_style = ("success" if name == label else
                                       "info" if label is None and name == suggested[0] else "")
                button.disabled = reason is not None
            self.model_info.value = describe(self.ranker, self._fitted_at, self.n_labelled, self.refit_every)
            self.exclude_button.value = excluded
            self.exclude_button.button_style = "danger" if excluded else ""
            self.slider.value = self._index + 1
            n, done, out = len(self.paths), self.n_labelled, self.n_excluded
            self.progress.value = done + out
            self.progress_text.value = (f"{done} labelled of {n}"
                                        + (f" &middot; {out} excluded" if out else "")
                                        + f" &middot; {n - done - out} to go")
            if self._save_error:  # stays visible until a save succeeds
                self.status.value = f'<span style="color:#b00"><b>{esc(self._save_error)}</b></span>'
            else:
                self.status.value = esc(" · ".join(s for s in (note, self._last_saved) if s))
        finally:
            self._updating = False

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        return (f"<AnnotationWidget: {self.n_labelled} labelled of {len(self.paths)} images, "
                f"{len(self.labels)} labels, saving to {self.output.name}>")
