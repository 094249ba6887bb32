"""matplotlib figures of an evaluation. Every function returns its ``Figure`` (shown in a notebook).

Why functions of a report: each plot draws exactly the numbers of an
:class:`~cvkit.evaluation.EvaluationReport`, so a figure and the report's tables never disagree.
The report's ``plot_*`` methods call these.

Example:
    >>> from cvkit.evaluation import EvaluationReport
    >>> report = EvaluationReport([0, 1, 1, 0], [[.9, .1], [.2, .8], [.6, .4], [.7, .3]], ["a", "b"])
    >>> fig = plot_roc(report)
    >>> fig.axes[0].get_title()
    'ROC curves (one vs rest)'
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cvkit.classifiers._history import plot_history
from cvkit.data._grid import image_grid
from cvkit.data._images import ImageReadError, open_image
from cvkit.data._source import decode_item
from cvkit.evaluation._embedding import plot_embedding
from cvkit.evaluation._heatmaps import overlay_heatmap, plot_heatmaps
from cvkit.evaluation._tables import between

__all__ = ["image_grid"]


# ---------------------------------------------------------------------------------------------
# Evaluation plots. Each takes an ``EvaluationReport`` (see cvkit.evaluation) and returns the Figure;
# the single-panel ones draw into ``ax`` when given, so they compose into larger figures.
# ---------------------------------------------------------------------------------------------
__all__ += ["plot_confusion_matrix", "plot_roc", "plot_pr", "plot_summary", "plot_thresholds", "plot_calibration",
            "plot_history", "plot_predictions", "plot_top_losses", "overlay_heatmap", "plot_heatmaps"]

_AVERAGE_STYLE = {"micro": {"color": "black", "linestyle": ":", "linewidth": 2.2},
                  "macro": {"color": "dimgray", "linestyle": "--", "linewidth": 2.2}}


def _figure_and_axes(ax, figsize: tuple[float, float]):
    """Use the caller's Axes (and its Figure) or make a new single-panel Figure."""
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def _class_colors(n: int) -> list:
    import matplotlib
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def plot_confusion_matrix(report, ax=None, normalize: bool = False, classes: Sequence[str] | None = None,
                          cmap: str = "Blues", values: bool = True, colorbar: bool = False,
                          title: str | None = None):
    """Confusion matrix as a heat map: true class down the side, predicted class along the bottom.

    ``report`` is an ``EvaluationReport`` or a square count matrix (then pass ``classes``).
    ``normalize=True`` colours and labels each cell with its share of the true class (rows sum to 1);
    the counts are always shown too. Returns the Figure.

    Example:
        >>> fig = plot_confusion_matrix([[5, 1], [0, 4]], classes=["cat", "dog"], normalize=True)
        >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
        ['cat', 'dog']
    """
    if hasattr(report, "confusion_matrix") and hasattr(report, "classes"):
        counts = np.asarray(report.confusion_matrix)
        classes = list(report.classes) if classes is None else list(classes)
    else:
        counts = np.asarray(report)
        if classes is None:
            classes = [str(i) for i in range(counts.shape[0])]
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(classes):
        raise ValueError(f"need a square confusion matrix with one row per class; got shape "
                         f"{counts.shape} for {len(classes)} classes")
    rows = counts.sum(axis=1, keepdims=True).astype(np.float64)
    shares = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    shown = shares if normalize else counts
    k = len(classes)
    side = max(3.8, 0.55 * k + 2.2)
    fig, ax = _figure_and_axes(ax, (side + (1.0 if colorbar else 0.0), side))
    vmax = 1.0 if normalize else max(1, int(counts.max()))
    image = ax.imshow(shown, cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
    if colorbar:
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), labels=classes, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(k), labels=classes)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.set_title(title or ("Confusion matrix (share of true class)" if normalize else "Confusion matrix"))
    if values and k <= 30:
        fontsize = 10 if k <= 8 else 7
        for i in range(k):
            for j in range(k):
                text = f"{shares[i, j]:.2f}\n({counts[i, j]})" if normalize else f"{counts[i, j]}"
                if normalize and counts[i, j] == 0:
                    text = "0"
                dark = shown[i, j] > 0.55 * vmax
                ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                        color="white" if dark else "black")
    ax.set_xlim(-0.5, k - 0.5)
    ax.set_ylim(k - 0.5, -0.5)
    return fig


