"""Clients written for the systems cvkit replaces, run as they are against a real ``cvkit serve``.

Three clients, each written the way its system's documentation has clients write requests:

- cvtk's tutorial function ``score_image_list_with_http``: ``requests``, a bare JSON list of
  ``{"image_in_base64": "{0}".format(base64.b64encode(data)), "parameters": {}}`` (so the string
  is ``"b'iVBOR...'"``), ``Authorization: Bearer KEY``;
- an Azure ML client posting ``{"data": [base64, ...]}`` to the scoring URI (``.../score``);
- a TensorFlow Serving REST client posting ``{"signature_name": ..., "instances": [{"b64": ...}]}``
  to ``/v1/models/NAME:predict`` and taking the argmax of each prediction.

Each must get the labels ``cvkit.load_model(model_dir).predict(paths)`` gives. The rest checks the
same shapes in-process: limits, errors with hints, TF Serving's routes, ``azureml_entry.run`` and
``Client(protocol=...)``.
"""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.support.models import test_split, trained_model_dir

KEY = "key-for-existing-clients"
AUTH = {"Authorization": f"Bearer {KEY}"}


# ---------------------------------------------------------------------- the clients, verbatim
def score_image_list_with_http(images, service_endpoint_url, service_key=None, parameters={}):  # noqa: B006 - as cvtk wrote it
    """cvtk's tutorial client: score a list of image files with the deployed web service."""
    test_samples = []
    for img in images:
        with open(img, "rb") as f:
            data = f.read()
        test_samples.append({"image_in_base64": f"{base64.b64encode(data)}",
                             "parameters": parameters})
    test_samples = json.dumps(test_samples)
    headers = {"Content-Type": "application/json"}
    if service_key is not None:
        headers["Authorization"] = "Bearer " + service_key
    resp = requests.post(service_endpoint_url, test_samples, headers=headers)
    return resp.text


def azureml_score(scoring_uri, key, image_paths):
    """An Azure ML online-endpoint client: base64 images under "data", key as a bearer token."""
    images = []
    for path in image_paths:
        with open(path, "rb") as f:
            images.append(base64.b64encode(f.read()).decode("utf-8"))
    body = str.encode(json.dumps({"data": images}))
    headers = {"Content-Type": "application/json", "Authorization": "Bearer " + key}
    response = requests.post(scoring_uri, data=body, headers=headers)
    response.raise_for_status()
    return response.json()


def tfserving_predict(server, model_name, image_paths, class_names, headers=None):
    """A TensorFlow Serving REST client: b64 instances in, argmax of each prediction out."""
    instances = [{"b64": base64.b64encode(open(p, "rb").read()).decode("utf-8")}
                 for p in image_paths]
    data = json.dumps({"signature_name": "serving_default", "instances": instances})
    json_response = requests.post(f"{server}/v1/models/{model_name}:predict", data=data,
                                  headers=headers)
    predictions = json.loads(json_response.text)["predictions"]
    return [class_names[int(np.argmax(prediction))] for prediction in predictions]


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def paths():
    return [str(p) for p in test_split().paths[:8]]


@pytest.fixture(scope="module")
def expected(model, paths):
    return [str(label) for label in model.predict(paths)]


@pytest.fixture(scope="module")
def served():
    """A real ``cvkit serve MODEL_DIR --api-key`` in its own process."""
    from cvkit.serving import BackgroundServer
    with BackgroundServer(trained_model_dir(), api_key=KEY) as server:
        server.wait_until_ready()
        yield server


@pytest.fixture(scope="module")
def http(model):
    """The same service in-process, for the cheaper checks."""
    from fastapi.testclient import TestClient

    from cvkit.serving import create_app
    with TestClient(create_app(model, api_key=KEY), headers=AUTH) as client:
        while client.get("/health").status_code != 200:
            time.sleep(0.05)
        yield client


