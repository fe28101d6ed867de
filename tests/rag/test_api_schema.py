"""Property-based fuzzing of the OpenAPI schemas with Schemathesis, through the whole ASGI app: for any
input the schema allows (and inputs it forbids), no 5xx, and every response matches the schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

pytestmark = pytest.mark.integration

KEY = "fuzz-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SCHEMAS = ("/api/v1/openapi.json", "/v1/openapi.json")


@pytest.fixture
def fuzzed_app(api_home, monkeypatch) -> Iterator[object]:  # noqa: ANN001
    """The whole app; Schemathesis runs its lifespan itself (its test client is not on this machine, so
    the API has keys)."""
    from schemathesis.python import asgi
    from streamlit.runtime import Runtime

    from rag.server import build_app

    monkeypatch.setenv("RAG_API_KEYS", KEY)
    monkeypatch.setenv("RAG_MAX_FILE_MB", "0.05")
    app = build_app(wait_ready=True)
    try:
        yield app
    finally:
        asgi.shutdown_lifespans()
        Runtime._instance = None  # Streamlit keeps one runtime per process (AppTest resets it the same way)


# Names these operations take are open sets the service checks (answerers and rerankers such as
# "ollama:MODEL", the collection's documents, readable file types, a user message among the messages):
# valid JSON for them may still be refused with a 4xx, so "schema-valid data is accepted" is not asked there.
OPEN_SETS = {"POST /collections/{collection}/ask", "POST /collections/{collection}/documents", "POST /chat/completions"}


def fuzz(app: object, examples: int) -> list[str]:
    """Run every operation of both schemas, positive and negative data; the operations fuzzed."""
    seen = []
    for path in SCHEMAS:
        schema = schemathesis.openapi.from_asgi(path, app)
        for result in schema.get_all_operations():
            operation = result.ok()
            seen.append(operation.label)
            excluded = [positive_data_acceptance] if operation.label in OPEN_SETS else []
            # An operation that takes nothing (the probes) has no invalid input to send.
            takes_input = bool(list(operation.iter_parameters())) or len(operation.body) > 0
            modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if takes_input else (GenerationMode.POSITIVE,)
            for mode in modes:
                checked(operation.as_strategy(generation_mode=mode), excluded, examples)()
    return seen


def checked(strategy: object, excluded: list, examples: int):  # noqa: ANN201
    """A Hypothesis test: every case of `strategy` is called and its response validated."""

    @given(case=strategy)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=AUTH, excluded_checks=excluded)

    return check


def test_no_input_makes_the_api_fail_or_break_its_schema(fuzzed_app) -> None:  # noqa: ANN001
    seen = fuzz(fuzzed_app, examples=8)
    assert "POST /collections/{collection}/ask" in seen and "POST /chat/completions" in seen
    assert {"GET /health", "GET /ready", "GET /metrics"} <= set(seen)  # the probes, documented at the root
    assert len(seen) == 17


@pytest.mark.slow
def test_no_input_makes_the_api_fail_or_break_its_schema_longer(fuzzed_app) -> None:  # noqa: ANN001
    fuzz(fuzzed_app, examples=150)