def plot_roc(report, ax=None, averages: Sequence[str] = ("micro", "macro"),
             classes: Sequence[str] | None = None, title: str | None = None):
    """One-vs-rest ROC curves, one per class, labelled with their AUC, plus micro/macro averages.

    A class with no test images has no ROC curve; it is listed in the legend as such. Returns the
    Figure. Example: ``plot_roc(report)``.
    """
    curves = report.roc_curves()
    fig, ax = _figure_and_axes(ax, (5.2, 5.0))
    _plot_class_curves(ax, report, classes, curves, "AUC",
                       lambda ax, c, **style: ax.plot(c[0], c[1], linewidth=1.5, **style))
    for avg in averages:
        fpr, tpr, auc = curves[avg]
        if not np.isnan(auc):
            ax.plot(fpr, tpr, label=f"{avg} average (AUC {auc:.3f})", **_AVERAGE_STYLE[avg])
    ax.plot([0, 1], [0, 1], color="lightgray", linewidth=1, linestyle="-", zorder=0, label="chance")
    _finish_curve_axes(ax, "False positive rate", "True positive rate", title or "ROC curves (one vs rest)",
                       "lower right")
    return fig


def plot_pr(report, ax=None, averages: Sequence[str] = ("micro",),
            classes: Sequence[str] | None = None, title: str | None = None):
    """Precision-recall curves, one per class, labelled with their average precision (AP).

    The micro average pools every (image, class) decision; the legend also gives the macro AP.
    Returns the Figure. Example: ``plot_pr(report)``.
    """
    curves = report.pr_curves()
    fig, ax = _figure_and_axes(ax, (5.2, 5.0))
    _plot_class_curves(ax, report, classes, curves, "AP",
                       lambda ax, c, **style: ax.step(c[1], c[0], where="post", linewidth=1.5, **style))
    for avg in averages:
        precision, recall, ap = curves[avg]
        if avg == "micro" and not np.isnan(ap):
            ax.step(recall, precision, where="post", label=f"micro average (AP {ap:.3f})",
                    **_AVERAGE_STYLE["micro"])
    macro = curves["macro"][2]
    if not np.isnan(macro):
        ax.plot([], [], " ", label=f"macro AP {macro:.3f}")
    _finish_curve_axes(ax, "Recall", "Precision", title or "Precision-recall curves", "lower left")
    return fig


def _plot_class_curves(ax, report, classes: Sequence[str] | None, curves: dict, metric: str, draw) -> None:
    """One curve per class (``draw(ax, (x, y, value), color=, label=)``) labelled with ``metric``;
    a class whose value is undefined (no test images) is listed in the legend as such."""
    names = list(report.classes) if classes is None else [str(c) for c in classes]
    for name, color in zip(names, _class_colors(len(report.classes))):
        curve = curves[name]
        if np.isnan(curve[2]):
            ax.plot([], [], color=color, label=f"{name} (undefined)")
        else:
            draw(ax, curve, color=color, label=f"{name} ({metric} {curve[2]:.3f})")


def _finish_curve_axes(ax, xlabel: str, ylabel: str, title: str, legend_loc: str) -> None:
    """The unit square with a little margin, labels, title, legend and a light grid."""
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc=legend_loc, fontsize=8)
    ax.grid(alpha=0.3)


