"""The array files of a model folder: a linear head (``head.npz``) and a novelty scorer (``novelty.npz``).

Why arrays: a feature classifier's graph ends in the backbone's features, so the same run gives
both the class probabilities (a :class:`~cvkit.models._head.LinearHead`: weights and a bias) and
how far the image lies from the training photos (a :class:`~cvkit.models._novelty.NoveltyScorer`:
class means and a shared precision matrix, or reference features). Both are plain float arrays in
``.npz`` files, read with ``allow_pickle=False``, hashed in ``metadata.json``'s ``files`` like every
file, bounded in size and shape, and refused with an error naming the file when anything is off.

``metadata.json`` says ``"head": "linear"`` for the first and holds ``"novelty"`` (``{"method", "k",
"file", "n_train"}``) for the second. Folders without them (saved before cvkit 0.2, or with a
Keras or scikit-learn head) load as before and never answer "unknown".

Example:
    >>> import numpy as np
    >>> from cvkit.models._head import LinearHead
    >>> head = LinearHead(np.eye(3, 2, dtype=np.float32), np.zeros(2, np.float32))
    >>> exported = {"linear": head, "novelty": None, "head": None}
    >>> head_kind(exported)
    ('linear', 'LinearHead')
    >>> sorted(array_files(exported))
    ['head.npz']
    >>> check_novelty_field("m/metadata.json", {"method": "cosine", "k": 5, "file": "novelty.npz", "n_train": 9})
    Traceback (most recent call last):
    ...
    cvkit.models._trusted.ModelFormatError: m/metadata.json: field 'novelty.method' must be one of ...
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cvkit.models._head import LinearHead
from cvkit.models._novelty import METHODS, NoveltyScorer
from cvkit.models._trusted import ModelFormatError, load_head

__all__ = ["LINEAR_FILE", "NOVELTY_FILE", "SKOPS_FILE", "HEADS", "head_kind", "array_files", "novelty_field",
           "check_novelty_field", "load_arrays"]

SKOPS_FILE = "head.skops"
LINEAR_FILE = "head.npz"
NOVELTY_FILE = "novelty.npz"
#: What a folder's ``"head"`` may be: in the Keras graph, a scikit-learn head (skops), or arrays.
HEADS = ("keras", "skops", "linear")
_NOVELTY_KEYS = {"method", "k", "file", "n_train"}


def head_kind(exported: Mapping[str, Any]) -> tuple[str, str | None]:
    """``(head, estimator name)`` for what a classifier's ``_export()`` gave (see the module)."""
    if exported.get("linear") is not None:
        return "linear", "LinearHead"
    if exported.get("head") is not None:
        return "skops", type(exported["head"]).__name__
    return "keras", None


def array_files(exported: Mapping[str, Any]) -> dict[str, bytes]:
    """The ``.npz`` files to write for ``exported``: ``{file name: bytes}``."""
    files = {}
    if exported.get("linear") is not None:
        files[LINEAR_FILE] = exported["linear"].to_npz()
    if exported.get("novelty") is not None:
        files[NOVELTY_FILE] = exported["novelty"].to_npz()
    return files


def novelty_field(scorer: NoveltyScorer | None) -> dict[str, Any] | None:
    """The ``"novelty"`` field of ``metadata.json`` for ``scorer`` (None: the model has none)."""
    if scorer is None:
        return None
    n_train = 0 if scorer.train_scores_ is None else len(scorer.train_scores_)
    return {"method": scorer.method, "k": scorer.k, "file": NOVELTY_FILE, "n_train": int(n_train)}


def check_novelty_field(file: Path | str, value: Any) -> None:
    """Refuse a malformed ``"novelty"`` field (:class:`ModelFormatError` naming ``file`` and the field)."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise ModelFormatError(f"{file}: field 'novelty' must be an object or null, got {type(value).__name__}")
    extra = sorted(set(value) - _NOVELTY_KEYS)
    if extra:
        raise ModelFormatError(f"{file}: field 'novelty.{extra[0]}' is not a field of a novelty scorer")
    if value.get("method") not in METHODS:
        raise ModelFormatError(f"{file}: field 'novelty.method' must be one of {METHODS}, got {value.get('method')!r}")
    for name, high in (("k", 1000), ("n_train", 10_000_000)):
        v = value.get(name)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= high:
            raise ModelFormatError(f"{file}: field 'novelty.{name}' must be an integer in [0, {high}], got {v!r}")
    if value.get("file") != NOVELTY_FILE:
        raise ModelFormatError(f"{file}: field 'novelty.file' must be {NOVELTY_FILE!r}, got {value.get('file')!r}")


def load_arrays(folder: Path, meta: Mapping[str, Any], verified: Callable[[str], bytes]
                ) -> tuple[Any, NoveltyScorer | None]:
    """``(head, novelty scorer)`` of a folder; ``verified(name)`` gives a file's hash-checked bytes.

    The head is None for a Keras head (it is in the graph). Arrays are checked against the folder's
    feature width: a head's and a scorer's must agree, and the head must give one score per class.
    """
    head: Any = None
    if meta["head"] == "skops":
        head = load_head(verified(SKOPS_FILE), folder / SKOPS_FILE)
    elif meta["head"] == "linear":
        try:
            head = LinearHead.from_npz(verified(LINEAR_FILE), str(folder / LINEAR_FILE))
        except ValueError as exc:
            raise ModelFormatError(str(exc)) from None
        if head.n_classes != len(meta["classes"]):
            raise ModelFormatError(f"{folder / LINEAR_FILE}: scores {head.n_classes} classes but metadata.json "
                                   f"lists {len(meta['classes'])}")
    field = meta.get("novelty")
    if field is None:
        return head, None
    width = head.n_features if isinstance(head, LinearHead) else getattr(head, "n_features_in_", None)
    if width is None:
        raise ModelFormatError(f"{folder / 'metadata.json'}: field 'novelty' needs a head that ends in features "
                               f"(head 'linear' or 'skops'), got {meta['head']!r}")
    try:
        scorer = NoveltyScorer.from_npz(verified(NOVELTY_FILE), str(folder / NOVELTY_FILE), field["method"],
                                        field["k"], int(width))
    except ValueError as exc:
        raise ModelFormatError(str(exc)) from None
    return head, scorer
