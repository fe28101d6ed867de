"""Fixtures for the LLM layer: temp state, a vendor stub server, settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from vendor_stub import VendorStub

from core.settings import Settings
from llm.retry import RetryPolicy

KEY_VARS = (
    "OPENAI_API_KEY",
    "COHERE_API_KEY",
    "ANTHROPIC_API_KEY",
    "CO_API_URL",
    "ANTHROPIC_BASE_URL",
    "OPENAI_BASE_URL",
    "ANTHROPIC_PROFILE",
    "ANTHROPIC_CONFIG_DIR",
    "OLLAMA_HOST",
    "OLLAMA_API_KEY",
    "LLAMA_API_KEY",
    "RAG_OLLAMA_HOST",
    "RAG_ANSWERER",
)


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch) -> None:
    """All state in a temp dir; no real keys or endpoints leak in from the environment."""
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def keys(monkeypatch) -> None:
    """Test keys for every vendor."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("COHERE_API_KEY", "co-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "ant-test")


@pytest.fixture
def stub() -> Iterator[VendorStub]:
    """The vendor stub on 127.0.0.1, stopped after the test."""
    server = VendorStub().start()
    yield server
    server.stop()


class RecordingSleep:
    """Stands in for time.sleep: records each wait, waits for none."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeper() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def retry(sleeper) -> RetryPolicy:
    """Two retries, waits recorded instead of slept."""
    return RetryPolicy(max_retries=2, base_wait_s=0.25, max_wait_s=10.0, sleep=sleeper)


@pytest.fixture
def settings(stub, tmp_path) -> Settings:
    """Settings with every vendor pointed at the stub and a short client timeout."""
    return Settings(
        home=tmp_path / "home",
        openai_base_url=f"{stub.url}/v1",
        cohere_base_url=stub.url,
        anthropic_base_url=stub.url,
        llm_timeout_s=0.4,
        llm_max_retries=2,
    )
