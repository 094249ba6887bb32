"""Model folders and inference: what a trained classifier becomes on disk, and how it predicts.

- :func:`load_model` reads a model folder (``clf.save(path)``) into a :class:`LoadedModel`; it
  requires and checks every file's SHA-256 and trusts only an allow-list of types
  (:mod:`cvkit.models._trusted`), so loading runs no code from the folder.
- :mod:`cvkit.models._inference` turns pixels into probabilities and answers, for every way cvkit
  scores an image.
- :func:`quantize_model` adds the int8 fast mode (``model.int8.tflite``) to a model folder.
- :func:`export_model` writes a SavedModel or TFLite file and checks it agrees with the Keras model;
  :class:`TFLiteModel` runs such a file on its own.
- :func:`save_thresholds` gives a saved model an operating point ("no decision" below thresholds),
  which every path that loads the folder then applies; :func:`save_unknown_threshold` its novelty
  cut, above which it answers "unknown" (an image of none of its classes).
- :func:`check_overwrite` tells before training whether saving to a folder would be refused.
- :func:`batch_score` scores a folder or table of images into a CSV (:class:`BatchSummary` says how
  it went); :mod:`cvkit.scale` does the same on a Ray cluster.

Example:
    >>> import cvkit.models
    >>> cvkit.models.__all__
    ['BatchSummary', 'ExportResult', 'LoadedModel', 'ModelFormatError', 'TFLiteModel', 'batch_score', \
'check_overwrite', 'export_model', 'is_model_folder', 'load_model', 'quantize_model', 'read_metadata', 'save_model', \
'save_thresholds', 'save_unknown_threshold']
    >>> cvkit.models.is_model_folder("sample_data")
    False
"""
from cvkit._lazy import lazy_exports

_EXPORTS = {
    "load_model": "cvkit.models._folder",
    "save_model": "cvkit.models._folder",
    "read_metadata": "cvkit.models._folder",
    "is_model_folder": "cvkit.models._folder",
    "ModelFormatError": "cvkit.models._trusted",
    "LoadedModel": "cvkit.models._loaded",
    "quantize_model": "cvkit.models._quantize",
    "export_model": "cvkit.models._export",
    "ExportResult": "cvkit.models._export",
    "TFLiteModel": "cvkit.models._export",
    "check_overwrite": "cvkit.models._folder",
    "save_thresholds": "cvkit.models._operating",
    "save_unknown_threshold": "cvkit.models._operating",
    "batch_score": "cvkit.models._batch",
    "BatchSummary": "cvkit.models._batch",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
