"""CleanerWidget and its corrections file, driven through the public controls and checked on disk."""
from __future__ import annotations

import hashlib
import html
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cvkit import ImageDataset
from cvkit.data._corrections import Decision, apply_corrections, image_key, read_corrections
from cvkit.evaluation import EvaluationReport
from cvkit.widgets import CleanerWidget, CorrectionsFile
from cvkit.widgets import _labels_file as labels_file_module


@pytest.fixture()
def data(tmp_path, sample_dir):
    """A labelled folder: 3 birds and 3 fruits (class folders), copied from sample_data."""
    root = tmp_path / "data"
    for cls in ("bird", "fruit"):
        (root / cls).mkdir(parents=True)
        for src in sorted((sample_dir / cls).glob("*.jpg"))[:3]:
            shutil.copy(src, root / cls / src.name)
    return ImageDataset.from_directory(root)


def _issues(ds: ImageDataset) -> pd.DataFrame:
    """A find_label_issues-shaped table: image 0 (a bird) looks like a fruit, image 3 is odd."""
    n = len(ds)
    p_fruit = np.array([0.9, 0.2, 0.1, 0.8, 0.7, 0.95])
    given = np.asarray(ds.image_labels, dtype=object)
    quality = np.where(given == "fruit", p_fruit, 1 - p_fruit)
    table = pd.DataFrame({"path": ds.paths, "given_label": given,
                          "suggested_label": np.where(p_fruit > 0.5, "fruit", "bird"),
                          "label_quality": quality, "is_issue": [True] + [False] * (n - 1),
                          "ood_score": 0.5, "is_outlier": [False, False, False, True, False, False],
                          "p_bird": 1 - p_fruit, "p_fruit": p_fruit})
    return table.sort_values("label_quality", kind="stable")


def _pairs(ds: ImageDataset) -> pd.DataFrame:
    return pd.DataFrame({"path_a": [ds.paths[1]], "path_b": [ds.paths[4]], "label_a": ["bird"],
                         "label_b": ["fruit"], "similarity": [0.97], "kind": ["near"], "index_a": [1],
                         "index_b": [4]})


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix == ".jpg"}


def test_relabel_exclude_keep_are_on_disk_at_once_and_apply(data, tmp_path):
    before = _snapshot(Path(data.root))
    out = tmp_path / "corrections.tsv"
    w = CleanerWidget(_issues(data), output=out)
    assert [s.kind for s in w.suspects] == ["label issue", "odd image"]
    assert Path(w.current.paths[0]).name == Path(data.paths[0]).name
    assert "given: <b>bird</b>" in w.panels[0].verdict.value and "suggested" in w.panels[0].verdict.value
    assert "0.90" in w.panels[0].bars.value                      # the class probabilities
    assert w.panels[0].relabel_buttons["fruit"].button_style == "info"   # the suggestion stands out
    w.panels[0].relabel_buttons["fruit"].click()
    assert read_corrections(out) == {image_key(data.paths[0]): Decision("relabel", "fruit")}
    assert "2 of 2 shown" in w.position.value, "moved on to the next suspect"
    w.panels[0].exclude_button.click()
    assert read_corrections(out)[image_key(data.paths[3])] == Decision("exclude")
    fixed = data.with_corrections(out)
    assert len(fixed) == len(data) - 1 and fixed.image_labels[0] == "fruit"
    assert apply_corrections(data, out).paths == fixed.paths
    w.previous_button.click()
    w.panels[0].keep_button.click()                              # changed my mind: the label stands
    assert read_corrections(out)[image_key(data.paths[0])] == Decision("keep")
    assert image_key(data.paths[3]) in read_corrections(out)    # keep moved on to image 3 again
    w.previous_button.click()
    w.panels[0].undo_button.click()
    assert image_key(data.paths[0]) not in read_corrections(out) and "no decision" in w.panels[0].decision.value
    assert _snapshot(Path(data.root)) == before, "images are never changed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrections.tsv", "data"]


