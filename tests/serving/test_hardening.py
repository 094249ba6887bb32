"""The scoring service under hostile input (issue 14): every refusal is a 4xx naming the limit or
the field, never a 500 or an exception; slow clients are dropped; the API description is guarded.

Most tests talk to the app in-process (``TestClient``); the slow-client tests need a real uvicorn
on loopback, since header and body timeouts live in the HTTP server.
"""
from __future__ import annotations

import base64
import io
import json
import socket
import time

import httpx
import pytest
from PIL import Image

from tests.support.models import test_split, trained_model_dir

KEY = "hardening-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
DEEP_JSON = '{"images": ' + "[" * 5000 + "]" * 5000 + "}"
HUGE_TOP_K = '{"images": [{"image_in_base64": "aGk="}], "parameters": {"top_k": ' + "9" * 5000 + "}}"


def wait_ready(client) -> None:
    deadline = time.monotonic() + 60
    while client.get("/health").status_code != 200:
        assert time.monotonic() < deadline, "the service never became ready"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def client(model):
    from fastapi.testclient import TestClient

    from cvkit.serving import create_app
    with TestClient(create_app(model, api_key=KEY), headers=AUTH) as running:
        wait_ready(running)
        yield running


@pytest.fixture(scope="module")
def big_png() -> bytes:
    """A 7000x7000 PNG: 49 MP (under the 50 MP per-image limit) in about 50 kB."""
    buffer = io.BytesIO()
    Image.new("L", (7000, 7000)).save(buffer, "PNG")
    return buffer.getvalue()


def photo_bytes(i: int = 0) -> bytes:
    return open(test_split().paths[i], "rb").read()


# ---------------------------------------------------------------------- JSON that breaks parsers
def test_deeply_nested_json_is_a_400_not_a_500(client):
    response = client.post("/score", content=DEEP_JSON, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]


