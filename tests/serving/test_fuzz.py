"""Schema-driven fuzzing of the scoring service (schemathesis), in-process over ASGI.

Requests are generated from the app's own OpenAPI schema (``/openapi.json``), valid and invalid
alike, and sent to a real model. Every answer must be a non-5xx status the schema documents, with a
body that matches the documented schema. ``max_examples`` is kept small so the run takes about a
minute; raise ``CVKIT_FUZZ_EXAMPLES`` for a longer hunt.
"""
from __future__ import annotations

import json
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

from tests.support.models import trained_model_dir

MAX_EXAMPLES = int(os.environ.get("CVKIT_FUZZ_EXAMPLES", "80"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
CALLS: dict[str, int] = {}


class LateApp:
    """An ASGI app that forwards to one set later: the schema is read at import (collection) time,
    while the real model is trained and loaded only when the tests run."""

    target = None

    async def __call__(self, scope, receive, send):
        await self.target(scope, receive, send)


def _schema_document() -> dict:
    """The app's own ``/openapi.json`` (it does not depend on the model, so no model is needed)."""
    from cvkit.serving import create_app
    return json.loads(json.dumps(create_app(object(), warmup=False).openapi()))


APP = LateApp()
schema = schemathesis.openapi.from_dict(_schema_document())
schema.app = APP  # as schemathesis.openapi.from_asgi does: requests go to the app in-process


@pytest.fixture(scope="module", autouse=True)
def served_app():
    """The app around the standard test model, loaded and warmed up before fuzzing starts."""
    from schemathesis.python import asgi

    import cvkit
    from cvkit.serving import create_app

    APP.target = create_app(cvkit.load_model(trained_model_dir()))
    with asgi.get_client(APP) as client:  # starts the app's lifespan once, shared by the fuzz run
        deadline = time.monotonic() + 120
        while client.get("/health").status_code != 200:
            assert time.monotonic() < deadline, "the service never became ready"
            time.sleep(0.05)
    return APP.target


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
