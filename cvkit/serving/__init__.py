"""Deploying a model: a scoring web service, a client, batch scoring and an Azure-ML entry script.

- :func:`serve` / ``cvkit serve MODEL_DIR``: the FastAPI + uvicorn service (``POST /score``,
  ``GET /health``, ``GET /metadata``), built by :func:`create_app`.
- :class:`BackgroundServer`: the service in a background process (notebooks, benchmarks).
- :class:`Client`: score images over HTTP from Python.
- :func:`batch_score` / ``cvkit score MODEL_DIR IMAGES -o predictions.csv``: a folder or table into CSV.
- :mod:`cvkit.serving.azureml_entry`: ``init()`` / ``run(raw_json)`` for Azure ML style hosting.
- :mod:`cvkit.models._inference`: the one code path all of the above use.

Names are imported lazily, so ``import cvkit.serving`` does not load FastAPI or TensorFlow.

Example:
    >>> from cvkit.serving import BackgroundServer, Client
    >>> with BackgroundServer("runs/sample/model") as server:          # doctest: +SKIP
    ...     server.wait_until_ready()
    ...     Client(server.url).score("sample_data/bird/crow.jpg")["label"]
    'bird'
"""
from __future__ import annotations

from cvkit._lazy import lazy_exports

_EXPORTS = {
    "create_app": "cvkit.serving._app",
    "ServiceConfig": "cvkit.serving._app",
    "serve": "cvkit.serving._server",
    "BackgroundServer": "cvkit.serving._server",
    "ThreadedServer": "cvkit.serving._server",
    "free_port": "cvkit.serving._server",
    "Client": "cvkit.serving._client",
    "ServiceError": "cvkit.serving._client",
    "batch_score": "cvkit.models",  # batch scoring lives in the inference layer (cvkit.models._batch)
    "BatchSummary": "cvkit.models",
    "MicroBatcher": "cvkit.serving._microbatch",
    "score_image": "cvkit.models._inference",
    "score_sources": "cvkit.models._inference",
    "prediction_grid": "cvkit.serving._display",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
