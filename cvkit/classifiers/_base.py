"""The base class of cvkit's trainable classifiers: scikit-learn's estimator habits plus ``save``.

``predict`` and ``predict_proba`` come from :class:`cvkit.models._predictor.PredictorMixin`,
shared with loaded model folders; ``save`` writes a model folder through :mod:`cvkit.models._folder`.
This module also holds what both classifiers declare the same way: the constraints of the
parameters they share (checked in ``fit`` by one call to :func:`cvkit._validation.validate_params`,
whose error names the parameter) and ``score`` on any input :class:`cvkit.ImageSource` resolves.

Example:
    >>> from cvkit._validation import check_param
    >>> check_param("verbose", "loud", VERBOSE)
    Traceback (most recent call last):
    ...
    cvkit._validation.InvalidParameterError: verbose must be one of 0, 1, 2, 'auto' or True or False, got 'loud'
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from sklearn.base import BaseEstimator, ClassifierMixin

from cvkit._validation import DEPRECATED, Custom, Interval, Options, validate_params
from cvkit.classifiers._heads import CLASS_WEIGHT
from cvkit.data._source import ImageSource
from cvkit.models._folder import save_model
from cvkit.models._predictor import PredictorMixin

__all__ = ["ImageClassifier", "BACKBONE", "VERBOSE", "CACHE_DIR", "RANDOM_STATE", "CLASS_WEIGHT", "former_name"]

#: A backbone given by name (:func:`cvkit.backbones.info` resolves it and says which names exist).
BACKBONE = [Custom(lambda value: isinstance(value, str), "a backbone name (see cvkit.backbones.available())")]
#: ``0``/``False`` (silent), ``1``/``True`` or ``"auto"`` (progress bars), ``2`` (a line per epoch).
VERBOSE = [Options([0, 1, 2, "auto"]), "boolean"]
#: Where the feature cache lives (None: ``$CVKIT_CACHE_DIR`` or ``~/.cache/cvkit``).
CACHE_DIR = ["path", None]
#: A seed for everything a fit draws at random, or None for a fresh one.
RANDOM_STATE = [Interval(int, 0, 2 ** 32 - 1), None]


def former_name(constraints: Sequence[Any]) -> list[Any]:
    """The constraints of a renamed parameter's old name: those of the new one, or left unset.

    Example:
        >>> from cvkit._validation import check_param
        >>> check_param("progress", DEPRECATED, former_name(VERBOSE))
        'deprecated'
    """
    return [*constraints, Options([DEPRECATED])]


class ImageClassifier(PredictorMixin, ClassifierMixin, BaseEstimator):
    """Base class of cvkit's trainable image classifiers (scikit-learn estimator conventions).

    Parameters are stored by ``__init__`` untouched and declared in ``_parameter_constraints``
    (every one of them); ``fit`` checks them with :meth:`_validate_params`, does the work and sets
    attributes ending in ``_`` (so :func:`sklearn.utils.validation.check_is_fitted` and
    :func:`sklearn.base.clone` work). Subclasses implement ``fit``, ``_predict_proba`` and
    ``_export`` (what :meth:`save` writes).

    Example:
        >>> import cvkit
        >>> constraints = cvkit.FineTuneClassifier._parameter_constraints
        >>> issubclass(cvkit.FeatureClassifier, ImageClassifier), sorted(constraints)[:3]
        (True, ['augment', 'backbone', 'batch_size'])
    """

    #: "features" or "finetune": written to the model folder's metadata.
    _method = ""
    #: parameter name -> the constraints its value may satisfy (see :mod:`cvkit._validation`).
    _parameter_constraints: dict[str, list[Any]] = {}

    def _validate_params(self) -> None:
        """Check every parameter against ``_parameter_constraints``: one error naming the first bad one."""
        validate_params(type(self).__name__, self.get_params(deep=False), self._parameter_constraints)

    def _export(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """``{"keras_model": ..., "head": estimator or None, "backbone": canonical name, "metrics": {...}}``."""
        raise NotImplementedError

    def score(self, X: Any, y: Sequence[Any] | None = None, sample_weight: Any = None) -> float:
        """Accuracy on labelled images; unreadable images are left out.

        ``X`` is any labelled input of :meth:`cvkit.ImageSource.resolve`: a labelled dataset, a folder
        of class folders, a ``path,label`` table, a split manifest (its test side), or paths / an
        image array with ``y``. A label the classifier was never trained on raises ``ValueError``
        naming it, rather than being silently counted as a mistake.

        Example:
            >>> import cvkit
            >>> train, test = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
            >>> clf = cvkit.FeatureClassifier(verbose=False).fit(train)
            >>> round(clf.score(test), 3), clf.score("sample_data/tags.tsv") > 0.95
            (0.972, True)
        """
        self._check_is_fitted()
        source = ImageSource.resolve(X, y, side="test")
        return super().score(source.items, source.labels, sample_weight=sample_weight)

    def save(self, path: str | os.PathLike, overwrite: bool = False, metrics: dict | None = None,
             model_version: str | None = None) -> str:
        """Write the fitted classifier to a model folder (``model.keras``, ``model.tflite``, ``metadata.json``).

        ``metrics`` (e.g. test accuracy) are stored with the training metrics; ``overwrite=True``
        replaces an existing *model folder* (any other folder is refused). Reload with
        :func:`cvkit.load_model`. Returns the folder path.

        Example:
            >>> import os, tempfile, cvkit
            >>> clf = cvkit.FeatureClassifier(verbose=False).fit("sample_data")
            >>> folder = clf.save(os.path.join(tempfile.mkdtemp(), "birds"), metrics={"test_accuracy": 0.97})
            >>> cvkit.load_model(folder).classes_
            ['bird', 'flower', 'fruit', 'vegetable']
        """
        self._check_is_fitted()
        return save_model(self, path, overwrite=overwrite, metrics=metrics, model_version=model_version)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.non_deterministic = False
        return tags
