"""How far an image lies from a model's training photos: the novelty score behind the "unknown" answer.

Why: a classifier of five classes labels anything as one of them, often confidently. The backbone's
features of the training photos say what the model has seen; an image whose features are far from
all of them is "none of these". :class:`NoveltyScorer` keeps small arrays (no code, no pickles) and
scores features; higher means more novel. Methods (``bench/unknown.py`` compares them):

- ``"knn"``: cosine distance to the ``k``-th nearest training photo (features L2-normalised; the
  reference set is a class-stratified subsample of at most ``max_reference`` photos, so the cost
  per image stays bounded however many photos trained the model);
- ``"mahalanobis"``: the smallest Mahalanobis distance to a class mean of the L2-normalised
  features, with one covariance shared by the classes, shrunk by Ledoit-Wolf (Lee et al., 2018).
  In the full feature space: projecting on the training photos' main directions first (PCA)
  throws away the directions in which unknown images differ, and scored no better than chance
  (``bench/unknown.py``);
- ``"combined"``: the mean of the two, each first turned into its rank among the training photos'
  out-of-fold scores (so neither scale dominates).

:func:`out_of_fold_scores` scores every training photo by a scorer fitted without it (k-fold), so
a cut taken from them (:func:`cut_for`: keep 95% of them) matches what unseen photos of the known
classes will score.

Example:
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(3, 16)) * 3
    >>> y = np.repeat([0, 1, 2], 40)
    >>> X = np.abs(centres[y] + rng.normal(size=(120, 16)))
    >>> scorer = NoveltyScorer("knn", k=5).fit(X, y)
    >>> far = np.abs(rng.normal(size=(5, 16))) * 10 * np.eye(16)[:5]
    >>> bool(scorer.score(far).min() > np.quantile(scorer.score(X), 0.95))
    True
"""
from __future__ import annotations

import io
from typing import Any

import numpy as np

__all__ = ["NoveltyScorer", "METHODS", "out_of_fold_scores", "cut_for", "fit_novelty", "MAX_REFERENCE"]

#: Scoring methods.
METHODS = ("knn", "mahalanobis", "combined")
#: Largest reference set the kNN score keeps (a class-stratified subsample beyond it).
MAX_REFERENCE = 5000
#: Bounds on stored arrays: feature width and reference rows.
_MAX_FEATURES, _MAX_ROWS = 65_536, 200_000


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _subsample(y: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Indices of at most ``limit`` rows, every class keeping its share (and at least one row)."""
    if len(y) <= limit:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        where = np.flatnonzero(y == c)
        n = max(1, int(round(limit * len(where) / len(y))))
        keep.append(rng.choice(where, size=min(n, len(where)), replace=False))
    return np.sort(np.concatenate(keep))


class NoveltyScorer:
    """Novelty of features: ``fit(features, classes)`` then ``score(features)`` (higher = more novel).

    Parameters: ``method`` (see :data:`METHODS`), ``k`` (neighbour for ``"knn"``),
    ``max_reference``, ``random_state``.
    Fitted state is a dict of float arrays (``arrays_``), stored as ``novelty.npz`` in a model folder,
    and (from :func:`fit_novelty`) ``train_scores_``: the training photos' out-of-fold scores, sorted,
    from which a cut keeping a share of them is read (:meth:`cut`).
    """

    train_scores_: np.ndarray | None = None

    def __init__(self, method: str = "mahalanobis", k: int = 5, max_reference: int = MAX_REFERENCE,
                 random_state: int = 0):
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
        self.method, self.k = method, int(k)
        self.max_reference, self.random_state = int(max_reference), int(random_state)

    # ------------------------------------------------------------------ fitting
    def fit(self, features: np.ndarray, y: np.ndarray) -> NoveltyScorer:
        """Keep what scoring needs from training ``features`` ``(n, d)`` and their class indices ``y``."""
        X = _unit(features)
        y = np.asarray(y, dtype=np.int64)
        arrays: dict[str, np.ndarray] = {}
        if self.method in ("knn", "combined"):
            arrays["reference"] = X[_subsample(y, self.max_reference, self.random_state)].astype(np.float16)
        if self.method in ("mahalanobis", "combined"):
            arrays.update(_mahalanobis_arrays(X, y))
        self.arrays_ = arrays
        if self.method == "combined":  # the rank scale of each part, from the training photos' own scores
            parts = _part_scores(self, X, exclude_self=True)
            self.arrays_["knn_sorted"] = np.sort(parts["knn"]).astype(np.float32)
            self.arrays_["mahalanobis_sorted"] = np.sort(parts["mahalanobis"]).astype(np.float32)
        return self

    # ------------------------------------------------------------------ scoring
    def score(self, features: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        """Novelty float32 ``(n,)`` of features ``(n, d)``; ``exclude_self`` skips an exact match (a
        training photo scored against a reference set holding it)."""
        X = _unit(features)
        parts = _part_scores(self, X, exclude_self)
        if self.method != "combined":
            return parts[self.method].astype(np.float32)
        ranks = [np.searchsorted(self.arrays_[f"{name}_sorted"], parts[name]) / len(self.arrays_[f"{name}_sorted"])
                 for name in ("knn", "mahalanobis")]
        return np.mean(ranks, axis=0).astype(np.float32)

    def cut(self, keep: float = 0.95) -> float:
        """The novelty cut keeping a share ``keep`` of the training photos' out-of-fold scores."""
        if self.train_scores_ is None or not len(self.train_scores_):
            raise ValueError("this novelty scorer has no out-of-fold training scores to choose a cut from")
        return cut_for(self.train_scores_, keep)

    # ------------------------------------------------------------------ file
    def to_npz(self) -> bytes:
        buffer = io.BytesIO()
        extra = {} if self.train_scores_ is None else {"train_scores": np.asarray(self.train_scores_, np.float32)}
        np.savez(buffer, **self.arrays_, **extra)
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, data: bytes, where: str, method: str, k: int, n_features: int) -> NoveltyScorer:
        """A fitted scorer from ``.npz`` bytes: only finite float arrays of the expected names and
        shapes are accepted (``ValueError`` naming ``where`` and the array)."""
        scorer = cls(method, k=k)
        expected = {"knn": ["reference"], "mahalanobis": ["means", "precision"]}
        names = expected.get(method, expected["knn"] + expected["mahalanobis"] + ["knn_sorted", "mahalanobis_sorted"])
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                found = sorted(set(archive.files) - {"train_scores"})
                if found != sorted(names):
                    raise ValueError(f"{where}: holds arrays {sorted(archive.files)}; a {method!r} novelty "
                                     f"score needs exactly {sorted(names)} (and optionally 'train_scores')")
                arrays = {name: archive[name] for name in archive.files}
        except ValueError as exc:
            text = str(exc)
            raise ValueError(text if text.startswith(where) else f"{where}: not a novelty file ({exc})") from None
        except Exception as exc:  # noqa: BLE001 - a damaged zip
            raise ValueError(f"{where}: not a novelty file ({type(exc).__name__}: {exc})") from None
        for name, array in arrays.items():
            if array.dtype.kind != "f" or array.size > _MAX_ROWS * 2048 or not np.all(np.isfinite(array)):
                raise ValueError(f"{where}: array {name!r} must hold finite floats within bounds, got "
                                 f"{array.dtype} {array.shape}")
        _check_shapes(where, arrays, n_features, k)
        scorer.train_scores_ = arrays.pop("train_scores", None)
        scorer.arrays_ = arrays
        return scorer


