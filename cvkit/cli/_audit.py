"""``cvkit audit``: find label mistakes, odd images, duplicates, train/test leaks and bad photos before training.

Why: with a few dozen to a few thousand photos the data, not the model, limits accuracy. This
command runs :func:`cvkit.find_label_issues` (given labels that out-of-fold predictions contradict,
and images that fit no class), :func:`cvkit.find_duplicates` (exact and near copies, and copies
shared with a test set) and :func:`cvkit.find_image_issues` (blurry, dark, bright, near-constant,
small, oddly shaped, grey and rotated photos), prints a short summary and writes one table row per
flagged image or pair, for a look in a spreadsheet or in ``cvkit.widgets.CleanerWidget``. Nothing is
moved or changed.

DATA is a folder of class folders, a ``path<TAB>label`` table, or a split manifest (``split.json``
from ``cvkit train`` or ``cvkit.save_split``): then both sides are audited together and copies
shared by the two sides are reported as leaks. ``--test`` names the held-out images (a split
manifest's test side, a folder or a table) to check DATA against for leaks.

Example (shell)::

    cvkit audit sample_data -o audit.csv
    cvkit audit runs/sample/split.json -o audit.csv --overwrite
    cvkit audit new_photos/ --test runs/sample/split.json -o audit.csv

Example (Python):
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="cvkit audit")
    >>> _ = add_arguments(parser)
    >>> args = parser.parse_args(["sample_data", "-o", "audit.csv"])
    >>> args.test, args.cv, args.overwrite, args.runtime
    (None, None, False, None)
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cvkit._console import require_extra
from cvkit._io import atomic_open
from cvkit.classifiers._features import FeatureClassifier
from cvkit.data._dataset import ImageDataset
from cvkit.data._image_issues import find_image_issues
from cvkit.data._manifest import load_split
from cvkit.data._quality import ISSUES
from cvkit.evaluation._audit import find_label_issues, image_features, outlier_scores
from cvkit.evaluation._duplicates import DEFAULT_THRESHOLD, find_duplicates, groups_from_pairs
from cvkit.evaluation._model_eval import as_dataset
from cvkit.options import RunOptions

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["add_arguments", "run", "audit_table", "audit_featurizer", "load_audit_data", "write_table",
           "TABLE_COLUMNS", "IMAGE_ISSUES", "DEFAULT_CV"]

#: Columns of the written table, one row per flagged image (``label``, ``outlier``, or an image issue:
#: ``blurry``, ``dark``... with its ``score`` and ``reason``) or pair (``leak``, ``duplicate``).
#: ``label_quality`` and ``ood_score`` are low for the worst images, ``similarity`` high for the
#: closest copies; cells that do not apply to a row are empty.
TABLE_COLUMNS = ["problem", "path", "label", "suggested_label", "label_quality", "ood_score",
                 "other_path", "other_label", "similarity", "kind", "score", "reason"]
#: The image issues (problems of one photo's pixels or file) the table can hold, in its order:
#: ``cvkit.data._quality.ISSUES``.
IMAGE_ISSUES = ISSUES
#: Folds for the out-of-fold predictions, unless a class has fewer images (then that many).
DEFAULT_CV = 5

_DESCRIPTION = """\
Audit labelled images before training: label mistakes (given labels that out-of-fold predictions
of a model on cached backbone features contradict, with a suggested label), odd images that fit no
class, exact and near-duplicate images, leaks (copies shared with the test images) and image issues
(blurry, dark, bright, near-constant, small, oddly shaped, grey or rotated photos). Prints a summary
and writes one row per flagged image or pair to a CSV (or .tsv). Images are only read.
"""

_EPILOG = """\
DATA may be a split manifest (split.json): both sides are audited, and copies across them are leaks.

