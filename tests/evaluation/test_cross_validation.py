"""cvkit.cross_validate: every photo tested once per repeat by a model that never saw it, duplicates
in one fold, the probabilities a fitted model would give, scores in scikit-learn's shape."""
from __future__ import annotations

import re
import shutil
import warnings

import numpy as np
import pytest

import cvkit
from cvkit._validation import InvalidParameterError
from cvkit.classifiers import FeatureClassifier
from cvkit.evaluation import CrossValidationResult, EvaluationReport, cross_validate
from cvkit.evaluation._folds import labelled_images, repeated_folds


@pytest.fixture(scope="module")
def result(sample_dataset):
    return cross_validate(FeatureClassifier(verbose=False), sample_dataset, cv=5, repeats=3, random_state=0)


@pytest.mark.slow
def test_every_photo_gets_exactly_one_prediction_per_repeat(result):
    assert isinstance(result, CrossValidationResult) and cvkit.cross_validate is cross_validate
    assert result.oof_proba.shape == (3, 104, 4) and result.proba.shape == (104, 4)
    assert np.isfinite(result.oof_proba).all()
    np.testing.assert_allclose(result.oof_proba.sum(axis=2), 1.0, atol=1e-5)
    np.testing.assert_allclose(result.proba, result.oof_proba.mean(axis=0))
    for repeat in range(3):  # each photo is in one fold of each repeat, and every fold tests some photos
        assert sorted(set(result.fold_of[repeat].tolist())) == [0, 1, 2, 3, 4]
    assert not (result.fold_of[0] == result.fold_of[1]).all(), "each repeat shuffles anew"
    folds = repeated_folds(labelled_images("sample_data", "cv"), cv=5, repeats=3, random_state=0)
    for repeat in range(3):
        tests = np.concatenate([f.test for f in folds if f.repeat == repeat])
        assert sorted(tests.tolist()) == list(range(104))
        for f in folds:
            assert not set(f.train) & set(f.test) and len(f.train) + len(f.test) == 104


@pytest.mark.slow
def test_scores_have_scikit_learns_shape_and_match_the_out_of_fold_answers(result):
    assert set(result.scores) == {"test_accuracy", "test_balanced_accuracy", "fit_time"}
    assert all(v.shape == (15,) for v in result.scores.values())
    y = np.array([result.classes.index(label) for label in result.labels])
    for i in range(15):
        repeat, fold = divmod(i, 5)
        where = result.fold_of[repeat] == fold
        right = result.oof_proba[repeat, where].argmax(axis=1) == y[where]
        assert result.scores["test_accuracy"][i] == pytest.approx(right.mean())
    assert 0.85 < result.scores["test_accuracy"].mean() <= 1.0
    assert (result.scores["fit_time"] > 0).all()


@pytest.mark.slow
def test_the_report_scores_the_mean_out_of_fold_probabilities_with_intervals(result):
    report = result.report
    assert isinstance(report, EvaluationReport) and len(report) == 104
    assert report.paths == result.paths and report.classes == result.classes
    np.testing.assert_allclose(report.proba, result.proba)
    assert report.info["n_splits"] == 5 and report.info["n_repeats"] == 3
    low, high = report.intervals()["accuracy"]
    assert low <= report.accuracy <= high and high - low > 0.02
    line = result.summary()
    number = r"0\.\d{3} \(0\.\d{3}–[01]\.\d{3}\)"
    assert re.fullmatch(rf"accuracy {number}, balanced accuracy {number} over 5 folds × 3 repeats, 104 images",
                        line), line
    assert line in repr(result)


@pytest.mark.slow
def test_a_fold_gives_the_probabilities_of_a_classifier_fitted_on_its_training_photos(result, sample_dataset):
    """Head refitted and calibrated as fit does: the same calibrated probabilities as clf.fit(train side)."""
    folds = repeated_folds(labelled_images(sample_dataset, "cv"), cv=5, repeats=3, random_state=0)
    fold = folds[1]
    clf = FeatureClassifier(verbose=False).fit(sample_dataset.subset(fold.train))
    assert clf.temperature_ != 1.0
    expected = clf.predict_proba(sample_dataset.subset(fold.test))
    np.testing.assert_allclose(result.oof_proba[0, fold.test], expected, atol=1e-5)