def plot_summary(report, normalize: bool = True, figsize: tuple[float, float] | None = None,
                 suptitle: str | bool | None = True):
    """Confusion matrix, ROC and precision-recall side by side in one Figure (cvtk's summary view).

    ``suptitle=True`` writes the headline numbers (accuracy, balanced accuracy, log-loss, macro AUC)
    on top, each with its 95% interval (:meth:`~cvkit.evaluation.EvaluationReport.intervals`).
    Example: ``plot_summary(report).savefig("evaluation.png")``.
    """
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=figsize or (17, 5.4), gridspec_kw={"width_ratios": [1, 1, 1]})
    plot_confusion_matrix(report, ax=axes[0], normalize=normalize)
    plot_roc(report, ax=axes[1])
    plot_pr(report, ax=axes[2])
    if suptitle is True:
        auc = report.auc["macro"]
        found = report.intervals()
        suptitle = (f"{len(report)} test images: accuracy {report.accuracy:.3f}{between(found['accuracy'])}, "
                    f"balanced accuracy {report.balanced_accuracy:.3f}{between(found['balanced_accuracy'])}\n"
                    f"log-loss {report.log_loss:.3f}{between(found['log_loss'])}"
                    + ("" if np.isnan(auc) else f", macro AUC {auc:.3f}{between(found['macro_roc_auc'])}")
                    + " (95% intervals)")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_thresholds(report, class_name: str | None = None, ax=None,
                    thresholds: Sequence[float] | None = None, title: str | None = None):
    """Precision, recall and coverage as the confidence threshold goes from 0 to 1.

    Without ``class_name`` an image counts when its top probability reaches the threshold; with
    it, one-vs-rest for that class (see ``EvaluationReport.at_threshold``). Returns the Figure.
    """
    curve = report.threshold_curve(class_name, thresholds)
    fig, ax = _figure_and_axes(ax, (5.2, 4.0))
    for column, style in (("precision", "-"), ("recall", "--"), ("coverage", ":")):
        ax.plot(curve["threshold"], curve[column], linestyle=style, linewidth=1.8, label=column)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.01, 1.02)
    ax.set_xlabel("Confidence threshold")
    ax.set_title(title or ("All classes" if class_name is None else f"Class {class_name!r}")
                 + ": precision / recall / coverage")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def plot_calibration(report, n_bins: int = 10, ax=None, title: str | None = None):
    """Reliability diagram: per bin of the top probability, how often the answer was right, against
    the diagonal of perfect calibration; bar labels give each bin's image count, the title the
    expected calibration error (ECE). Returns the Figure.
    """
    from cvkit.models._calibration import reliability

    table = reliability(report.proba, report.y_true, n_bins)
    fig, ax = _figure_and_axes(ax, (4.8, 4.4))
    edges, full = table["edges"], table["count"] > 0
    centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    ax.bar(centres[full], table["accuracy"][full], width=width * 0.9, color="#4c72b0", alpha=0.8, label="right")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1.2, label="perfectly calibrated")
    for x, y, n in zip(centres[full], table["accuracy"][full], table["count"][full]):
        ax.text(x, min(y + 0.02, 0.97), str(int(n)), ha="center", fontsize=7)
    ece = report.calibration_error
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Top probability")
    ax.set_ylabel("Share right")
    ax.set_title(title or f"Reliability: ECE {ece:.3f} on {len(report)} images")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def _report_images(report, rows: Sequence[int], size: int) -> list[np.ndarray | None]:
    if report.paths is None:
        raise ValueError("this report has no image paths: build it with cvkit.evaluate(model, dataset) "
                         "or EvaluationReport(..., paths=...) to show images")
    return [decode_item(report.paths[i], size)[0] for i in rows]  # None where the image cannot be read


def _pick(rows: np.ndarray, n: int, random_state: int | None) -> np.ndarray:
    """``n`` of ``rows``: a sorted random sample, or the first ``n`` when ``random_state`` is None."""
    if n >= len(rows):
        return rows
    if random_state is None:
        return rows[:n]
    return np.sort(np.random.default_rng(random_state).choice(rows, size=n, replace=False))


def plot_predictions(report, n: int = 16, only_errors: bool = False, ncols: int | None = None,
                     random_state: int | None = 0, size: int = 128, panel_size: float = 2.1,
                     errors_first: bool = True):
    """A grid of test images titled with true and predicted class and the prediction's probability.

    Misclassified images have red titles, correct ones green. With ``errors_first`` (the default)
    the mistakes come first, so a grid of ``n`` never hides one behind correct answers; the rest
    of the grid is a random sample of the correct images (``random_state=None``: the first ones).
    ``errors_first=False`` samples all images alike. ``only_errors=True`` shows only mistakes.
    Images are shown at ``size`` pixels square in panels of ``panel_size`` inches.
    Returns the Figure. Example: ``plot_predictions(report, n=12)``.
    """
    rows = np.arange(len(report))
    wrong_rows = rows[report.y_pred != report.y_true]
    if only_errors:
        rows = wrong_rows
    n = min(n, len(rows))
    if n == 0:
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(4, 1.2))
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no misclassified images" if only_errors else "no images", ha="center", va="center")
        return fig
    if errors_first and not only_errors:
        first = _pick(wrong_rows, n, random_state)
        rest = _pick(np.setdiff1d(rows, wrong_rows), n - len(first), random_state)
        rows = np.concatenate([first, rest]).astype(int)
    else:
        rows = _pick(rows, n, random_state)
    titles, colors = [], []
    for i in rows:
        true, pred = report.classes[report.y_true[i]], report.classes[report.y_pred[i]]
        conf = float(report.proba[i, report.y_pred[i]])
        titles.append(f"true: {true}\npred: {pred} ({conf:.2f})")
        colors.append("tab:green" if true == pred else "red")
    wrong = int(sum(c == "red" for c in colors))
    what = f"{n} of {len(report)} test images" if n < len(report) else f"{n} test images"
    shown = f"{wrong} misclassified (red" + (", first)" if errors_first and wrong and not only_errors else ")")
    hidden = len(wrong_rows) - wrong
    suptitle = f"{what}, {shown}" + (f"; {hidden} more misclassified not shown" if hidden else "")
    return image_grid(_report_images(report, rows, size), titles, ncols=ncols, colors=colors,
                      panel_size=panel_size, suptitle=suptitle)


