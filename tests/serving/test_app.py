"""The scoring web service, over real HTTP: a uvicorn server on a free loopback port, per module.

Covers the happy paths (multipart and base64 JSON), per-item errors, every refusal (size, bomb,
bad base64, non-image, auth, content type, too many images), URL/path safety, micro-batching,
metadata and health, and that answers equal the shared scoring code path exactly.
"""
from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.corpus import huge_png_header
from tests.support.models import CountingHTTPServer, test_split, trained_model_dir

KEY = "test-key-for-serving-tests"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def test_images():
    split = test_split()
    return split.paths[:6], split.image_labels[:6]


@pytest.fixture(scope="module")
def server(model):
    from cvkit.serving import ThreadedServer, create_app
    with ThreadedServer(create_app(model, api_key=KEY)) as running:
        running.wait_until_ready()
        yield running


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
        yield client


def b64(path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


def multipart(paths):
    return [("image", (Path(p).name, Path(p).read_bytes(), "image/jpeg")) for p in paths]


# ---------------------------------------------------------------------- health and metadata
def test_health_is_open_and_reports_ready(server):
    response = httpx.get(server.url + "/health")  # no API key needed
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["ready"] is True


def test_metadata_describes_the_model(http, model):
    body = http.get("/metadata").json()
    assert body["classes"] == ["bird", "flower", "fruit", "vegetable"] == list(model.classes_)
    assert body["input_size"] == list(model.input_size_)
    assert body["backbone"] == model.metadata_["backbone"]
    assert body["model_version"] == model.metadata_["model_version"]
    assert body["limits"]["max_request_bytes"] == 10 * 1024 * 1024
    assert body["runtime"] == "litert" and body["precision"] == "float32"  # what runs the model


# ---------------------------------------------------------------------- happy paths
def test_multipart_scores_each_file_in_order_like_the_scoring_code_path(http, model, test_images):
    from cvkit.models._inference import score_sources
    paths, _ = test_images
    response = http.post("/score", files=multipart(paths))
    assert response.status_code == 200
    answers = response.json()["predictions"]
    assert [a["filename"] for a in answers] == [Path(p).name for p in paths]
    assert [a["index"] for a in answers] == list(range(len(paths)))
    direct = score_sources(model, [Path(p).read_bytes() for p in paths])
    for answer, expected in zip(answers, direct):
        assert answer["label"] == expected["label"]
        assert set(answer["scores"]) == set(model.classes_)
        assert answer["score"] == pytest.approx(answer["scores"][answer["label"]])
        assert sum(answer["scores"].values()) == pytest.approx(1.0, abs=1e-4)
        for name in model.classes_:
            assert answer["scores"][name] == pytest.approx(expected["scores"][name], abs=1e-5)
        assert [t["label"] for t in answer["top_k"]][0] == answer["label"]
        assert len(answer["top_k"]) == 3


def test_answers_agree_with_model_predict(http, model, test_images):
    paths, _ = test_images
    answers = http.post("/score", files=multipart(paths)).json()["predictions"]
    assert [a["label"] for a in answers] == list(model.predict(paths))
    proba = model.predict_proba(paths)
    got = np.array([[a["scores"][c] for c in model.classes_] for a in answers])
    np.testing.assert_allclose(got, proba, atol=1e-4)


def test_the_model_is_better_than_chance_on_held_out_images(http, test_images):
    paths, labels = test_images
    answers = http.post("/score", files=multipart(paths)).json()["predictions"]
    correct = sum(a["label"] == t for a, t in zip(answers, labels))
    assert correct >= 4, f"only {correct}/6 right: {[a['label'] for a in answers]} vs {labels}"


def test_json_base64_with_per_item_and_request_top_k(http, test_images):
    paths, _ = test_images
    body = {"images": [{"image_in_base64": b64(paths[0]), "parameters": {"top_k": 1}},
                       {"image_in_base64": b64(paths[1])},
                       {"image_in_base64": "data:image/jpeg;base64," + b64(paths[2]),
                        "parameters": {"top_k": 99}}],
            "parameters": {"top_k": 2}}
    response = http.post("/score", json=body)
    assert response.status_code == 200
    answers = response.json()["predictions"]
    assert [len(a["top_k"]) for a in answers] == [1, 2, 4]  # 99 is clipped to the 4 classes
    multipart_answers = http.post("/score", files=multipart(paths[:3])).json()["predictions"]
    assert [a["label"] for a in answers] == [a["label"] for a in multipart_answers]


def test_top_k_from_query_and_form_field(http, test_images):
    paths, _ = test_images
    by_query = http.post("/score?top_k=1", files=multipart(paths[:1])).json()["predictions"][0]
    by_field = http.post("/score", files=multipart(paths[:1]), data={"top_k": "4"}).json()
    assert len(by_query["top_k"]) == 1
    assert len(by_field["predictions"][0]["top_k"]) == 4


# ---------------------------------------------------------------------- per-item errors
def test_one_bad_image_does_not_fail_its_siblings(http, test_images):
    paths, _ = test_images
    files = multipart(paths[:2])
    files.insert(1, ("image", ("notes.jpg", b"this is text, not a JPEG", "image/jpeg")))
    files.append(("image", ("empty.png", b"", "image/png")))
    response = http.post("/score", files=files)
    assert response.status_code == 200
    answers = response.json()["predictions"]
    assert "label" in answers[0] and "label" in answers[2]
    assert answers[1]["error"].startswith("images[1]:") and "not an image" in answers[1]["error"]
    assert answers[1]["filename"] == "notes.jpg"
    assert answers[3]["error"].startswith("images[3]:") and "empty" in answers[3]["error"]


def test_json_item_errors_name_their_index(http, test_images):
    paths, _ = test_images
    body = {"images": [{"image_in_base64": "%%% not base64 %%%"},
                       {"image_in_base64": b64(paths[0])},
                       {"image_in_base64": base64.b64encode(b"plain text").decode()},
                       {"image_in_base64": b64(paths[1]), "parameters": {"top_k": 0}},
                       "just a string"]}
    response = http.post("/score", json=body)
    assert response.status_code == 200
    answers = response.json()["predictions"]
    assert "base64" in answers[0]["error"] and answers[0]["error"].startswith("images[0]:")
    assert "label" in answers[1]
    assert "not an image" in answers[2]["error"] and answers[2]["error"].startswith("images[2]:")
    assert "top_k" in answers[3]["error"] and answers[3]["error"].startswith("images[3]:")
    assert answers[4]["error"].startswith("images[4]:")


@pytest.mark.parametrize("body, fragment", [
    ({"images": [{"image_in_base64": "!!!!"}]}, "base64"),
    ({"images": [{"image_in_base64": base64.b64encode(b"GIF89a but not really").decode()}]},
     "not an image"),
])
def test_a_request_whose_only_image_is_bad_is_a_400_naming_the_item(http, body, fragment):
    response = http.post("/score", json=body)
    assert response.status_code == 400
    payload = response.json()
    assert "images[0]" in payload["detail"] and fragment in payload["detail"]
    assert payload["predictions"][0]["index"] == 0


def test_non_image_upload_alone_is_400(http):
    response = http.post("/score", files=[("image", ("x.jpg", b"\xff\xd8\xff broken", "image/jpeg"))])
    assert response.status_code == 400
    assert "images[0]" in response.json()["detail"]


# ---------------------------------------------------------------------- refusals
def test_request_over_10_mb_is_413(http):
    big = b"\0" * (10 * 1024 * 1024 + 1)
    response = http.post("/score", files=[("image", ("big.jpg", big, "image/jpeg"))])
    assert response.status_code == 413
    assert "10485760" in response.json()["detail"]


def test_chunked_request_over_the_limit_is_413(model, test_images):
    from cvkit.serving import ThreadedServer, create_app

    def chunks():
        for _ in range(40):
            yield b"x" * 8192  # 320 KB with no Content-Length

    with ThreadedServer(create_app(model, max_request_bytes=100_000)) as small:
        small.wait_until_ready()
        response = httpx.post(small.url + "/score", content=chunks(),
                              headers={"Content-Type": "application/json"}, timeout=60)
        assert response.status_code == 413
        ok = httpx.post(small.url + "/score", files=multipart(test_images[0][:1]), timeout=60)
        assert ok.status_code == 200  # a small request still passes


def test_decompression_bomb_is_refused_without_decoding(http):
    bomb = huge_png_header(40_000, 40_000)  # 1.6 gigapixels claimed in 57 bytes
    response = http.post("/score", json={"images": [{"image_in_base64": base64.b64encode(bomb).decode()}]})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "images[0]" in detail and "too large" in detail


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY},
                                     {"Authorization": f"Basic {KEY}"}])
