"""Image classifiers with scikit-learn's API: ``fit(dataset)``, ``predict``, ``predict_proba``, ``score``.

- :class:`FeatureClassifier`: pretrained backbone features + a scikit-learn head. Seconds to fit;
  the strong baseline for small datasets.
- :class:`FineTuneClassifier`: trains a new head, then fine-tunes the top of the backbone, with
  augmentation and early stopping. Minutes to fit; helps when your photos differ from ImageNet's.

Both save to a model folder with ``clf.save(path)``; reload with :func:`cvkit.load_model`.

Both take the same names for the same ideas (``backbone``, ``head``, ``batch_size``, ``verbose``,
``cache``, ``cache_dir``, ``random_state``) and follow scikit-learn's estimator contract.

``cross_validate`` here is deprecated (a ``FutureWarning``): use :func:`cvkit.cross_validate`, which
returns out-of-fold probabilities and a report with intervals; ``make_classifier`` builds either
classifier by method name, as ``cvkit train --method`` does.

Both take any labelled input :class:`cvkit.ImageSource` resolves (a dataset, a folder of class
folders, a ``path,label`` table, a split manifest's train side, or paths / arrays with ``y``), and
predict on any input of images (a folder, a glob, a list of paths, arrays).

Example:
    >>> from cvkit.classifiers import FeatureClassifier
    >>> clf = FeatureClassifier(verbose=False).fit("sample_data")
    >>> clf.predict("sample_data/bird/*.jpg")[:2].tolist(), clf.backbone_
    (['bird', 'bird'], 'efficientnet_lite0')
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["FeatureClassifier", "FineTuneClassifier", "cross_validate", "make_classifier", "training_choices"]

_LAZY = {"FeatureClassifier": "._features", "FineTuneClassifier": "._finetune",
         "cross_validate": "._model_selection", "make_classifier": "._model_selection",
         "training_choices": "._selection"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cvkit.classifiers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
