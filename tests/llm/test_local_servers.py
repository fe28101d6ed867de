"""Ollama and llama.cpp's server through the OpenAI-compatible provider, over real HTTP to a stub
that speaks Ollama's API: addresses, no key, replies, streaming, and the failures people meet
(server not running, model not pulled, a slow model), each named with its fix and never retried."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from ollama_stub import OllamaStub

from core.errors import ConfigError
from core.settings import Settings
from core.types import Answer, ScoredChunk
from llm.answerer import LLMAnswerer
from llm.base import LLMRequest, Message
from llm.chain import FALLBACK_NOTE, ProviderChain
from llm.errors import ProviderRequestError
from llm.local_servers import (
    LlamaCppServerProvider,
    LocalServerDownError,
    LocalServerTimeoutError,
    ModelNotPulledError,
    OllamaProvider,
    ollama_host_url,
    server_base_url,
)
from llm.registry import EXTRACTIVE, answerer_choices, make_provider

REQUEST = LLMRequest(
    system="Answer from the sources.",
    messages=(Message("user", '<sources>\n<source n="1" document="sky.txt" page="1">\n'
                              "The sky is blue because of Rayleigh scattering.\n</source>\n</sources>\n\n"
                              "Question: Why is the sky blue?"),),
)
JSON_REQUEST = LLMRequest(system=REQUEST.system, messages=REQUEST.messages, json_output=True)
SOURCES = [
    ScoredChunk(id="c1", score=0.9, text="The Zephyr turbine produces 4.2 megawatts at full wind.",
                payload={"file_name": "zephyr.txt", "page": 1, "document_id": "d1"}),
    ScoredChunk(id="c2", score=0.5, text="The harbour crane lifts forty tonnes.",
                payload={"file_name": "crane.txt", "page": 1, "document_id": "d2"}),
]


@pytest.fixture
def ollama() -> Iterator[OllamaStub]:
    """Ollama with the model "tiny" pulled, on 127.0.0.1; stopped after the test."""
    with OllamaStub(models=("tiny",)) as server:
        yield server


@pytest.fixture
def stopped() -> str:
    """The address of an Ollama that has stopped: its port refuses connections."""
    server = OllamaStub().start()
    url = server.url
    server.stop()
    return url


def local_settings(tmp_path, host: str, **overrides) -> Settings:
    return Settings(home=tmp_path / "home", ollama_host=host, local_llm_timeout_s=5.0, llm_max_retries=2,
                    **overrides)


def extractive(question: str, sources: list[ScoredChunk]) -> Answer:
    """Stands in for the extractive answerer at the end of the chain."""
    return Answer(text=f"extractive: {sources[0].text}", provider=EXTRACTIVE)


# -- addresses and the registry ---------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(("host", "url"), [
    (None, "http://127.0.0.1:11434"),
    ("", "http://127.0.0.1:11434"),
    ("0.0.0.0", "http://127.0.0.1:11434"),
    ("0.0.0.0:9999", "http://127.0.0.1:9999"),
    (":11500", "http://127.0.0.1:11500"),
    ("gpu-box", "http://gpu-box:11434"),
    ("ollama:11434", "http://ollama:11434"),
    ("http://ollama:11434/", "http://ollama:11434"),
    ("http://ollama:11434/v1", "http://ollama:11434"),
    ("http://ollama", "http://ollama:80"),  # Ollama's own rule: a scheme without a port takes its default
    ("https://llm.example.org/ollama", "https://llm.example.org:443/ollama"),
    ("[::1]:11434", "http://[::1]:11434"),
])
def test_ollama_host_is_read_as_ollama_reads_it(host, url):
    assert ollama_host_url(host) == url


@pytest.mark.unit
def test_a_bad_ollama_host_says_what_an_address_looks_like():
    with pytest.raises(ConfigError, match="http://127.0.0.1:11434"):
        ollama_host_url("localhost:eleven")


@pytest.mark.unit
@pytest.mark.parametrize(("url", "base"), [
    (None, "http://127.0.0.1:8080/v1"),
    ("127.0.0.1:8081", "http://127.0.0.1:8081/v1"),
    ("http://gpu-box:8080/", "http://gpu-box:8080/v1"),
    ("http://gpu-box:8080/v1", "http://gpu-box:8080/v1"),
    ("https://llm.example.org/llama/v1", "https://llm.example.org/llama/v1"),
])
def test_llamacpp_server_url_gets_scheme_and_v1(url, base):
    assert server_base_url(url) == base


@pytest.mark.unit
def test_registry_builds_ollama_with_its_defaults_and_no_key(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")  # an OpenAI key is never sent to a local server
    settings = Settings(home=tmp_path)
    provider = make_provider("ollama:llama3.2:1b", settings)
    assert isinstance(provider, OllamaProvider)
    assert provider.base_url == "http://127.0.0.1:11434/v1" and provider.model == "llama3.2:1b"
    assert provider.label == "ollama:llama3.2:1b" and provider._api_key == "ollama"
    assert provider.timeout_s == settings.local_llm_timeout_s and provider.runs_locally
    assert make_provider("ollama", settings).model == settings.ollama_model == "llama3.2:1b"
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:11500")  # the variable Ollama itself reads
    assert make_provider("ollama:qwen2.5:0.5b", settings).base_url == "http://127.0.0.1:11500/v1"
    chosen = Settings(home=tmp_path, ollama_host="http://ollama:11434")  # the setting wins over OLLAMA_HOST
    assert make_provider("ollama", chosen).base_url == "http://ollama:11434/v1"


@pytest.mark.unit
def test_registry_builds_llamacpp_server_from_its_url(tmp_path):
    settings = Settings(home=tmp_path)
    default = make_provider("llamacpp", settings)
    assert isinstance(default, LlamaCppServerProvider)
    assert default.base_url == "http://127.0.0.1:8080/v1" and default._api_key == "no-key"
    named = make_provider("llamacpp:http://gpu-box:8081", settings)
    assert named.base_url == "http://gpu-box:8081/v1" and named.label == "llamacpp:http://gpu-box:8081/v1"


@pytest.mark.unit
def test_local_servers_are_offered_with_the_extractive_fallback():
    choices = answerer_choices()
    assert f"ollama,{EXTRACTIVE}" in choices and f"llamacpp,{EXTRACTIVE}" in choices
    assert "ollama" in choices and "llamacpp" in choices


# -- replies and streaming ------------------------------------------------------------------------


@pytest.mark.unit
def test_ollama_answers_json_with_usage_and_no_openai_key(ollama, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    provider = make_provider("ollama:tiny", local_settings(tmp_path, ollama.url))
    response = provider.complete(JSON_REQUEST)
    assert json.loads(response.text) == {"answer": "The sky is blue because of Rayleigh scattering [1].",
                                         "citations": [1]}
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    [seen] = [r for r in ollama.requests if r.path == "/v1/chat/completions"]
    assert seen.body["model"] == "tiny" and seen.body["response_format"] == {"type": "json_object"}
    assert seen.headers["authorization"] == "Bearer ollama"


@pytest.mark.unit
def test_ollama_streams_pieces_that_join_to_the_reply(ollama, tmp_path):
    provider = make_provider("ollama:tiny", local_settings(tmp_path, ollama.url))
    live = provider.stream(REQUEST)
    pieces = list(live)
    assert len(pieces) >= 3
    assert "".join(pieces) == live.text == "The sky is blue because of Rayleigh scattering [1]."
    assert live.usage.output_tokens == len(live.text.split())
    assert ollama.chats()[0]["stream"] is True
    assert ollama.chats()[0]["stream_options"] == {"include_usage": True}


@pytest.mark.unit
def test_pulled_models_come_from_v1_models(tmp_path):
    with OllamaStub(models=("llama3.2:1b", "qwen2.5:0.5b")) as server:
        provider = make_provider("ollama:llama3.2:1b", local_settings(tmp_path, server.url))
        assert provider.pulled_models() == ["llama3.2:1b", "qwen2.5:0.5b"]


@pytest.mark.unit
def test_llamacpp_server_answers_whatever_model_it_was_started_with(tmp_path):
    with OllamaStub(models=("model.gguf",), any_model=True) as server:
        provider = make_provider(f"llamacpp:{server.url}", local_settings(tmp_path, ""))
        assert "Rayleigh" in "".join(provider.stream(REQUEST))
        assert server.chats()[0]["model"] == f"{server.url}/v1"


# -- failures: named with their fix, never retried ------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("native", [False, True], ids=["openai-shape", "native-shape"])
def test_missing_model_says_which_pull_fetches_it_and_is_not_retried(tmp_path, retry, sleeper, native):
    with OllamaStub(models=("tiny", "llama3.2:1b"), native_errors=native) as server:
        provider = OllamaProvider("qwen2.5:0.5b", server.url, timeout_s=5.0, retry=retry)
        with pytest.raises(ModelNotPulledError) as caught:
            provider.complete(REQUEST)
        with pytest.raises(ModelNotPulledError):
            list(provider.stream(REQUEST))
        assert len(server.chats()) == 2 and sleeper.waits == []  # one request each, no retries
    message = str(caught.value)
    assert message.startswith("ollama:qwen2.5:0.5b: The model qwen2.5:0.5b is not pulled")
    assert "run `ollama pull qwen2.5:0.5b`" in message
    assert "(pulled here: llama3.2:1b, tiny)" in message


@pytest.mark.unit
def test_ollama_not_running_says_start_it_and_is_not_retried(stopped, retry, sleeper):
    provider = OllamaProvider("tiny", stopped, timeout_s=5.0, retry=retry)
    with pytest.raises(LocalServerDownError) as caught:
        provider.complete(REQUEST)
    with pytest.raises(LocalServerDownError):
        provider.stream(REQUEST)
    assert str(caught.value) == f"ollama:tiny: Ollama is not running at {stopped}: start it with `ollama serve`"
    assert sleeper.waits == []


@pytest.mark.unit
def test_llamacpp_server_not_running_names_llama_server(stopped, retry):
    provider = LlamaCppServerProvider(stopped, timeout_s=5.0, retry=retry)
    with pytest.raises(LocalServerDownError, match=r"llama.cpp's server is not running at .*: start it with `llama-server"):
        provider.complete(REQUEST)


@pytest.mark.unit
def test_a_slow_model_times_out_once_with_advice(ollama, retry, sleeper):
    ollama.delay_s = 1.0
    provider = OllamaProvider("tiny", ollama.url, timeout_s=0.3, retry=retry)
    with pytest.raises(LocalServerTimeoutError, match="RAG_LOCAL_LLM_TIMEOUT_S"):
        provider.complete(REQUEST)
    assert len(ollama.chats()) == 1 and sleeper.waits == []


@pytest.mark.unit
def test_a_wrong_path_is_not_mistaken_for_a_missing_model(ollama, retry):
    provider = LlamaCppServerProvider(f"{ollama.url}/wrong", timeout_s=5.0, retry=retry)
    with pytest.raises(ProviderRequestError, match="check the address") as caught:
        provider.complete(REQUEST)
    assert not isinstance(caught.value, ModelNotPulledError)


# -- the answerer: local answers cost nothing, failures fall back with the fix ---------------------


@pytest.mark.integration
def test_ollama_answer_is_cited_free_and_carries_no_price_warning(ollama, tmp_path):
    settings = local_settings(tmp_path, ollama.url)
    answerer = LLMAnswerer(ProviderChain.from_spec("ollama:tiny,extractive", settings, terminal=extractive),
                           settings)
    answer = answerer.answer("How much power does the Zephyr turbine produce?", SOURCES)
    assert answer.provider == "ollama:tiny" and "4.2 megawatts" in answer.text
    assert [c.document for c in answer.citations] == ["zephyr.txt"]
    assert answer.cost_usd == 0.0 and answer.warnings == []


@pytest.mark.integration
@pytest.mark.parametrize("streamed", [False, True], ids=["answer", "stream"])
def test_missing_model_falls_back_to_extractive_with_the_pull_command(ollama, tmp_path, streamed):
    settings = local_settings(tmp_path, ollama.url)
    chain = ProviderChain.from_spec("ollama:llama3.2:1b,extractive", settings, terminal=extractive)
    answerer = LLMAnswerer(chain, settings)
    question = "How much power does the Zephyr turbine produce?"
    if streamed:
        live = answerer.stream(question, SOURCES)
        text = "".join(live)
        answer = live.result()
        assert text == answer.text
    else:
        answer = answerer.answer(question, SOURCES)
    assert answer.provider == EXTRACTIVE and answer.text.startswith("extractive:")
    assert answer.warnings[0].endswith("The model llama3.2:1b is not pulled: run `ollama pull llama3.2:1b` "
                                       "(pulled here: tiny)")
    assert answer.warnings[1] == FALLBACK_NOTE
    assert len(ollama.chats()) == 1


@pytest.mark.integration
def test_ollama_down_falls_back_to_extractive_with_the_start_command(stopped, tmp_path):
    settings = local_settings(tmp_path, stopped)
    answerer = LLMAnswerer(ProviderChain.from_spec("ollama,extractive", settings, terminal=extractive), settings)
    answer = "".join(live := answerer.stream("How much power?", SOURCES)) and live.result()
    assert answer.provider == EXTRACTIVE
    assert answer.warnings == [
        f"ollama:llama3.2:1b: Ollama is not running at {stopped}: start it with `ollama serve`", FALLBACK_NOTE]
