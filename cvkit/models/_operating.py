"""Give a saved model folder an operating point: thresholds below which it answers "no decision".

``clf.set_thresholds(...)`` before ``clf.save(path)`` does the same for a model being trained;
:func:`save_thresholds` changes a folder that already exists (a model in service, one trained
elsewhere), so a threshold chosen in a notebook reaches every path that loads the folder: the
service (every protocol), ``cvkit score``, Ray jobs and exports.

Only ``metadata.json``'s ``"decision"`` field changes, rewritten atomically; the graphs, the head
and their hashes stay as they are.

Example:
    >>> import os, tempfile
    >>> import cvkit
    >>> clf = cvkit.FeatureClassifier(verbose=False).fit("sample_data")
    >>> folder = clf.save(os.path.join(tempfile.mkdtemp(), "model"))
    >>> save_thresholds(folder, {"bird": 0.9}).describe()
    'per-class thresholds 0-0.9'
    >>> cvkit.load_model(folder).decision_rule_.thresholds
    {'bird': 0.9, 'flower': 0.0, 'fruit': 0.0, 'vegetable': 0.0}
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cvkit.data._images import PathLike
from cvkit.models._decision import NO_DECISION, DecisionRule
from cvkit.models._folder import read_metadata, write_metadata

__all__ = ["save_thresholds"]


def save_thresholds(model_dir: PathLike, thresholds: float | Mapping[str, float] | None,
                    no_decision_label: str = NO_DECISION) -> DecisionRule:
    """Write ``thresholds`` (one number in [0, 1], ``{class: threshold}``, or None for the arg-max)
    into the model folder ``model_dir``; returns the folder's new decision rule. Class names are
    checked against the folder's classes (an error names any other), and the rule is checked as
    :func:`cvkit.load_model` checks it. (Example: see the module.)
    """
    folder = Path(model_dir)
    meta = read_metadata(folder)
    classes = [str(c) for c in meta["classes"]]
    try:
        rule = DecisionRule.from_metadata(meta.get("decision"), classes).with_thresholds(thresholds, classes,
                                                                                         no_decision_label)
    except ValueError as exc:
        raise ValueError(f"{folder}: {exc}") from None
    meta["decision"] = rule.to_metadata()
    write_metadata(folder, meta)
    return rule
