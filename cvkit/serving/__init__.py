"""Deploying a model: a scoring web service, a client, batch scoring and an Azure-ML entry script.

- :func:`serve` / ``cvkit serve MODEL_DIR``: the FastAPI + uvicorn service (``POST /score``,
  ``GET /health``, ``GET /metadata``), built by :func:`create_app` with a :class:`ServiceConfig`
  (every setting also a ``CVKIT_*`` environment variable).
- :class:`BackgroundServer`: the service in a background process (notebooks, benchmarks);
  :class:`ThreadedServer`: any app on a thread of this process (tests, quick demos).
- :class:`Client` (and :class:`ServiceError`): score images over HTTP from Python;
  :func:`prediction_grid` shows the answers.
- :func:`batch_score` / ``cvkit score MODEL_DIR IMAGES -o predictions.csv``: a folder or table into CSV.
- :mod:`cvkit.serving.azureml_entry`: ``init()`` / ``run(raw_json)`` for Azure ML style hosting.

Every path scores through :mod:`cvkit.models._inference`, the one code path. Names are imported
lazily, so ``import cvkit.serving`` does not load FastAPI or TensorFlow.

Example:
    >>> import cvkit
    >>> from cvkit.serving import Client, ThreadedServer, create_app
    >>> train, _ = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
    >>> clf = cvkit.FeatureClassifier(verbose=False, random_state=0).fit(train)
    >>> with ThreadedServer(create_app(clf)) as server, Client(server.url) as client:
    ...     _ = client.wait_until_ready()
    ...     answer = client.score("sample_data/bird/owl.jpg")
    >>> answer["label"]
    'bird'
"""
from __future__ import annotations

from cvkit._lazy import lazy_exports

_EXPORTS = {
    "create_app": "cvkit.serving._app",
    "ServiceConfig": "cvkit.serving._config",
    "serve": "cvkit.serving._server",
    "BackgroundServer": "cvkit.serving._server",
    "ThreadedServer": "cvkit.serving._server",
    "Client": "cvkit.serving._client",
    "ServiceError": "cvkit.serving._client",
    "batch_score": "cvkit.models",  # batch scoring lives in the inference layer (cvkit.models._batch)
    "BatchSummary": "cvkit.models",
    "prediction_grid": "cvkit.serving._display",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