def test_decisions_persist_across_filter_changes(data, tmp_path):
    out = tmp_path / "corrections.tsv"
    report = EvaluationReport(data.image_labels, np.tile([0.5, 0.5], (len(data), 1)), ["bird", "fruit"],
                              paths=data.paths)
    w = CleanerWidget(_issues(data), _pairs(data), report, output=out, top_losses=2)
    assert len(w.suspects) == 5
    w.relabel("fruit")                                           # the label issue
    text = out.read_text()
    w.show.value = "duplicates"
    assert [s.kind for s in w.visible] == ["duplicate"]
    assert w.panels[1].box.layout.display is None, "a pair is shown side by side"
    w.exclude(side=1)
    w.class_filter.value = "fruit"
    w.show.value = "label issues"
    w.class_filter.value = "all classes"
    w.show.value = "all"
    w.go(0)
    assert "relabel" in w.panels[0].decision.value and "fruit" in w.panels[0].decision.value
    assert read_corrections(out)[image_key(data.paths[0])] == Decision("relabel", "fruit")
    assert out.read_text() != text and len(read_corrections(out)) == 2
    w.show.value = "undecided"
    assert all(not all(w.store.get(p) for p in s.paths) for s in w.visible)
    assert w.current.kind != "label issue"
    w.show.value = "decided"
    assert len(w.visible) == 3, "image 0 is also a top loss: decided there too (decisions belong to images)"


def test_resume_after_a_restart_and_default_output_beside_the_data(data):
    w = CleanerWidget(_issues(data))
    assert Path(w.output) == Path(data.root) / "corrections.tsv"
    w.relabel("fruit")
    del w
    again = CleanerWidget(_issues(data))
    assert again.decisions == {image_key(data.paths[0]): Decision("relabel", "fruit")}
    assert "1 of 2 decided" in again.position.value
    assert repr(again) == "<CleanerWidget: 1 decided of 2 suspects, saving to corrections.tsv>"


def test_top_losses_from_a_report(data, tmp_path):
    proba = np.array([[0.1, 0.9], [0.6, 0.4], [0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.05, 0.95]])
    report = EvaluationReport(data.image_labels, proba, ["bird", "fruit"], paths=data.paths)
    w = CleanerWidget(report, top_losses=2, output=tmp_path / "c.tsv")
    assert [Path(s.paths[0]).name for s in w.suspects] == [Path(data.paths[0]).name, Path(data.paths[1]).name]
    assert w.suspects[0].suggested == "fruit" and w.suspects[0].kind == "top loss"
    with pytest.raises(TypeError, match="find_label_issues or find_duplicates"):
        CleanerWidget([1, 2], output=tmp_path / "c.tsv")


