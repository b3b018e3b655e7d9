"""schemathesis generates requests from the app's own /openapi.json and checks every response.

Valid (positive) and invalid (negative) requests for every operation: no 5xx, responses match
the documented status codes, content types and schemas, and data outside the spec is refused.
The spec is the one the app serves, so this also shows the documented bounds are the enforced
ones. (schemathesis' lazy pytest fixture loader does not run under pytest 9, so each operation's
strategy is driven with hypothesis directly.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

MAX_EXAMPLES = 20


@pytest.fixture(scope="module")
def api_schema(tiny_engine, tmp_path_factory):
    from backend import create_app

    # Slots and queue wide enough that no generated request is turned away for load.
    app = create_app(
        {
            "TESTING": True,
            "ENGINE": tiny_engine,
            "GENERATION_SLOTS": 4,
            "QUEUE_SIZE": 4,
            "FRONTEND_DIR": str(tmp_path_factory.mktemp("no-frontend")),
        }
    )
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


# Every path of the spec but /openapi.json itself, which schemathesis leaves out.
OPERATIONS = [
    "POST /generate",
    "POST /generate/stream",
    "POST /v1/completions",
    "GET /v1/models",
    "GET /v1/models/{model_id}",
    "GET /health",
    "GET /metrics",
    "GET /docs",
]


def test_every_operation_is_covered(api_schema):
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert labels == set(OPERATIONS)


POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
# Invalid requests only where there is a body to make invalid.
CASES = [(label, POSITIVE) for label in OPERATIONS] + [
    (label, NEGATIVE) for label in OPERATIONS if label.startswith("POST")
]


@pytest.mark.parametrize("label, mode", CASES)
def test_operation_conforms_to_the_spec(api_schema, label, mode):
    operation = next(r.ok() for r in api_schema.get_all_operations() if r.ok().label == label)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        case.call_and_validate()

    check()
