"""The provider interface: one request shape in, one response shape out, for every vendor."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from core.types import Usage
from llm.retry import RetryPolicy


@dataclass(frozen=True)
class Message:
    """One chat turn: role is "user" or "assistant" (the system prompt travels apart)."""

    role: str
    content: str


@dataclass(frozen=True)
class SourceDocument:
    """A numbered source handed to providers that take documents natively (Cohere)."""

    n: int
    title: str
    text: str


@dataclass(frozen=True)
class LLMRequest:
    """Everything a provider needs for one generation."""

    system: str
    messages: tuple[Message, ...]
    documents: tuple[SourceDocument, ...] = ()
    max_tokens: int = 512
    temperature: float = 0.0
    json_output: bool = False

    def cache_fields(self) -> dict[str, Any]:
        """The fields that decide the reply, for the response cache key."""
        return {
            "system": self.system,
            "messages": [[m.role, m.content] for m in self.messages],
            "documents": [[d.n, d.title, d.text] for d in self.documents],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "json_output": self.json_output,
        }


@dataclass
class LLMResponse:
    """A provider's reply: text, token usage, the raw vendor object and native citations if any."""

    text: str
    usage: Usage = field(default_factory=Usage)
    raw: Any = None
    cited_sources: list[int] | None = None


class LLMStream:
    """An iterator of text pieces; `text` and `usage` are complete once it is exhausted."""

    def __init__(self, pieces: Iterator[str], finish: Callable[[], Usage]) -> None:
        self._pieces = pieces
        self._finish = finish
        self.text = ""
        self.usage = Usage()
        self.done = False

    def __iter__(self) -> Iterator[str]:
        for piece in self._pieces:
            if piece:
                self.text += piece
                yield piece
        self.usage = self._finish()
        self.done = True


class Provider(ABC):
    """A chat model behind one small interface (simonw/llm style), with its own retry policy."""

    name: str = "provider"
    supports_streaming: bool = False
    supports_citations: bool = False
    supports_json: bool = False
    runs_locally: bool = False  # on the person's own machine: no price, so no missing-price warning

    def __init__(self, model: str, retry: RetryPolicy | None = None) -> None:
        self.model = model
        self.retry = retry or RetryPolicy()

    @property
    def label(self) -> str:
        """`name:model`, as shown in results and warnings."""
        return f"{self.name}:{self.model}"

    def complete(self, request: LLMRequest) -> LLMResponse:
        """One generation, retried on transient failures."""
        return self.retry.call(self._complete_once, request)

    def stream(self, request: LLMRequest) -> LLMStream:
        """Text pieces as they arrive; connecting is retried, a broken stream is not."""
        if not self.supports_streaming:
            response = self.complete(request)
            return LLMStream(iter([response.text]), lambda: response.usage)
        return self.retry.call(self._open_stream, request)

    @abstractmethod
    def _complete_once(self, request: LLMRequest) -> LLMResponse:
        """One attempt, raising llm.errors types."""

    def _open_stream(self, request: LLMRequest) -> LLMStream:
        raise NotImplementedError