def test_score_and_metadata_need_the_api_key(server, headers, test_images):
    paths, _ = test_images
    score = httpx.post(server.url + "/score", files=multipart(paths[:1]), headers=headers)
    meta = httpx.get(server.url + "/metadata", headers=headers)
    assert score.status_code == 401 and meta.status_code == 401
    assert score.headers["www-authenticate"] == "Bearer"


def test_unsupported_content_type_is_415(http):
    response = http.post("/score", content=b"abc", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


@pytest.mark.parametrize("body, fragment", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"pictures": []}', '"images"'),
    (b'{"images": []}', "empty"),
    (b'{"images": "abc"}', "list"),
    (b'{"images": [{"image_in_base64": "aGk="}], "parameters": {"top_k": "three"}}', "top_k"),
])
def test_malformed_json_is_400_naming_the_field(http, body, fragment):
    response = http.post("/score", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert fragment in response.json()["detail"]


def test_too_many_images_is_413(http):
    body = {"images": [{"image_in_base64": "aGk="}] * 65}
    response = http.post("/score", json=body)
    assert response.status_code == 413
    assert "64" in response.json()["detail"]


def test_multipart_without_files_is_400(http):
    response = http.post("/score", data={"top_k": "2"}, files=[("note", (None, b"hello"))])
    assert response.status_code == 400
    assert "no image files" in response.json()["detail"]


# ---------------------------------------------------------------------- never fetch, never read paths
def test_service_never_fetches_urls_or_reads_server_paths(http, test_images):
    paths, _ = test_images
    with CountingHTTPServer(Path(paths[0]).read_bytes()) as remote:
        image_url = remote.url + "/photo.jpg"
        body = {"images": [{"url": image_url}, {"image_url": image_url},
                           {"path": str(paths[0])},
                           {"image_in_base64": base64.b64encode(image_url.encode()).decode()},
                           {"image_in_base64": base64.b64encode(str(paths[0]).encode()).decode()},
                           {"image_in_base64": b64(paths[0])}]}
        response = http.post("/score", json=body)
        form = http.post("/score", data={"url": image_url}, files=multipart(paths[:1]))
        assert remote.hits == [], "the service fetched a URL named in a request"
    answers = response.json()["predictions"]
    assert response.status_code == 200
    for i in range(5):
        assert "error" in answers[i], answers[i]
    assert "never fetches" in answers[0]["error"] and "never fetches" in answers[2]["error"]
    assert "label" in answers[5]
    assert form.status_code == 400 and "never fetches" in form.json()["detail"]


# ---------------------------------------------------------------------- micro-batching
def test_concurrent_requests_share_model_calls(model, test_images):
    from cvkit.serving import ThreadedServer, create_app
    paths, _ = test_images
    app = create_app(model, max_wait_ms=250, max_batch_size=16)
    with ThreadedServer(app) as running:
        running.wait_until_ready()
        before = app.state.service.batcher.stats.as_dict()

        def one(path):
            return httpx.post(running.url + "/score", files=multipart([path]), timeout=60)

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            responses = list(pool.map(one, paths))
        after = httpx.get(running.url + "/health").json()["batching"]
    assert all(r.status_code == 200 for r in responses)
    assert after["images"] - before["images"] == 6
    assert after["requests"] - before["requests"] == 6
    assert after["batches"] - before["batches"] < 6, after
    assert after["largest_batch"] >= 2
    alone = [a["label"] for a in httpx_score_each(model, paths)]
    assert [r.json()["predictions"][0]["label"] for r in responses] == alone


def httpx_score_each(model, paths):
    from cvkit.models._inference import score_sources
    return [score_sources(model, [p])[0] for p in paths]


# ---------------------------------------------------------------------- loading and failures
def test_health_is_503_when_the_model_cannot_load(tmp_path):
    from cvkit.serving import ThreadedServer, create_app
    broken = tmp_path / "broken_model"
    broken.mkdir()
    (broken / "metadata.json").write_text('{"format": "cvkit-model", "format_version": 1}')
    (broken / "model.keras").write_bytes(b"not a keras file")
    with ThreadedServer(create_app(broken)) as running:
        with pytest.raises(RuntimeError, match="could not load"):
            running.wait_until_ready(timeout=60)
        health = httpx.get(running.url + "/health")
        score = httpx.post(running.url + "/score", json={"images": [{"image_in_base64": "aGk="}]})
    assert health.status_code == 503 and health.json()["status"] == "error"
    assert score.status_code == 503 and "failed to load" in score.json()["detail"]


def test_create_app_refuses_a_missing_folder(tmp_path):
    from cvkit.serving import create_app
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        create_app(tmp_path / "nope")


# ---------------------------------------------------------------------- client
def test_client_scores_paths_and_bytes_both_encodings(server, model, test_images):
    from cvkit.serving import Client, ServiceError
    paths, labels = test_images
    with Client(server.url, api_key=KEY) as client:
        assert client.health()["ready"]
        assert client.metadata()["classes"] == list(model.classes_)
        as_files = client.score(paths, top_k=2)
        as_json = client.score(paths, top_k=2, encoding="json")
        one = client.score(Path(paths[0]).read_bytes())
        timed = client.time_scoring(paths[:3], labels=labels[:3])
    assert [a["label"] for a in as_files] == [a["label"] for a in as_json]
    assert all(len(a["top_k"]) == 2 for a in as_files)
    assert one["label"] == as_files[0]["label"]
    assert list(timed.columns) == ["image", "label", "score", "ms", "error", "true_label", "correct"]
    assert (timed.ms > 0).all() and timed.label.tolist() == [a["label"] for a in as_files[:3]]
    with Client(server.url, api_key="wrong") as bad, pytest.raises(ServiceError) as info:
        bad.score(paths[0])
    assert info.value.status_code == 401


def test_client_refuses_urls_and_missing_files(server, tmp_path):
    from cvkit.serving import Client
    with Client(server.url, api_key=KEY) as client:
        with pytest.raises(ValueError, match="not URLs"):
            client.score("http://example.com/a.jpg")
        with pytest.raises(FileNotFoundError, match="nope.jpg"):
            client.score(tmp_path / "nope.jpg")


# ---------------------------------------------------------------------- score_image (client-side URL fetch)
def test_score_image_from_path_bytes_and_url(model, test_images):
    from cvkit.data import ImageReadError
    from cvkit.models._inference import score_image
    paths, _ = test_images
    data = Path(paths[0]).read_bytes()
    by_path = score_image(model, paths[0])
    with CountingHTTPServer(data) as remote:
        by_url = score_image(model, remote.url + "/x.jpg", top_k=1)
        assert remote.hits == ["/x.jpg"]
    assert by_url["label"] == by_path["label"] == score_image(model, data)["label"]
    assert len(by_url["top_k"]) == 1
    assert by_url["scores"] == pytest.approx(by_path["scores"], abs=1e-6)
    with CountingHTTPServer(b"<html>not an image</html>", "text/html") as remote:
        with pytest.raises(ImageReadError, match=r"127\.0\.0\.1.*not an image"):
            score_image(model, remote.url + "/page.html")
    with pytest.raises(ImageReadError, match="download failed"):
        score_image(model, "http://127.0.0.1:9/nothing.jpg", timeout=2)


def test_loaded_model_score_image_uses_the_same_path(model, test_images):
    from cvkit.models._inference import score_image
    paths, _ = test_images
    assert model.score_image(paths[1], top_k=2) == score_image(model, paths[1], top_k=2)


def test_scoring_never_modifies_the_images(http, test_images):
    paths, _ = test_images
    before = [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]
    http.post("/score", files=multipart(paths))
    after = [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]
    assert before == after


# ---------------------------------------------------------------------- init()/run() entry script
def test_init_run_entry_script_matches_the_service(http, test_images, monkeypatch):
    from cvkit.serving import azureml_entry as score
    paths, _ = test_images
    monkeypatch.delenv("CVKIT_MODEL_DIR", raising=False)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(trained_model_dir().parent))  # model/ inside
    score.init()
    request = {"images": [{"image_in_base64": b64(p), "parameters": {"top_k": 2}} for p in paths[:3]]
               + [{"image_in_base64": "@@@"}]}
    answer = score.run(json.dumps(request))
    service = http.post("/score", json=request).json()
    for mine, theirs in zip(answer["predictions"][:3], service["predictions"][:3]):
        assert mine["label"] == theirs["label"]
        assert mine["scores"] == pytest.approx(theirs["scores"], abs=1e-5)
    assert answer["predictions"][3]["error"] == service["predictions"][3]["error"]
    json.dumps(answer)  # JSON-ready
    bad = score.run("{oops")
    assert bad["status_code"] == 400 and "not valid JSON" in bad["detail"]
    assert score.run(b'{"images": [{"image_in_base64": "@@"}]}')["detail"].startswith(
        "no image could be scored")


