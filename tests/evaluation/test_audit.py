"""Label issues, odd images, duplicates and train/test leaks (cvkit.evaluation._audit / .duplicates)."""
from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
from PIL import Image

import cvkit
from cvkit.data._checks import BadImageWarning
from cvkit.evaluation._audit import find_label_issues, outlier_scores
from cvkit.evaluation._duplicates import PAIR_COLUMNS, duplicate_groups, find_duplicates, groups_from_pairs


def _flipped(dataset, n_flip: int, seed: int = 0):
    """The dataset with ``n_flip`` labels moved to another class, and the flipped positions."""
    rng = np.random.default_rng(seed)
    flip = rng.choice(len(dataset), n_flip, replace=False)
    targets = dataset.targets.copy()
    targets[flip] = (targets[flip] + rng.integers(1, len(dataset.labels), n_flip)) % len(dataset.labels)
    return cvkit.ImageDataset(dataset.paths, targets, dataset.labels, root=dataset.root), set(flip.tolist())


def test_flipped_labels_are_found_and_ranked_first(sample_dataset):
    noisy, flipped = _flipped(sample_dataset, 8)
    issues = find_label_issues(noisy)
    assert list(issues.columns[:7]) == ["path", "given_label", "suggested_label", "label_quality", "is_issue",
                                        "ood_score", "is_outlier"]
    assert list(issues.columns[7:]) == [f"p_{c}" for c in noisy.labels]
    assert len(issues) == len(noisy) and issues.label_quality.is_monotonic_increasing
    assert issues.label_quality.between(0, 1).all()
    assert np.allclose(issues.filter(like="p_").sum(axis=1), 1)
    flagged = set(issues.index[issues.is_issue].tolist())
    assert len(flagged & flipped) >= 5, (flagged, flipped)      # most flips are caught ...
    assert len(flagged & flipped) >= len(flagged) / 2            # ... and most flags are flips
    assert len(set(issues.index[:10].tolist()) & flipped) >= 5    # worst first
    # the index is the position in the dataset; suggestions name the true class of caught flips
    for i in flagged & flipped:
        assert issues.loc[i, "path"] == noisy.paths[i]
        assert issues.loc[i, "given_label"] == noisy.image_labels[i]
    right = [issues.loc[i, "suggested_label"] == sample_dataset.image_labels[i] for i in flagged & flipped]
    assert np.mean(right) >= 0.8


def test_clean_sample_data_has_few_issues(sample_split):
    train, _ = sample_split
    issues = find_label_issues(train, cv=3)
    assert issues.is_issue.sum() <= 0.1 * len(train)


def test_a_given_classifier_is_cloned_per_fold(sample_split):
    from sklearn.linear_model import LogisticRegression

    train, _ = sample_split
    clf = cvkit.FeatureClassifier(head=LogisticRegression(max_iter=500), verbose=False)
    issues = find_label_issues(train, classifier=clf, cv=2)
    assert len(issues) == len(train)
    assert not hasattr(clf, "classes_")   # the given classifier is left unfitted
    assert np.allclose(issues.filter(like="p_").sum(axis=1), 1)


def test_an_image_of_nothing_is_an_outlier(sample_dataset, tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (120, 120, 3), dtype=np.uint8)).save(tmp_path / "noise.png")
    Image.new("RGB", (120, 120), (40, 90, 200)).save(tmp_path / "flat.png")
    odd = [str(tmp_path / "noise.png"), str(tmp_path / "flat.png")]
    ds = cvkit.ImageDataset.from_paths(sample_dataset.paths + odd, sample_dataset.image_labels + ["bird", "fruit"])
    issues = find_label_issues(ds)
    outliers = set(issues.path[issues.is_outlier])
    assert set(odd) <= outliers and len(outliers) <= 6, outliers
    assert issues.set_index("path").loc[odd, "ood_score"].max() < issues.ood_score.median()


def test_outlier_scores_of_tiny_inputs():
    score, odd = outlier_scores(np.ones((2, 4), np.float32))
    assert score.tolist() == [1.0, 1.0] and not odd.any()


