"""Fixtures of the API tests: the whole ASGI app (Streamlit + FastAPI) in a TestClient, on either store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.web.conftest import clear_streamlit_caches

LOOPBACK = ("127.0.0.1", 50000)


@pytest.fixture
def api_home(rag_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """RAG_HOME in a temp dir, no sample documents, no provider or API keys; the app's cached service
    closed and dropped before and after."""
    samples = tmp_path / "no_samples"
    samples.mkdir()
    monkeypatch.setenv("RAG_SAMPLES_DIR", str(samples))
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "COHERE_API_KEY", "RAG_ANSWERER", "RAG_RERANKER",
                "RAG_API_KEYS", "RAG_METRICS_KEYS", "RAG_SERVER_URL", "RAG_SERVER_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    clear_streamlit_caches()
    yield rag_home
    clear_streamlit_caches()


@contextmanager
def serving(client_host: tuple[str, int] = LOOPBACK, **build: object) -> Iterator[TestClient]:
    """The whole app (rag/server.py) with its lifespan run, warm-up finished, in a TestClient."""
    from streamlit.runtime import Runtime

    from rag.server import build_app

    app = build_app(wait_ready=True, **build)  # type: ignore[arg-type]
    try:
        with TestClient(app, client=client_host) as client:
            yield client
    finally:
        # Streamlit keeps one runtime per process and never forgets it; AppTest resets it the same way.
        Runtime._instance = None


@pytest.fixture(params=["edge", "server"])
def store_kind(request: pytest.FixtureRequest, api_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both stores: Qdrant Edge in-process, and the server driver on qdrant-client's in-process engine."""
    if request.param == "server":
        monkeypatch.setenv("RAG_QDRANT_URL", ":memory:")
    return request.param


@pytest.fixture
def api(store_kind: str) -> Iterator[TestClient]:
    """The app on one store, called from this machine with no API keys set."""
    with serving() as client:
        yield client


@pytest.fixture
def api_edge(api_home: Path) -> Iterator[TestClient]:
    """The app on the embedded store only."""
    with serving() as client:
        yield client


def wait_for_job(client: TestClient, job: dict, timeout_s: float = 180.0, **kwargs: object) -> dict:
    """Poll an upload job until it is done or failed."""
    deadline = time.monotonic() + timeout_s
    while job["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"job still {job['status']}: {job}"
        time.sleep(0.1)
        job = client.get(f"/api/v1/jobs/{job['id']}", **kwargs).json()  # type: ignore[arg-type]
    return job


def sse_events(text: str) -> list[tuple[str, str]]:
    """(event, data) pairs of a server-sent event stream."""
    events = []
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if line]
        if not lines:
            continue
        event = next((line[7:] for line in lines if line.startswith("event: ")), "message")
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        events.append((event, data))
    return events

