"""FeatureClassifier and FineTuneClassifier: estimator API, inputs, errors, accuracy, training behaviour."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from cvkit.classifiers import FeatureClassifier, FineTuneClassifier, cross_validate
from cvkit.data import BadImageWarning, ImageDataset, read_image

pytestmark = pytest.mark.slow


def _per_class(ds: ImageDataset, n: int) -> ImageDataset:
    """The first ``n`` images of every class."""
    idx = [i for c in range(len(ds.labels)) for i in np.flatnonzero(ds.targets == c)[:n]]
    return ds.subset(sorted(idx))


@pytest.fixture(scope="module")
def tiny(sample_split):
    """16 training and 8 validation images (4 classes): enough to exercise fine-tuning quickly."""
    train, test = sample_split
    return _per_class(train, 4), _per_class(test, 2)


@pytest.fixture(scope="module")
def finetuned(tiny, tmp_path_factory):
    import keras

    small_train, small_val = tiny

    class CountEpochs(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs = 0

        def on_epoch_end(self, epoch, logs=None):
            self.epochs += 1

    counter = CountEpochs()
    tb = tmp_path_factory.mktemp("tensorboard")
    clf = FineTuneClassifier(epochs=1, head="keras", head_epochs=3, batch_size=8, early_stopping=False,
                             callbacks=[counter],
                             tensorboard_dir=tb, verbose=0, random_state=0)
    returned = clf.fit(small_train, validation_data=small_val)
    return clf, returned, counter, tb


# ---------------------------------------------------------------------- FeatureClassifier
def test_feature_classifier_fit_returns_self_and_sets_fitted_attributes(sample_split):
    train, _ = sample_split
    clf = FeatureClassifier(verbose=False)
    assert not hasattr(clf, "classes_")  # nothing heavy or fitted in __init__
    assert clf.fit(train) is clf
    assert clf.classes_ == ["bird", "flower", "fruit", "vegetable"]
    assert clf.input_size_ == (224, 224) and clf.n_features_in_ == 1280
    assert clf.featurizer_.model_.output_shape == (None, 1280)
    assert hasattr(clf.estimator_, "coef_") and clf.estimator_.coef_.shape == (4, 1280)
    assert clf.metrics_["n_train"] == 68 and 0.01 <= clf.metrics_["C"] <= 100


def test_feature_classifier_reaches_97_percent_on_the_sample_split(fitted, sample_split):
    _, test = sample_split
    pred = fitted.predict(test)
    correct = int(np.sum(pred == np.asarray(test.image_labels, dtype=object)))
    assert correct >= 35, f"{correct}/36 test images right"
    assert fitted.score(test) == pytest.approx(correct / 36)


def test_predict_proba_shape_dtype_and_predict_labels(fitted, sample_split):
    _, test = sample_split
    proba = fitted.predict_proba(test)
    assert proba.shape == (36, 4) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    pred = fitted.predict(test)
    assert pred.dtype == object and set(pred) <= set(fitted.classes_)
    assert list(pred) == [fitted.classes_[i] for i in proba.argmax(axis=1)]


def test_paths_arrays_and_datasets_give_the_same_probabilities(fitted, sample_split):
    _, test = sample_split
    paths = test.paths[:5]
    by_dataset = fitted.predict_proba(test.subset(range(5)))
    by_paths = fitted.predict_proba(paths)
    pixels = np.stack([read_image(p, size=224) for p in paths])
    by_array = fitted.predict_proba(pixels)
    np.testing.assert_allclose(by_paths, by_dataset, atol=1e-6)
    np.testing.assert_allclose(by_array, by_paths, atol=1e-5)
    # arrays of another size are resized, not refused
    other = np.stack([read_image(p, size=(160, 120)) for p in paths])
    assert list(fitted.predict(other)) == list(fitted.predict(paths))


def test_unreadable_images_give_nan_rows_none_labels_and_one_warning(fitted, sample_split, tmp_path):
    _, test = sample_split
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    paths = [test.paths[0], str(bad), str(tmp_path / "missing.jpg"), test.paths[1]]
    with pytest.warns(BadImageWarning) as record:
        proba = fitted.predict_proba(paths)
    assert len([w for w in record if issubclass(w.category, BadImageWarning)]) == 1
    assert "broken.jpg" in str(record[0].message) and "missing.jpg" in str(record[0].message)
    assert np.isnan(proba[1]).all() and np.isnan(proba[2]).all() and np.isfinite(proba[[0, 3]]).all()
    with pytest.warns(BadImageWarning):
        pred = fitted.predict(paths)
    assert pred[1] is None and pred[2] is None and pred[0] in fitted.classes_


def test_methods_before_fit_raise_not_fitted(tmp_path, sample_split):
    from sklearn.exceptions import NotFittedError
    _, test = sample_split
    for clf in (FeatureClassifier(), FineTuneClassifier()):
        for call in (lambda c=clf: c.predict(test), lambda c=clf: c.predict_proba(test),
                     lambda c=clf: c.score(test), lambda c=clf: c.save(tmp_path / "m")):
            with pytest.raises(NotFittedError, match="not fitted"):
                call()
    assert not (tmp_path / "m").exists()


def test_score_refuses_labels_never_seen_in_training(fitted, sample_split):
    _, test = sample_split
    with pytest.raises(ValueError, match="'cat'"):
        fitted.score(test.paths[:3], ["bird", "cat", "fruit"])
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        fitted.score(test.paths[:3], ["bird", "fruit"])


def test_fit_input_errors(sample_split, sample_dir):
    train, _ = sample_split
    unlabelled = ImageDataset(train.paths[:4])
    with pytest.raises(ValueError, match="unlabelled"):
        FeatureClassifier().fit(unlabelled)
    with pytest.raises(ValueError, match="labels are missing"):
        FeatureClassifier().fit(train.paths[:4])
    with pytest.raises(ValueError, match="at least 2 classes"):
        FeatureClassifier(verbose=False).fit(train.paths[:3], ["bird"] * 3)
    # a folder is an input of its own now (ImageSource): 35 photos cannot take one label
    with pytest.raises(ValueError, match="35 images but 1 labels"):
        FeatureClassifier().fit(str(sample_dir / "bird"), ["bird"])
    with pytest.raises(ValueError, match="fit: labels are missing"):  # a folder of photos, no class folders
        FeatureClassifier().fit(str(sample_dir / "bird"))
    with pytest.raises(TypeError, match="scikit-learn classifier"):  # "svm" is a named head now
        FeatureClassifier(head="forest", verbose=False).fit(train)


def test_fit_with_paths_and_y_equals_fit_with_the_dataset(fitted, sample_split):
    train, test = sample_split
    clf = FeatureClassifier(verbose=False).fit(train.paths, train.image_labels)
    assert clf.classes_ == fitted.classes_
    np.testing.assert_allclose(clf.predict_proba(test), fitted.predict_proba(test), atol=1e-6)


def test_any_sklearn_classifier_and_calibration_for_one_without_proba(sample_split):
    from sklearn.svm import LinearSVC
    train, test = sample_split
    svm = LinearSVC(class_weight="balanced")
    clf = FeatureClassifier(head=svm, verbose=False).fit(train)
    assert not hasattr(svm, "coef_")  # the user's estimator is cloned, never fitted in place
    assert type(clf.estimator_).__name__ == "CalibratedClassifierCV"
    proba = clf.predict_proba(test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert clf.score(test) >= 0.85


def test_sklearn_clone_and_params(fitted):
    from sklearn.base import clone
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params() and not hasattr(copy, "classes_")
    clf = FeatureClassifier().set_params(cv=3, backbone="efficientnet_lite0")
    assert clf.cv == 3


def test_cross_validate_feature_classifier_is_deprecated_and_still_works(sample_dataset):
    with pytest.warns(FutureWarning, match=r"use cvkit\.cross_validate"):
        result = cross_validate(FeatureClassifier(verbose=False), sample_dataset, cv=5)
    assert result["n_splits"] == 5 and len(result["scores"]) == 5 and result["n_images"] == 104
    assert 0.85 <= result["mean"] <= 1.0
    assert result["mean"] == pytest.approx(np.mean(result["scores"]))


def _fitted_state_ends_in_underscore(clf) -> None:
    params = set(clf.get_params(deep=False))
    state = set(vars(clf)) - params
    assert state and all(name.endswith("_") for name in state), sorted(state)


def test_feature_classifier_follows_the_estimator_contract(fitted, sample_split):
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    head = object()  # __init__ stores parameters untouched, even nonsense (fit would refuse it)
    odd = FeatureClassifier(backbone="EfficientNet-Lite0", head=head, batch_size="x", cv=-1)
    assert odd.head is head and odd.batch_size == "x" and odd.cv == -1 and odd.backbone == "EfficientNet-Lite0"
    with pytest.raises(NotFittedError):
        check_is_fitted(FeatureClassifier())
    check_is_fitted(fitted)
    _fitted_state_ends_in_underscore(fitted)
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)
    # fit changes no parameter, nor does predicting change one of its fitted featurizer
    train, test = sample_split
    clf = FeatureClassifier(verbose=True)
    before = clf.get_params()
    assert clf.fit(train) is clf and clf.get_params() == before
    featurizer_params = clf.featurizer_.get_params()
    clf.predict(test.paths[:4])
    assert clf.featurizer_.get_params() == featurizer_params and clf.get_params() == before


def test_feature_classifier_resolves_the_backbone_once_and_saves_its_canonical_name(sample_split, tmp_path):
    import json

    from cvkit.backbones import BackboneInfo
    train, _ = sample_split
    clf = FeatureClassifier(backbone="EfficientNet-Lite0", verbose=False).fit(train)
    assert clf.backbone == "EfficientNet-Lite0"  # the parameter, untouched
    assert clf.backbone_ == "efficientnet_lite0" and isinstance(clf.backbone_info_, BackboneInfo)
    assert clf.backbone_info_.name == "efficientnet_lite0" and clf.input_size_ == (224, 224)
    clf.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "metadata.json").read_text())
    assert meta["backbone"] == "efficientnet_lite0" and meta["input_size"] == [224, 224]


def test_feature_classifier_parameter_errors_name_the_parameter(sample_split):
    train, _ = sample_split
    for params, name in (({"cv": 1}, "cv"), ({"batch_size": 0}, "batch_size"), ({"batch_size": 2.5}, "batch_size"),
                         ({"verbose": "loud"}, "verbose"), ({"backbone": 3}, "backbone"),
                         ({"head": "forest"}, "head")):
        with pytest.raises((ValueError, TypeError), match=name):
            FeatureClassifier(**params).fit(train)


def test_old_parameter_names_still_work_with_a_future_warning(fitted, sample_split):
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression

    train, test = sample_split
    old = FeatureClassifier(progress=False, estimator=LogisticRegression(max_iter=1000))
    assert clone(old).get_params()["progress"] is False  # get_params and clone keep the old names
    with pytest.warns(FutureWarning) as record:
        old.fit(train)
    messages = " ".join(str(w.message) for w in record if issubclass(w.category, FutureWarning))
    assert "'progress' was renamed 'verbose'" in messages and "'estimator' was renamed 'head'" in messages
    assert isinstance(old.estimator_, LogisticRegression) and old.score(test) >= 0.85
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the new names never warn
        FeatureClassifier(verbose=False).fit(train)
    with pytest.raises(ValueError, match="head= only"):
        FeatureClassifier(verbose=False, head=LogisticRegression(), estimator=LogisticRegression()).fit(train)


def test_make_classifier_uses_the_same_names(recwarn):
    from cvkit.classifiers import make_classifier
    assert make_classifier("features", verbose=False).verbose is False
    assert make_classifier("finetune", verbose=False).verbose == 0
    assert make_classifier("finetune").verbose == "auto"
    with pytest.warns(FutureWarning, match="'progress' was renamed 'verbose'"):
        assert make_classifier("features", progress=False).verbose is False
    both = (FeatureClassifier(), FineTuneClassifier())
    for name in ("backbone", "head", "verbose", "cache", "cache_dir", "batch_size", "random_state"):
        assert all(name in clf.get_params() for clf in both), name


# ---------------------------------------------------------------------- FineTuneClassifier
def test_finetune_fit_returns_self_with_history_and_attributes(finetuned):
    clf, returned, _, _ = finetuned
    assert returned is clf
    assert clf.classes_ == ["bird", "flower", "fruit", "vegetable"]
    assert clf.input_size_ == (224, 224)
    assert clf.model_.input_shape == (None, 224, 224, 3) and clf.model_.output_shape == (None, 4)
    h = clf.history_
    assert h["phase"] == ["head"] * 3 + ["fine_tune"]
    assert h["epoch"] == [1, 2, 3, 4]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert len(h[key]) == 4 and np.isfinite(h[key]).all()
    assert clf.metrics_["n_train"] == 16 and clf.metrics_["n_validation"] == 8
    assert clf.metrics_["epochs_run"] == {"head": 3, "fine_tune": 1}


@pytest.mark.filterwarnings("ignore:Skipping variable loading")  # clone deep-copies the user's fitted callback
def test_finetune_follows_the_estimator_contract(finetuned, tmp_path):
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    clf = finetuned[0]
    odd = FineTuneClassifier(epochs="many", dropout=7, cache_dir=tmp_path)
    assert odd.epochs == "many" and odd.dropout == 7 and odd.cache_dir == tmp_path
    with pytest.raises(NotFittedError):
        check_is_fitted(FineTuneClassifier())
    check_is_fitted(clf)
    _fitted_state_ends_in_underscore(clf)
    # fit changed no parameter: they are still those the fixture passed
    params = clf.get_params()
    assert (params["epochs"], params["head"], params["head_epochs"], params["batch_size"]) == (1, "keras", 3, 8)
    assert params["early_stopping"] is False and params["verbose"] == 0 and len(params["callbacks"]) == 1
    assert clf.backbone_ == "efficientnet_lite0" and clf.backbone_info_.input_size == 224
    copy = clone(clf)
    assert copy.get_params().keys() == params.keys() and copy.epochs == 1 and copy.batch_size == 8
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)


def test_finetune_uses_callbacks_and_writes_tensorboard_logs(finetuned):
    _, _, counter, tb = finetuned
    assert counter.epochs == 4  # the user's callback ran in both phases
    clf = finetuned[0]
    for phase, epochs in (("head", [0, 1, 2]), ("fine_tune", [3])):
        files = list((tb / phase).glob("events.out.tfevents*"))
        assert len(files) == 1
        scalars = _read_scalars(files[0])
        assert sorted(scalars["epoch_loss"]) == epochs
        rows = [i for i, p in enumerate(clf.history_["phase"]) if p == phase]
        np.testing.assert_allclose([scalars["epoch_val_loss"][e] for e in epochs],
                                   [clf.history_["val_loss"][i] for i in rows], rtol=1e-6)


def _read_scalars(path) -> dict[str, dict[int, float]]:
    """Read back an event file: {tag: {step: value}}."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    out: dict[str, dict[int, float]] = {}
    for record in tf.data.TFRecordDataset(str(path)):
        event = event_pb2.Event.FromString(record.numpy())
        for value in event.summary.value:
            out.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
    return out


