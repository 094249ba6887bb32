"""cvkit: from a folder of photos to a trained, evaluated and deployed image classifier.

Transfer learning with TensorFlow/Keras on a CPU, offline. The public API is re-exported here and
imported lazily, so ``import cvkit`` is fast and TensorFlow loads only when a model is trained or
converted (running one uses LiteRT).

Example:
    >>> import cvkit
    >>> ds = cvkit.ImageDataset.from_directory("sample_data")
    >>> train, test = ds.split(test_size=0.34, random_state=0)
    >>> clf = cvkit.FeatureClassifier(verbose=False).fit(train)
    >>> round(cvkit.evaluate(clf, test).accuracy, 3)
    0.972
"""
from __future__ import annotations

from cvkit._console import quiet_tensorflow_env
from cvkit._lazy import lazy_exports
from cvkit._version import __version__

quiet_tensorflow_env()  # before anything imports TensorFlow: no C++ start-up lines on stderr

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "ImageDataset": "cvkit.data",
    "ImageSource": "cvkit.data",
    "RunOptions": "cvkit.options",
    "ImageReadError": "cvkit.data",
    "BadImageWarning": "cvkit.data",
    "TableFormatError": "cvkit.data",
    "read_image": "cvkit.data",
    "save_split": "cvkit.data",
    "load_split": "cvkit.data",
    "ImageFeaturizer": "cvkit.features",
    "cache_info": "cvkit.features",
    "clear_cache": "cvkit.features",
    "FeatureClassifier": "cvkit.classifiers",
    "FineTuneClassifier": "cvkit.classifiers",
    "load_model": "cvkit.models",
    "evaluate": "cvkit.evaluation",
    "EvaluationReport": "cvkit.evaluation",
    "hard_negatives": "cvkit.evaluation",
    "thresholds_for": "cvkit.evaluation",
    "unknown_report": "cvkit.evaluation",
    "cross_validate": "cvkit.evaluation",
    "compare": "cvkit.evaluation",
    "learning_curve": "cvkit.evaluation",
    "AnnotationWidget": "cvkit.widgets",
    "ResultsWidget": "cvkit.widgets",
    "PrecisionRecallWidget": "cvkit.widgets",
    "CleanerWidget": "cvkit.widgets",
    "EmbeddingWidget": "cvkit.widgets",
    "Client": "cvkit.serving",
    "BackgroundServer": "cvkit.serving",
    "batch_score": "cvkit.models",
    "score_images": "cvkit.scale",
    "featurize_images": "cvkit.scale",
    "quantize_model": "cvkit.models",
    "export_model": "cvkit.models",
    "find_label_issues": "cvkit.evaluation",
    "find_duplicates": "cvkit.evaluation",
    "duplicate_groups": "cvkit.evaluation",
    "find_image_issues": "cvkit.data",
    "plot_embedding": "cvkit.evaluation",
    "embedding_coordinates": "cvkit.evaluation",
    "explain": "cvkit.evaluation",
}

# sub-modules reachable as attributes (cvkit.backbones, cvkit.evaluation.plots ...): attribute -> module
_SUBMODULES = {
    "data": "cvkit.data", "backbones": "cvkit.backbones", "features": "cvkit.features",
    "classifiers": "cvkit.classifiers", "models": "cvkit.models", "evaluation": "cvkit.evaluation",
    "serving": "cvkit.serving", "scale": "cvkit.scale", "widgets": "cvkit.widgets", "cli": "cvkit.cli",
    "litert": "cvkit._litert",
    # the homes of the names below moved into the layered packages; the short names still work
    "augment": "cvkit.data.augment", "plots": "cvkit.evaluation.plots",
    "featurize": "cvkit.features._featurizer", "cache": "cvkit.features._admin",
    "artifacts": "cvkit.models._folder", "export": "cvkit.models._export",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)
__all__ = __all__ + ["__version__"]
