"""Notebook widgets (ipywidgets 8, JupyterLab 4): label images, review results, pick a threshold.

- :class:`AnnotationWidget`: click a label per image; saved to a TSV after every click.
- :class:`ResultsWidget`: browse predictions with filters (correct/incorrect, class) and sorting.
- :class:`PrecisionRecallWidget`: a threshold slider with precision, recall and coverage.
- :class:`CleanerWidget`: review suspect images (label issues, duplicates, top losses); relabel,
  exclude or keep, saved to a corrections TSV that ``ImageDataset.with_corrections`` applies.
- :class:`EmbeddingWidget`: the map of a dataset; hover or click a photo, drag a box to select a
  region and send it to an :class:`AnnotationWidget` for relabelling.

The widget classes are imported on first use, so ``import cvkit.widgets`` stays cheap.

Example:
    >>> import os, tempfile
    >>> from cvkit.widgets import AnnotationWidget
    >>> AnnotationWidget("sample_data/bird", labels=["bird", "not bird"],
    ...                  output=os.path.join(tempfile.mkdtemp(), "labels.tsv"))
    <AnnotationWidget: 0 labelled of 35 images, 2 labels, saving to labels.tsv>
"""
from __future__ import annotations

from cvkit._console import require_extra
from cvkit._lazy import lazy_exports

_EXPORTS = {
    "AnnotationWidget": "cvkit.widgets._annotation",
    "ResultsWidget": "cvkit.widgets._results",
    "PrecisionRecallWidget": "cvkit.widgets._precision_recall",
    "LabelsFile": "cvkit.widgets._labels_file",
    "CleanerWidget": "cvkit.widgets._cleaner",
    "CorrectionsFile": "cvkit.widgets._cleaner",
    "EmbeddingWidget": "cvkit.widgets._embedding",
}

_lazy_getattr, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:  # the widgets need ipywidgets (cvkit[notebooks]): say so in one line if it is missing
        require_extra("ipywidgets", f"cvkit.widgets.{name}")
    return _lazy_getattr(name)