def test_finetune_predicts_and_keeps_batchnorm_frozen(finetuned, tiny):
    clf, _, _, _ = finetuned
    _, val = tiny
    proba = clf.predict_proba(val)
    assert proba.shape == (8, 4) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    backbone = next(layer for layer in clf.model_.layers if hasattr(layer, "layers"))
    bns = [layer for layer in backbone.layers if type(layer).__name__ == "BatchNormalization"]
    assert bns and not any(layer.trainable for layer in bns)


def test_finetune_plot_history_returns_figure(finetuned):
    from matplotlib.figure import Figure
    clf, _, _, _ = finetuned
    fig = clf.plot_history()
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [line.get_label() for line in fig.axes[0].lines][:2] == ["training", "validation"]
    assert len(fig.axes[0].lines[0].get_xdata()) == 4


def test_finetune_head_phase_is_deterministic_given_random_state(tiny):
    small_train, small_val = tiny
    runs = [FineTuneClassifier(epochs=0, head="keras", head_epochs=4, batch_size=8, verbose=0, random_state=3)
            .fit(small_train, validation_data=small_val) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].history_["loss"], runs[1].history_["loss"])
    np.testing.assert_allclose(runs[0].predict_proba(small_val), runs[1].predict_proba(small_val), atol=1e-6)


