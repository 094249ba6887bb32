"""What every cvkit model shares: ``predict``, ``predict_proba``, ``score`` and "not fitted" errors.

Trainable classifiers (:class:`~cvkit.classifiers.FeatureClassifier`,
:class:`~cvkit.classifiers.FineTuneClassifier`) and the loaded model of :func:`cvkit.load_model` only
say how to get probabilities from images; turning them into labels, accuracy and warnings about
unreadable images happens here, once. :func:`run_graph` runs a pixel graph (LiteRT or Keras) that maps
raw pixels to vectors over many images, decoding on threads while the graph computes.

Example:
    >>> import numpy as np
    >>> class Brightness(PredictorMixin):   # a subclass only says how to get probabilities
    ...     classes_ = ["dark", "light"]
    ...     def _predict_proba(self, X):
    ...         light = np.asarray(X, np.float32).mean(axis=(1, 2, 3)) / 255
    ...         return np.stack([1 - light, light], axis=1)
    >>> pixels = np.stack([np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)])
    >>> Brightness().predict(pixels), Brightness().score(pixels, ["dark", "light"])
    (array(['dark', 'light'], dtype=object), 1.0)
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from cvkit.data._inputs import warn_unreadable
from cvkit.data._source import ImageSource
from cvkit.models._calibration import tempered
from cvkit.models._decision import NO_DECISION, UNKNOWN
from cvkit.models._graphs import as_graph
from cvkit.models._inference import decision_rule, has_novelty
from cvkit.models._pipeline import run_pixels

__all__ = ["PredictorMixin", "run_graph", "answer_outputs", "true_labels", "NotFittedError"]


def true_labels(X: Any, y: Sequence[Any] | None = None, what: str = "score", classes: Sequence[str] | None = None
                ) -> tuple[ImageSource, list[str]]:
    """The images of ``X`` (any input :meth:`cvkit.data.ImageSource.resolve` takes) and each one's class name.

    Labels come from ``y`` when given, else from the input (a labelled dataset, a table with a label
    column, a folder of class folders: named after ``classes`` when given). Errors name ``what``
    needed them: unlabelled images, a length mismatch, empty labels.

    Example:
        >>> source, labels = true_labels("sample_data/tags.tsv")
        >>> len(source), labels[0]
        (104, 'bird')
        >>> true_labels(["sample_data/bird/owl.jpg"])
        Traceback (most recent call last):
        ...
        ValueError: score: labels are missing; pass a labelled ImageDataset, a folder of class folders, a table with \
