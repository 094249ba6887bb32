"""AnnotationWidget driven through its public controls, and its TSV file checked on disk."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cvkit import ImageDataset, TableFormatError
from cvkit.widgets import AnnotationWidget, LabelsFile
from cvkit.widgets import _labels_file as labels_file_module


@pytest.fixture()
def photos(tmp_path, sample_dir):
    """An unlabelled folder, in listing order: broken.jpg (corrupt), crow, daffodil, owl, pelican,
    more/duck.jpg; plus a text file that is not an image."""
    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    picks = [sample_dir / "bird" / "owl.jpg", sample_dir / "bird" / "crow.jpg",
             sample_dir / "flower" / "daffodil.jpg", sample_dir / "bird" / "pelican.jpg"]
    for src in picks:
        shutil.copy(src, folder / src.name)
    shutil.copy(sample_dir / "bird" / "duck.jpg", folder / "more" / "duck.jpg")
    (folder / "broken.jpg").write_bytes(b"this is not a JPEG")
    (folder / "notes.txt").write_text("not an image")
    return folder


def _snapshot(folder: Path) -> dict[str, tuple[str, float]]:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _rows(tsv: Path) -> dict[str, str]:
    """``{file name: label}`` as ImageDataset.from_table reads the file."""
    ds = ImageDataset.from_table(tsv)
    return {Path(p).name: label for p, label in zip(ds.paths, ds.image_labels)}


def test_lists_folder_recursively_and_shows_first_image(photos, tmp_path):
    w = AnnotationWidget(photos, labels=["bird", "flower"], output=tmp_path / "out" / "labels.tsv")
    top = sorted(p.name for p in photos.iterdir() if p.suffix == ".jpg")
    assert [os.path.relpath(p, photos) for p in w.paths] == top + [os.path.join("more", "duck.jpg")]
    assert list(w.label_buttons) == ["bird", "flower"]
    assert w.index == 0 and "broken.jpg" in w.title.value
    assert "0 labelled of 6" in w.progress_text.value
    assert not (tmp_path / "out").exists(), "nothing is written before the first change"


def test_each_click_is_on_disk_and_parses(photos, tmp_path):
    tsv = tmp_path / "labels.tsv"
    w = AnnotationWidget(photos, labels=["bird", "flower"], output=tsv)
    w.go(1)  # crow.jpg
    w.label_buttons["bird"].click()
    assert _rows(tsv) == {"crow.jpg": "bird"}
    assert w.index == 2, "auto-advance to the next image"
    w.label_buttons["flower"].click()
    assert _rows(tsv) == {"crow.jpg": "bird", "daffodil.jpg": "flower"}
    # changing one's mind: previous, then another label replaces the old one
    w.previous_button.click()
    w.label_buttons["bird"].click()
    assert _rows(tsv) == {"crow.jpg": "bird", "daffodil.jpg": "bird"}
    assert w.label_buttons["bird"].button_style == ""  # moved on: this image has no label yet
    w.previous_button.click()
    assert w.label_buttons["bird"].button_style == "success"
    assert "label: <b>bird</b>" in w.current_label.value
    assert "2 labelled of 6" in w.progress_text.value and w.progress.value == 2
    # paths in the file are relative to the file's folder
    text = tsv.read_text()
    assert "photos/crow.jpg\tbird" in text and str(tmp_path) not in text
    # clear forgets the label
    w.clear_button.click()
    assert _rows(tsv) == {"crow.jpg": "bird"}


def test_unreadable_image_shows_placeholder_and_can_be_excluded(photos, tmp_path):
    tsv = tmp_path / "labels.tsv"
    w = AnnotationWidget(photos, labels=["bird"], output=tsv)
    assert Path(w.current_path).name == "broken.jpg"
    assert w.image.layout.display == "none" and w.placeholder.layout.display is None
    assert "cannot show this image" in w.placeholder.value
    assert "not an image file" in w.placeholder.value  # the reason from read_image
    assert "unreadable" in w.current_label.value
    w.exclude_button.value = True                        # what clicking the toggle does
    store = LabelsFile(tsv)
    key = os.path.normpath(str(photos / "broken.jpg"))
    assert key in store.excluded and "not an image file" in store.excluded[key]
    assert _rows(tsv) == {}, "excluded images are not in the dataset"
    assert "#excluded\t" in tsv.read_text()
    assert w.index == 1 and w.image.layout.display is None and w.image.value[:2] == b"\xff\xd8"
    # back to it: the toggle shows the exclusion; un-toggling clears it
    w.previous_button.click()
    assert w.exclude_button.value is True and "excluded" in w.current_label.value
    w.exclude_button.value = False
    assert LabelsFile(tsv).excluded == {}
    assert w.index == 0
    # excluding a readable image records that the user did it
    w.go(4)
    w.exclude()
    assert list(LabelsFile(tsv).excluded.values()) == ["excluded by the user"]
    assert "1 excluded" in w.progress_text.value


def test_add_label_box_adds_a_button_that_survives_a_restart(photos, tmp_path):
    tsv = tmp_path / "labels.tsv"
    w = AnnotationWidget(photos, labels=["bird"], output=tsv)
    w.new_label.value = "  vegetable "
    w.add_label_button.click()
    assert list(w.label_buttons) == ["bird", "vegetable"] and w.new_label.value == ""
    assert "#labels\tbird\tvegetable" in tsv.read_text()
    w.new_label.value = "bad\tname"
    w.add_label_button.click()
    assert "cannot add label" in w.status.value and list(w.label_buttons) == ["bird", "vegetable"]
    w.new_label.value = ""
    w.add_label_button.click()
    assert "label is empty" in w.status.value
    # issue 16: an unreadable image (broken.jpg, shown first) can only be excluded
    assert w.label_buttons["vegetable"].disabled
    w.label_buttons["vegetable"].click()
    assert "can only be excluded" in w.status.value and w.index == 0
    with pytest.raises(ValueError, match="can only be excluded"):
        w.label("vegetable")
    w.go(1)
    w.label(" fruit ")                      # from code: a new class gets its button too
    assert list(w.label_buttons) == ["bird", "vegetable", "fruit"]
    again = AnnotationWidget(photos, labels=["bird"], output=tsv)
    assert again.labels == ["bird", "vegetable", "fruit"]
    assert _rows(tsv) == {"crow.jpg": "fruit"}


def test_reopening_resumes_where_the_user_stopped(photos, tmp_path):
    tsv = tmp_path / "labels.tsv"
    w = AnnotationWidget(photos, labels=["bird", "flower"], output=tsv)
    w.exclude_button.value = True          # broken.jpg
    w.label_buttons["bird"].click()        # crow.jpg
    w.label_buttons["flower"].click()      # daffodil.jpg
    del w
    again = AnnotationWidget(photos, labels=["bird", "flower"], output=tsv)
    assert again.index == 3, "starts at the first image with neither a label nor an exclusion"
    assert {Path(p).name: v for p, v in again.annotations.items()} == {"crow.jpg": "bird",
                                                                       "daffodil.jpg": "flower"}
    assert [Path(p).name for p in again.excluded] == ["broken.jpg"]
    assert "2 labelled of 6" in again.progress_text.value
    assert again.to_dataset().counts() == {"bird": 1, "flower": 1}


def test_navigation_slider_and_skip_labelled(photos, tmp_path):
    w = AnnotationWidget(photos, labels=["bird"], output=tmp_path / "labels.tsv", auto_advance=False)
    w.next_button.click()
    w.next_button.click()
    assert w.index == 2 and w.slider.value == 3
    w.slider.value = 5                      # 1-based: the fifth image
    assert w.index == 4 and Path(w.current_path).name == w.paths[4].rsplit(os.sep, 1)[-1]
    w.label_buttons["bird"].click()
    assert w.index == 4, "auto_advance=False stays on the image"
    w.go(2)
    w.label_buttons["bird"].click()
    w.go(1)
    w.skip_toggle.value = True
    w.next_button.click()
    assert w.index == 3, "image 2 is labelled and skipped"
    w.next_button.click()
    assert w.index == 5, "image 4 is labelled and skipped"
    w.next_button.click()
    assert w.index == 5 and "no more unlabelled images after this one" in w.status.value
    w.previous_button.click()
    assert w.index == 3
    w.skip_toggle.value = False
    w.previous_button.click()
    assert w.index == 2
    with pytest.raises(IndexError):
        w.go(6)


def test_skip_labelled_on_start_and_auto_advance(photos, tmp_path):
    tsv = tmp_path / "labels.tsv"
    first = AnnotationWidget(photos, labels=["bird"], output=tsv, auto_advance=False)
    first.go(2)
    first.label("bird")
    w = AnnotationWidget(photos, labels=["bird"], output=tsv, skip_labelled=True)
    w.go(1)
    w.label_buttons["bird"].click()
    assert w.index == 3, "auto-advance skips the already labelled image 2"


def test_images_are_never_modified_moved_or_renamed(photos, tmp_path):
    before = _snapshot(photos)
    tsv = tmp_path / "labels.tsv"
    w = AnnotationWidget(photos, labels=["bird", "flower"], output=tsv)
    w.exclude_button.value = True
    for _ in range(3):
        w.label_buttons["bird"].click()
    w.go(1)
    w.label_buttons["flower"].click()
    w.clear_button.click()
    w.to_dataset()
    assert _snapshot(photos) == before
    assert sorted(os.listdir(tmp_path)) == ["labels.tsv", "photos"]


def test_output_inside_the_image_folder_is_fine(photos):
    before = _snapshot(photos)
    w = AnnotationWidget(photos, labels=["bird"], output=photos / "labels.tsv")
    w.go(1)
    w.label_buttons["bird"].click()
    assert _rows(photos / "labels.tsv") == {"crow.jpg": "bird"}
    after = _snapshot(photos)
    assert {k: v for k, v in after.items() if k != "labels.tsv"} == before
    assert AnnotationWidget(photos, output=photos / "labels.tsv").paths == w.paths


def test_save_writes_a_temporary_file_in_the_same_folder_then_replaces(photos, tmp_path, monkeypatch):
    tsv = tmp_path / "labels.tsv"
    w = AnnotationWidget(photos, labels=["bird"], output=tsv)
    w.go(1)
    w.label_buttons["bird"].click()
    good = tsv.read_text()

    calls = []
    real_replace = os.replace

    def spy(src, dst):
        src, dst = Path(src), Path(dst)
        # at the moment of the swap the new content is complete on disk, next to the target
        calls.append((src.parent == dst.parent, src.name.endswith(".tmp"), src.read_text()))
        real_replace(src, dst)

    monkeypatch.setattr(labels_file_module.os, "replace", spy)
    w.label_buttons["bird"].click()
    assert len(calls) == 1 and calls[0][:2] == (True, True)
    assert calls[0][2] == tsv.read_text() and calls[0][2].count("jpg\tbird") == 2
    good = tsv.read_text()

    # a crash just before the swap (disk full, killed...) leaves the old file whole
    def crash(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(labels_file_module.os, "replace", crash)
    with pytest.warns(RuntimeWarning, match="could not save"):
        w.label_buttons["bird"].click()
    assert tsv.read_text() == good
    assert "No space left on device" in w.status.value
    assert sorted(os.listdir(tmp_path)) == ["labels.tsv", "photos"], "temporary file removed"
    # labels are kept in memory and written with the next successful save
    monkeypatch.setattr(labels_file_module.os, "replace", real_replace)
    w.save()
    assert tsv.read_text().count("jpg\tbird") == 3


_WRITER = textwrap.dedent("""
    import itertools, sys
    from cvkit.widgets import AnnotationWidget
    w = AnnotationWidget(sys.argv[1], labels=["bird", "flower"], output=sys.argv[2],
                         auto_advance=False)
    print("ready", flush=True)
    for k in itertools.count():
        w.go(k % len(w.paths))
        w.label_buttons["bird" if (k // len(w.paths)) % 2 else "flower"].click()
""")


def _check_whole(tsv: Path, n_images: int) -> None:
    """One read of ``tsv`` (it may be replaced at any moment), checked as a whole file."""
    text = tsv.read_text()
    assert text.startswith("# cvkit annotations") and text.endswith("\n"), text[-200:]
    copy = tsv.with_name("copy.tsv")
    copy.write_text(text)
    store = LabelsFile(copy)                      # parses, or raises naming the line
    ds = ImageDataset.from_table(copy, check=False)
    assert len(ds) == len(store.annotations) <= n_images
    assert set(ds.image_labels) <= {"bird", "flower"}


def test_file_always_parses_even_when_the_writer_is_killed(photos, tmp_path):
    """A process labelling as fast as it can is read concurrently and then SIGKILLed, 4 times:
    every read and the file left behind parse completely."""
    tsv = tmp_path / "labels.tsv"
    n = len(AnnotationWidget(photos, output=tmp_path / "probe.tsv").paths)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    for round_ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(photos), str(tsv)], env=env,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            reads = 0
            deadline = time.monotonic() + 0.4 + 0.3 * round_
            while time.monotonic() < deadline:
                if tsv.exists():
                    _check_whole(tsv, n)
                    reads += 1
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert reads > 0
        _check_whole(tsv, n)
        assert LabelsFile(tsv).annotations, "the writer had saved labels before it was killed"
    # a killed writer may leave its temporary file behind, but never in place of the TSV
    leftovers = [p for p in os.listdir(tmp_path) if p not in ("labels.tsv", "copy.tsv", "probe.tsv", "photos")]
    assert all(p.startswith(".labels.tsv.") and p.endswith(".tmp") for p in leftovers)


def test_csv_output_and_awkward_file_names(tmp_path, sample_dir):
    folder = tmp_path / "odd names"
    folder.mkdir()
    names = ["#hash.jpg", "comma, and 'quote\".jpg", "tab\tname.jpg"]
    for name in names:
        shutil.copy(sample_dir / "bird" / "owl.jpg", folder / name)
    for out in (tmp_path / "labels.csv", tmp_path / "labels.tsv"):
        w = AnnotationWidget(folder, labels=["bird, or not"], output=out)
        for _ in names:
            w.label_buttons["bird, or not"].click()
        assert _rows(out) == dict.fromkeys(names, "bird, or not")
        assert AnnotationWidget(folder, output=out).n_labelled == 3


def test_existing_file_that_does_not_parse_is_refused_and_kept(photos, tmp_path):
    tsv = tmp_path / "labels.tsv"
    tsv.write_text("path\tlabel\tscore\nphotos/owl.jpg\tbird\t0.9\n")
    with pytest.raises(TableFormatError, match="labels.tsv line 1"):
        AnnotationWidget(photos, labels=["bird"], output=tsv)
    tsv.write_text("photos/owl.jpg\tbird\nphotos/crow.jpg\n")
    with pytest.raises(TableFormatError, match="line 2: expected 2 fields"):
        AnnotationWidget(photos, labels=["bird"], output=tsv)
    assert tsv.read_text() == "photos/owl.jpg\tbird\nphotos/crow.jpg\n"


def test_resumes_from_a_plain_table_and_keeps_rows_of_other_images(photos, tmp_path, sample_dir):
    tsv = tmp_path / "labels.tsv"
    other = sample_dir / "vegetable" / sorted(os.listdir(sample_dir / "vegetable"))[0]
    tsv.write_text(f"photos/owl.jpg\tbird\n{other}\tvegetable\n")  # headerless, ML.NET style
    w = AnnotationWidget(photos, labels=["bird"], output=tsv)
    assert w.labels == ["bird", "vegetable"]
    assert w.annotations == {str(photos / "owl.jpg"): "bird"}
    w.go(1)
    w.label_buttons["bird"].click()
    rows = _rows(tsv)
    assert rows[other.name] == "vegetable" and rows["owl.jpg"] == "bird" and len(rows) == 3


def test_takes_a_list_of_paths_or_a_dataset(photos, tmp_path, sample_dir):
    paths = [photos / "owl.jpg", photos / "crow.jpg", photos / "owl.jpg", photos / "missing.jpg"]
    w = AnnotationWidget(paths, labels=["bird"], output=tmp_path / "a.tsv")
    assert w.paths == [str(photos / "owl.jpg"), str(photos / "crow.jpg"), str(photos / "missing.jpg")]
    w.go(2)
    assert "file not found" in w.placeholder.value
    ds = ImageDataset.from_directory(sample_dir).subset([0, 1, 2])
    w2 = AnnotationWidget(ds, output=tmp_path / "b.tsv")
    assert w2.labels == ds.labels and w2.paths == ds.paths
    assert w2.title.value.count("bird/") == 1, "paths are shown relative to the dataset's root"


def test_clear_errors_for_bad_input(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: no images found"):
        AnnotationWidget(tmp_path / "empty", labels=["a"], output=tmp_path / "x.tsv")
    with pytest.raises(FileNotFoundError, match="nowhere: image folder not found"):
        AnnotationWidget(tmp_path / "nowhere", labels=["a"], output=tmp_path / "x.tsv")
    # issue 16: "cat,dog" (papermill's -p labels "cat,dog") is a list of two classes
    widget = AnnotationWidget([tmp_path / "a.jpg"], labels=" cat, dog,", output=tmp_path / "x.tsv")
    assert widget.labels == ["cat", "dog"]
    with pytest.raises(ValueError, match="order must be one of"):
        AnnotationWidget([tmp_path / "a.jpg"], labels=["cat"], order="alphabetical", output=tmp_path / "x.tsv")
    with pytest.raises(IsADirectoryError, match="give a file name"):
        AnnotationWidget([tmp_path / "a.jpg"], labels=["cat"], output=tmp_path)


def test_notebook_display_is_the_widget_with_a_short_text(photos, tmp_path):
    w = AnnotationWidget(photos, labels=["bird", "flower"], output=tmp_path / "labels.tsv")
    bundle = w._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == w.widget.model_id
    assert bundle["text/plain"] == ("<AnnotationWidget: 0 labelled of 6 images, 2 labels, "
                                    "saving to labels.tsv>")


# ---------------------------------------------------------------- issue 16: keys and uncertain-first order
class TinyFeaturizer:
    """Stands in for the backbone: an 8x8 colour thumbnail per image (fast, no TensorFlow)."""

    def __init__(self):
        self.skipped_: list[tuple[str, str]] = []
        self.n_featurized = 0

    def transform(self, paths, return_mask=False):
        import numpy as np

        from cvkit import ImageReadError, read_image

        rows, ok, self.skipped_ = [], [], []
        for p in paths:
            try:
                rows.append(read_image(p, size=8).astype(np.float32).ravel() / 255)
                ok.append(True)
            except ImageReadError as exc:
                rows.append(np.full(192, np.nan, np.float32))
                ok.append(False)
                self.skipped_.append((p, exc.reason))
        self.n_featurized += len(paths)
        return np.stack(rows), np.array(ok)


def test_keys_label_move_undo_and_exclude(photos, tmp_path):
    tsv = tmp_path / "labels.tsv"
    w = AnnotationWidget(photos, labels="bird,flower", output=tsv)
    assert "<kbd>1</kbd> bird" in w.keys.help_html and "<kbd>x</kbd> exclude" in w.keys.help_html
    assert all(b.disabled for b in w.label_buttons.values()), "broken.jpg: exclude only"
    w.keys.press("1")                                  # refused on the unreadable image
    assert "can only be excluded" in w.status.value and not tsv.exists()
    w.keys.press("x")
    assert [Path(p).name for p in LabelsFile(tsv).excluded] == ["broken.jpg"]
    assert not any(b.disabled for b in w.label_buttons.values())
    w.keys._on_message(w.keys, {"key": "1"}, [])       # what the browser sends for a key press
    w.keys.press("2")
    assert _rows(tsv) == {"crow.jpg": "bird", "daffodil.jpg": "flower"}
    w.keys.press("Backspace")                          # undo: daffodil loses its label, shown again
    assert _rows(tsv) == {"crow.jpg": "bird"} and Path(w.current_path).name == "daffodil.jpg"
    w.keys.press("ArrowLeft")
    assert Path(w.current_path).name == "crow.jpg"
    w.keys.press("ArrowRight")
    w.keys.press("ArrowRight")
    assert Path(w.current_path).name == "owl.jpg"
    w.keys.press("9")                                  # no 9th label: nothing happens
    w.keys.press("q")                                  # not a shortcut
    assert _rows(tsv) == {"crow.jpg": "bird"}
    for _ in range(3):
        w.keys.press("Backspace")                      # back to the start, then nothing to undo
    assert _rows(tsv) == {} and LabelsFile(tsv).excluded == {}
    w.keys.press("Backspace")
    assert "nothing to undo" in w.status.value
    again = AnnotationWidget(photos, labels="bird,flower", output=tsv)
    assert again.n_labelled == 0 and again.index == 0


@pytest.fixture()
def two_classes(tmp_path, sample_dir):
    """8 birds and 8 fruits: a folder the uncertain-first order can learn from."""
    root = tmp_path / "two"
    for cls in ("bird", "fruit"):
        (root / cls).mkdir(parents=True)
        for src in sorted((sample_dir / cls).glob("*.jpg"))[:8]:
            shutil.copy(src, root / cls / src.name)
    return root


def test_random_order_is_a_seeded_permutation(two_classes, tmp_path):
    a = AnnotationWidget(two_classes, output=tmp_path / "a.tsv", order="random", random_state=1)
    b = AnnotationWidget(two_classes, output=tmp_path / "b.tsv", order="random", random_state=1)
    folder = AnnotationWidget(two_classes, output=tmp_path / "c.tsv")
    assert a.paths == b.paths != folder.paths and sorted(a.paths) == sorted(folder.paths)


def test_uncertain_first_refits_reorders_and_suggests(two_classes, tmp_path):
    tsv = tmp_path / "labels.tsv"
    feats = TinyFeaturizer()
    w = AnnotationWidget(two_classes, labels=["bird", "fruit"], output=tsv, order="uncertain",
                         refit_every=4, featurizer=feats)
    assert "fitted once 4 images" in w.model_info.value and "<kbd>Enter</kbd>" in w.keys.help_html
    truth = lambda p: Path(p).parent.name  # noqa: E731 - the oracle labeller
    while w._fitted_at is None:
        w.keys.press("1" if truth(w.current_path) == "bird" else "2")
    assert w.n_labelled >= 4 and "cross-validated accuracy" in w.model_info.value
    # the unlabelled photos after the current one are in the model's order, most uncertain first
    pending = w.paths[w.index:]
    assert all(w._pending_path(p) for p in pending)
    expected, _ = w.ranker.rank(pending)
    assert pending == expected
    # the model's guess is pre-selected, and Enter accepts it
    guess, p = w.suggestions[w.current_path]
    assert w.label_buttons[guess].button_style == "info" and "Enter accepts" in w.current_label.value
    shown = w.current_path
    w.keys.press("Enter")
    assert _rows(tsv)[Path(shown).name] == guess
    fitted = w._fitted_at
    for _ in range(4):
        w.keys.press("1" if truth(w.current_path) == "bird" else "2")
    assert w._fitted_at == fitted + 4, "refitted after every 4 labels"
    assert feats.n_featurized == 16, "each photo featurized once"
    # resume: re-creating the widget refits at once and continues with the uncertain photos
    again = AnnotationWidget(two_classes, labels=["bird", "fruit"], output=tsv, order="uncertain",
                             refit_every=4, featurizer=TinyFeaturizer())
    assert again._fitted_at == w.n_labelled and again._pending(again.index)
    assert again.suggestions and again.current_path in again.suggestions
