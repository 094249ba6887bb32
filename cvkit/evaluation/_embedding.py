"""A map of the whole dataset: every photo as a point, placed by its backbone features, coloured by label.

Why: a confusion matrix says *that* two classes mix; a map shows *where*: a class that splits into
two islands (two kinds of photo under one name), a photo sitting in another class's cloud (a wrong
label, or a hard case), a tight knot of points (near-duplicates). Features come from the same
cached featurizer as :func:`cvkit.find_label_issues`, so after an audit the map costs no new
featurizing.

How the 2-D positions are made (``method="auto"``, the default): the features are reduced to 50
dimensions by PCA, then laid out by t-SNE (scikit-learn; perplexity 30, or less for a small set),
which keeps each photo's nearest neighbours near it: what one wants to see in a dataset. UMAP
(``umap-learn``) would do the same but is not a dependency of cvkit. t-SNE costs grow with the
number of points (scikit-learn's takes about 30 s for 3,000 points on 2 CPU cores), so for more than
:data:`TSNE_MAX_POINTS` points, t-SNE lays out a seeded sample of that many and every other point is
placed at the distance-weighted mean of its 5 nearest sampled neighbours (in the PCA space): 10,000
points take about 35 s (``bench/embedding.py``). With fewer than :data:`TSNE_MIN_POINTS` points the
map is the first two PCA components (t-SNE needs a neighbourhood); ``method="pca"`` asks for that
always (fast, linear, keeps large distances rather than neighbours) and ``method="tsne"`` for t-SNE
on every point, however long.

Example:
    >>> import numpy as np
    >>> features = np.random.default_rng(0).normal(size=(40, 16))
    >>> xy = embedding_coordinates(features, labels=["a"] * 20 + ["b"] * 20)
    >>> list(xy.columns), xy.attrs["method"]
    (['x', 'y', 'label', 'path'], 'PCA (16 dimensions) + t-SNE')
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cvkit._validation import Interval, Options, check_param
from cvkit.classifiers._inputs import image_dataset
from cvkit.evaluation._audit import image_features

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["embedding_coordinates", "plot_embedding", "project", "marked_rows", "TSNE_MAX_POINTS", "TSNE_MIN_POINTS",
           "PCA_DIMENSIONS"]

#: Above this many points, t-SNE lays out a sample and the rest are placed by their neighbours.
TSNE_MAX_POINTS = 3000
#: Below this many points the map is PCA's (t-SNE needs a few neighbours per point).
TSNE_MIN_POINTS = 5
#: Dimensions PCA keeps before t-SNE.
PCA_DIMENSIONS = 50
_NEIGHBOURS = 5  # sampled neighbours that place a point beyond the t-SNE sample


def _pca(features: np.ndarray, k: int, random_state: int | None) -> np.ndarray:
    from sklearn.decomposition import PCA

    k = min(k, features.shape[0], features.shape[1])
    solver = "randomized" if min(features.shape) > 4 * k else "full"
    return PCA(n_components=k, svd_solver=solver, random_state=random_state).fit_transform(features)


def project(features: np.ndarray, method: str = "auto", random_state: int | None = 0) -> tuple[np.ndarray, str]:
    """``(xy, description)``: 2-D positions of feature rows and the method that made them.

    See the module notes for ``method`` (``"auto"``, ``"tsne"`` or ``"pca"``). Deterministic for a
    given ``random_state``. One point sits at the origin; two lie on a line.

    Example:
        >>> xy, how = project(np.eye(3), method="auto")
        >>> xy.shape, how
        ((3, 2), 'PCA')
    """
    check_param("method", method, [Options(["auto", "tsne", "pca"])])
    X = np.asarray(features, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"features must be a 2-D array (one row per image), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("features hold NaN or infinite values: leave out the unreadable images first")
    n = len(X)
    xy = np.zeros((n, 2))
    if n <= 1:
        return xy, "PCA"
    if method == "pca" or n < TSNE_MIN_POINTS:
        pcs = _pca(X, 2, random_state)
        xy[:, :pcs.shape[1]] = pcs
        return xy, "PCA"
    from sklearn.manifold import TSNE

    reduced = _pca(X, PCA_DIMENSIONS, random_state) if X.shape[1] > PCA_DIMENSIONS else X
    how = f"PCA ({reduced.shape[1]} dimensions) + t-SNE"
    sample = np.arange(n)
    if method == "auto" and n > TSNE_MAX_POINTS:
        sample = np.sort(np.random.default_rng(random_state).choice(n, TSNE_MAX_POINTS, replace=False))
        how += f" of {TSNE_MAX_POINTS} sampled points, the others placed by their {_NEIGHBOURS} nearest"
    perplexity = float(min(30.0, (len(sample) - 1) / 3))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", max_iter=500, random_state=random_state)
    xy[sample] = tsne.fit_transform(reduced[sample])
    rest = np.setdiff1d(np.arange(n), sample)
    if len(rest):
        from sklearn.neighbors import NearestNeighbors

        distances, nearest = NearestNeighbors(n_neighbors=_NEIGHBOURS).fit(reduced[sample]).kneighbors(reduced[rest])
        weights = 1.0 / np.maximum(distances, 1e-9)
        weights /= weights.sum(axis=1, keepdims=True)
        xy[rest] = np.einsum("rk,rkd->rd", weights, xy[sample][nearest])
    return xy, how


def _marks(marks: Any, table: pd.DataFrame, what: str) -> np.ndarray:
    """Which rows of a coordinates ``table`` ``marks`` names: by a mask or positions of the input, by
    paths, or by an audit's or evaluation's table (see :func:`plot_embedding`)."""
    n = len(table)
    if marks is None:
        return np.zeros(n, dtype=bool)
    if hasattr(marks, "y_pred") and hasattr(marks, "y_true"):  # an EvaluationReport: its wrong answers
        if marks.paths is None:
            raise ValueError(f"{what}: this report has no image paths to mark; pass a mask or paths")
        marks = [p for p, t, q in zip(marks.paths, marks.y_true, marks.y_pred) if t != q]
    elif hasattr(marks, "columns"):  # a DataFrame
        rows = marks[marks.is_issue.astype(bool)] if "is_issue" in marks.columns else marks  # find_label_issues
        if "path_a" in rows.columns:  # find_duplicates: both photos of each pair
            marks = list(rows.path_a) + list(rows.path_b)
        elif "path" in rows.columns:
            marks = list(rows.path)
        else:
            raise ValueError(f"{what}: a table needs a path column (or path_a and path_b)")
    values = list(marks)
    size = int(table.attrs.get("n_input", n))
    if values and all(isinstance(v, (bool, np.bool_)) for v in values):
        if len(values) != size:
            raise ValueError(f"{what}: a mask of {len(values)} entries for {size} images")
        return np.asarray(values, dtype=bool)[table.index.to_numpy()]
    if values and all(isinstance(v, (int, np.integer)) for v in values):
        index = np.asarray(values, dtype=np.int64)
        if index.min() < 0 or index.max() >= size:
            raise IndexError(f"{what}: positions must be in [0, {size})")
        return np.isin(table.index.to_numpy(), index)
    if not (table.path.astype(str) != "").any():
        raise ValueError(f"{what}: features have no paths; mark them with a boolean mask or positions")
    return table.path.isin({str(v) for v in values}).to_numpy()


def marked_rows(marks: Any, table: pd.DataFrame, what: str = "marks") -> np.ndarray:
    """A boolean mask over the rows of :func:`embedding_coordinates`'s ``table``: the photos ``marks``
    names (the inputs :func:`plot_embedding` takes for ``label_issues``, ``duplicates`` and ``wrong``).

    Example:
        >>> xy = embedding_coordinates(np.eye(3), method="pca")
        >>> marked_rows([2], xy).tolist()
        [False, False, True]
    """
    return _marks(marks, table, what)


def embedding_coordinates(dataset_or_features: Any, labels: Sequence[str] | None = None, *, method: str = "auto",
                          random_state: int | None = 0, featurizer: Any = None) -> pd.DataFrame:
    """The 2-D map of a dataset (or of feature rows): one row per readable image with ``x``, ``y``, ``label``, ``path``.

    ``dataset_or_features`` is an :class:`~cvkit.data.ImageDataset`, any input of image files
    :meth:`cvkit.ImageSource.resolve` takes (its features come from the cached featurizer, default
    :func:`cvkit.evaluation._audit.default_featurizer`, or ``featurizer``), or an array of features
    ``(n, d)``. ``labels`` (one per image) replaces or supplies the labels. The index is each
    image's position in the input (unreadable images are left out, with one warning);
    ``attrs["method"]`` says how the positions were made (see the module notes). What
    :func:`plot_embedding` draws, for a widget or another plot to reuse.

    Example:
        >>> xy = embedding_coordinates("sample_data")
        >>> len(xy), sorted(set(xy.label)), xy.attrs["method"]
        (104, ['bird', 'flower', 'fruit', 'vegetable'], 'PCA (50 dimensions) + t-SNE')
    """
    import pandas as pd

    if isinstance(dataset_or_features, np.ndarray) and dataset_or_features.dtype.kind in "fiu" \
            and dataset_or_features.ndim == 2:
        features = dataset_or_features
        keep, n_input = np.arange(len(features)), len(features)
        paths = [""] * len(features)
        given = [""] * len(features)
    else:
        dataset = image_dataset(dataset_or_features, "plot_embedding", side="train")
        features, ok = image_features(dataset, featurizer, "plot_embedding")
        keep, n_input = np.flatnonzero(ok), len(dataset)
        features, paths, given = features[keep], [dataset.paths[i] for i in keep], \
            [dataset.image_labels[i] for i in keep]
    if labels is not None:
        labels = [str(v) for v in labels]
        if len(labels) != n_input:
            raise ValueError(f"{len(labels)} labels for {n_input} images")
        given = [labels[i] for i in keep]
    xy, how = project(features, method=method, random_state=random_state)
    table = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "label": given, "path": paths},
                         index=pd.Index(keep, name="index"))
    table.attrs.update(method=how, n_input=n_input)
    return table


def plot_embedding(dataset_or_features: Any, labels: Sequence[str] | None = None, *, label_issues: Any = None,
                   duplicates: Any = None, wrong: Any = None, method: str = "auto", random_state: int | None = 0,
                   featurizer: Any = None, coordinates: pd.DataFrame | None = None, ax: Any = None,
                   figsize: tuple[float, float] = (8.0, 6.5), point_size: float | None = None):
    """A map of the dataset: one point per photo (placed by its features, see the module notes), coloured by label.

    Parameters
    ----------
    dataset_or_features, labels, method, random_state, featurizer : as :func:`embedding_coordinates`
        (pass ``coordinates``, its table, to draw again without recomputing).
    label_issues : photos to ring in black: :func:`cvkit.find_label_issues`'s table (its ``is_issue``
        rows), a ``cvkit audit`` table, a list of paths, positions or a boolean mask.
    duplicates : photos to cross: :func:`cvkit.find_duplicates`'s table (both photos of a pair), or
        paths, positions, a mask.
    wrong : photos to ring in red: an :class:`~cvkit.evaluation.EvaluationReport` from
        :func:`cvkit.evaluate` (its wrong answers, matched by path), or paths, positions, a mask.
    ax : a matplotlib Axes to draw into (default: a new figure of ``figsize`` inches).

    Returns the Figure (a static picture, e.g. for a report: ``fig.savefig("map.png")``). Classes
    get the colours of cvkit's other plots, the legend gives their counts and what each mark means.

    Example:
        >>> import cvkit
        >>> ds = cvkit.ImageDataset.from_directory("sample_data")
        >>> fig = plot_embedding(ds, label_issues=[ds.paths[0]])
        >>> fig.axes[0].get_title().splitlines()[0]
        'Map of 104 photos by their features (1 possible label issue)'
    """
    check_param("point_size", point_size, [Interval(float, 0, None, closed="neither"), None])
    table = coordinates if coordinates is not None else embedding_coordinates(
        dataset_or_features, labels, method=method, random_state=random_state, featurizer=featurizer)
    n = len(table)
    issues, dups, errors = (_marks(label_issues, table, "label_issues"), _marks(duplicates, table, "duplicates"),
                            _marks(wrong, table, "wrong"))
    if ax is None:
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=figsize)
    fig = ax.figure
    import matplotlib

    classes = sorted(set(table.label))
    cmap = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
    size = point_size or float(np.clip(3000 / max(n, 1), 4, 60))
    for k, name in enumerate(classes):
        rows = (table.label == name).to_numpy()
        ax.scatter(table.x[rows], table.y[rows], s=size, color=cmap(k % cmap.N), alpha=0.8, linewidths=0,
                   label=f"{name or 'no label'} ({int(rows.sum())})")
    ring = max(size * 3, 40)
    for mask, style, name in ((issues, {"facecolors": "none", "edgecolors": "black"}, "possible label issue"),
                              (errors, {"facecolors": "none", "edgecolors": "red"}, "wrong answer"),
                              (dups, {"marker": "x", "color": "black"}, "duplicate")):
        if mask.any():
            ax.scatter(table.x[mask], table.y[mask], s=ring, linewidths=1.4, label=f"{name} ({int(mask.sum())})",
                       **style)
    notes = [f"{int(m.sum())} {w}{'s' if m.sum() > 1 else ''}" for m, w in (
        (issues, "possible label issue"), (dups, "duplicate"), (errors, "wrong answer")) if m.any()]
    title = f"Map of {n} photos by their features" + (f" ({', '.join(notes)})" if notes else "")
    ax.set_title(f"{title}\n{table.attrs.get('method', '')}", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    if n:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False, markerscale=1.0)
    fig.tight_layout()
    return fig
