"""Anthropic messages API, JSON and streaming."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from core.secrets import remember_secret
from core.types import Usage
from llm.base import LLMRequest, LLMResponse, LLMStream, Provider
from llm.errors import ProviderError, missing_key_error
from llm.openai_provider import stainless_error
from llm.retry import RetryPolicy

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
KEY_ENV = "ANTHROPIC_API_KEY"


class AnthropicProvider(Provider):
    """Claude models through the `anthropic` SDK, its retries off; the key comes from ANTHROPIC_API_KEY."""

    name = "anthropic"
    supports_streaming = True

    def __init__(
        self,
        model: str,
        base_url: str = ANTHROPIC_BASE_URL,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(model, retry)
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key or os.environ.get(KEY_ENV)
        remember_secret(self._api_key)
        if not self._api_key:
            raise missing_key_error(self.name, KEY_ENV)
        self.timeout_s = timeout_s
        self._client: Any = None

    def _sdk(self) -> Any:
        if self._client is None:
            import anthropic

            self._client = anthropic.Anthropic(
                api_key=self._api_key, base_url=self.base_url, timeout=self.timeout_s, max_retries=0
            )
        return self._client

    def _arguments(self, request: LLMRequest) -> dict[str, Any]:
        return {
            "model": self.model,
            "system": request.system,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
        }  # no temperature: this SDK's messages.create no longer takes one

    def _error(self, exc: Exception) -> ProviderError:
        import anthropic

        return stainless_error(exc, anthropic, self.name, KEY_ENV, self.base_url)

    def _complete_once(self, request: LLMRequest) -> LLMResponse:
        try:
            reply = self._sdk().messages.create(**self._arguments(request))
            text = "".join(
                block.text for block in reply.content if getattr(block, "type", "") == "text"
            )
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a ProviderError
            raise self._error(exc) from exc
        usage = Usage(
            input_tokens=int(reply.usage.input_tokens or 0),
            output_tokens=int(reply.usage.output_tokens or 0),
        )
        return LLMResponse(text=text, usage=usage, raw=reply)

    def _open_stream(self, request: LLMRequest) -> LLMStream:
        try:
            events = self._sdk().messages.create(**self._arguments(request), stream=True)
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc) from exc
        usage = Usage()

        def pieces() -> Iterator[str]:
            try:
                for event in events:
                    if event.type == "message_start":
                        usage.input_tokens = int(event.message.usage.input_tokens or 0)
                    elif (
                        event.type == "content_block_delta"
                        and getattr(event.delta, "type", "") == "text_delta"
                    ):
                        yield event.delta.text
                    elif event.type == "message_delta" and event.usage is not None:
                        usage.output_tokens = int(event.usage.output_tokens or 0)
            except Exception as exc:  # noqa: BLE001
                raise self._error(exc) from exc

        return LLMStream(pieces(), lambda: usage)