def test_finetune_early_stopping_restores_the_best_weights(tiny):
    import keras

    small_train, small_val = tiny

    class Snapshots(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.weights = []

        def on_epoch_end(self, epoch, logs=None):
            self.weights.append([w.copy() for w in self.model.get_layer("classifier").get_weights()])

    snaps = Snapshots()
    # a learning rate far too high makes the validation loss jump around, so stopping triggers
    clf = FineTuneClassifier(epochs=0, head="keras", head_epochs=40, learning_rate=5.0, patience=2, batch_size=8,
                             verbose=0, calibration=None,  # calibrating would divide the restored weights
                             callbacks=[snaps], random_state=0).fit(small_train, validation_data=small_val)
    run = clf.metrics_["epochs_run"]["head"]
    assert run < 40 and len(snaps.weights) == run
    best = int(np.argmin(clf.history_["val_loss"]))
    assert best < run - 1  # the last epoch was not the best one ...
    final = clf.model_.get_layer("classifier").get_weights()
    for got, expected in zip(final, snaps.weights[best]):  # ... yet the model holds the best epoch's weights
        np.testing.assert_array_equal(got, expected)
    assert not np.array_equal(final[0], snaps.weights[-1][0])


@pytest.mark.filterwarnings("ignore:FineTuneClassifier. no validation split")
def test_finetune_parameter_errors_name_the_parameter(tiny):
    small_train, _ = tiny
    for params, name in (({"epochs": -1}, "epochs"), ({"verbose": 5}, "verbose"),
                         ({"validation_fraction": 1.5}, "validation_fraction"),
                         ({"batch_size": 0}, "batch_size"), ({"learning_rate": 0}, "learning_rate"),
                         ({"fine_tune_learning_rate": -1e-4}, "fine_tune_learning_rate"),
                         ({"dropout": 1.0}, "dropout"), ({"patience": -2}, "patience"),
                         ({"head_epochs": 2.5}, "head_epochs"), ({"backbone": None}, "backbone"),
                         ({"class_weight": {"cat": 2.0}, "epochs": 0, "head_epochs": 1}, "cat"),
                         ({"augment": 3}, "augment"), ({"head": "svm"}, "head")):
        with pytest.raises((ValueError, TypeError), match=name):
            FineTuneClassifier(verbose=0, **params).fit(small_train)


def test_default_head_is_the_cross_validated_linear_probe(tiny):
    small_train, small_val = tiny
    probe = FeatureClassifier(verbose=False, calibration=None).fit(small_train)  # no validation images: no calibration
    clf = FineTuneClassifier(epochs=0, validation_fraction=0, verbose=0).fit(small_train)
    assert clf.history_["phase"] == ["head"] and clf.metrics_["epochs_run"] == {"head": 1, "fine_tune": 0}
    assert clf.history_["accuracy"][0] == pytest.approx(probe.metrics_["train_accuracy"])
    # same features, same cross-validated logistic regression, now inside the Keras graph
    np.testing.assert_allclose(clf.predict_proba(small_val), probe.predict_proba(small_val), atol=1e-5)


def test_finetune_validation_fraction_holds_out_a_stratified_part(tiny):
    small_train, _ = tiny
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clf = FineTuneClassifier(epochs=0, head_epochs=2, validation_fraction=0.25, verbose=0).fit(small_train)
    assert clf.metrics_["n_validation"] == 4 and clf.metrics_["n_train"] == 12
    assert np.isfinite(clf.history_["val_loss"]).all()


def test_augmented_batches_repeat_for_a_seed_and_differ_across_epochs():
    from cvkit.classifiers._finetune import augmented_batches
    from cvkit.data.augment import default_pipeline, seeded

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)
    targets = np.arange(6) % 2
    weights = np.ones(6, np.float32)

    def batches(seed):
        seq = augmented_batches(pixels, targets, weights, 4, seeded(default_pipeline(), seed), seed)
        first = [seq[i] for i in range(len(seq))]
        seq.on_epoch_end()
        second = [seq[i] for i in range(len(seq))]
        return first, second

    a1, a2 = batches(5)
    b1, _ = batches(5)
    c1, _ = batches(6)
    assert len(a1) == 2 and a1[0][0].shape == (4, 32, 32, 3) and a1[1][0].shape == (2, 32, 32, 3)
    assert all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(a1, b1))
    assert not np.array_equal(a1[0][0], a2[0][0])
    assert not np.array_equal(a1[0][0], c1[0][0])
    assert sorted(np.concatenate([b[1] for b in a1]).tolist()) == sorted(targets.tolist())
