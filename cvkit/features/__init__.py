"""Image features from a pretrained backbone, and the on-disk cache that keeps them.

- :class:`ImageFeaturizer`: images -> float32 feature vectors, decoding overlapped with the model.
- :mod:`cvkit.features._store`: the SQLite files that keep them, keyed by image content.
- :func:`cache_info` / :func:`clear_cache`: see, trim and clear the feature cache (``cvkit cache``).
"""
from cvkit.features._admin import cache_info, clear_cache
from cvkit.features._featurizer import ImageFeaturizer

__all__ = ["ImageFeaturizer", "cache_info", "clear_cache"]
