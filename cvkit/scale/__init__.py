"""Beyond one machine: score and featurize millions of images on a Ray cluster, resumably.

- :func:`score_images`: :func:`cvkit.batch_score`'s rows for a whole archive, one Parquet part per
  chunk of images (or one CSV for small jobs), on Ray Data's actor pool (``engine="ray"``) or in
  this process (``engine="local"``).
- :func:`featurize_images`: path, content hash and feature vector of every image, as Parquet;
  :func:`cvkit.features.cache_features` loads it into the feature cache.
- :class:`ScaleSummary`: what a job did (images/s, errors, images reused from an earlier run, nodes).

Ray is the optional extra ``pip install 'cvkit[ray]'``; it is imported only when a job uses it.
See the README's "When one machine is not enough".
"""
from cvkit._lazy import lazy_exports

_EXPORTS = {
    "score_images": "cvkit.scale._score",
    "featurize_images": "cvkit.scale._featurize",
    "ScaleSummary": "cvkit.scale._runner",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
