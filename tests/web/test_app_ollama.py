"""The chat page with Ollama as the answerer (a stub that speaks Ollama's API on 127.0.0.1): it
answers with citations; when the model is gone or Ollama stops, the extractive answer comes with a
notice that names the fix."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from core.settings import get_settings
from llm.chain import FALLBACK_NOTE
from tests.llm.ollama_stub import OllamaStub

pytestmark = pytest.mark.integration

TURBINE = (
    "Zephyr turbine field notes.\n\n"
    "The Zephyr turbine produces 4.2 megawatts at a wind speed of twelve metres per second. "
    "Its blades are made of carbon fibre and measure sixty metres each. "
    "Maintenance crews inspect the gearbox every six months.\n\n"
    "The harbour crane lifts containers of forty tonnes. Its operators work in two shifts."
)


def _plain(text: str) -> str:
    """Markdown source without the backslash escapes the app adds."""
    return re.sub(r"\\(.)", r"\1", str(text))


@pytest.fixture
def ollama(web_home, monkeypatch) -> Iterator[OllamaStub]:
    """Ollama with the model "tiny", the app's Ollama model; set before the app's service is built."""
    server = OllamaStub(models=("tiny",)).start()
    monkeypatch.setenv("RAG_OLLAMA_HOST", server.url)
    monkeypatch.setenv("RAG_OLLAMA_MODEL", "tiny")
    monkeypatch.setenv("RAG_LOCAL_LLM_TIMEOUT_S", "10")
    get_settings.cache_clear()
    try:
        yield server
    finally:
        server.stop()


def turn_text(at, index: int) -> tuple[str, list[str]]:  # noqa: ANN001
    """The assistant message's markdown and its captions, unescaped."""
    message = [m for m in at.chat_message if m.name == "assistant"][index]
    return (" ".join(_plain(m.value) for m in message.markdown), [_plain(c.value) for c in message.caption])


def test_chat_answers_with_ollama_and_falls_back_with_the_fix(ollama, app, service, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "zephyr.txt"
    path.write_text(TURBINE)
    service.ingest([path], "samples")
    at = app.run()
    at.sidebar.selectbox(key="answerer").set_value("ollama,extractive").run()  # offered by the registry
    assert "ollama,extractive" in " ".join(c.value for c in at.sidebar.caption)

    at.chat_input[0].set_value("How much power does the Zephyr turbine produce?").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    text, captions = turn_text(at, 0)
    assert "4.2 megawatts" in text and "[1]" in text
    assert any("Answerer: ollama:tiny" in c for c in captions), captions
    assert not any("warning" in c for c in captions), captions
    assert any(label.startswith("[1] zephyr.txt, page 1") for label in (_plain(e.label) for e in at.expander))
    assert ollama.chats()[0]["model"] == "tiny"

    ollama.models = []  # the model was removed (`ollama rm tiny`)
    at.chat_input[0].set_value("What are the Zephyr blades made of?").run()
    assert not at.exception, at.exception
    text, captions = turn_text(at, 1)
    assert "carbon fibre" in text
    assert any("The model tiny is not pulled: run `ollama pull tiny`" in c for c in captions), captions
    assert any(FALLBACK_NOTE in c for c in captions), captions
    assert any("Answerer: extractive" in c for c in captions), captions

    url = ollama.url
    ollama.stop()  # Ollama is no longer running
    at.chat_input[0].set_value("How often do crews inspect the Zephyr gearbox?").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    text, captions = turn_text(at, 2)
    assert "six months" in text
    assert any(f"Ollama is not running at {url}: start it with `ollama serve`" in c for c in captions), captions
    assert any(FALLBACK_NOTE in c for c in captions), captions
