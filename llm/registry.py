"""The one place where provider names become provider objects, and the single source of the
answerer, provider and reranker names the CLI and the web app offer.

The vendors' own SDKs speak the wire formats (auth, SSE, error types); their built-in retries
are switched off so that one tenacity policy, which honours Retry-After and records its waits,
governs every provider alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.errors import ConfigError
from core.settings import Settings
from llm.base import Provider
from llm.retry import RetryPolicy


@dataclass(frozen=True)
class ProviderEntry:
    """One provider the app knows: its name, how to build it, and whether it is offered with a fallback."""

    name: str
    build: Callable[[Settings, str, RetryPolicy], Provider]  # (settings, model or "", retry policy)
    # A remote API or a local server, which may be unreachable: offered with the extractive answerer behind it.
    with_fallback: bool


def _openai(settings: Settings, model: str, retry: RetryPolicy) -> Provider:
    from llm.openai_provider import OpenAIProvider

    return OpenAIProvider(
        model or settings.openai_model, settings.openai_base_url, timeout_s=settings.llm_timeout_s, retry=retry
    )


def _anthropic(settings: Settings, model: str, retry: RetryPolicy) -> Provider:
    from llm.anthropic_provider import AnthropicProvider

    return AnthropicProvider(
        model or settings.anthropic_model, settings.anthropic_base_url, timeout_s=settings.llm_timeout_s,
        retry=retry,
    )


def _cohere(settings: Settings, model: str, retry: RetryPolicy) -> Provider:
    from llm.cohere_provider import CohereProvider

    return CohereProvider(
        model or settings.cohere_model, settings.cohere_base_url, timeout_s=settings.llm_timeout_s, retry=retry
    )


def _ollama(settings: Settings, model: str, retry: RetryPolicy) -> Provider:
    from llm.local_servers import OllamaProvider

    return OllamaProvider(
        model or settings.ollama_model, settings.ollama_host, timeout_s=settings.local_llm_timeout_s, retry=retry
    )


def _llamacpp(settings: Settings, url: str, retry: RetryPolicy) -> Provider:
    from llm.local_servers import LlamaCppServerProvider

    return LlamaCppServerProvider(url or None, timeout_s=settings.local_llm_timeout_s, retry=retry)


def _local(settings: Settings, model: str, retry: RetryPolicy) -> Provider:
    from llm.local_provider import LocalLlamaProvider

    return LocalLlamaProvider(settings.local_model_path)


# Every provider, in the order the CLI and the web app offer them.
PROVIDERS: dict[str, ProviderEntry] = {
    entry.name: entry
    for entry in (
        ProviderEntry("openai", _openai, with_fallback=True),
        ProviderEntry("anthropic", _anthropic, with_fallback=True),
        ProviderEntry("cohere", _cohere, with_fallback=True),
        ProviderEntry("ollama", _ollama, with_fallback=True),  # ollama:<model>, else RAG_OLLAMA_MODEL
        ProviderEntry("llamacpp", _llamacpp, with_fallback=True),  # llamacpp:<url>, else 127.0.0.1:8080
        ProviderEntry("local", _local, with_fallback=False),
    )
}
PROVIDER_NAMES = tuple(PROVIDERS)
# Answers from the sources' own sentences, offline; ends a provider chain as its fallback.
EXTRACTIVE = "extractive"
# Rerankers offered as choices; "cross-encoder:<path or name>" and "cohere:<model>" name a model too.
RERANKER_NAMES = ("sentence", "none", "cohere")
RERANKER_HELP = "sentence (no model) | none | cross-encoder:<path or name> | cohere[:model]"
ANSWERER_HELP = (
    f"{EXTRACTIVE} (offline) or a provider chain such as 'openai,{EXTRACTIVE}'; local servers: "
    f"'ollama:llama3.2:1b,{EXTRACTIVE}', 'llamacpp:http://127.0.0.1:8080/v1,{EXTRACTIVE}'"
)


def answerer_choices() -> tuple[str, ...]:
    """The answerers the CLI and the web app offer: extractive, each remote API and local server with
    the extractive fallback, then each provider alone."""
    fallible = [entry.name for entry in PROVIDERS.values() if entry.with_fallback]
    return (EXTRACTIVE, *(f"{name},{EXTRACTIVE}" for name in fallible), *PROVIDER_NAMES)


def answerer_names(spec: str) -> list[str]:
    """The names of an answerer spec ("openai,extractive" -> ["openai", "extractive"])."""
    names = [name.strip() for name in (spec or "").split(",") if name.strip()]
    if not names:
        raise ConfigError(
            f"the answerer is empty: use '{EXTRACTIVE}' or a provider chain like 'openai,{EXTRACTIVE}' "
            "(RAG_ANSWERER)"
        )
    return names


def make_provider(name: str, settings: Settings, retry: RetryPolicy | None = None) -> Provider:
    """Build a provider by name ("openai", "cohere", "anthropic", "ollama", "llamacpp", "local").

    "name:model" picks a model ("ollama:llama3.2:1b"); for llama.cpp's server it is the address
    ("llamacpp:http://127.0.0.1:8080/v1").

    Raises ProviderAuthError at once when the provider's key is missing.
    """
    kind, _, model = name.strip().partition(":")
    entry = PROVIDERS.get(kind.lower())
    if entry is None:
        raise ConfigError(
            f"unknown provider {name!r}: use one of {', '.join(PROVIDER_NAMES)} or '{EXTRACTIVE}'"
        )
    return entry.build(settings, model, retry or RetryPolicy(max_retries=settings.llm_max_retries))
