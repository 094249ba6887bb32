"""Class balance: say, before anyone trusts a single accuracy number, when some classes are weak.

A classifier trained on 60 photos of one class and 10 of another can reach a fine overall
accuracy while missing half of the small class: accuracy is dominated by the large classes.
:func:`check_class_balance` looks at the training images per class and returns plain sentences
saying what is off and what to do, so ``cvkit train`` and ``notebooks/01_train.ipynb`` can print
them next to the per-class precision and recall.

Example:
    >>> check_class_balance({"cat": 60, "dog": 12})[0].split(":")[0]
    'classes differ in size by 5.0x (cat 60, dog 12)'
    >>> from cvkit.data import ImageDataset
    >>> check_class_balance(ImageDataset.from_directory("sample_data"))  # the sample data is balanced enough
    []
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["check_class_balance", "is_imbalanced", "MAX_SIZE_RATIO", "MIN_TRAINING_IMAGES"]

#: Largest class / smallest class above which the classes are called imbalanced.
MAX_SIZE_RATIO = 3.0
#: Fewer training images than this in a class and its results rest on too little.
MIN_TRAINING_IMAGES = 10


def _counts(data: Any) -> dict[str, int]:
    if isinstance(data, Mapping):
        return {str(k): int(v) for k, v in data.items()}
    counts = getattr(data, "counts", None)
    if not callable(counts):
        raise TypeError(f"check_class_balance takes an ImageDataset or a {{class: count}} mapping, "
                        f"not {type(data).__name__}")
    if getattr(data, "targets", 0) is None:
        raise ValueError("check_class_balance needs a labelled dataset")
    return {str(k): int(v) for k, v in counts().items()}


def is_imbalanced(counts: Any, max_ratio: float = MAX_SIZE_RATIO) -> bool:
    """True when the largest of ``counts`` (images per class; classes with none are left out) is more
    than ``max_ratio`` times the smallest: the line :func:`check_class_balance` draws, which the
    ``"auto"`` class weights, the ``"auto"`` head's favourite and a report's headline follow too.

    Example:
        >>> is_imbalanced([31, 10]), is_imbalanced([30, 10, 0]), is_imbalanced([5])
        (True, False, False)
    """
    import numpy as np

    present = np.asarray(counts, dtype=np.float64)
    present = present[present > 0]
    return bool(len(present) > 1 and present.max() > max_ratio * present.min())


def check_class_balance(data: Any, max_ratio: float = MAX_SIZE_RATIO,
                        min_count: int = MIN_TRAINING_IMAGES) -> list[str]:
    """Warnings (sentences) about the class sizes of training data ``data``; empty when they look fine.

    ``data`` is a labelled :class:`~cvkit.data.ImageDataset` (pass the *training* side of a split)
    or a ``{class: number of images}`` mapping. Two things are checked:

    - the largest class has more than ``max_ratio`` times the images of the smallest: the model
      leans towards the large classes, so train with ``class_weight="balanced"``
      (``cvkit train --class-weight balanced``), add photos of the small classes, and judge the
      model by balanced accuracy and per-class recall rather than accuracy;
    - a class has fewer than ``min_count`` training images: too few to learn it reliably, and its
      test numbers rest on a handful of photos.

    Example:
        >>> for line in check_class_balance({"stop": 40, "yield": 25, "merge": 6}):
        ...     print(line.split(":")[0])
        classes differ in size by 6.7x (stop 40, merge 6)
        1 class has fewer than 10 training images (merge 6)
    """
    counts = _counts(data)
    present = {k: v for k, v in counts.items() if v > 0}
    if len(present) < 2:
        return []
    out = []
    largest = max(present, key=present.__getitem__)
    smallest = min(present, key=present.__getitem__)
    ratio = present[largest] / present[smallest]
    if ratio > max_ratio:
        out.append(f"classes differ in size by {ratio:.1f}x ({largest} {present[largest]}, {smallest} "
                   f"{present[smallest]}): the model will favour the large classes and accuracy hides it. "
                   "Train with class_weight='balanced' (cvkit train --class-weight balanced), add photos of "
                   "the small classes, and judge the model by balanced accuracy and per-class recall")
    few = {k: v for k, v in counts.items() if v < min_count}
    if few:
        names = ", ".join(f"{k} {v}" for k, v in sorted(few.items(), key=lambda kv: kv[1]))
        subject = "1 class has" if len(few) == 1 else f"{len(few)} classes have"
        out.append(f"{subject} fewer than {min_count} training images ({names}): too few to learn "
                   f"reliably, and its test results rest on very few photos. Add photos (at least "
                   f"{min_count} for training, more for testing), merge the class into a related one, or "
                   "check it with cross-validation")
    return out