def b64(path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


# ---------------------------------------------------------------------- each client, real server
def test_cvtk_client_gets_the_right_labels(served, paths, expected):
    text = score_image_list_with_http(paths, served.url + "/score", service_key=KEY)
    answers = json.loads(text)["predictions"]
    assert [a["label"] for a in answers] == expected
    assert all(len(a["top_k"]) == 3 and set(a["scores"]) >= {a["label"]} for a in answers)


def test_azureml_client_gets_the_right_labels(served, paths, expected):
    answer = azureml_score(served.url + "/score", KEY, paths)
    assert [a["label"] for a in answer["predictions"]] == expected


def test_tfserving_client_gets_the_right_labels(served, paths, expected):
    metadata = requests.get(served.url + "/metadata", headers=AUTH).json()
    assert metadata["model_name"] == "model"  # the model folder's name
    labels = tfserving_predict(served.url, "model", paths, metadata["classes"], headers=AUTH)
    assert labels == expected
    status = requests.get(served.url + "/v1/models/model", headers=AUTH).json()
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    unknown = requests.post(served.url + "/v1/models/resnet:predict", headers=AUTH,
                            data=json.dumps({"instances": [{"b64": b64(paths[0])}]}))
    assert unknown.status_code == 404 and "'model'" in unknown.json()["error"]


def test_client_speaks_each_protocol(served, paths, expected):
    from cvkit.serving import Client
    with Client(served.url, api_key=KEY) as client:
        for protocol in ("cvkit", "cvtk", "azureml", "tfserving"):
            answers = client.score(paths, top_k=2, protocol=protocol)
            assert [a["label"] for a in answers] == expected, protocol
            assert all(len(a["top_k"]) == 2 for a in answers), protocol


# ---------------------------------------------------------------------- the shapes, in-process
def test_every_shape_gives_the_same_scores(http, paths):
    cvkit_answer = http.post("/score", json={"images": [{"image_in_base64": b64(p)} for p in paths[:3]]})
    scores = [a["scores"] for a in cvkit_answer.json()["predictions"]]
    classes = http.get("/metadata").json()["classes"]
    bodies = {
        "cvtk": [{"image_in_base64": f"{base64.b64encode(Path(p).read_bytes())}",
                  "parameters": {}} for p in paths[:3]],
        "azureml strings": {"data": [b64(p) for p in paths[:3]]},
        "azureml items": {"data": [{"image_in_base64": b64(p)} for p in paths[:3]]},
    }
    for name, body in bodies.items():
        response = http.post("/score", json=body)
        assert response.status_code == 200, name
        got = [a["scores"] for a in response.json()["predictions"]]
        assert got == [pytest.approx(s, abs=1e-5) for s in scores], name
    tf_bodies = {"/score": {"instances": [{"b64": b64(p)} for p in paths[:3]]},
                 "/v1/models/model:predict": {"signature_name": "serving_default",
                                              "instances": [{"image_bytes": {"b64": b64(p)}}
                                                            for p in paths[:3]]}}
    for route, body in tf_bodies.items():
        rows = http.post(route, json=body).json()["predictions"]
        assert rows == [pytest.approx([s[c] for c in classes], abs=1e-5) for s in scores], route
    columnar = http.post("/v1/models/model:predict",
                         json={"inputs": {"image_bytes": [{"b64": b64(p)} for p in paths[:3]]}})
    assert columnar.json()["outputs"] == [pytest.approx([s[c] for c in classes], abs=1e-5)
                                          for s in scores]
    one = http.post("/score", json={"data": b64(paths[0])}).json()["predictions"]
    assert one[0]["scores"] == pytest.approx(scores[0], abs=1e-5)


def test_bad_base64_is_a_400_with_a_hint(http):
    cases = {"photo.jpg": "file name", "https://example.com/a.jpg": "URL",
             "iVBOR%%%": "'%' at position 5", "aGk=a": "cut short"}
    for text, hint in cases.items():
        response = http.post("/score", json={"images": [{"image_in_base64": text}]})
        assert response.status_code == 400
        detail = response.json()["detail"]
        assert "images[0]" in detail and hint in detail and "base64.b64encode" in detail, detail
    response = http.post("/score", json={"data": ["@@@"]})
    assert response.status_code == 400 and "data[0]" in response.json()["detail"]


@pytest.mark.parametrize("body", [
    [{"image_in_base64": "aGk="}] * 65,
    {"data": ["aGk="] * 65},
    {"instances": [{"b64": "aGk="}] * 65},
    {"inputs": {"image_bytes": [{"b64": "aGk="}] * 65}},
])
def test_item_count_limit_holds_for_every_shape(http, body):
    response = http.post("/score", json=body)
    assert response.status_code == 413 and "64" in response.json()["detail"]


def test_nesting_and_pixel_budget_hold_for_new_shapes(http):
    import io

    from PIL import Image
    deep = "[" * 5000 + "]" * 5000
    for body in ('{"data": ' + deep + "}", deep, '{"instances": ' + deep + "}"):
        response = http.post("/score", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400 and "nested too deeply" in response.json()["detail"]
    buffer = io.BytesIO()
    Image.new("L", (7000, 7000)).save(buffer, "PNG")
    big = base64.b64encode(buffer.getvalue()).decode()
    response = http.post("/v1/models/model:predict", json={"instances": [{"b64": big}] * 3})
    assert response.status_code == 413 and "pixels" in response.json()["error"]


def test_tfserving_errors_follow_tf_serving(http, paths):
    bad = http.post("/v1/models/model:predict",
                    json={"instances": [{"b64": b64(paths[0])}, {"b64": "bm90IGFuIGltYWdl"}]})
    assert bad.status_code == 400 and bad.json()["error"].startswith("instances[1]: ")
    pixels = http.post("/v1/models/model:predict", json={"instances": [[[0, 0, 0]]]})
    assert pixels.status_code == 400 and "pixel arrays" in pixels.json()["error"]
    other_shape = http.post("/v1/models/model:predict", json={"images": [{"image_in_base64": "aGk="}]})
    assert other_shape.status_code == 400 and "instances" in other_shape.json()["error"]
    both = http.post("/score", json={"images": [], "data": []})
    assert both.status_code == 400 and "one list" in both.json()["detail"]
    assert http.get("/v1/models/other").status_code == 404
    curl_default = {"Content-Type": "application/x-www-form-urlencoded"}  # what curl -d sends
    body = json.dumps({"instances": [{"b64": b64(paths[0])}]})
    assert http.post("/v1/models/model:predict", content=body, headers=curl_default).status_code == 200
    refused = http.post("/score", content=body, headers=curl_default)
    assert refused.status_code == 415 and "Content-Type: application/json" in refused.json()["detail"]
    assert http.post("/v1/models/model:predict", json={"instances": []},
                     headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_the_schema_describes_every_shape(http):
    schema = http.get("/openapi.json").json()
    body = schema["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    required = [s.get("required", s["type"]) for s in body["anyOf"]]
    assert required == [["images"], "array", ["data"], ["instances"], ["inputs"]]
    predict = schema["paths"]["/v1/models/{name}:predict"]["post"]
    assert predict["parameters"][0]["schema"]["enum"] == ["model"]


def test_azureml_entry_run_takes_every_shape(model, paths, monkeypatch):
    from cvkit.serving import azureml_entry
    monkeypatch.setattr(azureml_entry, "model", model)
    cvkit_answer = azureml_entry.run(json.dumps({"images": [{"image_in_base64": b64(paths[0])}]}))
    label = cvkit_answer["predictions"][0]["label"]
    for body in ([{"image_in_base64": f"{base64.b64encode(Path(paths[0]).read_bytes())}",
                   "parameters": {}}],
                 {"data": [b64(paths[0])]}, {"data": b64(paths[0])}):
        assert azureml_entry.run(json.dumps(body))["predictions"][0]["label"] == label
    rows = azureml_entry.run(json.dumps({"instances": [{"b64": b64(paths[0])}]}))["predictions"]
    assert model.classes_[int(np.argmax(rows[0]))] == label
    failed = azureml_entry.run(json.dumps({"instances": [{"b64": "@@"}]}))
    assert failed["status_code"] == 400 and failed["error"].startswith("instances[0]")
