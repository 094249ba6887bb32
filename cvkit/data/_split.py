"""Stratified train/test split indices: the rule behind :meth:`ImageDataset.split`.

Example:
    >>> import numpy as np
    >>> train, test = stratified_split_indices(np.array([0, 0, 0, 1, 1, 1]), ["a", "b"], test_size=2)
    >>> len(train), len(test)
    (4, 2)
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cvkit._validation import Interval, check_param

__all__ = ["stratified_split_indices", "grouped_split_indices"]


def stratified_split_indices(targets: np.ndarray, labels: Sequence[str], test_size: float | int = 0.34,
                             stratify: bool = True, random_state: int | None = 0
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)`` for a split; see :meth:`ImageDataset.split`.

    Uses scikit-learn's ``train_test_split``, then makes sure every class with two or more images
    has at least one image on each side (scikit-learn can leave a tiny class on one side only).
    """
    from sklearn.model_selection import train_test_split

    targets = np.asarray(targets)
    n = len(targets)
    check_param("test_size", test_size, [Interval(float, 0, 1, closed="neither"), Interval(int, 1, None)])
    if n < 2:
        raise ValueError(f"cannot split {n} image(s): need at least 2")
    idx = np.arange(n)
    if not stratify:
        train, test = train_test_split(idx, test_size=test_size, random_state=random_state)
        return np.sort(train), np.sort(test)

    counts = np.bincount(targets, minlength=len(labels))
    too_small = [labels[c] for c in range(len(labels)) if counts[c] == 1]
    if too_small:
        raise ValueError(
            "cannot make a stratified split: class(es) " + ", ".join(repr(c) for c in too_small)
            + " have only 1 image; each class needs at least 2 (one for training, one for testing). "
            "Add images, remove the class, or use stratify=False.")
    n_classes = int((counts > 0).sum())
    n_test = int(np.ceil(test_size * n)) if isinstance(test_size, float) else int(test_size)
    if n_test < n_classes or n - n_test < n_classes:
        raise ValueError(f"test_size={test_size} gives {n_test} test and {n - n_test} training images, "
                         f"but a stratified split of {n_classes} classes needs at least "
                         f"{n_classes} on each side")
    train, test = train_test_split(idx, test_size=test_size, random_state=random_state, stratify=targets)
    train, test = list(train), list(test)
    rng = np.random.RandomState(random_state)
    for c in np.flatnonzero(counts >= 2):
        for src, dst in ((train, test), (test, train)):
            if not any(targets[i] == c for i in dst):
                members = [i for i in src if targets[i] == c]
                moved = members[rng.randint(len(members))]
                src.remove(moved)
                dst.append(moved)
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(test, dtype=np.int64))


def grouped_split_indices(targets: np.ndarray, labels: Sequence[str], groups: np.ndarray,
                          test_size: float | int = 0.34, stratify: bool = True,
                          random_state: int | None = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """Like :func:`stratified_split_indices`, but each group of images lands on one side whole.

    ``groups`` holds a group id per image (duplicates share one). Each group is split as one unit,
    labelled by its first image, so with no group of two or more the split is exactly the
    ungrouped one. Returns ``(train, test, n_kept)``: ``n_kept`` counts the groups of 2+ images.

    Example:
        >>> t = np.array([0, 0, 0, 0, 1, 1, 1, 1])
        >>> train, test, kept = grouped_split_indices(t, ["a", "b"], np.array([0, 0, 1, 2, 3, 4, 5, 5]),
        ...                                           test_size=0.25)
        >>> kept, ({0, 1} <= set(train) or {0, 1} <= set(test)), ({6, 7} <= set(train) or {6, 7} <= set(test))
        (2, True, True)
    """
    targets, groups = np.asarray(targets), np.asarray(groups)
    if groups.shape != targets.shape:
        raise ValueError(f"groups must have one id per image ({len(targets)}), got {groups.shape}")
    _, first, unit_of = np.unique(groups, return_index=True, return_inverse=True)
    n_kept = int((np.bincount(unit_of) > 1).sum())
    if not n_kept:
        return (*stratified_split_indices(targets, labels, test_size, stratify, random_state), 0)
    if not isinstance(test_size, float):  # a count of images -> the same share of units
        test_size = max(1, round(int(test_size) * len(first) / len(targets)))
    unit_train, unit_test = stratified_split_indices(targets[first], labels, test_size, stratify, random_state)
    train = np.flatnonzero(np.isin(unit_of, unit_train))
    test = np.flatnonzero(np.isin(unit_of, unit_test))
    return train, test, n_kept
