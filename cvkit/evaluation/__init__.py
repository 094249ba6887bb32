"""Evaluating a classifier: metrics, curves, error analysis and hard-negative mining.

- :class:`EvaluationReport` computes everything from true labels and predicted probabilities;
- :func:`evaluate` builds one by scoring a labelled dataset with a model (or a model folder);
- :func:`hard_negatives` finds the images a model gets wrong most confidently.

Example:
    >>> report = cvkit.evaluate(clf, test)
    >>> print(report.to_text().splitlines()[1])
    accuracy                  0.972
    >>> fig = report.plot_summary()
"""
from cvkit.evaluation._audit import find_label_issues
from cvkit.evaluation._duplicates import duplicate_groups, find_duplicates
from cvkit.evaluation._mining import hard_negatives
from cvkit.evaluation._model_eval import as_dataset, as_model, evaluate
from cvkit.evaluation._report import REPORT_FORMAT, EvaluationReport, EvaluationWarning

__all__ = ["EvaluationReport", "EvaluationWarning", "evaluate", "hard_negatives", "as_model",
           "as_dataset", "REPORT_FORMAT", "find_label_issues", "find_duplicates", "duplicate_groups"]
