"""A small Python client for the scoring service: :class:`Client` (see its example).

``Client(url).score(images, protocol=...)`` also speaks the request shapes of the systems cvkit
replaces (all answered in cvkit's shape here). The request each ``protocol`` sends (what a client
written for that system posts):

    >>> build_request([b"hi"], protocol="azureml", top_k=2)
    ('/score', {'data': ['aGk='], 'parameters': {'top_k': 2}})
    >>> build_request([b"hi"], protocol="tfserving", model_name="model")
    ('/v1/models/model:predict', {'instances': [{'b64': 'aGk='}]})
"""
from __future__ import annotations

import base64
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cvkit._validation import Options, check_param
from cvkit.models._decision import DecisionRule
from cvkit.models._inference import DEFAULT_TOP_K, format_prediction

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Client", "ServiceError", "PROTOCOLS", "build_request"]

#: Request shapes :meth:`Client.score` can send (see :mod:`cvkit.serving._protocol`).
PROTOCOLS = ("cvkit", "cvtk", "azureml", "tfserving")
#: How :meth:`Client.score` sends cvkit's own shape: uploaded files or base64 JSON.
ENCODINGS = ("multipart", "json")

ImageInput = str | os.PathLike | bytes | bytearray


class ServiceError(RuntimeError):
    """The service refused a request as a whole (401, 413, 415, 5xx, malformed request)."""

    def __init__(self, status_code: int, detail: str):
        self.status_code, self.detail = status_code, detail
        super().__init__(f"HTTP {status_code}: {detail}")


