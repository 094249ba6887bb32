"""Schema-driven fuzzing of the scoring service (schemathesis), in-process over ASGI.

Requests are generated from the app's own OpenAPI schema (``/openapi.json``), valid and invalid
alike, and sent to a real model. Every answer must be a non-5xx status the schema documents, with a
body that matches the documented schema. ``max_examples`` is kept small so the run takes about a
minute; raise ``CVKIT_FUZZ_EXAMPLES`` for a longer hunt.
"""
from __future__ import annotations

import os
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from serving_fixtures import trained_model_dir

MAX_EXAMPLES = int(os.environ.get("CVKIT_FUZZ_EXAMPLES", "40"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
CALLS: dict[str, int] = {}


@pytest.fixture(scope="module")
def served_app():
    """The app around the standard test model, loaded and warmed up before fuzzing starts."""
    from schemathesis.python import asgi

    import cvkit
    from cvkit.serving import create_app

    app = create_app(cvkit.load_model(trained_model_dir()))
    with asgi.get_client(app) as client:  # starts the app's lifespan once, as the fuzz run will
        deadline = time.monotonic() + 120
        while client.get("/health").status_code != 200:
            assert time.monotonic() < deadline, "the service never became ready"
            time.sleep(0.05)
    return app


@pytest.fixture(scope="module")
def api_schema(served_app):
    return schemathesis.openapi.from_asgi("/openapi.json", served_app)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.timeout(300)
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_answers_match_the_schema(case):
    CALLS[case.operation.label] = CALLS.get(case.operation.label, 0) + 1
    case.call_and_validate(checks=CHECKS)


def test_the_fuzz_ran(request):
    """Reports how many requests each operation got (shown with ``-rA`` / in the summary)."""
    if not CALLS:
        pytest.skip("run together with the fuzz test")
    print("requests per operation:", CALLS, "total", sum(CALLS.values()))
    assert all(n >= 1 for n in CALLS.values())
