"""OpenAI-compatible chat completions: OpenAI, vLLM, LM Studio; Ollama and llama.cpp's server (llm/local_servers.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from core.secrets import remember_secret
from core.types import Usage
from llm.base import LLMRequest, LLMResponse, LLMStream, Provider
from llm.errors import (
    ProviderError,
    ProviderResponseError,
    ProviderUnavailableError,
    error_for_status,
    missing_key_error,
)
from llm.retry import RetryPolicy

OPENAI_BASE_URL = "https://api.openai.com/v1"
KEY_ENV = "OPENAI_API_KEY"


def stainless_error(
    exc: Exception, sdk: Any, provider: str, key_env: str, base_url: str
) -> ProviderError:
    """Map an OpenAI or Anthropic SDK exception (both share one generator) to llm.errors."""
    if isinstance(exc, sdk.APITimeoutError):
        return ProviderUnavailableError(f"timed out waiting for {base_url}", provider)
    if isinstance(exc, sdk.APIConnectionError):
        return ProviderUnavailableError(f"cannot connect to {base_url}: {exc}", provider)
    if isinstance(exc, sdk.APIStatusError):
        return error_for_status(exc.status_code, str(exc), provider, key_env, exc.response.headers)
    return ProviderResponseError(f"unreadable reply from {base_url}: {exc}", provider)


class OpenAIProvider(Provider):
    """Chat completions through the `openai` SDK (its retries off: ours honour Retry-After and log waits).

    The key comes from OPENAI_API_KEY; it is optional when base_url is not OpenAI's own
    (local servers ignore it). `json_mode` sends response_format=json_object for JSON requests.
    """

    name = "openai"
    key_env = KEY_ENV  # named in the message when the server refuses the key
    supports_streaming = True
    supports_json = True

    def __init__(
        self,
        model: str,
        base_url: str = OPENAI_BASE_URL,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        json_mode: bool = True,
    ) -> None:
        super().__init__(model, retry)
        self.base_url = base_url.rstrip("/")
        key = api_key or os.environ.get(KEY_ENV)
        if not key and "api.openai.com" in self.base_url:
            raise missing_key_error(self.name, KEY_ENV)
        self._api_key = key or "unused"  # Ollama, vLLM and llama.cpp accept any key
        remember_secret(key)
        self.timeout_s = timeout_s
        self.json_mode = json_mode
        self._client: Any = None

    def _sdk(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.OpenAI(
                api_key=self._api_key, base_url=self.base_url, timeout=self.timeout_s, max_retries=0
            )
        return self._client

    def _arguments(self, request: LLMRequest) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system}]
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        arguments: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.json_output and self.json_mode:
            arguments["response_format"] = {"type": "json_object"}
        return arguments

    def _error(self, exc: Exception) -> ProviderError:
        import openai

        return stainless_error(exc, openai, self.name, self.key_env, self.base_url)

    @staticmethod
    def _json_mode_refused(exc: Exception, arguments: dict[str, Any]) -> bool:
        import openai

        return (
            "response_format" in arguments
            and isinstance(exc, openai.BadRequestError)
            and "response_format" in str(exc)
        )

    def _complete_once(self, request: LLMRequest) -> LLMResponse:
        arguments = self._arguments(request)
        try:
            try:
                reply = self._sdk().chat.completions.create(**arguments)
            except Exception as exc:
                if not self._json_mode_refused(exc, arguments):
                    raise
                # Some compatible servers (LM Studio, older llama.cpp) refuse json_object: ask in the prompt alone.
                self.json_mode = False
                arguments.pop("response_format")
                reply = self._sdk().chat.completions.create(**arguments)
            text = reply.choices[0].message.content or ""
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a ProviderError
            raise self._error(exc) from exc
        usage = Usage(
            input_tokens=int(getattr(reply.usage, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(reply.usage, "completion_tokens", 0) or 0),
        )
        return LLMResponse(text=text, usage=usage, raw=reply)

    def _open_stream(self, request: LLMRequest) -> LLMStream:
        try:
            chunks = self._sdk().chat.completions.create(
                **self._arguments(request), stream=True, stream_options={"include_usage": True}
            )
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc) from exc
        usage = Usage()

        def pieces() -> Iterator[str]:
            try:
                for chunk in chunks:
                    if chunk.usage is not None:
                        usage.input_tokens = int(chunk.usage.prompt_tokens or 0)
                        usage.output_tokens = int(chunk.usage.completion_tokens or 0)
                    for choice in chunk.choices:
                        if choice.delta and choice.delta.content:
                            yield choice.delta.content
            except Exception as exc:  # noqa: BLE001
                raise self._error(exc) from exc

        return LLMStream(pieces(), lambda: usage)