def _read(image: ImageInput) -> tuple[str, bytes]:
    """``(name, bytes)`` for a path or raw bytes; URLs are refused (fetch them yourself)."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return "image", bytes(image)
    if isinstance(image, str) and image.lower().startswith(("http://", "https://")):
        raise ValueError(f"{image}: the service scores image bytes, not URLs; use "
                         "model.score_image(url) or download the image first")
    path = Path(image)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image file not found")
    return path.name, path.read_bytes()


def build_request(contents: Sequence[bytes], protocol: str = "cvkit", top_k: int | None = None,
                  model_name: str = "model") -> tuple[str, Any]:
    """``(path, JSON body)`` of a JSON scoring request in ``protocol``'s shape.

    ``cvkit``: ``{"images": [{"image_in_base64": ...}]}``; ``cvtk``: a bare list of those items;
    ``azureml``: ``{"data": [base64, ...]}``; ``tfserving``: ``{"instances": [{"b64": ...}]}``
    posted to ``/v1/models/{model_name}:predict`` (``top_k`` is not sent: TF Serving answers every
    class's probability).
    """
    check_param("protocol", protocol, [Options(PROTOCOLS)])
    encoded = [base64.b64encode(content).decode("ascii") for content in contents]
    params = {"parameters": {"top_k": int(top_k)}} if top_k is not None else {}
    if protocol == "cvkit":
        return "/score", {"images": [{"image_in_base64": e, **params} for e in encoded]}
    if protocol == "cvtk":
        return "/score", [{"image_in_base64": e, "parameters": params.get("parameters", {})}
                          for e in encoded]
    if protocol == "azureml":
        return "/score", {"data": encoded, **params}
    return f"/v1/models/{model_name}:predict", {"instances": [{"b64": e} for e in encoded]}


class Client:
    """Talk to a running cvkit scoring service.

    Parameters
    ----------
    url : base URL, e.g. ``http://127.0.0.1:8000``.
    api_key : sent as ``Authorization: Bearer <api_key>`` when the service wants one.
    timeout : seconds per HTTP call.

    Example:
        >>> import cvkit
        >>> from cvkit.serving import ThreadedServer, create_app
        >>> train, _ = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
        >>> clf = cvkit.FeatureClassifier(verbose=False, random_state=0).fit(train)
        >>> with ThreadedServer(create_app(clf, api_key="k")) as server:
        ...     with Client(server.url, api_key="k") as client:
        ...         _ = client.wait_until_ready()
        ...         one = client.score("sample_data/bird/owl.jpg")
        ...         two = client.score(["sample_data/bird/crow.jpg", "sample_data/fruit/apple_fuji.jpg"], top_k=1)
        ...         tf = client.score("sample_data/bird/owl.jpg", protocol="tfserving")
        >>> one["label"], [answer["label"] for answer in two], tf["label"]
        ('bird', ['bird', 'fruit'], 'bird')
    """

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60.0):
        import httpx

        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self._metadata: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"Client({self.url!r}{', api_key=***' if self.api_key else ''})"

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ endpoints
    def _json(self, response: Any) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text[:500]}
        if response.status_code >= 400 and "predictions" not in body:
            raise ServiceError(response.status_code, str(body.get("detail", body)))
        return body

    def health(self) -> dict[str, Any]:
        """``GET /health`` as a dict (``status`` is ``"ok"`` when ready, else ``"loading"``/``"error"``)."""
        response = self._http.get("/health")
        try:
            return response.json()
        except ValueError:
            raise ServiceError(response.status_code, response.text[:500]) from None

    def metadata(self) -> dict[str, Any]:
        """``GET /metadata``: classes, input size, backbone, model version, limits."""
        return self._json(self._http.get("/metadata"))

    def wait_until_ready(self, timeout: float = 120.0, interval: float = 0.2) -> dict[str, Any]:
        """Poll ``/health`` until the model is loaded; returns the health answer."""
        import httpx

        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                health = self.health()
                if health.get("ready"):
                    return health
                if health.get("status") == "error":
                    raise ServiceError(503, f"model failed to load: {health.get('detail')}")
                last = str(health.get("status"))
            except (httpx.TransportError, ServiceError) as exc:
                if isinstance(exc, ServiceError) and exc.status_code == 503 and "failed" in exc.detail:
                    raise
                last = str(exc)
            time.sleep(interval)
        raise TimeoutError(f"{self.url} not ready after {timeout}s ({last})")

    def score(self, images: ImageInput | Sequence[ImageInput], top_k: int | None = None,
              encoding: str = "multipart", protocol: str = "cvkit"
              ) -> dict[str, Any] | list[dict[str, Any]]:
        """Score one image (path or bytes) or a list of them in one request.

        Returns one answer dict for one image, a list for a list. Each answer has ``label``,
        ``score``, ``scores`` and ``top_k``, or ``error`` when that image could not be read; a refusal
        of the whole request (auth, size) raises :class:`ServiceError`.
        ``encoding="json"`` sends base64 JSON (cvkit's ``{"images": [...]}``) instead of multipart
        files. ``protocol`` sends the request in another system's shape (:func:`build_request`):
        ``"cvtk"`` (a bare list), ``"azureml"`` (``{"data": [...]}``) or ``"tfserving"``
        (``{"instances": [{"b64": ...}]}`` to ``/v1/models/{name}:predict``, the name and classes
        read once from ``/metadata``; its probabilities are turned into cvkit's answers here, and
        one unreadable image fails the whole request, as in TF Serving).
        """
        single = isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview))
        batch = [images] if single else list(images)  # type: ignore[list-item]
        if not batch:
            return []
        answers = self._score(batch, top_k, encoding, protocol)
        return answers[0] if single else answers

    def _score_as(self, protocol: str, contents: list[bytes], top_k: int | None
                  ) -> list[dict[str, Any]]:
        """Score in another system's request shape; answers in cvkit's shape."""
        if protocol != "tfserving":
            path, payload = build_request(contents, protocol, top_k)
            return list(self._json(self._http.post(path, json=payload))["predictions"])
        if self._metadata is None:
            self._metadata = self.metadata()
        classes = list(self._metadata["classes"])
        path, payload = build_request(contents, protocol,
                                      model_name=self._metadata.get("model_name") or "model")
        rows = self._json(self._http.post(path, json=payload))["predictions"]
        k = DEFAULT_TOP_K if top_k is None else int(top_k)
        # TF Serving answers probabilities (named with the novelty score when the rule needs it);
        # the model's decision rule (from /metadata) names the answer
        rule = DecisionRule.from_metadata(self._metadata.get("decision"), classes)
        return [{"index": i, **(format_prediction(row["probabilities"], classes, k, rule, row.get("novelty"))
                                if isinstance(row, dict) else format_prediction(row, classes, k, rule))}
                for i, row in enumerate(rows)]

    def _score(self, batch: Sequence[ImageInput], top_k: int | None, encoding: str,
               protocol: str = "cvkit") -> list[dict[str, Any]]:
        check_param("protocol", protocol, [Options(PROTOCOLS)])
        check_param("encoding", encoding, [Options(ENCODINGS)])
        loaded = [_read(image) for image in batch]
        if protocol != "cvkit":
            return self._score_as(protocol, [content for _, content in loaded], top_k)
        if encoding == "multipart":
            data = {"top_k": str(top_k)} if top_k is not None else None
            files = [("image", (name, content, "application/octet-stream")) for name, content in loaded]
            response = self._http.post("/score", files=files, data=data)
        else:  # json
            params = {"parameters": {"top_k": int(top_k)}} if top_k is not None else {}
            payload = {"images": [{"image_in_base64": base64.b64encode(content).decode("ascii"),
                                   **params} for _, content in loaded]}
            response = self._http.post("/score", json=payload)
        body = self._json(response)
        return list(body["predictions"])

    def time_scoring(self, images: Sequence[ImageInput], encoding: str = "multipart",
                     top_k: int | None = None, labels: Sequence[str] | None = None
                     ) -> pd.DataFrame:
        """Score each image in its own request and time it: one row per image.

        Columns: ``image``, ``label``, ``score``, ``ms`` (round trip), ``error``, and ``true_label``
        / ``correct`` when ``labels`` are given. ``df.ms.describe()`` summarises the latency.
        """
        import pandas as pd

        rows = []
        for i, image in enumerate(images):
            name = Path(image).name if isinstance(image, (str, os.PathLike)) else f"<bytes #{i}>"
            start = time.perf_counter()
            answer = self._score([image], top_k, encoding)[0]
            elapsed = (time.perf_counter() - start) * 1000.0
            row = {"image": name, "label": answer.get("label"), "score": answer.get("score"),
                   "ms": elapsed, "error": answer.get("error")}
            if labels is not None:
                row["true_label"] = labels[i]
                row["correct"] = answer.get("label") == labels[i]
            rows.append(row)
        return pd.DataFrame(rows)
