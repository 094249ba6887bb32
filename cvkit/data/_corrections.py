r"""The corrections file: what a reviewer decided about suspect images, and a dataset with it applied.

Why a separate file: fixing a dataset must never touch the photos (no move, no rename, no delete),
and decisions must survive a restart. :class:`~cvkit.widgets.CleanerWidget` records one row per
reviewed image in a TSV beside the data; :func:`apply_corrections` turns a dataset plus that file
into the corrected dataset, so training on the fixed data is one call::

    # cvkit corrections: apply with cvkit.ImageDataset.with_corrections("corrections.tsv")
    path	decision	label
    bird/crow.jpg	relabel	flower
    fruit/mango.jpg	exclude
    fruit/apple.jpg	keep

Decisions are ``relabel`` (the image gets ``label``), ``exclude`` (the image is left out) and
``keep`` (reviewed, the label stands). Paths are relative to the file's folder (absolute when the
two share nothing but the file-system root). Lines starting with ``#`` are comments.

Example:
    >>> import tempfile
    >>> from cvkit.data import ImageDataset
    >>> ds = ImageDataset.from_directory("sample_data")
    >>> decisions = {image_key(ds.paths[0]): Decision("relabel", "vegetable")}
    >>> save = f"{tempfile.mkdtemp()}/corrections.tsv"
    >>> _ = open(save, "w").write(corrections_text(decisions, save))
    >>> ds.with_corrections(save).image_labels[0], ds.image_labels[0]
    ('vegetable', 'bird')
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from cvkit._io import image_key
from cvkit.data._images import PathLike
from cvkit.data._sources import TableFormatError, format_row, iter_records

__all__ = ["Decision", "DECISIONS", "read_corrections", "corrections_text", "apply_corrections",
           "image_key", "CORRECTIONS_HEADER"]

#: The decisions a reviewer can record.
DECISIONS = ("relabel", "exclude", "keep")
#: The header row of the file.
CORRECTIONS_HEADER = ["path", "decision", "label"]
_BANNER = "# cvkit corrections: apply with cvkit.ImageDataset.with_corrections({name!r})\n"


# ``image_key`` (imported above from :mod:`cvkit._io`, the one definition) is the normalised absolute
# path that identifies an image in a corrections file; it stays importable from here (the cleaner
# widget imports it from this module).


class Decision(NamedTuple):
    """One reviewed image: ``decision`` in :data:`DECISIONS`, ``label`` set only for ``relabel``."""

    decision: str
    label: str = ""


def _check(decision: str, label: str, where: str) -> Decision:
    if decision not in DECISIONS:
        raise ValueError(f"{where}: decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    label = label.strip()
    if decision == "relabel":
        if not label or any(c in label for c in "\t\r\n"):
            raise ValueError(f"{where}: relabel needs a label without tabs or line breaks, got {label!r}")
        return Decision(decision, label)
    return Decision(decision, "")


def read_corrections(path: PathLike) -> dict[str, Decision]:
    """``{image key: Decision}`` from a corrections file (later rows win); ``{}`` if it is absent.

    A malformed line raises :class:`~cvkit.data.TableFormatError` naming the file and line.

    Example:
        >>> read_corrections("no/such/corrections.tsv")
        {}
    """
    path = Path(path)
    if not path.exists():
        return {}
    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    with open(path, encoding="utf-8-sig", newline="") as handle:
        text = handle.read()
    found: dict[str, Decision] = {}
    for record in iter_records(text, delimiter):
        if record.error is not None:
            raise TableFormatError(path, record.line, record.error)
        cells = [c if q else c.strip() for c, q in zip(record.cells, record.quoted)]
        if not any(cells) or (cells[0].startswith("#") and not record.quoted[0]):
            continue
        if [c.lower() for c in cells[:2]] == CORRECTIONS_HEADER[:2]:
            continue
        if len(cells) not in (2, 3) or not cells[0]:
            raise TableFormatError(path, record.line, f"expected path, decision[, label]; found {len(cells)} "
                                   "field(s)")
        try:
            decision = _check(cells[1], cells[2] if len(cells) == 3 else "", "")
        except ValueError as exc:
            raise TableFormatError(path, record.line, str(exc).lstrip(": ")) from None
        cell = cells[0]
        found[image_key(cell if os.path.isabs(cell) else path.parent / cell)] = decision
    return found


def _cell(key: str, folder: str) -> str:
    try:
        common = os.path.commonpath([key, folder])
        rel = os.path.relpath(key, folder)
    except ValueError:  # another drive (Windows)
        return Path(key).as_posix()
    if os.path.dirname(common) == common:  # only the root in common
        return Path(key).as_posix()
    rel = Path(rel).as_posix()
    return "./" + rel if rel.startswith("#") else rel


def corrections_text(decisions: dict[str, Decision], path: PathLike) -> str:
    """The content of the corrections file ``path`` holding ``decisions`` (keys: image keys).

    Example:
        >>> corrections_text({image_key("photos/a.jpg"): Decision("exclude")}, "photos/c.tsv").splitlines()[1:]
        ['path\\tdecision\\tlabel', 'a.jpg\\texclude']
    """
    path = Path(os.path.abspath(os.fspath(path)))
    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    lines = [_BANNER.format(name=path.name), format_row(CORRECTIONS_HEADER, delimiter)]
    folder = os.fspath(path.parent)
    for key, d in decisions.items():
        cells = [_cell(key, folder), d.decision] + ([d.label] if d.label else [])
        lines.append(format_row(cells, delimiter))
    return "".join(lines)


def apply_corrections(dataset: Any, path: PathLike) -> Any:
    """``dataset`` (an :class:`~cvkit.data.ImageDataset`) with the decisions of the corrections file
    ``path`` applied, as a new dataset of the same type.

    Relabelled images take their new label (a new class is added if needed), excluded images are
    dropped, kept images and images without a decision are unchanged. Nothing on disk changes.

    Example:
        >>> import tempfile
        >>> from cvkit.data import ImageDataset
        >>> from cvkit.data._corrections import Decision, corrections_text, image_key
        >>> ds = ImageDataset.from_directory("sample_data")
        >>> decisions = {image_key(ds.paths[0]): Decision("relabel", "vegetable"),
        ...              image_key(ds.paths[1]): Decision("exclude")}
        >>> path = f"{tempfile.mkdtemp()}/corrections.tsv"
        >>> _ = open(path, "w").write(corrections_text(decisions, path))
        >>> fixed = apply_corrections(ds, path)
        >>> len(ds) - len(fixed), fixed.image_labels[0]
        (1, 'vegetable')
    """
    if not dataset.is_labelled:
        raise ValueError("apply_corrections: the dataset is unlabelled; corrections change labels")
    decisions = read_corrections(path)
    paths, labels = [], []
    for image, label in zip(dataset.paths, dataset.image_labels):
        d = decisions.get(image_key(image))
        if d is not None and d.decision == "exclude":
            continue
        paths.append(image)
        labels.append(d.label if d is not None and d.decision == "relabel" else label)
    classes = sorted(set(dataset.labels) | set(labels))
    index = {label: i for i, label in enumerate(classes)}
    # type(dataset): this module is imported by dataset.py, so it does not import ImageDataset back
    return type(dataset)(paths, [index[v] for v in labels], classes, root=dataset.root)
