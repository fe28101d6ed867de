"""Providers over real HTTP against the vendor stub: replies, streaming, retries, errors."""

from __future__ import annotations

import sys

import pytest
from vendor_stub import malformed, ok, sleep, status

from llm.anthropic_provider import AnthropicProvider
from llm.base import LLMRequest, Message, SourceDocument
from llm.cohere_provider import CohereProvider
from llm.errors import (
    ProviderAuthError,
    ProviderConfigError,
    ProviderRequestError,
    ProviderResponseError,
    ProviderUnavailableError,
)
from llm.local_provider import LocalLlamaProvider
from llm.openai_provider import OpenAIProvider
from llm.registry import make_provider
from llm.retry import RetryPolicy

REQUEST = LLMRequest(
    system="Answer from the sources.", messages=(Message("user", "What colour is the sky?"),)
)
JSON_REQUEST = LLMRequest(system=REQUEST.system, messages=REQUEST.messages, json_output=True)


def openai(stub, retry, **kwargs) -> OpenAIProvider:
    return OpenAIProvider(
        "gpt-4o-mini", f"{stub.url}/v1", api_key="sk-test", timeout_s=0.4, retry=retry, **kwargs
    )


@pytest.mark.unit
def test_openai_reply_text_usage_and_json_mode(stub, retry):
    stub.queue("openai", ok('{"answer": "Blue [1].", "citations": [1]}', usage=(321, 45)))
    response = openai(stub, retry).complete(JSON_REQUEST)
    assert response.text == '{"answer": "Blue [1].", "citations": [1]}'
    assert (response.usage.input_tokens, response.usage.output_tokens) == (321, 45)
    body = stub.bodies("openai")[0]
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0] == {"role": "system", "content": REQUEST.system}
    assert stub.requests[0].headers["authorization"] == "Bearer sk-test"


@pytest.mark.unit
def test_openai_without_json_mode_sends_no_response_format(stub, retry):
    openai(stub, retry, json_mode=False).complete(JSON_REQUEST)
    assert "response_format" not in stub.bodies("openai")[0]


@pytest.mark.unit
def test_openai_server_refusing_json_mode_is_asked_without_it(stub, retry):
    stub.queue("openai", status(400, error="'response_format.type' must be 'json_schema'"))
    provider = openai(stub, retry)
    assert provider.complete(JSON_REQUEST).text
    assert ["response_format" in body for body in stub.bodies("openai")] == [True, False]
    provider.complete(JSON_REQUEST)
    assert "response_format" not in stub.bodies("openai")[2]  # remembered


@pytest.mark.unit
def test_openai_stream_yields_pieces_that_join_to_the_text(stub, retry):
    text = "The sky is blue because of Rayleigh scattering [1]."
    stub.queue("openai", ok(text, pieces=5, usage=(100, 12)))
    live = openai(stub, retry).stream(REQUEST)
    pieces = list(live)
    assert len(pieces) >= 3
    assert "".join(pieces) == text == live.text
    assert (live.usage.input_tokens, live.usage.output_tokens) == (100, 12)
    assert stub.bodies("openai")[0]["stream"] is True


@pytest.mark.unit
def test_anthropic_reply_and_stream(stub, retry):
    provider = AnthropicProvider(
        "claude-3-haiku-20240307", stub.url, api_key="ant-test", timeout_s=0.4, retry=retry
    )
    stub.queue(
        "anthropic", ok("Blue [1].", usage=(50, 7)), ok("Blue, as seen in the data [1].", pieces=4)
    )
    response = provider.complete(REQUEST)
    assert response.text == "Blue [1]."
    assert (response.usage.input_tokens, response.usage.output_tokens) == (50, 7)
    body = stub.bodies("anthropic")[0]
    assert body["system"] == REQUEST.system and body["messages"][0]["role"] == "user"
    sent = stub.requests[0].headers
    assert "ant-test" in sent.get("x-api-key", "") + sent.get(
        "authorization", ""
    )  # header name varies by SDK version
    live = provider.stream(REQUEST)
    pieces = list(live)
    assert len(pieces) >= 3 and "".join(pieces) == "Blue, as seen in the data [1]."
    assert live.usage.output_tokens == 300


@pytest.mark.unit
def test_cohere_documents_and_citations_map_to_source_numbers(stub, retry):
    text = "The sky is blue. Grass is green."
    stub.queue("cohere", ok(text, citations=[(0, 16, ["2"]), (17, 32, ["1", "2"])], usage=(80, 9)))
    provider = CohereProvider(
        "command-r-08-2024", stub.url, api_key="co-test", timeout_s=0.4, retry=retry
    )
    request = LLMRequest(
        system="Answer.",
        messages=(Message("user", "Colours?"),),
        documents=(
            SourceDocument(1, "a.pdf p.1", "Grass is green."),
            SourceDocument(2, "b.pdf p.4", "Sky: blue."),
        ),
    )
    response = provider.complete(request)
    assert response.cited_sources == [2, 1]
    assert response.text == "The sky is blue. [2] Grass is green. [1] [2]"
    body = stub.bodies("cohere")[0]
    assert [d["id"] for d in body["documents"]] == ["1", "2"]
    assert body["documents"][1]["data"]["snippet"] == "Sky: blue."
    assert response.usage.input_tokens == 80


