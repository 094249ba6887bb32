"""Find duplicate and near-duplicate images, within a dataset or between a training and a test set.

Why: a photo filed twice, or a re-saved, resized or slightly cropped copy of it, inflates test
accuracy when one copy is trained on and the other tested on (a *leak*), and weighs twice in
training. Two kinds of pair are reported:

- ``exact``: the same file content (SHA-256 of the bytes);
- ``near``: cosine similarity of the cached backbone features of at least ``threshold``; or, for
  copies whose features blur (a halved thumbnail, a harsh re-compression), a feature similarity of
  at least :data:`CANDIDATE_SIMILARITY` confirmed by their tiny colour thumbnails correlating at
  :data:`THUMBNAIL_CORRELATION` or more.

The default :data:`DEFAULT_THRESHOLD` was chosen by ``bench/audit.py``: it finds no pair among the
104 distinct photos of ``sample_data`` (their most similar pair, a red apple and a mango on white,
scores 0.857) and finds JPEG re-encodes (quality 60) and 10% crops.

Example:
    >>> from cvkit import ImageDataset
    >>> train, test = ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
    >>> pairs = find_duplicates(train, other=test)   # leaks between the two sides
    >>> list(pairs.columns[:6]), len(pairs)
    (['path_a', 'path_b', 'label_a', 'label_b', 'similarity', 'kind'], 0)
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cvkit._validation import Interval, check_param
from cvkit.classifiers._inputs import image_dataset
from cvkit.data._images import read_file
from cvkit.data._source import decode_item
from cvkit.evaluation._audit import image_features

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["find_duplicates", "duplicate_groups", "groups_from_pairs", "content_hashes", "DEFAULT_THRESHOLD",
           "CANDIDATE_SIMILARITY", "THUMBNAIL_CORRELATION", "PAIR_COLUMNS", "THRESHOLD"]

#: Feature cosine similarity from which two images are near-duplicates.
DEFAULT_THRESHOLD = 0.88
#: Feature similarity from which a pair is a candidate for the thumbnail check.
CANDIDATE_SIMILARITY = 0.7
#: Correlation of the 8x8 colour thumbnails that confirms a candidate pair.
THUMBNAIL_CORRELATION = 0.97
#: Columns of :func:`find_duplicates`'s table.
PAIR_COLUMNS = ["path_a", "path_b", "label_a", "label_b", "similarity", "kind", "index_a", "index_b"]
_BLOCK = 1024  # rows of the similarity matrix computed at once (memory stays ~4 MB per 1,000 images)


def content_hashes(paths: Sequence[str]) -> list[str | None]:
    """SHA-256 of each file's bytes (None for a file that cannot be read).

    Example:
        >>> content_hashes(["sample_data/bird/adelaide-rosella.jpg", "missing.jpg"])[0][:12]
        'fdfc5d08c47d'
    """
    out: list[str | None] = []
    for path in paths:
        try:
            out.append(hashlib.sha256(read_file(path)).hexdigest())
        except (OSError, ValueError):
            out.append(None)
    return out


def _unit(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return (features / np.maximum(norms, 1e-12)).astype(np.float32)


def _thumbnail(path: str) -> np.ndarray | None:
    """A zero-mean, unit-norm 8x8 RGB thumbnail (None if unreadable)."""
    image, _, _ = decode_item(path, (8, 8))
    if image is None:
        return None
    pixels = image.astype(np.float64).ravel()
    pixels -= pixels.mean()
    return pixels / max(float(np.linalg.norm(pixels)), 1e-9)


def _similar_pairs(a: np.ndarray, b: np.ndarray | None, threshold: float) -> list[tuple[int, int, float]]:
    """``(i, j, cosine)`` for rows of ``a`` and ``b`` (or ``a`` with itself, i < j) at >= threshold."""
    other = a if b is None else b
    out = []
    for start in range(0, len(a), _BLOCK):
        sims = a[start:start + _BLOCK] @ other.T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist()):
            i = start + r
            if b is None and c <= i:
                continue
            out.append((i, c, float(sims[r, c])))
    return out


def _near_pairs(paths_a: list[str], paths_b: list[str], fa: np.ndarray, fb: np.ndarray | None,
                threshold: float) -> dict[tuple[int, int], float]:
    """Near pairs by features, plus feature candidates confirmed by their thumbnails."""
    low = min(threshold, CANDIDATE_SIMILARITY)
    found: dict[tuple[int, int], float] = {}
    thumbs: dict[tuple[int, int], np.ndarray | None] = {}

    def thumb(side: int, i: int) -> np.ndarray | None:
        if (side, i) not in thumbs:
            thumbs[(side, i)] = _thumbnail((paths_a if side == 0 else paths_b)[i])
        return thumbs[(side, i)]

    for i, j, sim in _similar_pairs(fa, fb, low):
        if sim >= threshold:
            found[(i, j)] = sim
            continue
        ta, tb = thumb(0, i), thumb(0 if fb is None else 1, j)
        if ta is not None and tb is not None and float(ta @ tb) >= THUMBNAIL_CORRELATION:
            found[(i, j)] = sim
    return found


def _exact_pairs(hashes_a: list[str | None], hashes_b: list[str | None] | None) -> list[tuple[int, int]]:
    index: dict[str, list[int]] = {}
    for j, h in enumerate(hashes_a if hashes_b is None else hashes_b):
        if h is not None:
            index.setdefault(h, []).append(j)
    pairs = []
    for i, h in enumerate(hashes_a):
        for j in index.get(h, []) if h is not None else []:
            if hashes_b is not None or j > i:
                pairs.append((i, j))
    return pairs


#: The constraints of ``threshold``: a cosine similarity.
THRESHOLD = [Interval(float, 0, 1, closed="right")]


def find_duplicates(dataset: Any, other: Any = None, threshold: float = DEFAULT_THRESHOLD,
                    *, featurizer: Any = None) -> pd.DataFrame:
    """Pairs of duplicate images in ``dataset``, or, with ``other``, between ``dataset`` and ``other``.

    Parameters
    ----------
    dataset : an :class:`~cvkit.data.ImageDataset` (labelled or not), or any input of image files
        :meth:`cvkit.ImageSource.resolve` takes (a folder, a table, a glob; a split manifest: its
        train side).
    other : e.g. the test side of a split (a split manifest: its test side): then only cross pairs
        (train/test *leaks*) are reported, ``path_a`` from ``dataset`` and ``path_b`` from ``other``.
    threshold : feature cosine similarity from which a pair is ``near`` (default
        :data:`DEFAULT_THRESHOLD`); lower finds more copies and more false pairs.
    featurizer : the :class:`~cvkit.features._featurizer.ImageFeaturizer` (default: EfficientNet-Lite0,
        cached, see :func:`cvkit.evaluation._audit.default_featurizer`).

    Returns a DataFrame with columns :data:`PAIR_COLUMNS`: ``path_a``, ``path_b``, ``label_a``,
    ``label_b`` (empty when unlabelled), ``similarity`` (feature cosine; 1.0 for exact copies),
    ``kind`` (``"exact"`` or ``"near"``), ``index_a``, ``index_b`` (positions in ``dataset`` and in
    ``other``, or in ``dataset`` for both). Sorted exact first, then by similarity. Unreadable
    images are reported in one warning and left out.

    Example:
        >>> import os, shutil, tempfile
        >>> photo, copy = "sample_data/bird/owl.jpg", os.path.join(tempfile.mkdtemp(), "copy.jpg")
        >>> _ = shutil.copy(photo, copy)
        >>> pairs = find_duplicates([photo, copy, "sample_data/fruit/lemon.jpg"])
        >>> pairs[["kind", "similarity", "index_a", "index_b"]].values.tolist()
        [['exact', 1.0, 0, 1]]
    """
    import pandas as pd

    threshold = float(check_param("threshold", threshold, THRESHOLD))
    dataset = image_dataset(dataset, "find_duplicates", side="train")
    other = None if other is None else image_dataset(other, "find_duplicates", side="test")
    fa, ok_a = image_features(dataset, featurizer, "find_duplicates")
    fb, ok_b = (None, None) if other is None else image_features(other, featurizer, "find_duplicates")
    keep_a = np.flatnonzero(ok_a)
    keep_b = None if other is None else np.flatnonzero(ok_b)
    paths_a = [dataset.paths[i] for i in keep_a]
    paths_b = paths_a if other is None else [other.paths[i] for i in keep_b]
    hashes_a = content_hashes(paths_a)
    hashes_b = None if other is None else content_hashes(paths_b)
    pairs = dict.fromkeys(_exact_pairs(hashes_a, hashes_b), (1.0, "exact"))
    near = _near_pairs(paths_a, paths_b, _unit(fa[keep_a]), None if other is None else _unit(fb[keep_b]),
                       threshold)
    for pair, sim in near.items():
        pairs.setdefault(pair, (sim, "near"))
    labels_a = dataset.image_labels
    labels_b = labels_a if other is None else other.image_labels
    index_b = keep_a if other is None else keep_b
    rows = [(paths_a[i], paths_b[j], labels_a[keep_a[i]], labels_b[index_b[j]], min(sim, 1.0), kind,
             int(keep_a[i]), int(index_b[j])) for (i, j), (sim, kind) in pairs.items()]
    table = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    table["similarity"] = table["similarity"].astype(float)
    table["index_a"] = table["index_a"].astype(np.int64)
    table["index_b"] = table["index_b"].astype(np.int64)
    order = table.assign(_exact=table.kind != "exact").sort_values(
        ["_exact", "similarity", "index_a", "index_b"], ascending=[True, False, True, True], kind="stable")
    return order.drop(columns="_exact").reset_index(drop=True)


def groups_from_pairs(n: int, index_a: Sequence[int], index_b: Sequence[int]) -> np.ndarray:
    """Connected components of ``n`` items linked by pairs: a group id per item, numbered by first item.

    Example:
        >>> groups_from_pairs(5, [0, 3], [2, 2]).tolist()
        [0, 1, 0, 0, 2]
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a = np.asarray(index_a, dtype=np.int64)
    b = np.asarray(index_b, dtype=np.int64)
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    _, first = np.unique(component, return_index=True)
    renumber = np.empty(len(first), dtype=np.int64)
    renumber[np.argsort(np.argsort(first))] = np.arange(len(first))
    return renumber[component]


def duplicate_groups(dataset: Any, threshold: float = DEFAULT_THRESHOLD, *,
                     featurizer: Any = None) -> np.ndarray:
    """A group id per image: images linked by exact or near-duplicate pairs share one.

    ``dataset`` is what :func:`find_duplicates` takes. Use the ids to keep copies on one side of a
    split (scikit-learn's ``groups=``, e.g. ``StratifiedGroupKFold``); every image without a
    duplicate (and every unreadable one) is a group of its own. Ids are 0, 1, ... in order of each
    group's first image.

    Example:
        >>> groups = duplicate_groups("sample_data/bird")
        >>> len(groups), len(set(groups.tolist()))   # no duplicates there
        (35, 35)
    """
    dataset = image_dataset(dataset, "duplicate_groups", side="train")
    pairs = find_duplicates(dataset, threshold=threshold, featurizer=featurizer)
    return groups_from_pairs(len(dataset), pairs["index_a"].to_numpy(), pairs["index_b"].to_numpy())
