"""The metadata fields that shape a model's answers, checked as every field of a model folder is.

``metadata.json`` may hold ``"decision"`` (the operating point: :mod:`cvkit.models._decision`) and
``"calibration"`` (how the head's probabilities were calibrated: ``{"method", "temperature",
"in_graph"}``). A folder whose head lives in the graph has its temperature folded into the graph's
last layer (``in_graph: true``, recorded for reports); a scikit-learn head (``head.skops``) gets
it applied after its ``predict_proba`` when loaded. Both fields are optional (folders saved before
they existed answer as they did), bounded, and refused with an error naming the field.

Example:
    >>> calibration_temperature({"method": "temperature", "temperature": 1.7, "in_graph": False})
    1.7
    >>> calibration_temperature({"method": "temperature", "temperature": 1e9, "in_graph": False})
    Traceback (most recent call last):
    ...
    ValueError: field 'calibration.temperature' must be a number in [0.05, 20.0], got 1000000000.0
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cvkit.models._calibration import TEMPERATURE_RANGE
from cvkit.models._decision import DecisionRule
from cvkit.models._trusted import ModelFormatError

__all__ = ["check_answer_fields", "calibration_temperature", "CALIBRATION_METHODS"]

#: The calibration methods a model folder may record.
CALIBRATION_METHODS = (None, "temperature", "sigmoid", "isotonic")


def calibration_temperature(value: Any) -> float:
    """The temperature a loaded model must apply after its head (1.0: none, or already in the graph),
    from a ``"calibration"`` field, checked; ``ValueError`` naming the field otherwise."""
    if value is None:
        return 1.0
    if not isinstance(value, Mapping):
        raise ValueError(f"field 'calibration' must be an object, got {type(value).__name__}")
    extra = sorted(set(value) - {"method", "temperature", "in_graph"})
    if extra:
        raise ValueError(f"field 'calibration.{extra[0]}' is not a field of a calibration")
    if value.get("method") not in CALIBRATION_METHODS:
        raise ValueError(f"field 'calibration.method' must be one of {CALIBRATION_METHODS}, "
                         f"got {value.get('method')!r}")
    t = value.get("temperature", 1.0)
    low, high = TEMPERATURE_RANGE
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or not low <= t <= high:
        raise ValueError(f"field 'calibration.temperature' must be a number in [{low}, {high}], got {t!r}")
    in_graph = value.get("in_graph", False)
    if not isinstance(in_graph, bool):
        raise ValueError(f"field 'calibration.in_graph' must be true or false, got {in_graph!r}")
    return 1.0 if in_graph else float(t)


def check_answer_fields(file: Path, meta: Mapping[str, Any], classes: Sequence[str]) -> None:
    """Check ``meta``'s ``"decision"`` (an unknown cut only with a ``"novelty"`` scorer) and ``"calibration"``;
    :class:`~cvkit.models._trusted.ModelFormatError` naming ``file`` and the field."""
    try:
        DecisionRule.from_metadata(meta.get("decision"), classes, novelty=meta.get("novelty") is not None)
        calibration_temperature(meta.get("calibration"))
    except ValueError as exc:
        raise ModelFormatError(f"{file}: {exc}") from None
