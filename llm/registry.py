"""The one place where provider names become provider objects.

The vendors' own SDKs speak the wire formats (auth, SSE, error types); their built-in retries
are switched off so that one tenacity policy, which honours Retry-After and records its waits,
governs every provider alike.
"""

from __future__ import annotations

from collections.abc import Callable

from core.errors import ConfigError
from core.settings import Settings
from llm.base import Provider
from llm.retry import RetryPolicy

PROVIDER_NAMES = ("openai", "cohere", "anthropic", "local")


def make_provider(name: str, settings: Settings, retry: RetryPolicy | None = None) -> Provider:
    """Build a provider by name ("openai", "cohere", "anthropic", "local"; "name:model" picks a model).

    Raises ProviderAuthError at once when the provider's key is missing.
    """
    kind, _, model = name.strip().partition(":")
    kind = kind.lower()
    policy = retry or RetryPolicy(max_retries=settings.llm_max_retries)
    builders: dict[str, Callable[[], Provider]] = {
        "openai": lambda: _openai(settings, model or settings.openai_model, policy),
        "cohere": lambda: _cohere(settings, model or settings.cohere_model, policy),
        "anthropic": lambda: _anthropic(settings, model or settings.anthropic_model, policy),
        "local": lambda: _local(settings),
    }
    if kind not in builders:
        raise ConfigError(
            f"unknown provider {name!r}: use one of {', '.join(PROVIDER_NAMES)} or 'extractive'"
        )
    return builders[kind]()


def _openai(settings: Settings, model: str, retry: RetryPolicy) -> Provider:
    from llm.openai_provider import OpenAIProvider

    return OpenAIProvider(
        model, settings.openai_base_url, timeout_s=settings.llm_timeout_s, retry=retry
    )


def _cohere(settings: Settings, model: str, retry: RetryPolicy) -> Provider:
    from llm.cohere_provider import CohereProvider

    return CohereProvider(
        model, settings.cohere_base_url, timeout_s=settings.llm_timeout_s, retry=retry
    )


def _anthropic(settings: Settings, model: str, retry: RetryPolicy) -> Provider:
    from llm.anthropic_provider import AnthropicProvider

    return AnthropicProvider(
        model, settings.anthropic_base_url, timeout_s=settings.llm_timeout_s, retry=retry
    )


def _local(settings: Settings) -> Provider:
    from llm.local_provider import LocalLlamaProvider

    return LocalLlamaProvider(settings.local_model_path)
