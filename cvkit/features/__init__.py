"""Image features from a pretrained backbone, and the on-disk cache that keeps them.

- :class:`ImageFeaturizer`: images -> float32 feature vectors, decoding overlapped with the model.
- :mod:`cvkit.features._store`: the SQLite files that keep them, keyed by image content.
- :func:`cache_info` / :func:`clear_cache`: see, trim and clear the feature cache (``cvkit cache``).
- :func:`read_features` / :func:`cache_features`: features tables (Parquet, e.g. from ``cvkit
  featurize --engine ray``) read into memory, or loaded into the feature cache.

Example:
    >>> from cvkit.features import ImageFeaturizer
    >>> ImageFeaturizer(verbose=False).transform(["sample_data/bird/owl.jpg"]).shape
    (1, 1280)
"""
from cvkit.features._admin import cache_info, clear_cache
from cvkit.features._featurizer import ImageFeaturizer
from cvkit.features._tables import cache_features, read_features

__all__ = ["ImageFeaturizer", "cache_info", "clear_cache", "cache_features", "read_features"]
