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
from cvkit.models._decision import NO_DECISION, UNKNOWN, DecisionRule
from cvkit.models._folder import load_model, read_metadata, write_metadata

__all__ = ["save_thresholds", "save_unknown_threshold"]


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


def save_unknown_threshold(model_dir: PathLike, keep: float | None = 0.95, cut: float | None = None,
                           unknown_label: str = UNKNOWN) -> DecisionRule:
    """Write the novelty cut above which the model folder ``model_dir`` answers ``unknown_label``
    (as ``model.set_unknown_threshold(keep, cut)`` then ``save`` would); returns the new rule.

    ``keep``: the share of the training photos kept below the cut (read from the folder's
    ``novelty.npz``); or an explicit ``cut``; both None turns the unknown answer off. Thresholds
    already in the folder stay. A folder without a novelty score is refused, saying why.

    Example:
        >>> import os, tempfile
        >>> import cvkit
        >>> folder = cvkit.FeatureClassifier(verbose=False).fit("sample_data").save(
        ...     os.path.join(tempfile.mkdtemp(), "model"))
        >>> save_unknown_threshold(folder, keep=0.95).describe()  # doctest: +ELLIPSIS
        'unknown above novelty ...'
        >>> import numpy as np
        >>> cvkit.load_model(folder).predict(np.zeros((1, 224, 224, 3), np.uint8)).tolist()
        ['unknown']
    """
    folder = Path(model_dir)
    model = load_model(folder)
    try:
        rule = model.set_unknown_threshold(keep=keep, cut=cut, unknown_label=unknown_label).decision_rule_
    except ValueError as exc:
        raise ValueError(f"{folder}: {exc}") from None
    meta = read_metadata(folder)
    meta["decision"] = rule.to_metadata()
    write_metadata(folder, meta)
    return rule
