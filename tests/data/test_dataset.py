"""ImageDataset: folder and table sources, bad files, subsets, splits and split manifests."""
from __future__ import annotations

import json
import os
import warnings

import pytest
from matplotlib.figure import Figure

from cvkit import BadImageWarning, ImageDataset, TableFormatError, load_split, save_split
from tests.support.corpus import checksums, make_corpus

BAD = {"truncated.jpg": "truncated", "zero_bytes.jpg": "empty file", "text_file.jpg": "not an image",
       "bomb.png": "too large"}


@pytest.fixture()
def corpus(tmp_path):
    root = tmp_path / "photos"
    return root, make_corpus(root)


def test_sample_data_directory_and_table_agree(sample_dir):
    a = ImageDataset.from_directory(sample_dir)
    b = ImageDataset.from_table(sample_dir / "tags.tsv")
    assert a.labels == b.labels == ["bird", "flower", "fruit", "vegetable"]
    assert len(a) == len(b) == 104
    assert sorted(zip(a.paths, a.image_labels)) == sorted(zip(b.paths, b.image_labels))
    assert a.counts() == {"bird": 35, "flower": 25, "fruit": 26, "vegetable": 18}
    assert a.skipped == [] and b.skipped == []


def test_bad_corpus_never_crashes_names_every_bad_file_and_changes_nothing(corpus):
    root, p = corpus
    before = checksums(root)
    with pytest.warns(BadImageWarning) as caught:
        ds = ImageDataset.from_directory(root)
    assert len(caught) == 1, "one summarising warning, not one per file"
    message = str(caught[0].message)
    skipped = {path.split("/")[-1]: reason for path, reason in ds.skipped}
    for name, reason in BAD.items():
        assert name in skipped and reason in skipped[name], (name, skipped)
        assert name in message
    # classes: top-level folders with readable images; the empty class and hidden folder are absent
    assert ds.labels == ["bad", "good", "nested", "odd"] or ds.labels == ["good", "nested", "odd"]
    assert "bad" not in ds.labels  # every image in bad/ is unreadable, so the class has no images
    assert ds.counts()["good"] == 8 and ds.counts()["odd"] == 6 and ds.counts()["nested"] == 1
    names = {path.split("/")[-1] for path in ds.paths}
    assert not any(n.startswith(".") for n in names) and "notes.txt" not in names
    assert "ünïcødé naïve café.jpg" in names and "with space.PNG" in names
    assert checksums(root) == before


def test_check_false_defers_reading(corpus):
    root, _ = corpus
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = ImageDataset.from_directory(root, check=False)
    assert len(ds) == 8 + 6 + 1 + 4 and ds.skipped == []


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_table_with_header_csv_and_root(corpus, tmp_path):
    root, _ = corpus
    table = _write(tmp_path / "list.csv", "ImagePath,Label\ngood/plain.jpg,cat\nodd/gray.jpg,dog\n")
    ds = ImageDataset.from_table(table, root=root)
    assert ds.labels == ["cat", "dog"] and len(ds) == 2
    table2 = _write(root / "t.tsv", "path\tlabel\n# a comment\n\ngood/plain.jpg\tcat\n")
    assert len(ImageDataset.from_table(table2)) == 1  # relative to the table's own folder


def test_table_errors_name_the_line(corpus):
    root, _ = corpus
    table = _write(root / "tags.tsv", "good/plain.jpg\tcat\nmissing.jpg\tcat\nmalformed line without tab\n"
                                      "odd/gray.jpg\tdog\n")
    with pytest.raises(TableFormatError, match=r"tags.tsv line 3: expected 2 fields"):
        ImageDataset.from_table(table)
    with pytest.warns(BadImageWarning):
        ds = ImageDataset.from_table(table, errors="skip")
    assert len(ds) == 2
    reasons = dict(ds.skipped)
    assert any("line 3" in k for k in reasons)
    missing = [r for k, r in ds.skipped if k.endswith("missing.jpg")]
    assert missing and "file not found" in missing[0] and "line 2" in missing[0]
    _write(root / "empty_label.tsv", "good/plain.jpg\t\n")
    with pytest.raises(TableFormatError, match="line 1: empty label"):
        ImageDataset.from_table(root / "empty_label.tsv")
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        ImageDataset.from_table(root / "nope.tsv")


def test_bad_files_listed_in_a_table_are_skipped(corpus):
    root, _ = corpus
    table = _write(root / "t.tsv", "good/plain.jpg\ta\nbad/truncated.jpg\ta\nbad/zero_bytes.jpg\tb\ngood/x.bmp\tb\n")
    with pytest.warns(BadImageWarning, match="skipped 2"):
        ds = ImageDataset.from_table(table)
    assert len(ds) == 2 and ds.counts() == {"a": 1, "b": 1}


