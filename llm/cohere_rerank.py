"""Cohere Rerank through the `cohere` package: chunks reordered by the API's relevance scores."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core.types import ScoredChunk
from llm.cohere_provider import COHERE_BASE_URL, cohere_client, cohere_error, cohere_key


class CohereReranker:
    """Rerank with a Cohere model; the key comes from COHERE_API_KEY unless given.

    Errors are llm.errors.ProviderError subclasses, so a caller can fall back to the fused order.
    """

    def __init__(
        self,
        model: str = "rerank-v3.5",
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.model = model
        self.base_url = (base_url or COHERE_BASE_URL).rstrip("/")
        self.timeout = timeout
        self._api_key = cohere_key(api_key, self.name)
        self._client: Any = None

    @property
    def name(self) -> str:
        return f"cohere:{self.model}"

    def rerank(
        self, query: str, chunks: list[ScoredChunk], top_k: int | None = None
    ) -> list[ScoredChunk]:
        """The `top_k` most relevant chunks, best first, each score replaced by its relevance score."""
        if top_k is not None and top_k <= 0:
            raise ValueError(f"top_k must be > 0 (got {top_k})")
        if not chunks:
            return []
        if self._client is None:
            self._client = cohere_client(self._api_key, self.base_url, self.timeout)
        top_n = min(top_k or len(chunks), len(chunks))
        try:
            reply = self._client.rerank(
                model=self.model, query=query, documents=[c.text for c in chunks], top_n=top_n
            )
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a ProviderError
            raise cohere_error(exc, self.name, self.base_url) from exc
        ranked = sorted(reply.results, key=lambda r: r.relevance_score, reverse=True)[:top_n]
        return [replace(chunks[r.index], score=float(r.relevance_score)) for r in ranked]