def test_unreadable_images_are_warned_about_and_left_out(sample_dataset, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    ds = cvkit.ImageDataset(sample_dataset.paths + [str(bad)], np.r_[sample_dataset.targets, 0],
                            sample_dataset.labels)
    with pytest.warns(BadImageWarning, match="find_label_issues: skipped 1 unreadable"):
        issues = find_label_issues(ds, cv=3)
    assert str(bad) not in set(issues.path) and len(issues) == len(sample_dataset)
    with pytest.warns(BadImageWarning, match="find_duplicates"):
        pairs = find_duplicates(ds)
    assert str(bad) not in set(pairs.path_a) | set(pairs.path_b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadImageWarning)
        groups = duplicate_groups(ds)
    assert len(groups) == len(ds)


def test_bad_inputs_raise_clear_errors(sample_dataset):
    unlabelled = cvkit.ImageDataset(sample_dataset.paths[:10])
    with pytest.raises(ValueError, match="unlabelled"):
        find_label_issues(unlabelled)
    few = sample_dataset.subset(list(range(0, 104, 9)))   # some class has fewer than 5 images
    with pytest.raises(ValueError, match=r"fewer images than cv=5 folds: .*Pass cv="):
        find_label_issues(few)
    with pytest.raises(ValueError, match="cv must be an int"):
        find_label_issues(sample_dataset, cv=1)
    one_class = sample_dataset.subset(np.flatnonzero(sample_dataset.targets == 0))
    with pytest.raises(ValueError, match="at least 2 classes"):
        find_label_issues(one_class)
    with pytest.raises(ValueError, match="threshold"):
        find_duplicates(sample_dataset, threshold=1.5)


def _copies(dataset, folder, picks):
    """An exact copy, a JPEG (quality 60) re-encode, a 50% resize and a 10% crop of each picked image."""
    out = []
    for i in picks:
        src = dataset.paths[i]
        img = Image.open(src).convert("RGB")
        w, h = img.size
        stem = folder / f"{i}"
        shutil.copyfile(src, f"{stem}_exact.jpg")
        img.save(f"{stem}_q60.jpg", quality=60)
        img.resize((max(1, w // 2), max(1, h // 2)), Image.BILINEAR).save(f"{stem}_half.png")
        img.crop((w // 10, h // 10, w, h)).save(f"{stem}_crop.png")
        out += [(i, f"{stem}_{k}") for k in ("exact.jpg", "q60.jpg", "half.png", "crop.png")]
    return out


def test_sample_data_has_no_duplicates(sample_dataset):
    pairs = find_duplicates(sample_dataset)
    assert list(pairs.columns) == PAIR_COLUMNS and len(pairs) == 0
    assert duplicate_groups(sample_dataset).tolist() == list(range(len(sample_dataset)))


def test_exact_and_near_copies_are_found_and_grouped(sample_dataset, tmp_path):
    picks = [0, 30, 60, 90]
    copies = _copies(sample_dataset, tmp_path, picks)
    ds = cvkit.ImageDataset.from_paths(sample_dataset.paths + [p for _, p in copies],
                                       sample_dataset.image_labels
                                       + [sample_dataset.image_labels[i] for i, _ in copies])
    pairs = find_duplicates(ds)
    found = {(a, b) for a, b in zip(pairs.index_a, pairs.index_b)} | {(b, a) for a, b in zip(pairs.index_a,
                                                                                               pairs.index_b)}
    n = len(sample_dataset)
    hits = [(src, n + k) in found for k, (src, _) in enumerate(copies)]
    assert np.mean(hits) >= 0.9, list(zip([p for _, p in copies], hits))
    exact = pairs[pairs.kind == "exact"]
    assert {(a, b) for a, b in zip(exact.index_a, exact.index_b)} == {(src, n + 4 * k) for k, src in enumerate(picks)}
    assert (exact.similarity == 1.0).all() and (pairs.kind[len(exact):] == "near").all()
    assert (pairs.label_a == pairs.label_b).all()
    groups = duplicate_groups(ds)
    for k, src in enumerate(picks):
        assert (groups[n + 4 * k: n + 4 * k + 4] == groups[src]).sum() >= 3
    others = np.delete(groups, [*picks, *range(n, len(ds))])
    assert len(set(others.tolist())) == len(others)      # no false groups among the originals


def test_a_leak_between_train_and_test_is_reported(sample_split, tmp_path):
    train, test = sample_split
    copies = _copies(test, tmp_path, [0, 5])
    leaky = cvkit.ImageDataset.from_paths(train.paths + [copies[0][1], copies[5][1]],
                                          train.image_labels + [test.image_labels[0], test.image_labels[5]])
    leaks = find_duplicates(leaky, other=test)
    got = sorted(zip(leaks.index_a.tolist(), leaks.index_b.tolist(), leaks.kind))
    assert got == [(len(train), 0, "exact"), (len(train) + 1, 5, "near")]
    assert set(leaks.path_a) == {copies[0][1], copies[5][1]}
    assert set(leaks.path_b) == {test.paths[0], test.paths[5]}
    assert len(find_duplicates(train, other=test)) == 0


def test_groups_from_pairs():
    assert groups_from_pairs(4, [], []).tolist() == [0, 1, 2, 3]
    assert groups_from_pairs(6, [5, 1], [4, 3]).tolist() == [0, 1, 2, 1, 3, 3]