def test_subset_counts_repr_and_show(sample_dataset):
    sub = sample_dataset.subset([0, 1, 40])
    assert len(sub) == 3 and sub.labels == sample_dataset.labels
    assert sub.paths == [sample_dataset.paths[i] for i in (0, 1, 40)]
    mask = sample_dataset.targets == 3
    assert sample_dataset.subset(mask).counts()["vegetable"] == 18
    assert "104 images in 4 classes" in repr(sample_dataset)
    fig = sample_dataset.show(8)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 8 and set(titles) <= set(sample_dataset.labels)


def test_split_is_stratified_deterministic_and_covers_every_class(sample_dataset):
    train, test = sample_dataset.split(test_size=0.34, random_state=0)
    train2, test2 = sample_dataset.split(test_size=0.34, random_state=0)
    assert train.paths == train2.paths and test.paths == test2.paths
    assert (len(train), len(test)) == (68, 36)
    assert not set(train.paths) & set(test.paths)
    assert sorted(train.paths + test.paths) == sorted(sample_dataset.paths)
    for label, n in sample_dataset.counts().items():
        assert abs(test.counts()[label] - 0.34 * n) <= 1.0
    other = sample_dataset.split(test_size=0.34, random_state=1)[1]
    assert other.paths != test.paths


def test_split_keeps_tiny_classes_on_both_sides(tmp_path):
    paths = [f"x{i}.jpg" for i in range(22)]
    labels = ["big"] * 20 + ["tiny"] * 2
    ds = ImageDataset.from_paths(paths, labels, check=False)
    for seed in range(10):
        train, test = ds.split(test_size=0.1, random_state=seed)
        assert train.counts()["tiny"] == 1 and test.counts()["tiny"] == 1


def test_split_refuses_a_class_with_one_image():
    ds = ImageDataset.from_paths(["a.jpg", "b.jpg", "c.jpg"], ["x", "x", "lonely"], check=False)
    with pytest.raises(ValueError, match="'lonely' have only 1 image"):
        ds.split()
    with pytest.raises(ValueError, match=r"test_size must be a number in \(0, 1\) or a positive int, got 1.5"):
        ImageDataset.from_paths(["a", "b", "c", "d"], ["x", "x", "y", "y"], check=False).split(test_size=1.5)


def test_split_manifest_round_trip(sample_dataset, tmp_path):
    train, test = sample_dataset.split(random_state=0)
    path = save_split(tmp_path / "run" / "split.json", train, test, random_state=0)
    doc = json.loads(path.read_text())
    assert doc["format"] == "cvkit-split" and doc["info"] == {"random_state": 0}
    assert not any(row[0].startswith("/") for row in doc["test"]), "paths are stored relative"
    train2, test2 = load_split(path)
    assert train2.paths == [str(p) for p in train2.paths]
    import os
    assert [os.path.realpath(p) for p in test2.paths] == [os.path.realpath(p) for p in test.paths]
    assert test2.image_labels == test.image_labels and test2.labels == test.labels


