"""A model folder loaded for prediction: :class:`LoadedModel`, what :func:`cvkit.load_model` returns.

It answers like the classifier that was saved (``predict``, ``predict_proba``, ``score`` from
:class:`~cvkit.models._predictor.PredictorMixin`), and scores single images through the same
code path as the web service (:mod:`cvkit.models._inference`), so both agree to the last digit.

Any input :meth:`cvkit.data.ImageSource.resolve` takes can be predicted: a folder, a table of
paths, a glob, a split manifest, one image, a list of paths or a uint8 array.

Example:
    >>> import os, tempfile
    >>> import cvkit
    >>> clf = cvkit.FeatureClassifier(verbose=False).fit(cvkit.ImageDataset.from_directory("sample_data"))
    >>> model = cvkit.load_model(clf.save(os.path.join(tempfile.mkdtemp(), "model")))
    >>> model.classes_, model.input_size_, model.runtime_
    (['bird', 'flower', 'fruit', 'vegetable'], (224, 224), 'litert')
    >>> model.predict(["sample_data/bird/owl.jpg"]), model.predict("sample_data/bird/owl.jpg")
    (array(['bird'], dtype=object), array(['bird'], dtype=object))
    >>> model.score_image("sample_data/bird/blackbird.jpg")["label"]
    'bird'
    >>> round(model.score("sample_data/tags.tsv"), 2) > 0.9
    True
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cvkit._validation import DEPRECATED, is_deprecated_default
from cvkit.data._images import PathLike
from cvkit.data._source import ImageSource
from cvkit.models._answer_fields import calibration_temperature
from cvkit.models._decision import DecisionRule
from cvkit.models._graphs import as_graph
from cvkit.models._inference import DEFAULT_TOP_K, score_image
from cvkit.models._predictor import PredictorMixin, answer_outputs, run_graph

__all__ = ["LoadedModel"]


class LoadedModel(PredictorMixin):
    """A model folder loaded for prediction: same ``predict``/``predict_proba``/``score`` as when trained.

    Attributes: ``classes_``, ``input_size_`` ``(width, height)``, ``backbone``, ``metadata_``
    (the metadata dict), ``runtime_`` (``"litert"`` or ``"keras"``: which runs), ``precision_``
    (``"float32"`` or ``"int8"``), ``graph_`` (the pixel graph that runs: a
    :class:`cvkit._litert.LiteRTModel` or a :class:`cvkit.models._graphs.KerasGraph`),
    ``keras_model_`` (the Keras graph; None on LiteRT), ``head_`` (the scikit-learn head or None),
    ``decision_rule_`` (how probabilities become answers: arg-max, or the thresholds saved with the
    model; see :meth:`set_thresholds`), ``path_``. ``batch_size`` and ``verbose`` (None: a progress
    bar for 200+ images; formerly ``progress``) may be changed. Build one with
    :func:`cvkit.load_model`, which checks the folder first (examples: see the module).
    """

    def __init__(self, path: PathLike, metadata: dict, graph: Any, head: Any = None,
                 batch_size: int = 32, verbose: bool | None = None, runtime: str = "keras",
                 precision: str = "float32", *, progress: Any = DEPRECATED, novelty: Any = None):
        self.path_ = Path(path)
        self.metadata_ = metadata
        self.graph_ = as_graph(graph)
        self.runtime_ = runtime
        self.precision_ = precision
        self.keras_model_ = graph if runtime == "keras" else None
        self.head_ = head
        self.novelty_ = novelty  # a NoveltyScorer (novelty.npz) or None: folders without one never answer unknown
        width = getattr(head, "n_features", None)
        if width is not None and self.graph_.n_outputs != width:
            raise ValueError(f"{self.path_}: the graph gives {self.graph_.n_outputs} features but the head "
                             f"takes {width}")
        self.classes_ = [str(c) for c in metadata["classes"]]
        width, height = metadata["input_size"]
        self.input_size_ = (int(width), int(height))
        self.backbone = metadata["backbone"]
        self.decision_rule_ = DecisionRule.from_metadata(metadata.get("decision"), self.classes_,
                                                         novelty=novelty is not None)
        self.temperature_ = calibration_temperature(metadata.get("calibration"))  # 1.0 when in the graph
        self.batch_size = batch_size
        self.verbose = verbose
        if not is_deprecated_default(progress):
            self.progress = progress

    @property
    def progress(self) -> bool | None:
        """Deprecated name of :attr:`verbose` (a ``FutureWarning``; it goes in the next minor version)."""
        _warn_progress()
        return self.verbose

    @progress.setter
    def progress(self, value: bool | None) -> None:
        _warn_progress()
        self.verbose = value

    def __repr__(self) -> str:
        runtime = self.runtime_ + (f" {self.precision_}" if self.precision_ != "float32" else "")
        rule = "" if self.decision_rule_.is_argmax else f"; answers by {self.decision_rule_.describe()}"
        return (f"<cvkit model {self.path_} ({self.metadata_.get('method')}, {self.backbone}, "
                f"{len(self.classes_)} classes: {', '.join(self.classes_)}; runs on {runtime}{rule})>")

    def _predict_proba(self, X: Any) -> np.ndarray:
        return self._predict_outputs(X)[0]

    def _predict_outputs(self, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """``(probabilities, novelty or None)`` from one run of the graph over ``X``."""
        source = ImageSource.resolve(X)
        verbose = self.verbose if self.verbose is not None else len(source) >= 200
        out, ok = run_graph(self.graph_, source, batch_size=self.batch_size, verbose=verbose)
        return answer_outputs(out, ok, self.head_, self.temperature_, self.novelty_, len(self.classes_))

    def score_image(self, source: Any, top_k: int = DEFAULT_TOP_K) -> dict[str, Any]:
        """Score one image (a path, an http(s) URL, or bytes): ``{"label", "score", "scores", "top_k"}``
        (the example is the module's)."""
        return score_image(self, source, top_k=top_k)


def _warn_progress() -> None:
    import warnings

    warnings.warn("LoadedModel: the attribute 'progress' was renamed 'verbose'; 'progress' is deprecated and will "
                  "be removed in a future version", FutureWarning, stacklevel=3)