a label column, or y= (one class name per image) with a list of paths or an image array
    """
    source = ImageSource.resolve(X, y, classes=classes)
    if not source.has_labels:
        if source.kind == "dataset":
            raise ValueError(f"{what}: the dataset is unlabelled (no class per image); label it first, "
                             "e.g. with cvkit.widgets.AnnotationWidget or a path<TAB>label table")
        raise ValueError(f"{what}: labels are missing; pass a labelled ImageDataset, a folder of class folders, a "
                         "table with a label column, or y= (one class name per image) with a list of paths or an "
                         "image array")
    empty = [i for i, v in enumerate(source.labels or []) if v is None]
    if empty:
        given = "y has empty labels" if y is not None else "images without a label"
        raise ValueError(f"{what}: {given} at positions {empty[:10]}")
    return source, [str(v) for v in source.labels or []]


def run_graph(graph: Any, X: Any, batch_size: int = 32, verbose: bool = False,
              what: str = "predict_proba") -> tuple[np.ndarray, np.ndarray]:
    """Run a pixel graph over images ``X``; returns ``(out, ok)``.

    ``graph`` maps raw pixels to vectors: a loaded model's ``graph_`` (LiteRT or Keras), or a Keras
    model (a fine-tuned classifier's). Decoding runs on threads while the graph computes
    (:func:`cvkit.models._pipeline.run_pixels`). Unreadable images give NaN rows, ``ok`` False, and
    one warning naming them.

    Example:
        >>> import warnings
        >>> class MeanColour:   # a pixel graph: (n, 8, 8, 3) uint8 -> (n, 3)
        ...     input_shape, n_outputs = (-1, 8, 8, 3), 3
        ...     def predict(self, pixels, batch_size=32):
        ...         return pixels.mean(axis=(1, 2)).astype(np.float32)
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     out, ok = run_graph(MeanColour(), ["sample_data/bird/owl.jpg", "missing.jpg"])
        >>> out.shape, ok.tolist(), caught[0].category.__name__
        ((2, 3), [True, False], 'BadImageWarning')
    """
    out, ok, skipped = run_pixels(as_graph(graph), X, batch_size=batch_size, verbose=verbose)
    warn_unreadable(skipped, len(ok), what, stacklevel=3)
    return out, ok


def answer_outputs(out: np.ndarray, ok: np.ndarray, head: Any, temperature: float, novelty: Any,
                   n_classes: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``(probabilities, novelty or None)`` from a graph's outputs ``out`` (rows where ``ok``).

    Without a ``head`` the outputs already are probabilities (calibration in the graph); with one
    they are features: the head gives probabilities, then divided by ``temperature``, and the
    ``novelty`` scorer (when there is one) scores the same features. NaN rows where not ``ok``.

    Example:
        >>> from cvkit.models._head import LinearHead
        >>> head = LinearHead(np.eye(2, dtype=np.float32), np.zeros(2, np.float32))
        >>> proba, novelty = answer_outputs(np.array([[2.0, 0.0], [0.0, 0.0]]), np.array([True, False]), head,
        ...                                 1.0, None, 2)
        >>> [round(float(p), 3) for p in proba[0]], bool(np.isnan(proba[1]).all()), novelty
        ([0.881, 0.119], True, None)
    """
    if head is None:
        return np.asarray(out, dtype=np.float32), None
    proba = np.full((len(ok), n_classes), np.nan, dtype=np.float32)
    scores = None if novelty is None else np.full(len(ok), np.nan, dtype=np.float32)
    if ok.any():
        proba[ok] = tempered(head.predict_proba(out[ok]), temperature)
        if novelty is not None:
            scores[ok] = novelty.score(out[ok])
    return proba, scores


class PredictorMixin:
    """``predict``, ``score`` and input checks on top of a subclass's ``_predict_proba(X)``.

    The subclass sets ``classes_`` (list of class names) and implements ``_predict_proba(X)``
    returning float32 ``(n, n_classes)`` with NaN rows for unreadable images.
    """

    classes_: list[str]

    def _check_is_fitted(self) -> None:
        """scikit-learn's own check for estimators (objects with ``fit``); a loaded model is fitted by construction."""
        if hasattr(self, "fit"):
            check_is_fitted(self, msg="This %(name)s is not fitted yet: call fit(dataset) first "
                                      "(or load a saved model with cvkit.load_model(path))")
        elif not hasattr(self, "classes_"):
            raise NotFittedError(f"This {type(self).__name__} has no classes_: it is not fitted")

    def _predict_proba(self, X: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict_outputs(self, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """``(probabilities, novelty or None)``: a model with a novelty scorer gives both from one run."""
        return self._predict_proba(X), None

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, float32 ``(n_images, n_classes)``, columns in ``classes_`` order.

        ``X`` is an :class:`~cvkit.data.ImageDataset`, a list of image paths, or a uint8 array
        ``(n, H, W, 3)`` (resized to ``input_size_`` when needed); a loaded model takes any input
        :meth:`cvkit.data.ImageSource.resolve` takes (a folder, a table, a glob, one image...).
        Unreadable images give a row of NaN and one warning naming them; they never stop the run.
        (Examples: see the module.)
        """
        self._check_is_fitted()
        proba = np.asarray(self._predict_proba(X), dtype=np.float32)
        return proba

    def predict(self, X: Any) -> np.ndarray:
        """The answer per image (object array): the most likely class, or under the model's thresholds
        (:meth:`set_thresholds`) ``"no decision"`` when the top class is not sure enough; ``None`` for
        unreadable images. The same rule answers in every path (``score_image``, the service,
        ``cvkit score``, Ray jobs), read from the model folder once saved."""
        self._check_is_fitted()
        proba, novelty = self._predict_outputs(X)
        labels, _ = decision_rule(self).decide(np.asarray(proba, np.float32), self.classes_, novelty)
        return labels

    def novelty(self, X: Any) -> np.ndarray:
        """How unlike the training photos each image is: float32 ``(n_images,)``, higher is more novel
        (NaN for unreadable images). Images scoring above the cut set by :meth:`set_unknown_threshold`
        are answered ``"unknown"``. A model without a novelty scorer (fine-tuned, or saved before cvkit
        0.2) raises ``ValueError``."""
        self._novelty_scorer()
        return np.asarray(self._predict_outputs(X)[1], dtype=np.float32)

    def _novelty_scorer(self) -> Any:
        """The fitted novelty scorer; ``ValueError`` saying why when the model has none."""
        self._check_is_fitted()
        if not has_novelty(self):
            raise ValueError(f"this {type(self).__name__} has no novelty scorer (fine-tuned models, models saved "
                             "before cvkit 0.2 and FeatureClassifier(novelty_method=None) have none)")
        return self.novelty_

    def set_unknown_threshold(self, keep: float | None = 0.95, cut: float | None = None,
                              unknown_label: str = UNKNOWN) -> Any:
        """Answer ``unknown_label`` for images unlike every training photo (novelty above a cut).

        ``keep``: the share of the training photos' out-of-fold novelty scores kept below the cut
        (0.95: about 5% of new photos of the known classes are answered ``"unknown"`` too); or an
        explicit ``cut`` (e.g. chosen on a folder of photos of other things with
        :func:`cvkit.evaluation.unknown_report`); ``keep=None`` and ``cut=None`` turn it off. "unknown" wins
        over "no decision" (a threshold): an image of none of the classes has no meaningful
        confidence. ``save`` writes the rule into the folder; every path answers alike. Returns the model.
        """
        self._check_is_fitted()
        rule = decision_rule(self)
        if keep is None and cut is None:
            self.decision_rule_ = replace(rule, unknown_cut=None, unknown_info={})
            return self
        scorer = self._novelty_scorer()
        info = {"method": scorer.method, "keep": None if cut is not None else float(keep)}
        value = float(cut) if cut is not None else scorer.cut(float(keep))
        new = replace(rule, unknown_cut=value, unknown_label=unknown_label, unknown_info=info)
        new.check_classes(self.classes_)
        self.decision_rule_ = new
        return self

    def set_thresholds(self, thresholds: float | Mapping[str, float] | None,
                       no_decision_label: str = NO_DECISION) -> Any:
        """Answer ``no_decision_label`` when the top class's probability is below its threshold.

        ``thresholds``: one number in [0, 1] for every class, ``{class: threshold}`` (classes left
        out keep 0), or None (back to the arg-max). Probabilities do not change, only the answers;
        ``save`` writes the rule into the model folder, and every path that loads it answers alike.
        Pick thresholds for a target precision or recall with
        :func:`cvkit.evaluation.thresholds_for`, or in the :class:`~cvkit.widgets.PrecisionRecallWidget`.
        Returns the model. Example::

            >>> class Fixed(PredictorMixin):
            ...     classes_ = ["cat", "dog"]
            ...     def _predict_proba(self, X):
            ...         return np.array([[0.9, 0.1], [0.4, 0.6]], np.float32)
            >>> Fixed().set_thresholds({"dog": 0.7}).predict(None).tolist()
            ['cat', 'no decision']
        """
        self._check_is_fitted()
        self.decision_rule_ = decision_rule(self).with_thresholds(thresholds, self.classes_, no_decision_label)
        return self

    def score(self, X: Any, y: Sequence[Any] | None = None, sample_weight: Any = None) -> float:
        """Accuracy on labelled images (labels from the input, or ``y``); unreadable images are left out.

        ``X`` as for :meth:`predict_proba`, or a labelled folder or table (see :func:`true_labels`).
        A label the classifier was never trained on raises ``ValueError`` naming it, rather than
        being silently counted as a mistake.
        """
        self._check_is_fitted()
        source, truth = true_labels(X, y, what="score", classes=self.classes_)
        unknown = sorted(set(truth) - set(self.classes_))
        if unknown:
            raise ValueError(f"score: label(s) {', '.join(map(repr, unknown))} were not seen in training "
                             f"(known classes: {', '.join(map(repr, self.classes_))})")
        pred = self.predict(X if source.kind in ("dataset", "list", "array") else source.items)
        keep = np.array([p is not None for p in pred], dtype=bool)
        if not keep.any():
            raise ValueError("score: none of the images could be read")
        hits = np.array([p == t for p, t in zip(pred, truth)], dtype=float)
        if sample_weight is None:
            return float(hits[keep].mean())
        w = np.asarray(sample_weight, dtype=float)
        return float(np.average(hits[keep], weights=w[keep]))