def plot_top_losses(report, k: int = 9, ncols: int | None = None, size: int = 128, panel_size: float = 2.1,
                    heatmaps=None):
    """The ``k`` images with the highest loss: title "predicted / true", loss and p(true).

    These are the model's worst mistakes (or least confident right answers): look for wrong
    labels, ambiguous photos or a missing class. ``heatmaps=model`` (the model that made the report)
    blends on each photo the heat map of the class it predicted (:func:`cvkit.explain`: where it saw
    that class). Returns the Figure. Example: ``plot_top_losses(report, heatmaps=model)``.
    """
    table = report.top_losses(k)
    titles = [f"{r.predicted} / {r.true}\nloss {r.loss:.2f}, p {r.p_true:.2f}" for r in table.itertuples()]
    colors = ["red" if r.predicted != r.true else "black" for r in table.itertuples()]
    images = _report_images(report, table.index.to_numpy(), size)
    suptitle = "Top losses: predicted / true, loss, probability of true class"
    if heatmaps is not None:
        from cvkit.evaluation._explain import explain

        found = explain(heatmaps, [report.paths[i] for i in table.index], target=list(table["predicted"]))
        images = [None if im is None or m is None else overlay_heatmap(im, m) for im, m in zip(images, found.maps)]
        suptitle += f"; heat map ({found.method}) of the predicted class"
    return image_grid(images, titles, ncols=ncols, colors=colors, panel_size=panel_size, suptitle=suptitle)


# ---------------------------------------------------------------------------------------------
# Data plots: the flagged photos of an audit, and the map of a dataset (cvkit.evaluation._embedding).
# ---------------------------------------------------------------------------------------------
__all__ += ["plot_image_issues", "plot_embedding"]


def _thumbnail(path: str, size: int) -> np.ndarray | None:
    """The photo upright, its long side at most ``size`` (aspect kept, so an odd shape shows); None if unreadable."""
    try:
        img = open_image(path, size=size)
    except ImageReadError:
        return None
    img.thumbnail((size, size))
    return np.asarray(img)


def plot_image_issues(table, n: int = 24, ncols: int | None = None, size: int = 160, panel_size: float = 2.2,
                      width: int = 30):
    """The photos flagged by :func:`cvkit.find_image_issues` (or ``dataset.audit()``), titled with their reasons.

    One panel per photo (a photo with two issues shows both reasons), the first ``n`` photos in the
    table's order; reasons are wrapped at ``width`` characters. Photos keep their shape (long side
    ``size`` pixels), so an odd aspect ratio shows. Rows of a ``cvkit audit`` table with a ``reason``
    column work too. Returns the Figure.

    Example:
        >>> import cvkit
        >>> photos = ["sample_data/vegetable/corn.jpg", "sample_data/fruit/banana.jpg", "sample_data/bird/owl.jpg"]
        >>> fig = plot_image_issues(cvkit.find_image_issues(photos + ["missing.jpg"]))
        >>> [ax.get_title().splitlines()[0] for ax in fig.axes]
        ['missing.jpg', 'corn.jpg']
    """
    import textwrap
    from pathlib import Path

    rows = table[table["reason"].astype(str) != ""] if "reason" in table else table.iloc[:0]
    paths = list(dict.fromkeys(rows["path"]))
    if not paths:
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(4, 1.2))
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no image issues", ha="center", va="center")
        return fig
    shown = paths[:n]
    titles = []
    for path in shown:
        reasons = [str(r) for r in rows.loc[rows["path"] == path, "reason"]]
        lines = [Path(path).name] + [line for r in reasons for line in textwrap.wrap(r, width)]
        titles.append("\n".join(lines))
    more = f" (the first {len(shown)} shown)" if len(paths) > len(shown) else ""
    return image_grid([_thumbnail(p, size) for p in shown], titles, ncols=ncols or min(len(shown), 4),
                      panel_size=panel_size, suptitle=f"{len(paths)} photo(s) with image issues{more}")
