"""Featurize millions of images with a pretrained backbone, on a Ray cluster, into Parquet.

:func:`featurize_images` writes a features table (see :mod:`cvkit.features._tables`): one row per
image with its path, content key (SHA-1 of the bytes), feature vector and error, one Parquet
part per chunk of images, resumable like :func:`cvkit.scale.score_images`. Each worker builds the
backbone once (``ImageFeaturizer(backbone, cache=False)``: the offline ImageNet weights come with
cvkit, nothing is downloaded). :func:`cvkit.features._tables.cache_features` then loads the table
into the feature cache, so a later ``FeatureClassifier.fit`` on any subset is a lookup.

Example:
    >>> import os, tempfile
    >>> out = os.path.join(tempfile.mkdtemp(), "features.parquet")
    >>> summary = featurize_images("efficientnet_lite0", "sample_data/bird/c*.jpg", out, engine="local",
    ...                            verbose=False)
    >>> summary.n_images, summary.n_errors
    (4, 0)
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cvkit._validation import DEPRECATED, Custom, check_param, renamed_keyword
from cvkit.data._images import PathLike
from cvkit.data._source import content_key
from cvkit.features._tables import backbone_identity, features_table
from cvkit.models._batch import BatchSummary
from cvkit.scale._jobs import DEFAULT_CHUNK_SIZE, Job, job_pairs, plan_output
from cvkit.scale._runner import ChunkWorker, ScaleSummary, check_job_params, run_job

__all__ = ["featurize_images", "FeaturizingWorker"]


def _quiet_featurizer(**params: Any) -> Any:
    """An ``ImageFeaturizer`` without a progress bar (a job shows one bar of its own)."""
    from cvkit.features._featurizer import ImageFeaturizer

    return ImageFeaturizer(**params, verbose=False)


class FeaturizingWorker(ChunkWorker):
    """A worker that builds the backbone once and writes each chunk's features table."""

    def setup(self, backbone: str = "efficientnet_lite0", weights: Any = "imagenet", input_size: Any = None,
              pooling: str = "avg", batch_size: int = 32, decode_threads: int = 1,
              identity: dict | None = None) -> None:
        self.featurizer = _quiet_featurizer(backbone=backbone, weights=weights, batch_size=batch_size, cache=False,
                                            input_size=input_size, pooling=pooling,
                                            decode_threads=decode_threads).fit()
        self.identity = identity or backbone_identity(self.featurizer)

    def table(self, pairs: list[tuple[str, str | None]]) -> tuple[Any, BatchSummary]:
        paths = [p for p, _ in pairs]
        keys, reasons = zip(*(content_key(p) for p in paths)) if paths else ((), ())
        with warnings.catch_warnings():  # the unreadable ones are the rows with an error
            warnings.simplefilter("ignore")
            features, ok = self.featurizer.transform(paths, return_mask=True)
        skipped = dict(self.featurizer.skipped_)
        errors = [r or ("" if good else skipped.get(p, "cannot be read"))
                  for p, r, good in zip(paths, reasons, ok)]
        features[np.asarray([bool(e) for e in errors], bool)] = np.nan
        summary = BatchSummary(output="", n_images=len(paths), n_errors=sum(1 for e in errors if e),
                               seconds=0.0, classes=[],
                               errors=[(p, e) for p, e in zip(paths, errors) if e][:20])
        keys = [k if not e else None for k, e in zip(keys, errors)]
        return features_table(paths, keys, features, errors, self.identity), summary


def featurize_images(backbone: str, images: Any, output: PathLike, engine: str = "ray",
                     address: str | None = None, workers: int | None = None, batch_size: int = 32,
                     chunk_size: int = DEFAULT_CHUNK_SIZE, cpus_per_worker: float = 1, decode_threads: int = 1,
                     weights: Any = "imagenet", input_size: Any = None, pooling: str = "avg",
                     verbose: bool = True, overwrite: bool = False, *, progress: Any = DEPRECATED) -> ScaleSummary:
    """Features of every image of ``images`` into the Parquet folder ``output``, resumably.

    ``backbone``, ``weights``, ``input_size`` (an int, or ``(width, height)``) and ``pooling`` are as for
    :class:`~cvkit.features.ImageFeaturizer`; ``images`` (any input :meth:`cvkit.data.ImageSource.resolve`
    takes that names image files), ``engine``, ``address``, ``workers``, ``batch_size``,
    ``chunk_size``, ``cpus_per_worker``, ``decode_threads``, ``verbose`` (formerly ``progress``) and
    ``overwrite`` as for :func:`cvkit.scale.score_images`. ``output`` is a folder of Parquet parts
    (``.csv`` is refused: features go to Parquet). Load the result into the feature cache with
    :func:`cvkit.features._tables.cache_features`.
    """
    verbose = renamed_keyword("featurize_images", "progress", progress, "verbose", verbose, True)
    check_job_params("featurize_images", engine=engine, address=address, workers=workers,
                     cpus_per_worker=cpus_per_worker, batch_size=batch_size, chunk_size=chunk_size,
                     decode_threads=decode_threads, verbose=verbose, overwrite=overwrite)
    check_param("backbone", backbone,
                [Custom(lambda v: isinstance(v, str), "a backbone name (workers build it by name)")])
    layout = plan_output(output, tables=False)
    pairs = [(p, None) for p, _ in job_pairs(images)[0]]  # labels play no part in features
    probe = _quiet_featurizer(backbone=backbone, weights=weights, input_size=input_size, pooling=pooling).fit()
    identity = backbone_identity(probe)  # the identity: built here once, for the manifest
    del probe
    job = Job(layout, "featurize", identity, pairs, chunk_size)
    options = {"backbone": backbone, "weights": None if weights is None else os.fspath(weights)
               if isinstance(weights, (str, os.PathLike)) else weights, "input_size": input_size,
               "pooling": pooling, "batch_size": batch_size, "decode_threads": decode_threads, "identity": identity}
    summary = ScaleSummary(output=os.fspath(Path(output)), n_images=0, n_errors=0, seconds=0.0, classes=[],
                           kind="featurized")
    run_job(job, FeaturizingWorker, options, summary, engine=engine, address=address, workers=workers,
            cpus_per_worker=cpus_per_worker, verbose=verbose, overwrite=overwrite)
    summary.warn_errors("featurize_images", stacklevel=2)
    return summary
