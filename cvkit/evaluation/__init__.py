"""Evaluating a classifier: metrics, curves, error analysis, audits and hard-negative mining.

- :class:`EvaluationReport` computes everything from true labels and predicted probabilities;
- :func:`evaluate` builds one by scoring labelled images (a dataset, a folder of class folders, a
  ``path,label`` table, a split manifest) with a model (or a model folder);
- :func:`cross_validate` tests every photo with a model that never saw it (repeated stratified K-fold),
  :func:`compare` says whether one classifier beats another on the same folds, and
  :func:`learning_curve` which classes would gain most from more photos;
- :func:`thresholds_for` picks operating points (``model.set_thresholds``) for a target precision or recall;
- :func:`unknown_report` measures the "unknown" answer: known photos it costs, other things it catches;
- :func:`hard_negatives` finds the images a model gets wrong most confidently;
- :func:`find_label_issues`, :func:`find_duplicates`, :func:`duplicate_groups` audit a dataset;
- :func:`plot_embedding` draws a map of the dataset (t-SNE of the cached features, coloured by label,
  label issues, duplicates and wrong answers marked); :func:`embedding_coordinates` gives its points;
- :func:`explain` draws heat maps of where a model found its evidence (CAM, Grad-CAM, occlusion);
- :mod:`cvkit.evaluation.plots` draws the report's figures.

Example:
    >>> import cvkit
    >>> train, test = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
    >>> report = evaluate(cvkit.FeatureClassifier(verbose=False).fit(train), test)
    >>> print(report.to_text().splitlines()[1])
    accuracy                  0.972 (0.858–1.000)
    >>> fig = report.plot_summary()
"""
from cvkit.evaluation import plots
from cvkit.evaluation._audit import find_label_issues
from cvkit.evaluation._compare import ComparisonResult, compare
from cvkit.evaluation._cross_validation import CrossValidationResult, cross_validate
from cvkit.evaluation._duplicates import duplicate_groups, find_duplicates
from cvkit.evaluation._embedding import embedding_coordinates, plot_embedding
from cvkit.evaluation._explain import Explanation, explain
from cvkit.evaluation._learning_curve import LearningCurve, learning_curve
from cvkit.evaluation._mining import hard_negatives
from cvkit.evaluation._model_eval import evaluate
from cvkit.evaluation._report import EvaluationReport, EvaluationWarning
from cvkit.evaluation._thresholds import thresholds_for
from cvkit.evaluation._unknown import UnknownReport, unknown_report, unseen_class_estimate

__all__ = ["EvaluationReport", "EvaluationWarning", "evaluate", "hard_negatives", "find_label_issues",
           "find_duplicates", "duplicate_groups", "plots", "thresholds_for", "cross_validate",
           "CrossValidationResult", "compare", "ComparisonResult", "learning_curve", "LearningCurve",
           "unknown_report", "UnknownReport", "unseen_class_estimate", "plot_embedding", "embedding_coordinates",
           "explain", "Explanation"]
