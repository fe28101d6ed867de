"""Errors of the LLM provider layer. Each message says what to do next."""

from __future__ import annotations

from datetime import UTC

from core.errors import RagError
from core.secrets import redact


class ProviderError(RagError):
    """A provider could not produce an answer; `provider` names it."""

    def __init__(self, message: str, provider: str = "") -> None:
        self.provider = provider
        # A vendor's error text may quote the key it refused: it never reaches a log or a page.
        message = redact(message)
        super().__init__(f"{provider}: {message}" if provider else message)


class ProviderConfigError(ProviderError):
    """The provider is not usable as configured (package missing, model file missing)."""


class ProviderAuthError(ProviderError):
    """The API key is missing or was refused; the message names the variable to set."""


class ProviderRequestError(ProviderError):
    """The provider refused the request (a 4xx other than auth and rate limit): retrying cannot help."""


class ProviderResponseError(ProviderError):
    """The provider answered with a body that could not be read."""


class ProviderUnavailableError(ProviderError):
    """A transient failure (timeout, connection error, 5xx): worth retrying."""


class ProviderRateLimitError(ProviderUnavailableError):
    """HTTP 429; `retry_after` holds the server's Retry-After in seconds when it sent one."""

    def __init__(self, message: str, provider: str = "", retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, provider)


class InvalidOutputError(ProviderError):
    """The model's reply did not validate (bad JSON, citations to sources that were not given)."""


class BudgetExceededError(ProviderError):
    """The request would cost more than `max_cost_per_request_usd` even with a single source."""


class AllProvidersFailedError(ProviderError):
    """Every provider of a chain failed; `failures` lists each one's error."""

    def __init__(self, failures: list[ProviderError]) -> None:
        self.failures = failures
        lines = "; ".join(str(f) for f in failures) or "no provider configured"
        super().__init__(f"no provider could answer ({lines})")


def retry_after_seconds(headers: object) -> float | None:
    """The Retry-After header in seconds (a number or an HTTP date), or None."""
    getter = getattr(headers, "get", None)
    value = getter("retry-after") or getter("Retry-After") if getter else None
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        from datetime import datetime
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(str(value))
        except (TypeError, ValueError):
            return None
        return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def error_for_status(
    status: int, message: str, provider: str, key_env: str, headers: object = None
) -> ProviderError:
    """The llm.errors type for an HTTP error status: auth, rate limit, transient or final."""
    if status in (401, 403):
        return ProviderAuthError(
            f"the API key was refused (HTTP {status}): set {key_env} to a valid key ({message})",
            provider,
        )
    if status == 429:
        return ProviderRateLimitError(
            f"rate limited (HTTP 429): {message}", provider, retry_after_seconds(headers)
        )
    if status in (408, 409) or status >= 500:
        return ProviderUnavailableError(f"HTTP {status}: {message}", provider)
    return ProviderRequestError(f"request refused (HTTP {status}): {message}", provider)


def missing_key_error(provider: str, key_env: str) -> ProviderAuthError:
    """The error for a provider started without its key."""
    return ProviderAuthError(f"no API key found: set {key_env}", provider)
