"""The whole answer pipeline with Ollama as the answerer: RagService over the sample documents,
`rag ask --answerer ollama:...`, and the fallback notices when the model is missing or Ollama stopped."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from ollama_stub import OllamaStub
from typer.testing import CliRunner

from core.settings import Settings, get_settings
from llm.chain import FALLBACK_NOTE
from rag.service import RagService
from tests.conftest import SAMPLES

pytestmark = pytest.mark.integration

REFRIGERANT = "Which refrigerant does the Aurora AHP-9 use?"


@pytest.fixture(scope="module")
def ollama() -> Iterator[OllamaStub]:
    with OllamaStub(models=("tiny",)) as server:
        yield server


@pytest.fixture(scope="module")
def service(tmp_path_factory, ollama) -> Iterator[RagService]:
    """The sample documents ingested once; Ollama's address set the way a person sets it."""
    home = tmp_path_factory.mktemp("ollama_pipeline")
    svc = RagService(Settings(home=home, ollama_host=ollama.url, local_llm_timeout_s=10.0))
    report = svc.ingest([SAMPLES / "documents"], "samples")
    assert not report.failed
    yield svc
    svc.close()


def test_ollama_answers_from_the_samples_with_checked_citations(service, ollama):
    before = len(ollama.chats())
    answer = service.ask(REFRIGERANT, "samples", answerer="ollama:tiny")
    assert answer.provider == "ollama:tiny" and not answer.abstained
    assert "R290" in answer.text and "[" in answer.text
    assert answer.citations and {c.document for c in answer.citations} == {"aurora-ahp9-manual.pdf"}
    assert all("R290" in c.text for c in answer.citations)  # the cited chunk holds what the answer says
    assert answer.grounded and not answer.unsupported_sentences
    assert answer.cost_usd == 0.0 and not any("price" in w for w in answer.warnings)
    [body] = ollama.chats()[before:]
    assert body["model"] == "tiny" and body["stream"] is True  # the pipeline streams
    assert REFRIGERANT in body["messages"][-1]["content"]


def test_streamed_pieces_are_the_answer(service):
    live = service.ask_stream("What is the rated heating capacity of the AHP-9 at A7/W35?", "samples",
                              answerer="ollama:tiny,extractive")
    text = "".join(live)
    answer = live.result()
    assert text.strip() == answer.text.strip() and "9.2 kW" in answer.text
    assert answer.provider == "ollama:tiny" and answer.citations


def test_model_not_pulled_falls_back_with_the_pull_command(service, ollama):
    before = len(ollama.chats())
    answer = service.ask(REFRIGERANT, "samples", answerer="ollama:llama3.2:1b,extractive")
    assert answer.provider == "extractive" and "R290" in answer.text and answer.citations
    assert any("run `ollama pull llama3.2:1b`" in w for w in answer.warnings), answer.warnings
    assert FALLBACK_NOTE in answer.warnings
    assert len(ollama.chats()) - before == 1  # a 404 is not retried


def test_ollama_stopped_falls_back_with_the_start_command(tmp_path):
    stopped = OllamaStub().start()
    url = stopped.url
    stopped.stop()
    svc = RagService(Settings(home=tmp_path / "home", ollama_host=url))
    try:
        svc.ingest([SAMPLES / "documents" / "support-contact.txt"], "samples")
        answer = svc.ask("How can I reach support?", "samples", answerer="ollama:tiny,extractive")
    finally:
        svc.close()
    assert answer.provider == "extractive"
    assert f"ollama:tiny: Ollama is not running at {url}: start it with `ollama serve`" in answer.warnings


def test_rag_ask_with_ollama_answerer(tmp_path, monkeypatch, ollama):
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "cli_home"))
    monkeypatch.setenv("OLLAMA_HOST", ollama.url)  # the variable Ollama's own CLI reads
    get_settings.cache_clear()
    from rag.cli import app

    runner = CliRunner()
    ingested = runner.invoke(app, ["ingest", str(SAMPLES / "documents" / "warranty-faq.md"),
                                   "--collection", "s", "--json"])
    assert ingested.exit_code == 0, ingested.stdout
    result = runner.invoke(app, ["ask", "How long is the warranty?", "--collection", "s",
                                 "--answerer", "ollama:tiny,extractive", "--json"])
    assert result.exit_code == 0, result.stdout
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["provider"] == "ollama:tiny" and data["citations"] and not data["abstained"]
    assert {c["document"] for c in data["citations"]} == {"warranty-faq.md"}

    missing = runner.invoke(app, ["ask", "How long is the warranty?", "--collection", "s",
                                  "--answerer", "ollama:mistral,extractive"])
    assert missing.exit_code == 0, missing.stdout
    shown = " ".join((missing.stdout + (missing.stderr or "")).split())  # the console wraps long lines
    assert "The model mistral is not pulled: run `ollama pull mistral`" in shown
    assert FALLBACK_NOTE in shown
    get_settings.cache_clear()