problems in the table (column "problem"):
  label      the given label looks wrong; suggested_label is the model's guess (lowest label_quality first)
  outlier    the image is unlike all others (a blank, a screenshot, a photo of something else)
  leak       path (in DATA or the training side) has a copy other_path among the test images
  duplicate  path and other_path are copies within the same images (kind: exact or near)
  blurry, dark, bright, near_constant, small, odd_aspect, grayscale, orientation, unreadable
             an image issue: its score (the check's measure) and a reason in words; each check
             compares a photo with the set's median (see cvkit.find_image_issues)

examples:
  cvkit audit sample_data -o audit.csv
  cvkit audit runs/sample/split.json -o audit.csv --overwrite
  cvkit audit new_photos/ --test runs/sample/split.json -o audit.csv
"""


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``cvkit audit``'s arguments, description and examples to ``parser``; returns it."""
    parser.description, parser.epilog = _DESCRIPTION, _EPILOG
    parser.add_argument("data", metavar="DATA",
                        help="a folder with one sub-folder per class, a path<TAB>label table, or a split.json")
    parser.add_argument("--test", metavar="SPLIT_OR_DATA",
                        help="held-out images to check for leaks: a split.json (its test side), a folder or a table")
    parser.add_argument("--output", "-o", metavar="FILE", required=True,
                        help="the table to write (.csv, or .tsv for tabs)")
    parser.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    parser.add_argument("--cv", type=int, metavar="N",
                        help=f"folds for the out-of-fold predictions (default {DEFAULT_CV}, "
                             "or the size of the smallest class if smaller)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, metavar="SIM",
                        help=f"feature cosine similarity from which two images are near-duplicates "
                             f"(default {DEFAULT_THRESHOLD})")
    parser.add_argument("--no-image-checks", dest="image_checks", action="store_false",
                        help="skip the image-quality checks (blurry, dark, small ...)")
    parser.add_argument("--show", type=int, default=10, metavar="N",
                        help="list at most N rows of each problem in the summary (default 10; 0 for counts only)")
    RunOptions.add_arguments(parser, threads=False)
    return parser


def audit_featurizer(options: RunOptions) -> Any:
    """The featurizer of the audit (EfficientNet-Lite0, cached features, no progress bar) on the
    runtime of ``options``; features are float32, so ``precision="int8"`` is refused.

    Example:
        >>> audit_featurizer(RunOptions(runtime="auto")).n_features_out_
        1280
    """
    if options.precision != "float32":
        raise ValueError("cvkit audit computes float32 features: --precision int8 (or CVKIT_PRECISION=int8) "
                         "is for scoring with a model folder's int8 graph")
    return FeatureClassifier(verbose=False, runtime=options.runtime).make_featurizer()


def load_audit_data(data: str, test: str | None) -> tuple[ImageDataset, np.ndarray, ImageDataset | None]:
    """``(dataset, is_test, other)``: the images to audit, which of them are test images, the --test images.

    A split manifest as ``data`` gives both sides in one dataset (``is_test`` marks the test side)
    and no ``other``; a folder or table gives ``is_test`` all False, and ``other`` from ``test``.

    Example:
        >>> import os, tempfile
        >>> import cvkit
        >>> train, test = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
        >>> manifest = cvkit.save_split(os.path.join(tempfile.mkdtemp(), "split.json"), train, test)
        >>> ds, is_test, other = load_audit_data(str(manifest), None)
        >>> len(ds), int(is_test.sum()), other
        (104, 36, None)
    """
    if Path(data).suffix.lower() == ".json":
        if test is not None:
            raise ValueError(f"{data} is a split manifest, which holds its own test side; drop --test {test}")
        train, held = load_split(data)
        both = ImageDataset(train.paths + held.paths, np.concatenate([train.targets, held.targets]),
                            train.labels, root=train.root)
        return both, np.arange(len(both)) >= len(train), None
    dataset = ImageDataset.from_path(data)
    other = None if test is None else as_dataset(test, side="test")
    return dataset, np.zeros(len(dataset), dtype=bool), other


def _folds(dataset: ImageDataset, cv: int | None) -> int:
    """``cv``, or :data:`DEFAULT_CV` lowered to the smallest class's size (and a note saying so)."""
    if cv is not None:
        return cv
    smallest = min((n for n in dataset.counts().values() if n > 0), default=0)
    if 2 <= smallest < DEFAULT_CV:
        print(f"note: using {smallest} folds (the smallest class has {smallest} images)")
        return smallest
    return DEFAULT_CV


def _image_rows(dataset: ImageDataset, cv: int | None, featurizer: Any = None) -> list[dict[str, Any]]:
    """Rows for label issues and outliers (outliers only when the images are unlabelled)."""
    if dataset.is_labelled:
        issues = find_label_issues(dataset, cv=_folds(dataset, cv), featurizer=featurizer)
        flagged = issues[issues.is_issue | issues.is_outlier]
        return [{"problem": "+".join(p for p, hit in (("label", row.is_issue), ("outlier", row.is_outlier)) if hit),
                 "path": row.path, "label": row.given_label,
                 "suggested_label": row.suggested_label if row.is_issue else "",
                 "label_quality": float(row.label_quality), "ood_score": float(row.ood_score)}
                for row in flagged.itertuples()]
    features, ok = image_features(dataset, featurizer, what="cvkit audit")
    keep = np.flatnonzero(ok)
    score, odd = outlier_scores(features[keep])
    return [{"problem": "outlier", "path": dataset.paths[i], "ood_score": float(s)}
            for i, s, o in zip(keep, score, odd) if o]


def _pair_rows(pairs: pd.DataFrame, leak: np.ndarray) -> list[dict[str, Any]]:
    return [{"problem": "leak" if is_leak else "duplicate", "path": row.path_a, "label": row.label_a,
             "other_path": row.path_b, "other_label": row.label_b, "similarity": float(row.similarity),
             "kind": row.kind} for row, is_leak in zip(pairs.itertuples(), leak)]


def _quality_rows(dataset: ImageDataset) -> list[dict[str, Any]]:
    """Rows for the image issues of :func:`cvkit.find_image_issues` (the photos' pixels and files)."""
    issues = find_image_issues(dataset)
    return [{"problem": row.issue, "path": row.path, "label": row.label, "score": row.score, "reason": row.reason}
            for row in issues.itertuples()]


def audit_table(dataset: ImageDataset, is_test: np.ndarray | None = None, other: ImageDataset | None = None,
                cv: int | None = None, threshold: float = DEFAULT_THRESHOLD, featurizer: Any = None,
                image_checks: bool = True) -> pd.DataFrame:
    """The audit as a table with :data:`TABLE_COLUMNS`: label issues, outliers, leaks, duplicates, image issues.

    ``is_test`` marks the images of ``dataset`` that are test images (pairs across the two sides
    are leaks); ``other`` holds further test images, whose copies in ``dataset`` are leaks. Rows
    come by problem (label, then outlier, leak, duplicate, then the image issues of
    :data:`IMAGE_ISSUES` unless ``image_checks`` is False), worst first within each. ``featurizer``
    computes the features (default :func:`audit_featurizer`'s, on the default runtime).

    Example:
        >>> import cvkit
        >>> _, test = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
        >>> table = audit_table(test, cv=3)
        >>> list(table.columns) == TABLE_COLUMNS, sorted(set(table.problem) - {"label", "outlier", "label+outlier"})
        (True, ['odd_aspect'])
    """
    import pandas as pd

    is_test = np.zeros(len(dataset), dtype=bool) if is_test is None else np.asarray(is_test, dtype=bool)
    rows = _image_rows(dataset, cv, featurizer)
    pairs = find_duplicates(dataset, threshold=threshold, featurizer=featurizer)
    leak = is_test[pairs.index_a.to_numpy()] != is_test[pairs.index_b.to_numpy()]
    rows += _pair_rows(pairs, leak)
    if other is not None:
        cross = find_duplicates(dataset, other=other, threshold=threshold, featurizer=featurizer)
        rows += _pair_rows(cross, np.ones(len(cross), dtype=bool))
    if image_checks:
        rows += _quality_rows(dataset)  # already in order: by issue, worst first
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    rank = {"label": 0, "label+outlier": 0, "outlier": 1, "leak": 2, "duplicate": 3,
            **{issue: 4 + k for k, issue in enumerate(IMAGE_ISSUES)}}
    order = table.assign(_rank=table.problem.map(rank), _q=table.label_quality.fillna(table.ood_score),
                         _s=-table.similarity.fillna(0.0))
    order = order.sort_values(["_rank", "_q", "_s"], kind="stable").drop(columns=["_rank", "_q", "_s"])
    for column in ("label", "suggested_label", "other_path", "other_label", "kind", "reason"):
        order[column] = order[column].fillna("")
    return order.reset_index(drop=True)


def _summary(table: pd.DataFrame, dataset: ImageDataset, against: str | None, show: int) -> list[str]:
    """The printed summary: one count line per problem and its first ``show`` rows."""
    labels = table[table.problem.str.startswith("label")]
    odd = table[table.problem.str.endswith("outlier")]
    leaks = table[table.problem == "leak"]
    dups = table[table.problem == "duplicate"]
    n_groups, n_in_groups = 0, 0
    if len(dups):
        index = {p: i for i, p in enumerate(dataset.paths)}
        groups = groups_from_pairs(len(dataset), [index[p] for p in dups.path], [index[p] for p in dups.other_path])
        sizes = np.bincount(groups)
        n_groups, n_in_groups = int((sizes > 1).sum()), int(sizes[sizes > 1].sum())
    lines = [f"label issues: {len(labels)} of {len(dataset)} images"]
    lines += [f"  {r.label} -> {r.suggested_label}  quality {r.label_quality:.3f}  {r.path}"
              for r in labels.head(show).itertuples()]
    lines.append(f"odd images (fit no class): {len(odd)}")
    lines += [f"  ood score {r.ood_score:.3f}  {r.path}" for r in odd.head(show).itertuples()]
    kinds = ", ".join(f"{n} {k}" for k, n in dups.kind.value_counts().items()) or "none"
    lines.append(f"duplicate groups: {n_groups} ({n_in_groups} images; pairs: {kinds})")
    lines += [f"  {r.kind} {r.similarity:.3f}  {r.path}  {r.other_path}" for r in dups.head(show).itertuples()]
    kinds = ", ".join(f"{n} {k}" for k, n in leaks.kind.value_counts().items()) or "none"
    lines.append(f"leaks against {against}: {len(leaks)} pair(s) ({kinds})" if against else
                 "leaks: not checked (give --test SPLIT_OR_DATA, or a split.json as DATA)")
    lines += [f"  {r.kind} {r.similarity:.3f}  {r.path}  {r.other_path}" for r in leaks.head(show).itertuples()]
    photos = table[table.problem.isin(IMAGE_ISSUES)]
    kinds = ", ".join(f"{n} {k}" for k, n in photos.problem.value_counts(sort=False).items()) or "none"
    lines.append(f"image issues: {photos.path.nunique()} of {len(dataset)} images ({kinds})")
    lines += [f"  {r.path}  {r.reason}" for r in photos.head(show).itertuples()]
    return lines


def write_table(table: pd.DataFrame, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Write ``table`` to ``path`` (tabs for .tsv, else commas) atomically; refuse to replace a file.

    Example:
        >>> import tempfile
        >>> import pandas as pd
        >>> path = os.path.join(tempfile.mkdtemp(), "t.csv")
        >>> write_table(pd.DataFrame({"a": [1]}), path)
        >>> write_table(pd.DataFrame({"a": [2]}), path)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        FileExistsError: ...t.csv exists; pass --overwrite to replace it
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w") as fh:
        table.to_csv(fh, sep="\t" if path.suffix.lower() == ".tsv" else ",", index=False, float_format="%.4f")


def run(args: argparse.Namespace) -> int:
    """Run ``cvkit audit`` for parsed ``args``: audit, print the summary, write the table. Returns 0.

    Bad input (a missing folder, an existing output without ``--overwrite``, too few images per
    class) raises ValueError, FileNotFoundError or FileExistsError, reported with exit status 2.
    """
    require_extra("cleanlab", "cvkit audit")
    out = Path(args.output)
    if out.exists() and not args.overwrite:  # before the work, not after it
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    if out.is_dir():
        raise IsADirectoryError(f"{out} is a folder; give a file name for the table")
    if args.show < 0:
        raise ValueError(f"--show must be 0 or more, not {args.show}")
    options = RunOptions.from_args(args)  # flags, else $CVKIT_RUNTIME, else the default
    dataset, is_test, other = load_audit_data(args.data, args.test)
    featurizer = audit_featurizer(options)
    sides = f" ({int((~is_test).sum())} training, {int(is_test.sum())} test)" if is_test.any() else ""
    print(f"auditing {len(dataset)} images{sides} in {len(dataset.labels)} classes from {args.data}"
          + (f", against {len(other)} test images from {args.test}" if other is not None else ""))
    table = audit_table(dataset, is_test, other, cv=args.cv, threshold=args.threshold, featurizer=featurizer,
                        image_checks=args.image_checks)
    against = (f"{len(other)} test images" if other is not None else
               "the test side" if is_test.any() else None)
    print("\n".join(_summary(table, dataset, against, args.show)))
    write_table(table, out, overwrite=args.overwrite)
    print(f"table written to {out} ({len(table)} rows)")
    return 0