def test_run_before_init_is_a_clear_error(monkeypatch):
    from cvkit.serving import azureml_entry as score
    monkeypatch.setattr(score, "model", None)
    with pytest.raises(RuntimeError, match="init"):
        score.run('{"images": []}')


def test_health_says_loading_until_the_model_is_ready(monkeypatch, test_images):
    import threading

    import cvkit.models._folder
    from cvkit.serving import ThreadedServer, create_app
    release = threading.Event()
    real_load = cvkit.models._folder.load_model

    def slow_load(path, **options):
        release.wait(30)
        return real_load(path, **options)

    monkeypatch.setattr(cvkit.models._folder, "load_model", slow_load)
    with ThreadedServer(create_app(trained_model_dir())) as running:
        loading = httpx.get(running.url + "/health")
        refused = httpx.post(running.url + "/score", files=multipart(test_images[0][:1]))
        release.set()
        running.wait_until_ready(timeout=60)
        ready = httpx.get(running.url + "/health")
        scored = httpx.post(running.url + "/score", files=multipart(test_images[0][:1]), timeout=60)
    assert loading.status_code == 503 and loading.json()["status"] == "loading"
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert scored.status_code == 200 and "label" in scored.json()["predictions"][0]


@pytest.mark.parametrize("n_files", [65, 80])
def test_too_many_uploaded_files_is_413(http, n_files):
    files = [("image", (f"{i}.jpg", b"x", "image/jpeg")) for i in range(n_files)]
    response = http.post("/score", files=files)
    assert response.status_code == 413
    assert "at most 64" in response.json()["detail"]


def test_malformed_multipart_body_is_400(http):
    response = http.post("/score", content=b"--nope\r\nnot really multipart",
                         headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert response.status_code == 400