def _check_shapes(where: str, arrays: dict, d: int, k: int) -> None:
    ref = arrays.get("reference")
    if ref is not None and (ref.ndim != 2 or ref.shape[1] != d or not (1 <= len(ref) <= _MAX_ROWS) or k > len(ref)):
        raise ValueError(f"{where}: 'reference' must be (rows, {d}) with at least k={k} rows, got {ref.shape}")
    if "means" in arrays:
        means, prec = arrays["means"], arrays["precision"]
        if means.ndim != 2 or means.shape[1] != d or not (1 <= len(means) <= 10_000) or prec.shape != (d, d):
            raise ValueError(f"{where}: Mahalanobis arrays do not fit {d} features: means {means.shape}, "
                             f"precision {prec.shape}")
    for name in ("knn_sorted", "mahalanobis_sorted", "train_scores"):
        if name in arrays and (arrays[name].ndim != 1 or not 1 <= len(arrays[name]) <= _MAX_ROWS):
            raise ValueError(f"{where}: {name!r} must be one row of scores, got {arrays[name].shape}")


def _mahalanobis_arrays(X: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    classes = np.unique(y)
    X = np.asarray(X, dtype=np.float64)
    means = np.stack([X[y == c].mean(axis=0) for c in classes])
    within = X - means[np.searchsorted(classes, y)]
    return {"means": means.astype(np.float32), "precision": shrunk_precision(within).astype(np.float32)}


def shrunk_precision(within: np.ndarray) -> np.ndarray:
    """The inverse of the Ledoit-Wolf shrunk covariance of centred rows ``within`` (float64).

    The same matrix as ``sklearn.covariance.LedoitWolf(assume_centered=True).fit(within).precision_``,
    found by a Cholesky solve rather than a pseudo-inverse: the shrunk covariance is positive
    definite, and the solve is about twice as fast on 1,280 features (the novelty scorer fits it
    once per fold, so it was most of a feature classifier's fit time).

    Example:
        >>> from sklearn.covariance import LedoitWolf
        >>> W = np.random.default_rng(0).normal(size=(30, 8))
        >>> bool(np.allclose(shrunk_precision(W), LedoitWolf(assume_centered=True).fit(W).precision_))
        True
    """
    from scipy.linalg import LinAlgError, cho_factor, cho_solve, pinvh
    from sklearn.covariance import ledoit_wolf_shrinkage

    W = np.asarray(within, dtype=np.float64)
    shrinkage = float(ledoit_wolf_shrinkage(W, assume_centered=True))
    empirical = W.T @ W / len(W)
    covariance = (1.0 - shrinkage) * empirical
    covariance.flat[:: len(covariance) + 1] += shrinkage * np.trace(empirical) / len(empirical)
    try:
        return cho_solve(cho_factor(covariance), np.eye(len(covariance)))
    except LinAlgError:  # singular (e.g. no spread at all): the pseudo-inverse, as LedoitWolf gives it
        return pinvh(covariance)


def _mahalanobis(X: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Smallest squared Mahalanobis distance of each row to a class mean.

    Expanded as ``x'Px - 2 mu'Px + mu'P mu`` (``P`` symmetric), so the cost per image is one product
    with ``P`` whatever the number of classes (in float64: the terms are large and nearly cancel).
    """
    P = precision.astype(np.float64)
    M = means.astype(np.float64)
    Px = np.asarray(X, dtype=np.float64) @ P
    squared = np.einsum("nd,nd->n", Px, X)[:, None] - 2.0 * (Px @ M.T) + np.einsum("cd,cd->c", M @ P, M)[None, :]
    return np.maximum(squared.min(axis=1), 0.0).astype(np.float32)


def _part_scores(scorer: NoveltyScorer, X: np.ndarray, exclude_self: bool) -> dict[str, np.ndarray]:
    arrays, out = scorer.arrays_, {}
    if "reference" in arrays:
        out["knn"] = _knn_distance(X, arrays["reference"].astype(np.float32), scorer.k, exclude_self)
    if "means" in arrays:
        out["mahalanobis"] = _mahalanobis(X, arrays["means"], arrays["precision"])
    return out


def _knn_distance(X: np.ndarray, reference: np.ndarray, k: int, exclude_self: bool, block: int = 1024) -> np.ndarray:
    """Cosine distance to the k-th nearest reference row (the nearest one skipped when ``exclude_self``)."""
    kth = min(k + (1 if exclude_self else 0), len(reference)) - 1
    out = np.empty(len(X), np.float32)
    for start in range(0, len(X), block):
        similarity = X[start:start + block] @ reference.T
        part = np.partition(-similarity, kth, axis=1)[:, kth]
        out[start:start + block] = 1.0 + part  # 1 - (k-th largest similarity)
    return out


def out_of_fold_scores(scorer: NoveltyScorer, features: np.ndarray, y: np.ndarray, folds: int = 5,
                       random_state: int = 0) -> np.ndarray:
    """Each training photo's novelty under a scorer fitted on the other folds (stratified k-fold).

    Example:
        >>> rng = np.random.default_rng(1)
        >>> X, y = np.abs(rng.normal(size=(40, 8))), np.repeat([0, 1], 20)
        >>> out_of_fold_scores(NoveltyScorer("knn", k=3), X, y).shape
        (40,)
    """
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    smallest = int(np.bincount(np.unique(y, return_inverse=True)[1]).min())
    n_folds = max(2, min(int(folds), smallest))
    scores = np.empty(len(y), np.float32)
    template: dict[str, Any] = {"method": scorer.method, "k": scorer.k, "max_reference": scorer.max_reference,
                                "random_state": scorer.random_state}
    splitter = StratifiedKFold(n_folds, shuffle=True, random_state=random_state) if smallest >= 2 else None
    if splitter is None:  # a class of one photo: leave-one-out by excluding each photo's own match
        return NoveltyScorer(**template).fit(features, y).score(features, exclude_self=True)
    for train, held in splitter.split(features, y):
        scores[held] = NoveltyScorer(**template).fit(features[train], y[train]).score(features[held])
    return scores


def cut_for(scores: np.ndarray, keep: float = 0.95) -> float:
    """The novelty cut that keeps a share ``keep`` of ``scores`` (those at or below it are kept).

    Example:
        >>> cut_for(np.arange(100.0), keep=0.95)
        94.05
    """
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be a share in (0, 1], got {keep!r}")
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[np.isfinite(scores)]
    if len(scores) == 0:
        raise ValueError("no finite novelty scores to choose a cut from")
    return float(np.quantile(scores, keep))


def fit_novelty(method: str, features: np.ndarray, y: np.ndarray, folds: int = 5, random_state: int = 0
                ) -> NoveltyScorer:
    """A :class:`NoveltyScorer` fitted on all training ``features``, holding their out-of-fold scores
    (``train_scores_``, sorted, at most 10,000 kept evenly) so a cut can be chosen later without them.

    Example:
        >>> rng = np.random.default_rng(2)
        >>> X, y = np.abs(rng.normal(size=(60, 8))), np.repeat([0, 1, 2], 20)
        >>> scorer = fit_novelty("mahalanobis", X, y)
        >>> len(scorer.train_scores_), bool(scorer.cut(0.95) >= np.median(scorer.train_scores_))
        (60, True)
    """
    scorer = NoveltyScorer(method, random_state=random_state)
    scores = np.sort(out_of_fold_scores(scorer, features, y, folds=folds, random_state=random_state))
    if len(scores) > 10_000:
        scores = scores[np.linspace(0, len(scores) - 1, 10_000).round().astype(int)]
    scorer.fit(features, y)
    scorer.train_scores_ = scores.astype(np.float32)
    return scorer