def test_split_manifest_is_written_through_cvkit_io(sample_dataset, tmp_path, monkeypatch):
    """One writer for every file (cvkit._io.write_json: atomic, strict JSON, numpy values welcome);
    paths relative to the manifest (cvkit._io.portable_path) come back absolute (cvkit._io.from_portable)."""
    import numpy as np

    from cvkit._io import portable_path
    from cvkit.data import _manifest
    written = []
    real = _manifest.write_json
    monkeypatch.setattr(_manifest, "write_json",
                        lambda path, doc, indent: written.append(path) or real(path, doc, indent))
    train, test = sample_dataset.split(random_state=0)
    path = save_split(tmp_path / "split.json", train, test, random_state=np.int64(0), score=float("nan"))
    assert written == [path]
    doc = json.loads(path.read_text())
    assert doc["info"] == {"random_state": 0, "score": None}
    assert doc["test"][0][0] == portable_path(test.paths[0], tmp_path.resolve())
    assert load_split(path)[1].paths[0] == os.path.normpath(os.path.join(tmp_path, doc["test"][0][0]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split.json"]  # no temporary file left
    from cvkit._io import read_json
    assert _manifest.read_json_file is read_json  # kept for cvkit.evaluation._report


def test_load_split_reports_missing_images_and_bad_manifests(tmp_path, corpus):
    root, _ = corpus
    ds = ImageDataset.from_paths([root / "good/plain.jpg", root / "good/x.bmp", root / "odd/gray.jpg",
                                  root / "odd/rgba.png"], ["a", "a", "b", "b"])
    train, test = ds.split(test_size=0.5, random_state=0)
    path = save_split(tmp_path / "split.json", train, test)
    gone = test.paths[0]
    import os
    os.rename(gone, gone + ".moved")
    with pytest.warns(BadImageWarning, match="file not found"):
        _, test2 = load_split(path)
    assert len(test2) == 1 and test2.skipped[0][0].endswith(os.path.basename(gone))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not a split manifest"):
        load_split(tmp_path / "bad.json")
    (tmp_path / "latin1.json").write_bytes(b'{"root": "caf\xe9"}')  # not UTF-8: a ValueError, not a crash
    with pytest.raises(ValueError, match="latin1.json: not a split manifest .*utf-8"):
        load_split(tmp_path / "latin1.json")
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ValueError, match="not a cvkit split manifest"):
        load_split(tmp_path / "other.json")


def test_split_keeps_exact_copies_on_one_side(tmp_path, sample_dir):
    """A copy of a photo under another name never lands on the other side of the split."""
    import shutil
    for cls in ("bird", "fruit"):
        (tmp_path / cls).mkdir()
        for src in sorted((sample_dir / cls).glob("*.jpg"))[:8]:
            shutil.copy(src, tmp_path / cls / src.name)
    for src in sorted((sample_dir / "bird").glob("*.jpg"))[:3]:
        shutil.copy(src, tmp_path / "bird" / ("copy_" + src.name))
    ds = ImageDataset.from_directory(tmp_path)
    for seed in range(5):
        train, test = ds.split(test_size=0.5, random_state=seed)
        train_names = {os.path.basename(p).removeprefix("copy_") for p in train.paths}
        test_names = {os.path.basename(p).removeprefix("copy_") for p in test.paths}
        assert not train_names & test_names, f"seed {seed}: a copy crossed the split"
    naive_leaks = 0
    for seed in range(5):
        train, test = ds.split(test_size=0.5, random_state=seed, groups=None)
        naive_leaks += bool({os.path.basename(p).removeprefix("copy_") for p in train.paths}
                            & {os.path.basename(p).removeprefix("copy_") for p in test.paths})
    assert naive_leaks, "without groups some split should have leaked a copy (the test must be able to fail)"


def test_split_of_sample_data_is_unchanged_by_grouping(sample_dataset):
    """No duplicates in sample_data: the grouped split is the image-by-image split."""
    a_train, a_test = sample_dataset.split(test_size=0.34, random_state=0)
    b_train, b_test = sample_dataset.split(test_size=0.34, random_state=0, groups=None)
    assert a_train.paths == b_train.paths and a_test.paths == b_test.paths


def test_split_refuses_an_unknown_groups_value(sample_dataset):
    with pytest.raises(ValueError, match="groups must be"):
        sample_dataset.split(groups="near")


def test_classifier_inputs_are_thin_uses_of_image_source(sample_dir, tmp_path):
    """data._inputs keeps its names for classifiers and models, but every input goes through ImageSource."""
    import numpy as np

    from cvkit.data._inputs import image_items, labels_for, load_pixels, n_images
    photo = str(sample_dir / "bird" / "owl.jpg")
    assert image_items(photo) == [photo] and n_images(photo) == 1  # one image file: a one-image input
    assert n_images(sample_dir) == 104 and labels_for(sample_dir / "tags.tsv", None)[:1] == ["bird"]
    assert labels_for(sample_dir, None) == ImageDataset.from_directory(sample_dir).image_labels
    with pytest.raises(TypeError, match="cannot read images from a int"):
        image_items(42)
    with pytest.raises(TypeError, match="item 1"):
        image_items([photo, 42])
    with pytest.raises(ValueError, match="labels are missing"):
        labels_for([photo], None)
    with pytest.raises(ValueError, match="the dataset is unlabelled"):
        labels_for(ImageDataset([photo]), None)
    with pytest.raises(ValueError, match="fit: 1 images but 2 labels in y"):
        labels_for([photo], ["a", "b"])
    with pytest.raises(ValueError, match=r"y has empty labels at positions \[0\]"):
        labels_for([photo], [""])
    gone = str(tmp_path / "gone.jpg")
    for progress in (False, True):
        pixels, ok, skipped = load_pixels([photo, gone], (32, 24), progress=progress)
        assert pixels.shape == (2, 24, 32, 3) and ok.tolist() == [True, False]
        assert skipped == [(gone, "file not found")] and pixels[1].max() == 0 and pixels[0].max() > 0
    array = np.zeros((2, 24, 32, 3), np.uint8)
    assert load_pixels(array, (32, 24))[0] is array  # already at size: no copy
    assert load_pixels(array, (16, 12))[0].shape == (2, 12, 16, 3)


def test_image_keys_have_one_definition(sample_dir):
    from cvkit import _io
    from cvkit.data import _checks, _corrections
    assert _corrections.image_key is _io.image_key  # kept importable where the cleaner widget imports it
    owl = sample_dir / "bird" / "owl.jpg"
    groups = _checks.same_image_groups([str(owl), f"{sample_dir}/./bird/owl.jpg",
                                        os.path.relpath(owl), str(sample_dir / "bird" / "crow.jpg")])
    assert groups.tolist() == [0, 0, 0, 1]
