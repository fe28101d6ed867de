"""Question in, grounded answer out: retrieve -> rerank -> context -> answerer -> citation check."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from core.errors import RagError
from core.settings import Settings
from core.types import NOT_FOUND_TEXT, Answer, ScoredChunk
from retrieval.retriever import HybridRetriever


class AnswerStream:
    """Iterate for the answer's text pieces; `answer` holds the checked Answer once iteration ends."""

    def __init__(self, pieces: Callable[[], Iterator[str]]) -> None:
        self._pieces = pieces
        self.answer: Answer | None = None
        self.sources: list[ScoredChunk] = []  # the context the answerer was given

    def __iter__(self) -> Iterator[str]:
        yield from self._pieces()


class AnswerPipeline:
    """Builds rerankers and answerers on first use and keeps them; one instance per process."""

    def __init__(self, retriever: HybridRetriever, embedder: Any, settings: Settings, request_log: Any = None) -> None:
        self.retriever = retriever
        self.embedder = embedder
        self.settings = settings
        self.request_log = request_log
        self._rerankers: dict[str, tuple[Any, str | None]] = {}
        self._answerers: dict[str, Any] = {}

    def ask(self, question: str, collection: str, **options: Any) -> Answer:
        """The whole answer at once."""
        stream = self.ask_stream(question, collection, **options)
        for _ in stream:
            pass
        assert stream.answer is not None
        return stream.answer

    def ask_stream(
        self,
        question: str,
        collection: str,
        *,
        top_k: int | None = None,
        reranker: str | None = None,
        answerer: str | None = None,
        filters: dict[str, Any] | None = None,
        mode: str | None = None,
    ) -> AnswerStream:
        """The answer as a stream of text pieces; retrieval runs when iteration starts."""
        question = (question or "").strip()
        if not question:
            raise ValueError("Type a question first.")
        top_k = top_k or self.settings.top_k
        if top_k <= 0:
            raise ValueError(f"top_k must be > 0 (got {top_k})")
        reranker_spec = reranker or self.settings.reranker
        answerer_spec = answerer or self.settings.answerer
        stream: AnswerStream

        def pieces() -> Iterator[str]:
            request_id = uuid.uuid4().hex
            started = time.perf_counter()
            try:
                sources, timings, reranker_name, warnings = self._sources(
                    question, collection, top_k, reranker_spec, filters, mode
                )
                stream.sources = list(sources)
                gen_start = time.perf_counter()
                engine = self._answerer(answerer_spec)
                if not sources:
                    answer = Answer(text=NOT_FOUND_TEXT, abstained=True, provider=getattr(engine, "name", answerer_spec))
                    yield answer.text
                else:
                    answer = yield from _run_answerer(engine, question, sources)
                timings["generate"] = (time.perf_counter() - gen_start) * 1000
                from answer.grounding import verify

                answer = verify(answer, sources, self.embedder)
                timings["total"] = (time.perf_counter() - started) * 1000
                answer.timings_ms = {**answer.timings_ms, **timings}
                answer.reranker = reranker_name
                answer.warnings = warnings + answer.warnings
                answer.request_id = request_id
                answer.question = question
                stream.answer = answer
                if self.request_log is not None:
                    self.request_log.record(collection, question, answer,
                                            top_score=sources[0].score if sources else None)
            except Exception as exc:
                if self.request_log is not None:
                    self.request_log.record(collection, question, None, error=f"{type(exc).__name__}: {exc}")
                raise

        stream = AnswerStream(pieces)
        return stream

    def _sources(
        self, question: str, collection: str, top_k: int, reranker_spec: str, filters: dict[str, Any] | None,
        mode: str | None,
    ) -> tuple[list[ScoredChunk], dict[str, float], str, list[str]]:
        from answer.context import select_context
        from retrieval.rerankers import safe_rerank

        if not self.retriever.store.collection_exists(collection):
            raise RagError(f"No collection named {collection!r}: ingest documents into it first (`rag ingest`).")
        reranker, reason = self._reranker(reranker_spec)
        warnings = [reason] if reason else []
        fetch = max(top_k, self.settings.candidates // 2) if reranker is not None else top_k
        hits = self.retriever.retrieve(collection, question, fetch, filters, mode=mode)  # type: ignore[arg-type]
        timings = dict(self.retriever.last_timings)
        t0 = time.perf_counter()
        if reranker is not None:
            hits, reranker_name, warning = safe_rerank(reranker, question, hits, top_k)
            if warning:
                warnings.append(warning)
        else:
            reranker_name = "none"
        timings["rerank"] = (time.perf_counter() - t0) * 1000
        sources = select_context(hits[:top_k], self.settings.context_tokens, _count_tokens)
        return sources, timings, reranker_name, warnings

    def _reranker(self, spec: str) -> tuple[Any, str | None]:
        if spec not in self._rerankers:
            from retrieval.rerankers import make_reranker

            self._rerankers[spec] = make_reranker(spec, self.settings)
        return self._rerankers[spec]

    def _answerer(self, spec: str) -> Any:
        if spec not in self._answerers:
            self._answerers[spec] = make_answerer(spec, self.settings, self.embedder)
        return self._answerers[spec]


def _run_answerer(engine: Any, question: str, sources: list[ScoredChunk]):  # noqa: ANN202
    """Yield the answer's text pieces and return the Answer (generator-return)."""
    if getattr(engine, "streams", False):
        stream = engine.stream(question, sources)
        for piece in stream:
            yield piece
        return stream.final
    answer = engine.answer(question, sources)
    # Extractive answers are ready at once; hand them out in word groups so the UI streams alike.
    for piece in re.findall(r"\S+\s*", answer.text):
        yield piece
    return answer


def make_answerer(spec: str, settings: Settings, embedder: Any) -> Any:
    """'extractive', or a provider chain such as 'openai,anthropic,extractive'."""
    from answer.extractive import ExtractiveAnswerer

    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise ValueError("answerer is empty: use 'extractive' or a provider chain like 'openai,extractive'")
    extractive = ExtractiveAnswerer(embedder, threshold=settings.abstain_threshold)
    if names == ["extractive"]:
        return extractive
    from llm.answerer import LLMAnswerer
    from llm.chain import ProviderChain

    chain = ProviderChain.from_spec(spec, settings, terminal=extractive.answer)
    answerer = LLMAnswerer(chain, settings)
    answerer.streams = True  # LLM answers arrive token by token
    return answerer


def _count_tokens(text: str) -> int:
    from core.tokens import count_tokens

    return count_tokens(text)
