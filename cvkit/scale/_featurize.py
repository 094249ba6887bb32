"""Featurize millions of images with a pretrained backbone, on a Ray cluster, into Parquet.

:func:`featurize_images` writes a features table (see :mod:`cvkit.features._tables`): one row per
image with its path, content key (SHA-1 of the bytes), feature vector and error, one Parquet
part per chunk of images, resumable like :func:`cvkit.scale.score_images`. Each worker builds the
backbone once (``ImageFeaturizer(backbone, cache=False)``: the offline ImageNet weights come with
cvkit, nothing is downloaded). :func:`cvkit.features._tables.cache_features` then loads the table
into the feature cache, so a later ``FeatureClassifier.fit`` on any subset is a lookup.

Example:
    >>> summary = featurize_images("efficientnet_lite0", test.paths[:3], f"{tmp}/features.parquet",
    ...                            engine="local", progress=False)
    >>> summary.n_images, summary.n_errors
    (3, 0)
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cvkit.data._images import PathLike
from cvkit.features._tables import backbone_identity, features_table, file_key
from cvkit.scale._jobs import DEFAULT_CHUNK_SIZE, Job, plan_output
from cvkit.scale._runner import ChunkWorker, ScaleSummary, check_engine, run_job
from cvkit.serving._batch_score import BatchSummary, batch_inputs

__all__ = ["featurize_images", "FeaturizingWorker"]


class FeaturizingWorker(ChunkWorker):
    """A worker that builds the backbone once and writes each chunk's features table."""

    def setup(self, backbone: str = "efficientnet_lite0", weights: Any = "imagenet", input_size: Any = None,
              pooling: str = "avg", batch_size: int = 32, decode_threads: int = 1,
              identity: dict | None = None) -> None:
        from cvkit.features._featurizer import ImageFeaturizer
        self.featurizer = ImageFeaturizer(backbone, weights=weights, batch_size=batch_size, cache=False,
                                          progress=False, input_size=input_size, pooling=pooling,
                                          n_workers=decode_threads).fit()
        self.identity = identity or backbone_identity(self.featurizer)

    def table(self, pairs: list[tuple[str, str | None]]) -> tuple[Any, BatchSummary]:
        paths = [p for p, _ in pairs]
        keys, reasons = zip(*(file_key(p) for p in paths)) if paths else ((), ())
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
                     weights: Any = "imagenet", input_size: int | None = None, pooling: str = "avg",
                     progress: bool = True, overwrite: bool = False) -> ScaleSummary:
    """Features of every image of ``images`` into the Parquet folder ``output``, resumably.

    ``backbone``, ``weights``, ``input_size`` and ``pooling`` are as for
    :class:`~cvkit.features.ImageFeaturizer`; ``engine``, ``address``, ``workers``, ``batch_size``,
    ``chunk_size``, ``cpus_per_worker``, ``decode_threads`` and ``overwrite`` as for
    :func:`cvkit.scale.score_images`. ``output`` is a folder of Parquet parts (``.csv`` is refused:
    features go to Parquet). Load the result into the feature cache with
    :func:`cvkit.features._tables.cache_features`.
    """
    check_engine(engine, workers, cpus_per_worker)
    if not isinstance(backbone, str):
        raise TypeError(f"backbone must be a backbone name (workers build it by name), got {type(backbone).__name__}")
    layout = plan_output(output, tables=False)
    pairs = [(p, None) for p, _ in batch_inputs(images)[0]]
    from cvkit.features._featurizer import ImageFeaturizer  # the identity: built here once, for the manifest
    probe = ImageFeaturizer(backbone, weights=weights, input_size=input_size, pooling=pooling,
                            progress=False).fit()
    identity = backbone_identity(probe)
    del probe
    job = Job(layout, "featurize", identity, pairs, chunk_size)
    options = {"backbone": backbone, "weights": None if weights is None else os.fspath(weights)
               if isinstance(weights, (str, os.PathLike)) else weights, "input_size": input_size,
               "pooling": pooling, "batch_size": batch_size, "decode_threads": decode_threads, "identity": identity}
    summary = ScaleSummary(output=os.fspath(Path(output)), n_images=0, n_errors=0, seconds=0.0, classes=[],
                           kind="featurized")
    run_job(job, FeaturizingWorker, options, summary, engine=engine, address=address, workers=workers,
            cpus_per_worker=cpus_per_worker, progress=progress, overwrite=overwrite)
    summary.warn_errors("featurize_images", stacklevel=2)
    return summary
