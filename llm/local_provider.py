"""A local GGUF model through llama.cpp (the optional `llama_cpp` package)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.types import Usage
from llm.base import LLMRequest, LLMResponse, LLMStream, Provider
from llm.errors import ProviderConfigError, ProviderResponseError
from llm.retry import RetryPolicy


class LocalLlamaProvider(Provider):
    """llama.cpp in-process. The model loads on first use, once; no network, no key, no cost."""

    name = "local"
    runs_locally = True
    supports_streaming = True
    supports_json = True

    def __init__(
        self, model_path: Path | str | None, n_ctx: int = 8192, retry: RetryPolicy | None = None
    ) -> None:
        path = Path(model_path) if model_path else None
        super().__init__(path.name if path else "none", retry or RetryPolicy(max_retries=0))
        self.model_path = path
        self.n_ctx = n_ctx
        self._llama: Any = None

    def _load(self) -> Any:
        if self._llama is not None:
            return self._llama
        try:
            import llama_cpp
        except ImportError:
            raise ProviderConfigError(
                "the llama_cpp package is not installed: pip install 'rag-qa[local]'", self.name
            ) from None
        if self.model_path is None or not self.model_path.is_file():
            raise ProviderConfigError(
                f"no GGUF model file at {self.model_path}: set RAG_LOCAL_MODEL_PATH to a .gguf file",
                self.name,
            )
        self._llama = llama_cpp.Llama(
            model_path=str(self.model_path), n_ctx=self.n_ctx, verbose=False
        )
        return self._llama

    def _arguments(self, request: LLMRequest) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system}]
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        arguments: dict[str, Any] = {
            "messages": messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.json_output:
            arguments["response_format"] = {"type": "json_object"}
        return arguments

    def _complete_once(self, request: LLMRequest) -> LLMResponse:
        llama = self._load()
        try:
            reply = llama.create_chat_completion(**self._arguments(request))
        except Exception as exc:  # noqa: BLE001 - e.g. a prompt over n_ctx: let the chain move on
            raise ProviderResponseError(f"llama.cpp failed: {exc}", self.name) from exc
        usage = reply.get("usage") or {}
        return LLMResponse(
            text=reply["choices"][0]["message"].get("content") or "",
            usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
            raw=reply,
        )

    def _open_stream(self, request: LLMRequest) -> LLMStream:
        chunks = self._load().create_chat_completion(**self._arguments(request), stream=True)
        usage = Usage()

        def pieces() -> Iterator[str]:
            for chunk in chunks:
                usage.output_tokens += 1  # llama.cpp streams one token per chunk
                for choice in chunk.get("choices", []):
                    yield (choice.get("delta") or {}).get("content") or ""

        return LLMStream(pieces(), lambda: usage)
