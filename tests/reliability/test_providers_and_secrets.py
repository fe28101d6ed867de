"""Provider faults through a local stub server (timeouts, 5xx, malformed JSON, retry caps on
attempts and total time, fallback to the extractive answer with a notice) and secrets: a planted API
key that a vendor's error quotes never appears in any output, log, request log or page."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llm.errors import ProviderUnavailableError
from llm.openai_provider import OpenAIProvider
from llm.retry import RetryPolicy
from rag.cli import app
from tests.llm.vendor_stub import VendorStub, sleep, status

KEY = "sk-PLANTED-secret-7f3a9c2e41"
TURBINE = ("Wind farm report. The Zephyr turbine produces 4.2 megawatts at a wind speed of twelve metres per "
           "second. Its blades are made of carbon fibre and measure sixty metres each.")
QUESTION = "How much power does the Zephyr turbine produce?"


@pytest.fixture
def stub() -> Iterator[VendorStub]:
    server = VendorStub().start()
    yield server
    server.stop()


class FakeClock:
    """A clock that only the waits move, so a retry's total time is counted without sleeping."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


@pytest.mark.unit
def test_retries_stop_at_the_cap_on_total_time(stub: VendorStub) -> None:
    stub.default("openai", status(503))
    clock = FakeClock()
    retry = RetryPolicy(max_retries=10, base_wait_s=4.0, max_wait_s=100.0, sleep=clock.sleep, max_total_s=10.0,
                        clock=clock)
    provider = OpenAIProvider("gpt-4o-mini", f"{stub.url}/v1", api_key="sk-test", timeout_s=2.0, retry=retry)
    from llm.base import LLMRequest, Message

    with pytest.raises(ProviderUnavailableError):
        provider.complete(LLMRequest(system="s", messages=(Message("user", "q"),)))
    # Waits of 4 s then 8 s: the third attempt would start at 12 s, past the 10 s cap.
    assert stub.count("openai") == 2 and clock.waits == [4.0]


def _service_with(monkeypatch: pytest.MonkeyPatch, stub: VendorStub, tmp_path: Path, **env: str):  # noqa: ANN202
    from core.settings import get_settings
    from rag.service import RagService

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("RAG_OPENAI_BASE_URL", f"{stub.url}/v1")
    monkeypatch.setenv("RAG_ANSWERER", "openai,extractive")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    path = tmp_path / "zephyr.txt"
    path.write_text(TURBINE)
    service = RagService(source="cli")
    service.ingest([path], "samples")
    return service


@pytest.mark.integration
@pytest.mark.parametrize("fault, words", [
    (sleep(3.0), "timed out"),
    (status(502), "HTTP 502"),
])
def test_a_failing_provider_hands_over_to_the_extractive_answer_with_a_notice(
    stub: VendorStub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault, words: str,  # noqa: ANN001
) -> None:
    stub.default("openai", fault)
    service = _service_with(monkeypatch, stub, tmp_path, RAG_LLM_TIMEOUT_S="0.5", RAG_LLM_MAX_RETRIES="1")
    try:
        started = time.monotonic()
        answer = service.ask(QUESTION, "samples")
        took = time.monotonic() - started
    finally:
        service.close()
    assert answer.provider == "extractive" and "4.2 megawatts" in answer.text
    assert any(w.startswith("openai") for w in answer.warnings), answer.warnings
    assert any("No LLM could answer" in w for w in answer.warnings), answer.warnings
    if words:
        assert any(words.lower() in w.lower() for w in answer.warnings), answer.warnings
    assert stub.count("openai") <= 2 * 2  # at most two attempts (one retry), each with one repair at most
    assert took < 30, f"a slow provider held the answer {took:.1f} s"


@pytest.mark.integration
def test_a_planted_key_never_appears_in_outputs_logs_or_pages(
    stub: VendorStub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The vendor refuses the key and quotes it back, as OpenAI's 401 does; every place a person or a
    log could see it is searched."""
    stub.default("openai", status(401, error=f"Incorrect API key provided: {KEY}. Find your key in settings."))
    caplog.set_level(logging.DEBUG)
    service = _service_with(monkeypatch, stub, tmp_path, RAG_API_KEYS=f"{KEY}-api,second-api-key-1234")
    seen: list[str] = []
    try:
        answer = service.ask(QUESTION, "samples")
        seen += [answer.text, *answer.warnings, json.dumps(answer.to_dict(), default=str)]
        assert any("OPENAI_API_KEY" in w and "[redacted]" in w for w in answer.warnings), answer.warnings
    finally:
        service.close()
    # The CLI, both ways of printing.
    runner = CliRunner()
    for args in (["ask", QUESTION, "-c", "samples"], ["ask", QUESTION, "-c", "samples", "--json"]):
        result = runner.invoke(app, args)
        seen += [result.stdout, result.stderr if result.stderr_bytes is not None else ""]
    # The API, through the whole app in process.
    from tests.rag.conftest import serving
    from tests.web.conftest import clear_streamlit_caches

    clear_streamlit_caches()
    with serving() as api:
        headers = {"Authorization": f"Bearer {KEY}-api"}
        response = api.post("/api/v1/collections/samples/ask", json={"question": QUESTION}, headers=headers)
        assert response.status_code == 200, response.text
        seen.append(response.text)
        wrong = api.post("/api/v1/collections/samples/ask", json={"question": QUESTION},
                         headers={"Authorization": f"Bearer {KEY}-wrong"})
        seen.append(wrong.text)
        seen.append(api.get("/metrics", headers=headers).text)
    clear_streamlit_caches()
    # The web page.
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app.py"), default_timeout=180).run()
    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception, at.exception
    page = [str(e.value) for kind in ("markdown", "caption", "warning", "info", "error", "text", "code")
            for e in at.get(kind) if hasattr(e, "value")]
    page += [getattr(h.proto, "body", "") for h in at.get("html")]
    assert any("No LLM could answer" in text for text in page), page  # the fallback notice is on the page
    seen += page
    clear_streamlit_caches()
    # Logs: every record this process logged, the request log's database, every file under RAG_HOME.
    seen += [record.getMessage() for record in caplog.records]
    captured = capfd.readouterr()
    seen += [captured.out, captured.err]
    home = Path(service.settings.home)
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name.startswith("requests.sqlite") for p in files)
    leaks = [text[:200] for text in seen if KEY in text]
    leaks += [str(p) for p in files if KEY.encode() in p.read_bytes()]
    assert not leaks, leaks
    assert len(stub.bodies("openai")) >= 2  # the key really was sent, and refused, more than once
