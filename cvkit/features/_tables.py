"""Feature tables: features of many images as Parquet, and loading them into the feature cache.

Why: features computed on a cluster (``cvkit featurize ... --engine ray``, see
:mod:`cvkit.scale`) should not be computed again on a laptop. A features table has one row per
image: ``path``, ``key`` (the SHA-1 of the file's bytes, the feature cache's key), ``features``
(float32, NaN for an unreadable image) and ``error``; its Parquet metadata names the backbone
(``cvkit.features``: name, weights, input size, pooling, the cache file it belongs to).
:func:`cache_features` puts its vectors into the on-disk cache an :class:`ImageFeaturizer` of the
same backbone uses, so a later ``FeatureClassifier.fit`` on any subset of those images is a lookup.

Needs ``pyarrow`` (``pip install 'cvkit[ray]'``), imported only here.

Example:
    >>> table = features_table(["a.jpg"], ["ab12"], np.ones((1, 3), np.float32), [""], {"dim": 3})
    >>> table.column_names, table.schema.metadata[b"cvkit.features"]
    (['path', 'key', 'features', 'error'], b'{"dim": 3}')
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cvkit.data._images import PathLike
from cvkit.features._store import FeatureCache, as_size

__all__ = ["features_table", "read_features", "cache_features", "backbone_identity", "METADATA_KEY"]

#: The Parquet metadata key holding the backbone's identity (JSON).
METADATA_KEY = b"cvkit.features"




def _recorded_size(size: Any) -> Any:
    """An input size as a table records it: an int for a square (as before sizes were pairs), else
    ``[width, height]``."""
    width, height = as_size(size)
    return width if width == height else [width, height]


def backbone_identity(featurizer: Any) -> dict:
    """What a features table records about the fitted ``featurizer`` that computed it: backbone
    name, weights, input size (an int for a square, else ``[width, height]``), pooling, feature width
    and the name of its cache file (which identifies the weights' bytes), so features are never
    loaded into another backbone's cache.

    Example:
        >>> from cvkit.features import ImageFeaturizer
        >>> identity = backbone_identity(ImageFeaturizer(verbose=False).fit())
        >>> identity["backbone"], identity["input_size"], identity["dim"]
        ('efficientnet_lite0', 224, 1280)
    """
    cache = getattr(featurizer, "cache_path_", None)
    return {"backbone": str(featurizer.backbone) if isinstance(featurizer.backbone, str) else featurizer.model_.name,
            "weights": None if featurizer.weights is None else str(featurizer.weights),
            "input_size": _recorded_size(featurizer.input_size_), "pooling": featurizer.pooling,
            "dim": int(featurizer.n_features_out_), "cache_file": None if cache is None else Path(cache).name}


def features_table(paths: Sequence[str], keys: Sequence[str | None], features: np.ndarray,
                   errors: Sequence[str], identity: dict) -> Any:
    """A ``pyarrow.Table`` of features (columns ``path``, ``key``, ``features``, ``error``)."""
    import pyarrow as pa
    features = np.ascontiguousarray(features, dtype=np.float32)
    dim = features.shape[1]
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(features.reshape(-1), pa.float32()), dim)
    table = pa.table([pa.array(list(paths), pa.string()), pa.array(list(keys), pa.string()), vectors,
                      pa.array(list(errors), pa.string())], names=["path", "key", "features", "error"])
    return table.replace_schema_metadata({METADATA_KEY: json.dumps(identity, sort_keys=True).encode()})


def _batches(table: PathLike, columns: list[str]) -> tuple[dict, Iterator[Any]]:
    import pyarrow.dataset as pads
    path = Path(table)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such features table (a .parquet file or folder)")
    dataset = pads.dataset(os.fspath(path), format="parquet")
    meta = dataset.schema.metadata or {}
    if METADATA_KEY not in meta or "features" not in dataset.schema.names:
        raise ValueError(f"{path}: not a cvkit features table (no 'features' column or '{METADATA_KEY.decode()}' "
                         "metadata); write one with `cvkit featurize`")
    return json.loads(meta[METADATA_KEY]), dataset.to_batches(columns=columns)


def _vectors(column: Any, dim: int) -> np.ndarray:
    return np.asarray(column.flatten(), dtype=np.float32).reshape(-1, dim)


def read_features(table: PathLike) -> dict[str, Any]:
    """A features table in memory: ``{"paths", "keys", "features" (n, d), "errors", "identity"}``.

    Example:
        >>> import tempfile
        >>> import pyarrow.parquet as pq
        >>> path = f"{tempfile.mkdtemp()}/f.parquet"
        >>> pq.write_table(features_table(["a.jpg"], ["ab12"], np.ones((1, 2)), [""], {"dim": 2}), path)
        >>> found = read_features(path)
        >>> found["keys"], found["features"].shape
        (['ab12'], (1, 2))
    """
    identity, batches = _batches(table, ["path", "key", "features", "error"])
    dim = int(identity["dim"])
    paths: list[str] = []
    keys: list[str | None] = []
    errors: list[str] = []
    blocks = []
    for batch in batches:
        paths += batch.column("path").to_pylist()
        keys += batch.column("key").to_pylist()
        errors += [e or "" for e in batch.column("error").to_pylist()]
        blocks.append(_vectors(batch.column("features"), dim))
    features = np.concatenate(blocks) if blocks else np.zeros((0, dim), np.float32)
    return {"paths": paths, "keys": keys, "features": features, "errors": errors, "identity": identity}


def cache_features(table: PathLike, featurizer: Any = None, cache_dir: PathLike | None = None) -> int:
    """Put the vectors of a features table into ``featurizer``'s feature cache; returns how many.

    ``featurizer`` : an :class:`~cvkit.features.ImageFeaturizer` (fitted here if needed); default
    one for the table's backbone, weights, input size and pooling, with ``cache_dir``. It must be
    the backbone that computed the table (its cache file name identifies the weights), else
    ``ValueError``. Rows with an error are skipped. Reads the table in batches: memory stays flat.
    Afterwards, featurizing those images with that featurizer (or a ``FeatureClassifier`` using it)
    is a lookup.
    """
    identity, batches = _batches(table, ["key", "features", "error"])
    if featurizer is None:
        from cvkit.features._featurizer import ImageFeaturizer
        featurizer = ImageFeaturizer(identity["backbone"], weights=identity.get("weights"),
                                     input_size=identity.get("input_size"), pooling=identity.get("pooling", "avg"),
                                     cache_dir=cache_dir, verbose=False)
    if not hasattr(featurizer, "n_features_out_"):
        featurizer.fit()
    mine = backbone_identity(featurizer)
    if mine["cache_file"] is None:
        raise ValueError("the featurizer has no feature cache (cache=False or weights=None): nothing to load into")
    if (identity.get("cache_file"), identity.get("dim")) != (mine["cache_file"], mine["dim"]):
        raise ValueError(f"{table}: features of {identity.get('backbone')} ({identity.get('cache_file')}) cannot go "
                         f"into the cache of {mine['backbone']} ({mine['cache_file']}): another backbone, "
                         "weights or input size")
    n = 0
    with FeatureCache(featurizer.cache_path_, dim=mine["dim"], max_bytes=featurizer.cache_max_bytes_) as cache:
        for batch in batches:
            vectors = _vectors(batch.column("features"), mine["dim"])
            good = {k: v for k, v, e in zip(batch.column("key").to_pylist(), vectors,
                                            batch.column("error").to_pylist()) if k and not e}
            cache.put(good)
            n += len(good)
    return n