@pytest.mark.parametrize("where", ["parameters", "item"])
def test_a_5000_digit_top_k_is_a_400_naming_the_field(client, where):
    digits = "9" * 5000
    if where == "parameters":
        body, field = HUGE_TOP_K, "parameters.top_k"
    else:
        body = ('{"images": [{"image_in_base64": "' + base64.b64encode(photo_bytes()).decode()
                + '", "parameters": {"top_k": ' + digits + "}}]}")
        field = "images[0].parameters.top_k"
    response = client.post("/score", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert field in response.text and "5000 digits" in response.text


def test_a_5000_digit_top_k_in_the_query_or_form_is_a_400_naming_it(client):
    files = [("image", ("a.jpg", photo_bytes(), "image/jpeg"))]
    query = client.post("/score", params={"top_k": "9" * 5000}, files=files)
    form = client.post("/score", data={"top_k": "9" * 5000}, files=files)
    assert query.status_code == 400 and "query parameter top_k" in query.json()["detail"]
    assert form.status_code == 400 and "form field top_k" in form.json()["detail"]


def test_the_entry_script_answers_hostile_json_instead_of_raising(model, monkeypatch):
    from cvkit.serving import azureml_entry
    monkeypatch.setattr(azureml_entry, "model", model)
    deep = azureml_entry.run(DEEP_JSON)
    huge = azureml_entry.run(HUGE_TOP_K)
    assert deep["status_code"] == 400 and "nested too deeply" in deep["detail"]
    assert huge["status_code"] == 400 and "parameters.top_k" in huge["detail"]


# ---------------------------------------------------------------------- pixel budget
def test_many_big_images_exceed_the_pixel_budget_before_any_decoding(client, big_png):
    files = [("image", (f"{i}.png", big_png, "image/png")) for i in range(8)]  # 392 MP, 0.4 MB
    start = time.perf_counter()
    response = client.post("/score", files=files)
    elapsed = time.perf_counter() - start
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert "max_request_pixels" in detail and "100000000" in detail and "392000000" in detail
    assert elapsed < 2.0, f"took {elapsed:.1f}s: the images were decoded before the budget check"


def test_the_pixel_budget_counts_json_images_too_and_is_configurable(client, model, big_png):
    from fastapi.testclient import TestClient

    from cvkit.serving import create_app
    body = {"images": [{"image_in_base64": base64.b64encode(big_png).decode()}] * 3}  # 147 MP
    assert client.post("/score", json=body).status_code == 413  # the default budget: 100 MP
    with TestClient(create_app(model, max_request_pixels=200_000_000)) as roomy:
        wait_ready(roomy)
        assert roomy.get("/metadata").json()["limits"]["max_request_pixels"] == 200_000_000
        response = roomy.post("/score", json=body)
    assert response.status_code == 200 and len(response.json()["predictions"]) == 3


def test_one_image_at_the_per_image_limit_fits_the_default_budget(client, big_png):
    response = client.post("/score", files=[("image", ("big.png", big_png, "image/png"))])
    assert response.status_code == 200
    assert "label" in response.json()["predictions"][0]


def test_a_bomb_does_not_count_against_the_budget_of_its_siblings(client):
    from tests.support.corpus import huge_png_header
    files = [("image", ("bomb.png", huge_png_header(30000, 30000), "image/png")),
             ("image", ("ok.jpg", photo_bytes(), "image/jpeg"))]
    response = client.post("/score", files=files)
    assert response.status_code == 200
    bomb, ok = response.json()["predictions"]
    assert "too large" in bomb["error"] and "label" in ok


def test_serve_command_has_a_pixel_budget_flag():
    import argparse

    from cvkit.cli import _serve as serve
    args = serve.add_arguments(argparse.ArgumentParser()).parse_args(["m", "--max-request-mp", "20"])
    assert args.max_request_mp == 20.0


# ---------------------------------------------------------------------- API description and HEAD
@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_the_api_description_needs_the_key_when_there_is_one(client, path):
    refused = client.get(path, headers={"Authorization": ""})
    assert refused.status_code == 401
    assert client.get(path).status_code == 200


def test_the_api_description_is_open_without_a_key_and_can_be_turned_off(model):
    from fastapi.testclient import TestClient

    from cvkit.serving import create_app
    with TestClient(create_app(model, warmup=False)) as open_app:
        assert open_app.get("/openapi.json").status_code == 200
    with TestClient(create_app(model, warmup=False, docs=False)) as closed:
        assert [closed.get(p).status_code for p in ("/docs", "/redoc", "/openapi.json")] == [404] * 3


def test_head_health_answers_like_get(client, model, monkeypatch):
    import threading

    from fastapi.testclient import TestClient

    import cvkit.models._folder
    from cvkit.serving import create_app
    head = client.head("/health", headers={"Authorization": ""})
    assert head.status_code == 200 and head.content == b""
    release = threading.Event()
    real_load = cvkit.models._folder.load_model
    monkeypatch.setattr(cvkit.models._folder, "load_model", lambda p, **kw: release.wait(30) and real_load(p, **kw))
    with TestClient(create_app(trained_model_dir())) as loading:
        assert loading.head("/health").status_code == 503
        release.set()


def test_score_request_bodies_are_described_in_the_schema(client):
    operation = client.get("/openapi.json").json()["paths"]["/score"]["post"]
    content = operation["requestBody"]["content"]
    assert content["application/json"]["schema"]["anyOf"][0]["required"] == ["images"]  # + other shapes
    assert content["multipart/form-data"]["schema"]["properties"]["image"]["type"] == "array"
    assert {"200", "400", "401", "413", "415", "503"} <= set(operation["responses"])


# ---------------------------------------------------------------------- slow clients, real uvicorn
@pytest.fixture(scope="module")
def strict_server(model):
    from cvkit.serving import ThreadedServer, create_app
    app = create_app(model, body_timeout=1.5)
    with ThreadedServer(app, header_timeout=1.0, max_connections=8) as running:
        running.wait_until_ready()
        yield running


def read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the socket, and how long that took."""
    sock.settimeout(limit)
    start, data = time.monotonic(), b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for over {limit}s (got {data[:80]!r})")
    except ConnectionResetError:
        pass
    return data, time.monotonic() - start


@pytest.mark.timeout(60)
def test_a_client_sending_half_a_header_is_dropped_within_the_timeout(strict_server):
    with socket.create_connection((strict_server.host, strict_server.port)) as sock:
        sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Ty")
        data, took = read_until_closed(sock, limit=6.0)
    assert took < 4.0 and data.startswith(b"HTTP/1.1 408")
    assert httpx.get(strict_server.url + "/health").status_code == 200  # the server is fine


@pytest.mark.timeout(60)
def test_a_silent_connection_is_dropped_too(strict_server):
    with socket.create_connection((strict_server.host, strict_server.port)) as sock:
        _, took = read_until_closed(sock, limit=6.0)
    assert took < 4.0


@pytest.mark.timeout(60)
def test_a_body_that_never_finishes_gets_408(strict_server):
    with socket.create_connection((strict_server.host, strict_server.port)) as sock:
        sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"images\": [")
        data, took = read_until_closed(sock, limit=8.0)
    assert data.startswith(b"HTTP/1.1 408") and b"not received within 1.5 s" in data
    assert took < 5.0


@pytest.mark.timeout(60)
def test_connections_beyond_the_limit_are_refused_at_once(strict_server):
    idle = [socket.create_connection((strict_server.host, strict_server.port)) for _ in range(8)]
    try:
        time.sleep(0.2)
        with socket.create_connection((strict_server.host, strict_server.port)) as extra:
            data, took = read_until_closed(extra, limit=3.0)
        assert data.startswith(b"HTTP/1.1 503") and took < 1.0
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.3)
    assert httpx.get(strict_server.url + "/health").status_code == 200


def test_keep_alive_clients_are_not_cut_off_between_requests(strict_server):
    with httpx.Client(base_url=strict_server.url) as http:
        first = http.get("/health")
        time.sleep(1.5)  # longer than the header timeout, shorter than keep-alive (5 s)
        second = http.post("/score", files=[("image", ("a.jpg", photo_bytes(), "image/jpeg"))])
    assert first.status_code == 200 and second.status_code == 200


def test_request_json_round_trip_still_scores(client):
    body = {"images": [{"image_in_base64": base64.b64encode(photo_bytes(1)).decode(),
                        "parameters": {"top_k": 2}}]}
    answer = client.post("/score", content=json.dumps(body),
                         headers={"Content-Type": "application/json"}).json()
    assert len(answer["predictions"][0]["top_k"]) == 2