def test_failed_save_keeps_the_old_file_and_says_so(data, tmp_path, monkeypatch):
    out = tmp_path / "corrections.tsv"
    w = CleanerWidget(_issues(data), output=out)
    w.keep()
    good = out.read_text()

    def crash(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(labels_file_module.os, "replace", crash)
    w.exclude()
    assert out.read_text() == good and "No space left on device" in w.status.value
    assert sorted(os.listdir(tmp_path)) == ["corrections.tsv", "data"], "temporary file removed"


def test_two_writers_keep_each_others_decisions(data, tmp_path):
    out = tmp_path / "corrections.tsv"
    a, b = CorrectionsFile(out), CorrectionsFile(out)
    a.set(data.paths[0], "exclude"); a.save()
    b.set(data.paths[1], "relabel", "fruit"); b.save()
    assert len(read_corrections(out)) == 2 and len(b.decisions) == 2


_WRITER = textwrap.dedent("""
    import itertools, sys
    from cvkit.widgets import CorrectionsFile
    store = CorrectionsFile(sys.argv[1])
    paths = sys.argv[2:]
    print("ready", flush=True)
    for k in itertools.count():
        store.set(paths[k % len(paths)], ("relabel", "exclude", "keep")[k % 3], "fruit")
        store.save()
""")


def test_file_always_parses_even_when_the_writer_is_killed(data, tmp_path):
    out = tmp_path / "corrections.tsv"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    for round_ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(out), *data.paths], env=env,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            reads = 0
            deadline = time.monotonic() + 0.4 + 0.3 * round_
            while time.monotonic() < deadline:
                if out.exists():
                    copy = tmp_path / "copy.tsv"
                    copy.write_text(out.read_text())
                    assert len(read_corrections(copy)) <= len(data)
                    reads += 1
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert reads > 0
        assert read_corrections(out), "the writer had saved before it was killed"
        assert len(data.with_corrections(out)) <= len(data)
    # a fresh store cleans up what a killed save left behind
    CorrectionsFile(out)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_photo_issues_from_find_image_issues_show_their_kind_and_reason(data, tmp_path):
    """Issue 27: blurry, dark... photos are pages of their own, their reason shown; decisions apply."""
    from PIL import Image

    import cvkit

    dark = Path(data.paths[1])                      # make one bird dark and one fruit tiny (copies)
    Image.open(dark).point(lambda v: v // 12).save(dark)
    small = Path(data.paths[4])
    Image.open(small).resize((20, 20)).save(small)
    table = cvkit.find_image_issues(data)
    assert {"dark", "small"} <= set(table.issue)
    w = CleanerWidget(table, output=tmp_path / "corrections.tsv")
    assert [s.kind for s in w.suspects] == list(table.issue)
    assert [s.paths for s in w.suspects] == [[p] for p in table.path]
    assert w.labels == ["bird", "fruit"]
    k = [s.kind for s in w.suspects].index("dark")
    w.go(k)
    reason = table.reason.iloc[k]
    assert reason and w.heading.value == (f'<b style="font-size:14px">dark</b> '
                                          f'<span style="color:#666">{html.escape(reason)}</span>')
    assert "given: <b>bird</b>" in w.panels[0].verdict.value
    w.show.value = "photo issues"
    assert len(w.visible) == len(table)
    w.show.value = "top losses"
    assert w.visible == []
    w.show.value = "photo issues"
    w.go([s.kind for s in w.visible].index("dark"))
    w.exclude()
    assert str(dark) not in data.with_corrections(tmp_path / "corrections.tsv").paths


def test_the_cvkit_audit_table_mixes_label_pair_and_photo_pages(data, tmp_path):
    from cvkit.cli._audit import TABLE_COLUMNS

    p = data.paths
    rows = [{"problem": "label", "path": p[0], "label": "bird", "suggested_label": "fruit", "label_quality": 0.05,
             "ood_score": 0.4},
            {"problem": "duplicate", "path": p[1], "label": "bird", "other_path": p[4], "other_label": "fruit",
             "similarity": 0.991, "kind": "near"},
            {"problem": "blurry", "path": p[2], "label": "bird", "score": 3.1,
             "reason": "sharpness 3.1, under 7% of the set's median 60.2"}]
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    w = CleanerWidget(table, output=tmp_path / "corrections.tsv")
    assert [(s.kind, s.paths, s.given, s.suggested) for s in w.suspects] == [
        ("label issue", [p[0]], ["bird"], "fruit"), ("duplicate", [p[1], p[4]], ["bird", "fruit"], None),
        ("blurry", [p[2]], ["bird"], None)]
    assert w.suspects[0].note == "label quality 0.05" and w.suspects[1].note == "duplicate, similarity 0.991"
    w.go(2)
    assert "sharpness 3.1, under 7% of the set&#x27;s median 60.2" in w.heading.value
    w.relabel("fruit")
    assert data.with_corrections(tmp_path / "corrections.tsv").image_labels[2] == "fruit"
