"""``FeatureClassifier``: a pretrained backbone turns images into features, scikit-learn learns on them.

The fast, strong baseline for small datasets (cvtk's "DNN featurization", ML.NET's image
classification tutorial): nothing in the network is trained, so a fit takes seconds and cannot
overfit the backbone. Features are cached on disk by image content, so refitting with another
head or another split costs almost nothing.

Example:
    >>> import cvkit
    >>> from sklearn.svm import LinearSVC
    >>> train, test = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
    >>> svm = FeatureClassifier(head=LinearSVC(class_weight="balanced"), verbose=False).fit(train)
    >>> type(svm.estimator_).__name__, svm.score(test) > 0.9   # no predict_proba: calibrated
    ('CalibratedClassifierCV', True)
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import clone

from cvkit._validation import DEPRECATED, Custom, Interval, Options, param_value, renamed_param
from cvkit.classifiers._base import (
    BACKBONE,
    CACHE_DIR,
    CLASS_WEIGHT,
    RANDOM_STATE,
    VERBOSE,
    ImageClassifier,
    former_name,
)
from cvkit.classifiers._calibrate import CALIBRATIONS, fixed_head, temperature_from_folds
from cvkit.classifiers._heads import class_weights, fit_head, resolve_class_weight, with_probabilities
from cvkit.classifiers._inputs import image_source, labelled_source, size_wh
from cvkit.classifiers._selection import HEADS, ChosenHead, choose_head, named_head
from cvkit.data import BadImageWarning
from cvkit.data._inputs import encode_labels, warn_unreadable
from cvkit.models._decision import DecisionRule
from cvkit.models._head import LinearHead, ScoresAsLogits
from cvkit.models._novelty import METHODS as NOVELTY_METHODS
from cvkit.models._novelty import fit_novelty
from cvkit.models._predictor import answer_outputs
from cvkit.options import RUNTIMES, resolve_runtime

__all__ = ["FeatureClassifier", "featurize", "HEAD"]

# Backbones built in this process, by canonical name: building one (and converting its ImageNet
# weights) takes seconds, and a FeatureClassifier never changes its backbone, so refits share it.
_BACKBONES: dict[str, Any] = {}


def _shared_backbone(name: str, size: tuple[int, int]) -> Any:
    from cvkit import backbones
    if name not in _BACKBONES:
        width, height = size
        _BACKBONES[name] = backbones.get(name, input_shape=(height, width, 3))
    return _BACKBONES[name]


def featurize(featurizer: Any, X: Any, what: str, verbose: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(features, ok)`` of images ``X`` from a fitted featurizer, with one warning naming unreadable images.

    ``X`` is a list of images (paths, arrays) or a dataset. The featurizer's own warning is
    replaced by cvkit's "could not be read" warning for ``what`` (``"fit"``, ``"predict_proba"``...).
    ``verbose`` shows a progress bar for this call only.

    Example:
        >>> fz = FeatureClassifier(verbose=False).make_featurizer()
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     feats, ok = featurize(fz, ["sample_data/bird/owl.jpg", "missing.jpg"], "transform", verbose=False)
        >>> feats.shape, ok.tolist(), "missing.jpg" in str(caught[-1].message)
        ((2, 1280), [True, False], True)
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=BadImageWarning, message="ImageFeaturizer")
        feats, ok = featurizer.transform(X, return_mask=True, verbose=bool(verbose))
    warn_unreadable(featurizer.skipped_, len(ok), what, stacklevel=4)
    return feats, ok


def _is_classifier(value: Any) -> bool:
    return not isinstance(value, str) and hasattr(value, "fit") and hasattr(value, "get_params")


#: The constraints of ``head``: chosen by the data, a named linear head, or a scikit-learn classifier of your own.
HEAD = [Options(list(HEADS)), Custom(_is_classifier, "a scikit-learn classifier"), None]


class FeatureClassifier(ImageClassifier):
    """Backbone features + a scikit-learn classifier.

    Parameters
    ----------
    backbone : backbone name (see :func:`cvkit.backbones.available`), any case or dash variant;
        ``"efficientnet_lite0"`` works offline.
    head : the classifier fitted on the features. ``"auto"`` (default): ``"logistic"`` or ``"svm"``,
        whichever gives the higher balanced accuracy on the training photos out of fold (log-loss
        for ties; see :mod:`cvkit.classifiers._selection`); ``head_`` and ``selection_`` say which and
        why. ``"logistic"`` (``None`` too): multinomial logistic regression with ``C`` chosen by
        stratified cross-validation (:func:`cvkit.classifiers._heads.default_estimator`), the same
        linear probe as :class:`FineTuneClassifier`'s default head. ``"svm"``: a linear SVM
        (``C=0.01``) on standardised features, its scores read as logits; it holds small classes
        best. Both are saved as arrays. Or any scikit-learn classifier (a clone is fitted;
        yours is untouched); one without ``predict_proba`` (e.g. ``LinearSVC(class_weight="balanced")``)
        gets sigmoid-calibrated probabilities.
    cache : keep features on disk keyed by image content (see :class:`cvkit.features._featurizer.ImageFeaturizer`).
    cache_dir : cache folder; default ``$CVKIT_CACHE_DIR`` or ``~/.cache/cvkit``.
    batch_size : images per backbone forward pass.
    verbose : progress bars while featurizing for ``fit`` (and for predictions on 200+ images);
        ``False``/0 for none.
    cv : folds for the default head's choice of regularisation.
    random_state : seed for the cross-validation folds and calibration.
    class_weight : ``"auto"`` (default: ``"balanced"`` when the largest class has more than 3 times the
        photos of the smallest, the line :func:`cvkit.data.check_class_balance` draws, else None;
        ``metrics_["class_weight"]`` says what it became), None (every image counts the same),
        ``"balanced"`` (every *class* counts the same:
        images of a class weigh ``n_images / (n_classes * n_images_of_class)``), or
        ``{class name: weight}``. Use ``"balanced"`` when classes differ a lot in size (see
        :func:`cvkit.data.check_class_balance`). The weights reach the head's fit and, for the default
        head, the cross-validation that picks ``C`` (see :func:`cvkit.classifiers._heads.fit_head`);
        a head of your own gets them as its ``class_weight`` (leave that unset on it).
    runtime : what runs the backbone: ``"auto"`` (LiteRT when ``ai-edge-litert`` is installed, else
        Keras), ``"litert"`` or ``"keras"`` (see :class:`~cvkit.features._featurizer.ImageFeaturizer`).
        The saved model folder holds both, whichever trained it.
    calibration : how the probabilities are made honest: ``"temperature"`` (default: the head's logits
        divided by one number fitted on out-of-fold predictions of the training photos, see
        :mod:`cvkit.classifiers._calibrate`; answers and accuracy unchanged, and on the default head it
        is part of the saved graph, so every runtime and export gives the same probabilities),
        ``"sigmoid"`` or ``"isotonic"`` (scikit-learn's ``CalibratedClassifierCV`` around the head,
        with ``cv`` folds; the head is then saved as ``head.skops``), or None.
    novelty_method : how far an image lies from the training photos, the score behind the ``"unknown"``
        answer (:meth:`novelty`, :meth:`set_unknown_threshold`): ``"mahalanobis"`` (default: distance
        to the nearest class mean of the normalised features, one shared covariance), ``"knn"``
        (cosine distance to the 5th nearest training photo), ``"combined"``, or None (no scorer). Its
        arrays are saved in the model folder (``novelty.npz``); the model answers ``"unknown"`` only
        once a cut is set (:meth:`set_unknown_threshold`).
    estimator, progress : deprecated former names of ``head`` and ``verbose`` (a ``FutureWarning``).

    Attributes
    ----------
    classes_ : class names (sorted), the columns of :meth:`predict_proba`.
    backbone_ : the backbone's canonical name (``"EfficientNet-Lite0"`` -> ``"efficientnet_lite0"``).
    backbone_info_ : its :class:`cvkit.backbones.BackboneInfo`.
    featurizer_ : the fitted :class:`~cvkit.features._featurizer.ImageFeaturizer`.
    estimator_ : the fitted scikit-learn head (predicts class *indices* into ``classes_``).
    head_ : which head that is: ``"logistic"``, ``"svm"`` or the class name of a head of your own.
    selection_ : how ``head="auto"`` chose (``{"chosen", "by", "scores": {head: {"balanced_accuracy",
        "log_loss"}}}``, out of fold); for a named head, just ``{"chosen", "by": "given"}``.
    input_size_ : ``(width, height)`` images are resized to.
    n_features_in_ : feature width.
    metrics_ : training facts written to the model folder (training accuracy, chosen ``C``, ...).
    skipped_ : ``(path, reason)`` for training images that could not be read (left out of fit).
    temperature_ : the calibration temperature (1.0: none); ``metrics_["calibration"]`` says how it
        was found and the out-of-fold ECE and log-loss before and after.
    check_features_ : a few training feature rows, to verify the head's arrays on saving.
    novelty_ : the fitted :class:`~cvkit.models._novelty.NoveltyScorer` (None with ``novelty_method=None``),
        holding the training photos' out-of-fold scores (``novelty_.train_scores_``) cuts are read from.

    Example:
        >>> clf = FeatureClassifier(backbone="EfficientNet-Lite0", verbose=False).fit("sample_data")
        >>> clf.backbone, clf.backbone_, clf.input_size_      # the parameter is kept as given
        ('EfficientNet-Lite0', 'efficientnet_lite0', (224, 224))
        >>> clf.predict(["sample_data/bird/owl.jpg", "sample_data/fruit/apple_fuji.jpg"]).tolist()
        ['bird', 'fruit']
    """

    _method = "features"
    _parameter_constraints = {
        "backbone": BACKBONE, "head": HEAD, "cache": ["boolean"], "cache_dir": CACHE_DIR,
        "batch_size": [Interval(int, 1, None)], "verbose": VERBOSE, "cv": [Interval(int, 2, None)],
        "random_state": RANDOM_STATE, "class_weight": CLASS_WEIGHT, "runtime": [Options(RUNTIMES)],
        "calibration": [Options(list(CALIBRATIONS)), None], "novelty_method": [Options(list(NOVELTY_METHODS)), None],
        "estimator": former_name(HEAD), "progress": former_name(VERBOSE),
    }

    def __init__(self, backbone: str = "efficientnet_lite0", head: Any = "auto", cache: bool = True,
                 cache_dir: str | os.PathLike | None = None, batch_size: int = 32, verbose: bool | int = True,
                 cv: int = 5, random_state: int | None = 0, class_weight: str | dict | None = "auto",
                 runtime: str = "auto", calibration: str | None = "temperature",
                 novelty_method: str | None = "mahalanobis", *, estimator: Any = DEPRECATED,
                 progress: Any = DEPRECATED):
        self.backbone = backbone
        self.head = head
        self.cache = cache
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.verbose = verbose
        self.cv = cv
        self.random_state = random_state
        self.class_weight = class_weight
        self.runtime = runtime
        self.calibration = calibration
        self.novelty_method = novelty_method
        self.estimator = estimator
        self.progress = progress

    # ------------------------------------------------------------------ parameters
    def _checked_params(self) -> tuple[Any, bool]:
        """``(head, verbose)`` after checking every parameter (errors name it) and honouring old names."""
        self._validate_params()
        head = renamed_param(self, "estimator", "head", default="auto")
        verbose = renamed_param(self, "progress", "verbose", default=True)
        resolve_runtime(self.runtime)  # "litert" without LiteRT installed: an ImportError saying what to install
        return head, bool(verbose)

    # ------------------------------------------------------------------ building blocks
    def make_featurizer(self, verbose: bool | None = None) -> Any:
        """A fitted :class:`~cvkit.features._featurizer.ImageFeaturizer` for this classifier's backbone.

        Used by :meth:`fit` and by :func:`cvkit.cross_validate` (which featurizes once
        for all folds). On LiteRT it is given the backbone's name, so once its converted graph is
        cached, featurizing never imports TensorFlow; on Keras the backbone is built once per process
        and shared.

        Example:
            >>> FeatureClassifier(verbose=False).make_featurizer().n_features_out_
            1280
        """
        from cvkit import backbones
        from cvkit.features._featurizer import ImageFeaturizer

        spec = backbones.info(self.backbone)
        runtime = resolve_runtime(self.runtime)
        backbone = spec.name if runtime == "litert" else _shared_backbone(spec.name, size_wh(spec.input_size))
        show = bool(param_value(self, "progress", "verbose") if verbose is None else verbose)
        return ImageFeaturizer(backbone=backbone, cache=self.cache, cache_dir=self.cache_dir,
                               batch_size=self.batch_size, runtime=runtime, verbose=show).fit()

    def make_head(self, targets: np.ndarray, name: str | None = None) -> Any:
        """An unfitted head for class indices ``targets``: the named head ``name`` (default: this
        classifier's ``head``; ``"auto"`` makes its first candidate, the logistic one, since the choice
        needs the features: :meth:`fit_calibrated_head`), or a clone of a head of your own.

        Example:
            >>> FeatureClassifier(cv=3).make_head(np.array([0, 0, 0, 1, 1, 1]))  # doctest: +ELLIPSIS
            LogisticRegressionCV(...)
        """
        head = param_value(self, "estimator", "head") if name is None else name
        min_count = int(np.bincount(targets).min())
        if head is None or isinstance(head, str):
            made = named_head("logistic" if head in (None, "auto") else head, min_count, self.cv, self.random_state)
        else:
            made = clone(head)
        if self.calibration in ("sigmoid", "isotonic") and min(self.cv, min_count) >= 2:
            from sklearn.calibration import CalibratedClassifierCV
            from sklearn.model_selection import StratifiedKFold
            folds = StratifiedKFold(min(self.cv, min_count), shuffle=True, random_state=self.random_state)
            return CalibratedClassifierCV(made, method=self.calibration, cv=folds)
        return with_probabilities(made, min_count, random_state=self.random_state)

    def fit_head(self, features: np.ndarray, targets: np.ndarray, classes: list[str]) -> Any:
        """A new head fitted on ``features`` and class indices ``targets``, weighted by ``class_weight``
        (for ``head="auto"``, the one :meth:`fit_calibrated_head` chooses).

        Example:
            >>> F = np.array([[0.0], [0.1], [0.2], [0.3], [1.0], [1.1]])
            >>> head = FeatureClassifier(class_weight="balanced", cv=2).fit_head(F, np.array([0, 0, 0, 0, 1, 1]),
            ...                                                                   ["big", "small"])
            >>> head.predict(np.array([[0.05], [1.05]])).tolist()
            [0, 1]
        """
        return self.fit_calibrated_head(features, targets, classes, calibrate=False).head

    def fit_calibrated_head(self, features: np.ndarray, targets: np.ndarray, classes: list[str],
                            calibrate: bool = True) -> ChosenHead:
        """The head (chosen, for ``head="auto"``), fitted and calibrated as :meth:`fit` does it: one
        call for ``fit`` and for every fold of :func:`cvkit.cross_validate`. ``calibrate=False`` skips
        the temperature where it would cost extra fits (the answers are the same).

        Example:
            >>> rng = np.random.default_rng(0)
            >>> F, y = np.vstack([rng.normal(c, 1.0, (20, 3)) for c in range(2)]), np.repeat([0, 1], 20)
            >>> chosen = FeatureClassifier(cv=3).fit_calibrated_head(F, y, ["a", "b"])
            >>> chosen.name in ("logistic", "svm"), chosen.calibration["method"]
            (True, 'temperature')
        """
        weights = class_weights(self.class_weight, targets, classes)
        head = param_value(self, "estimator", "head")
        if head == "auto" and self.calibration in ("temperature", None):
            chosen = choose_head(features, targets, weights, cv=self.cv, random_state=self.random_state)
            if self.calibration is None:
                chosen.calibration = {"method": None}
            return chosen
        if head == "auto":  # sigmoid/isotonic wrap the winner: choose on the plain heads, then wrap
            name = choose_head(features, targets, weights, cv=self.cv, random_state=self.random_state).name
            estimator = fit_head(self.make_head(targets, name), features, targets, weights)
            selection = {"chosen": name, "by": "balanced accuracy out of fold"}
        else:
            estimator = fit_head(self.make_head(targets), features, targets, weights)
            name = head if isinstance(head, str) else "logistic" if head is None else type(head).__name__
            selection = {"chosen": name, "by": "given"}
        calibration = self.calibrate_head(estimator, features, targets, classes) if calibrate else \
            {"method": self.calibration, "note": "not calibrated"}
        return ChosenHead(name, estimator, calibration, selection)

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Sequence[str] | None = None) -> FeatureClassifier:
        """Featurize the training images and fit the head; returns ``self``.

        ``X`` is any labelled input of :meth:`cvkit.ImageSource.resolve`: a labelled
        :class:`~cvkit.data.ImageDataset`, a folder of class folders, a ``path,label`` table, a split
        manifest (its train side), or image paths / a uint8 array with ``y`` (one class name per
        image). Unreadable images are reported and left out.

        Example:
            >>> fitted = FeatureClassifier(verbose=False).fit("sample_data/tags.tsv")   # path<TAB>label rows
            >>> fitted.classes_, fitted.metrics_["n_train"]
            (['bird', 'flower', 'fruit', 'vegetable'], 104)
        """
        from cvkit import backbones

        _, verbose = self._checked_params()
        spec = backbones.info(self.backbone)
        source = labelled_source(X, y, what="fit", side="train")
        featurizer = self.make_featurizer(verbose=verbose)
        feats, ok = featurize(featurizer, source.items, "fit", verbose=verbose)
        classes, target = encode_labels([lab for lab, good in zip(source.labels, ok) if good])
        F = feats[ok]
        chosen = self.fit_calibrated_head(F, target, classes)
        estimator, calibration = chosen.head, chosen.calibration

        self.backbone_ = spec.name
        self.backbone_info_ = spec
        self.featurizer_ = featurizer
        self.estimator_ = estimator
        self.head_ = chosen.name
        self.selection_ = chosen.selection
        self.classes_ = classes
        self.input_size_ = size_wh(spec.input_size)
        self.n_features_in_ = int(F.shape[1])
        self.skipped_ = list(featurizer.skipped_)
        self.metrics_ = self._training_metrics(estimator, F, target, classes)
        self.metrics_["head"] = chosen.selection
        self.metrics_["class_weight"] = resolve_class_weight(self.class_weight, target)
        weights = class_weights(self.class_weight, target, classes)
        if weights is not None:
            self.metrics_["class_weights"] = {c: round(weights[i], 4) for i, c in enumerate(classes)}
        self.metrics_["calibration"] = calibration
        self.temperature_ = float(calibration.get("temperature", 1.0))
        self.check_features_ = F[: min(len(F), 64)]
        self.novelty_ = None if self.novelty_method is None else \
            fit_novelty(self.novelty_method, F, target, folds=self.cv, random_state=self.random_state or 0)
        self.decision_rule_ = DecisionRule()  # a new fit answers by arg-max until set_thresholds
        return self

    def calibrate_head(self, estimator: Any, F: np.ndarray, target: np.ndarray, classes: list[str]) -> dict[str, Any]:
        """What :mod:`cvkit.classifiers._calibrate` finds for ``calibration="temperature"`` (the out-of-fold
        temperature and ECE before/after); the method alone for the others (they live in the head).
        Used by :meth:`fit` and by :func:`cvkit.cross_validate` (each fold calibrates as ``fit`` does)."""
        if self.calibration != "temperature":
            return {"method": self.calibration}
        name = "svm" if isinstance(estimator, ScoresAsLogits) else None
        maker = fixed_head(estimator, lambda: self.make_head(target, name))
        return temperature_from_folds(maker, F, target, cv=self.cv, random_state=self.random_state,
                                      weights=class_weights(self.class_weight, target, classes), fit=fit_head)

    @staticmethod
    def _training_metrics(estimator: Any, F: np.ndarray, target: np.ndarray, classes: list[str]) -> dict[str, Any]:
        train_pred = estimator.predict(F)
        metrics: dict[str, Any] = {"n_train": int(len(target)), "train_accuracy": float(np.mean(train_pred == target)),
                                   "class_counts": {c: int(n) for c, n in zip(classes, np.bincount(target))}}
        chosen_c = getattr(estimator, "C_", None)
        if chosen_c is not None:
            metrics["C"] = float(np.ravel(chosen_c)[0])
            scores = np.asarray(getattr(estimator, "scores_", []), dtype=float)
            if scores.ndim == 3 and scores.size:  # (folds, l1_ratios, Cs) of negative log-loss
                metrics["cv_log_loss"] = float(-scores.mean(axis=0).max())
        return metrics

    # ------------------------------------------------------------------ predicting
    def _features_of(self, X: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
        """``(features, ok)`` of any input; a progress bar only when it takes a while (200+ images)."""
        self._check_is_fitted()
        items = image_source(X, classes=self.classes_).items
        show = bool(param_value(self, "progress", "verbose")) and len(items) >= 200
        return featurize(self.featurizer_, items, what, verbose=show)

    def transform(self, X: Any) -> np.ndarray:
        """The backbone features of ``X`` (float32 ``(n, d)``; NaN rows for unreadable images).

        ``X`` is any input of :meth:`cvkit.ImageSource.resolve` (a folder, a table, paths, arrays...).

        Example:
            >>> clf = FeatureClassifier(verbose=False).fit("sample_data")
            >>> clf.transform("sample_data/bird").shape
            (35, 1280)
        """
        return self._features_of(X, "transform")[0]

    def _predict_proba(self, X: Any) -> np.ndarray:
        return self._predict_outputs(X)[0]

    def _predict_outputs(self, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """``(probabilities, novelty or None)`` from one featurizing of ``X``."""
        feats, ok = self._features_of(X, "predict_proba")
        return answer_outputs(feats, ok, self.estimator_, self.temperature_, self.novelty_, len(self.classes_))

    # ------------------------------------------------------------------ saving
    def _export(self) -> dict[str, Any]:
        """The backbone's Keras graph (it ends in features), the head and the novelty scorer.

        A linear head (the default) is saved as arrays (``head.npz``: weights and bias, checked
        against the fitted head on real feature rows), any other as ``head.skops``; the calibration
        temperature is applied after either, the same way in every path.
        """
        calibration = {"method": self.calibration, "temperature": self.temperature_, "in_graph": False}
        out = {"keras_model": self.featurizer_.model_, "head": self.estimator_, "backbone": self.backbone_,
               "metrics": dict(self.metrics_), "calibration": calibration, "novelty": self.novelty_}
        linear = LinearHead.from_estimator(self.estimator_, self.check_features_)
        if linear is not None:
            out.update(head=None, linear=linear)
        return out