@pytest.mark.slow
def test_the_same_seed_gives_the_same_folds(sample_dataset, result):
    again = cross_validate(FeatureClassifier(verbose=False), sample_dataset, cv=5, repeats=1, random_state=0)
    np.testing.assert_array_equal(again.fold_of[0], result.fold_of[0])
    np.testing.assert_allclose(again.oof_proba[0], result.oof_proba[0])
    other = cross_validate(FeatureClassifier(verbose=False), sample_dataset, cv=5, repeats=1, random_state=1)
    assert not (other.fold_of[0] == result.fold_of[0]).all()


@pytest.mark.slow
def test_duplicates_are_never_on_both_sides_of_a_fold(sample_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data, ignore=shutil.ignore_patterns("*.tsv", "*.txt", "*.csv"))
    copies = []
    for i, original in enumerate(sorted((data / "bird").glob("*.jpg"))[:6]):
        copy = original.with_name(f"copy_{i}_{original.name}")
        shutil.copy2(original, copy)
        copies.append((str(original), str(copy)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dataset's own note about duplicates
        ds = cvkit.ImageDataset.from_directory(data, verbose=False)
    found = cross_validate(FeatureClassifier(verbose=False), ds, cv=3, repeats=2)
    assert found.report.info["duplicate_groups_kept"] == 6
    where = {p: i for i, p in enumerate(found.paths)}
    for original, copy in copies:
        assert (found.fold_of[:, where[original]] == found.fold_of[:, where[copy]]).all(), (original, copy)
    # without grouping, some pair would be split in 3 repeats of 5 folds (a check that the test can fail)
    grouped = labelled_images(ds, "cv")
    grouped.groups = np.arange(len(grouped))
    folds = repeated_folds(grouped, cv=5, repeats=3)
    index = {p: i for i, p in enumerate(ds.paths)}
    split = [any((index[a] in f.test) != (index[b] in f.test) for f in folds) for a, b in copies]
    assert any(split)


@pytest.mark.slow
def test_unreadable_photos_are_reported_and_left_out(sample_dir, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    table = tmp_path / "tags.tsv"
    rows = (sample_dir / "tags.tsv").read_text().splitlines()
    lines = [f"{sample_dir / p}\t{label}" for p, label in (r.split("\t") for r in rows if r.strip())]
    table.write_text("\n".join([*lines, f"{broken}\tbird"]) + "\n")
    with pytest.warns(UserWarning, match="could not be read"):
        found = cross_validate(FeatureClassifier(verbose=False), table, cv=3)
    assert found.n_images == 104 and str(broken) not in found.paths
    assert [p for p, _ in found.skipped] == [str(broken)]


class _Majority:
    """A classifier that is not a FeatureClassifier: the generic path clones and refits it per fold."""

    fits: list[int] = []  # training-set sizes, across clones

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self

    def fit(self, source):
        labels = source.labels
        self.classes_ = sorted(set(labels))
        self.top_ = max(self.classes_, key=labels.count)
        type(self).fits.append(len(labels))
        return self

    def predict_proba(self, source):
        out = np.full((len(source), len(self.classes_)), 0.0)
        out[:, self.classes_.index(self.top_)] = 1.0
        return out


def test_other_classifiers_are_refitted_on_each_fold_with_a_notice(sample_dataset, capsys):
    _Majority.fits = fits = []
    found = cross_validate(_Majority(), sample_dataset, cv=4, repeats=2)
    assert "_Majority is trained from scratch 8 times" in capsys.readouterr().out
    assert len(fits) == 8 and all(70 <= n <= 80 for n in fits)  # three quarters of 104 each time
    assert found.report.accuracy == pytest.approx(35 / 104)  # always "bird", the largest class


def test_bad_parameters_are_errors_naming_them(sample_dataset):
    with pytest.raises(InvalidParameterError, match="repeats must be a positive int, got 0"):
        cross_validate(FeatureClassifier(verbose=False), sample_dataset, repeats=0)
    with pytest.raises(InvalidParameterError, match="cv must be an int >= 2"):
        cross_validate(FeatureClassifier(verbose=False), sample_dataset, cv=1)
    with pytest.raises(ValueError, match="labels are missing|unlabelled|no labels"):
        cross_validate(FeatureClassifier(verbose=False), "sample_data/bird")