@pytest.mark.unit
def test_5xx_is_retried_with_exponential_waits(stub, retry, sleeper):
    stub.queue("openai", status(500), status(503), ok("fine"))
    assert openai(stub, retry).complete(REQUEST).text == "fine"
    assert stub.count("openai") == 3
    assert sleeper.waits == [0.25, 0.5]


@pytest.mark.unit
def test_persistent_5xx_gives_up_after_the_retries(stub, retry):
    stub.default("openai", status(500))
    with pytest.raises(ProviderUnavailableError):
        openai(stub, retry).complete(REQUEST)
    assert stub.count("openai") == retry.max_retries + 1


@pytest.mark.unit
def test_429_honours_retry_after_and_caps_it(stub, retry, sleeper):
    stub.queue(
        "openai", status(429, retry_after="3"), status(429, retry_after="600"), ok("after the wait")
    )
    assert openai(stub, retry).complete(REQUEST).text == "after the wait"
    assert stub.count("openai") == 3
    assert sleeper.waits == [3.0, retry.max_wait_s]
    assert list(retry.waits) == sleeper.waits


@pytest.mark.unit
def test_timeout_is_retried(stub, retry, sleeper):
    stub.queue("openai", sleep(1.0), ok("second try"))
    assert openai(stub, retry).complete(REQUEST).text == "second try"
    assert stub.count("openai") == 2
    assert len(sleeper.waits) == 1


@pytest.mark.unit
@pytest.mark.parametrize(
    ("route", "make", "variable"),
    [
        ("openai", lambda s, r: openai(s, r), "OPENAI_API_KEY"),
        (
            "anthropic",
            lambda s, r: AnthropicProvider(
                "claude-3-haiku", s.url, api_key="k", timeout_s=0.4, retry=r
            ),
            "ANTHROPIC_API_KEY",
        ),
        (
            "cohere",
            lambda s, r: CohereProvider("command-r", s.url, api_key="k", timeout_s=0.4, retry=r),
            "COHERE_API_KEY",
        ),
    ],
)
def test_401_is_not_retried_and_names_the_variable(stub, retry, route, make, variable):
    stub.queue(route, status(401))
    with pytest.raises(ProviderAuthError, match=variable):
        make(stub, retry).complete(REQUEST)
    assert stub.count(route) == 1


@pytest.mark.unit
def test_other_4xx_is_not_retried(stub, retry):
    stub.queue("openai", status(400))
    with pytest.raises(ProviderRequestError):
        openai(stub, retry).complete(REQUEST)
    assert stub.count("openai") == 1


@pytest.mark.unit
def test_malformed_body_is_a_response_error_without_retry(stub, retry):
    stub.queue("openai", malformed())
    with pytest.raises(ProviderResponseError):
        openai(stub, retry).complete(REQUEST)
    assert stub.count("openai") == 1


@pytest.mark.unit
def test_missing_key_raises_at_once_naming_the_variable(stub):
    with pytest.raises(ProviderAuthError, match="set OPENAI_API_KEY"):
        OpenAIProvider("gpt-4o-mini")
    with pytest.raises(ProviderAuthError, match="set ANTHROPIC_API_KEY"):
        AnthropicProvider("claude-3-haiku", stub.url)
    with pytest.raises(ProviderAuthError, match="set COHERE_API_KEY"):
        CohereProvider("command-r", stub.url)
    assert stub.requests == []


@pytest.mark.unit
def test_openai_compatible_server_needs_no_key(stub, retry):
    provider = OpenAIProvider("llama3", f"{stub.url}/v1", timeout_s=0.4, retry=retry)
    assert provider.complete(REQUEST).text
    assert stub.count("openai") == 1


@pytest.mark.unit
def test_registry_builds_each_provider_from_settings(settings, keys):
    built = {
        name: make_provider(name, settings) for name in ("openai", "cohere", "anthropic", "local")
    }
    assert [p.name for p in built.values()] == ["openai", "cohere", "anthropic", "local"]
    assert built["openai"].model == settings.openai_model
    assert (
        make_provider("anthropic:claude-3-opus-20240229", settings).model
        == "claude-3-opus-20240229"
    )
    assert built["openai"].retry.max_retries == settings.llm_max_retries


@pytest.mark.unit
def test_local_provider_without_llama_cpp_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if not installed
    provider = LocalLlamaProvider(tmp_path / "model.gguf", retry=RetryPolicy(max_retries=0))
    with pytest.raises(ProviderConfigError, match=r"pip install 'rag-qa\[local\]'"):
        provider.complete(REQUEST)
