"""Cohere v2 chat with its `documents` parameter; native citations mapped back to source numbers."""

from __future__ import annotations

import os
from typing import Any

from core.secrets import remember_secret
from core.types import Usage
from llm.base import LLMRequest, LLMResponse, Provider
from llm.errors import (
    ProviderError,
    ProviderResponseError,
    ProviderUnavailableError,
    error_for_status,
    missing_key_error,
)
from llm.retry import RetryPolicy

COHERE_BASE_URL = "https://api.cohere.com"
KEY_ENV = "COHERE_API_KEY"


def cohere_error(exc: Exception, provider: str, base_url: str) -> ProviderError:
    """Map a `cohere` SDK (or its httpx) exception to llm.errors."""
    import httpx
    from cohere.core.api_error import ApiError

    if isinstance(exc, httpx.TimeoutException):
        return ProviderUnavailableError(f"timed out waiting for {base_url}", provider)
    if isinstance(exc, httpx.TransportError):
        return ProviderUnavailableError(f"cannot connect to {base_url}: {exc}", provider)
    if isinstance(exc, ApiError) and exc.status_code is not None and exc.status_code >= 400:
        return error_for_status(
            exc.status_code, str(exc.body)[:300], provider, KEY_ENV, exc.headers or {}
        )
    return ProviderResponseError(f"unreadable reply from {base_url}: {str(exc)[:300]}", provider)


def cohere_client(api_key: str, base_url: str, timeout_s: float) -> Any:
    """A `cohere.ClientV2` with the SDK's own retries off (ours honour Retry-After and log waits)."""
    import cohere

    return cohere.ClientV2(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0)


def cohere_key(api_key: str | None, provider: str) -> str:
    """The key given, else COHERE_API_KEY, else a clear error."""
    key = api_key or os.environ.get(KEY_ENV)
    if not key:
        raise missing_key_error(provider, KEY_ENV)
    return key


def with_citation_marks(text: str, citations: list[tuple[int, list[int]]]) -> str:
    """Insert " [n]" markers after each cited span (end offset, source numbers)."""
    for end, numbers in sorted(citations, key=lambda c: c[0], reverse=True):
        marks = "".join(f" [{n}]" for n in numbers if f"[{n}]" not in text[end : end + 8])
        text = text[:end] + marks + text[end:]
    return text


class CohereProvider(Provider):
    """Cohere chat (v2). Sources go in `documents`; the reply's citations name them by id."""

    name = "cohere"
    supports_citations = True

    def __init__(
        self,
        model: str,
        base_url: str = COHERE_BASE_URL,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(model, retry)
        self.base_url = base_url.rstrip("/")
        self._api_key = cohere_key(api_key, self.name)
        remember_secret(self._api_key)
        self.timeout_s = timeout_s
        self._client: Any = None

    def _sdk(self) -> Any:
        if self._client is None:
            self._client = cohere_client(self._api_key, self.base_url, self.timeout_s)
        return self._client

    def _complete_once(self, request: LLMRequest) -> LLMResponse:
        messages = [{"role": "system", "content": request.system}]
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        arguments: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.documents:
            arguments["documents"] = [
                {"id": str(d.n), "data": {"title": d.title, "snippet": d.text}}
                for d in request.documents
            ]
        try:
            reply = self._sdk().chat(**arguments)
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a ProviderError
            raise cohere_error(exc, self.name, self.base_url) from exc
        content = reply.message.content or []
        text = "".join(getattr(part, "text", "") or "" for part in content)
        marks: list[tuple[int, list[int]]] = []
        cited: list[int] = []
        for citation in reply.message.citations or []:
            numbers = []
            for source in citation.sources or []:
                try:
                    numbers.append(int(str(source.id).rsplit(":", 1)[-1]))
                except (TypeError, ValueError):
                    raise ProviderResponseError(
                        f"citation to unknown source id {source.id!r}", self.name
                    ) from None
            marks.append((citation.end or 0, numbers))
            cited += [n for n in numbers if n not in cited]
        tokens = reply.usage.tokens if reply.usage and reply.usage.tokens else None
        usage = Usage(
            input_tokens=int(tokens.input_tokens or 0) if tokens else 0,
            output_tokens=int(tokens.output_tokens or 0) if tokens else 0,
        )
        return LLMResponse(
            text=with_citation_marks(text, marks), usage=usage, raw=reply, cited_sources=cited
        )
