"""Question in, checked answer out, in typed stages (core/stages.py):

    (condense) -> Query -> Candidates -> Ranked -> Context -> Draft -> CheckedAnswer
                     search       rerank      select     draft      check

A follow-up question is first rewritten to stand alone from the conversation's earlier
questions (answer/condense.py); search and the answerer get the standalone question.

Each stage is one function below. A request's `Trace` is created here (unless the caller brings
one) and travels through every stage; the request log and the caller read it afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import replace
from typing import Any

from answer.condense import Condensed, Condenser, make_condenser
from core.collection_settings import abstain_threshold_for
from core.language import overview_asked, searched_for
from core.options import PipelineOptions
from core.settings import Settings
from core.stages import (
    Answerer,
    AnswerStream,
    Candidates,
    CheckedAnswer,
    Context,
    Draft,
    Query,
    Ranked,
)
from core.tokens import count_tokens
from core.trace import Trace
from core.types import NOT_FOUND_TEXT, Answer, Usage
from llm.registry import EXTRACTIVE, answerer_names
from retrieval.retriever import HybridRetriever
from retrieval.subjects import CollectionSubjects


def condense(condenser: Condenser, question: str, history: Sequence[str], trace: Trace) -> Condensed:
    """The question as it stands alone, completed from the earlier questions when it is a follow-up;
    recorded on the trace (a "condense" time only when there was a conversation to read)."""
    if not history:
        condensed = Condensed(question, question)
    else:
        with trace.timed("condense"):
            condensed = condenser.condense(question, history)
    trace.standalone_question = condensed.standalone
    return condensed


def search(retriever: HybridRetriever, query: Query, trace: Trace) -> Candidates:
    """Hybrid search for the query; the retriever puts its timings and fusion weights on the trace."""
    chunks = retriever.retrieve(
        query.collection, query.searched, query.fetch, dict(query.filters), mode=query.mode,  # type: ignore[arg-type]
        weights=query.weights, trace=trace,
    )
    trace.record_scores("retrieve", chunks)
    return Candidates(query, tuple(chunks))


def rerank(reranker: Any, candidates: Candidates, trace: Trace, warnings: tuple[str, ...] = ()) -> Ranked:
    """The candidates re-ordered by `reranker` (None: kept as they are), cut to top_k."""
    from retrieval.rerankers import safe_rerank

    query = candidates.query
    chunks, name = list(candidates.chunks), "none"
    with trace.timed("rerank"):
        if reranker is not None:
            chunks, name, warning = safe_rerank(reranker, query.searched, chunks, query.top_k)
            warnings = (*warnings, warning) if warning else warnings
    chunks = chunks[: query.top_k]
    trace.record_scores("rerank", chunks)
    return Ranked(query, tuple(chunks), name, warnings)


OPENING_CHUNKS = 2  # a text's opening: its first chunks (a paper's title and abstract, an essay's first paragraphs)
OPENING_SCAN = 4  # chunk numbers looked at for them


def open_with_opening(store: Any, ranked: Ranked, trace: Trace) -> Ranked:
    """For a question about what a text is about ("What is this paper about?", `overview_asked`): the
    best-ranked document's opening chunks first, then the ranked chunks, cut to top_k. No sentence
    holds such a question's words; the text's own opening answers it."""
    if not ranked.chunks:
        return ranked
    query = ranked.query
    document = ranked.chunks[0].document_id
    with trace.timed("rerank"):
        found = store.scroll(query.collection, {"document_id": document, "chunk_index": list(range(OPENING_SCAN))})
    # recursive chunking numbers a parent before its children and answers from parents
    opening = [c for c in found if c.payload.get("level") == "parent"] or found
    opening = [replace(c, score=ranked.chunks[0].score)  # the best-ranked document's, as ranked
               for c in sorted(opening, key=lambda c: int(c.payload.get("chunk_index") or 0))[:OPENING_CHUNKS]]
    first = {c.id for c in opening}
    chunks = (*opening, *(c for c in ranked.chunks if c.id not in first))[: query.top_k]
    trace.record_scores("rerank", chunks)
    return replace(ranked, chunks=chunks)


def select(ranked: Ranked, budget_tokens: int, trace: Trace, subjects: frozenset[str] = frozenset()) -> Context:
    """The numbered sources: best first, no near-duplicates, within the token budget. `subjects`: the
    names the collection is about (retrieval/subjects.py), put on each source's payload as
    "collection_terms" for the answerer."""
    from answer.context import select_context

    sources = select_context(list(ranked.chunks), budget_tokens, count_tokens)
    if subjects:
        sources = [replace(c, payload={**c.payload, "collection_terms": sorted(subjects)}) for c in sources]
    trace.record_scores("context", sources)
    return Context(ranked, tuple(sources))


def draft(answerer: Answerer, context: Context) -> Generator[str, None, Draft]:
    """Yield the answer's text pieces as the answerer produces them; return the Draft."""
    if not context.sources:
        answer = Answer(text=NOT_FOUND_TEXT, abstained=True, provider=answerer.name)
        yield answer.text
        return Draft(context, answer)
    stream = answerer.stream(context.query.text, list(context.sources))
    yield from stream
    return Draft(context, stream.result())


def check(draft: Draft, embedder: Any, trace: Trace) -> CheckedAnswer:
    """Citations checked against the sources; the answer stamped with the request's trace."""
    from answer.grounding import verify

    context = draft.context
    answer = verify(draft.answer, list(context.sources), embedder)
    answer.reranker = context.ranked.reranker
    answer.warnings = [*context.ranked.warnings, *answer.warnings]
    answer.request_id = trace.request_id
    answer.question = context.query.text
    return CheckedAnswer(answer, context, trace)


class AnswerPipeline:
    """Runs the stages for each question. Shared by concurrent requests: it holds only models and
    the rerankers and answerers it built (once each); everything of a request is on its Trace."""

    def __init__(self, retriever: HybridRetriever, embedder: Any, settings: Settings, request_log: Any = None,
                 subjects: CollectionSubjects | None = None) -> None:
        self.retriever = retriever
        self.subjects = subjects if subjects is not None else CollectionSubjects(retriever.store)
        self.embedder = embedder
        self.settings = settings
        self.request_log = request_log
        self._lock = threading.Lock()
        self._rerankers: dict[str, tuple[Any, str | None]] = {}
        self._answerers: dict[tuple[str, float], Answerer] = {}
        self._condensers: dict[str, Condenser] = {}

    def ask(self, question: str, collection: str, **options: Any) -> Answer:
        """The whole answer at once."""
        return self.ask_stream(question, collection, **options).result()

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
        weights: tuple[float, float] | Sequence[float] | None = None,
        trace: Trace | None = None,
        fetch: int | None = None,
        abstain_threshold: float | None = None,
        history: Sequence[str] | None = None,
        source: str | None = None,
        variant: str | None = None,
    ) -> AnswerStream:
        """The answer as a stream of text pieces; retrieval runs when reading starts.

        Unset options take the settings' values; `mode` and `weights` (dense, sparse fusion weights of
        hybrid search) unset keep the retriever's own. The
        stream's `trace` (the one passed, else a new one) collects every stage's figures.
        `fetch`: search for at least this many candidates (`stream.candidates`, for evaluation);
        the answer still reads the first top_k. `abstain_threshold` unset: the collection's own
        (core/collection_settings.py), else the setting. `history`: the conversation's earlier
        questions, oldest first; a follow-up is rewritten to stand alone from them before search.
        `source`: who asks (web, cli, api, eval), and `variant`: the A/B variant answering
        (core/variants.py), both recorded with the request.
        """
        question = (question or "").strip()
        chosen = PipelineOptions(top_k=top_k, reranker=reranker, answerer=answerer).resolved(self.settings)
        top_k = chosen.top_k
        if not question:
            raise ValueError("Type a question first.")
        if top_k <= 0:
            raise ValueError(f"top_k must be > 0 (got {top_k})")
        trace = trace if trace is not None else Trace(question=question, collection=collection)
        if source:
            trace.source = source
        if variant:
            trace.variant = variant

        def pieces(stream: AnswerStream) -> Generator[str, None, None]:
            started = time.perf_counter()
            try:
                self.retriever.store.require_collection(collection)
                threshold = (abstain_threshold_for(self.settings, collection) if abstain_threshold is None
                             else abstain_threshold)
                reranker_model, reason = self._reranker(chosen.reranker)
                wanted = max(top_k, self.settings.candidates // 2) if reranker_model is not None else top_k
                condensed = condense(self._condenser(chosen.answerer), question, list(history or ()), trace)
                query = Query(condensed.standalone, collection, top_k, max(wanted, fetch or 0), dict(filters or {}),
                              mode, tuple(weights) if weights is not None else None,  # type: ignore[arg-type]
                              searched_for(condensed.standalone, self.settings.language))
                trace.searched = query.searched
                candidates = search(self.retriever, query, trace)
                stream.candidates = candidates.chunks
                ranked = rerank(reranker_model, candidates, trace, (*condensed.warnings, *((reason,) if reason else ())))
                if overview_asked(condensed.standalone, self.settings.language):
                    ranked = open_with_opening(self.retriever.store, ranked, trace)
                context = select(ranked, self.settings.context_tokens, trace, self.subjects.terms(collection))
                stream.sources = context.sources
                with trace.timed("generate"):
                    drafted = yield from draft(self._answerer(chosen.answerer, threshold), context)
                checked = check(drafted, self.embedder, trace)
                _count_condense(checked.answer, condensed)
                trace.add_time("total", (time.perf_counter() - started) * 1000)
                checked.answer.timings_ms = dict(trace.timings_ms)
                stream.finish(checked.answer)
                if self.request_log is not None:
                    self.request_log.record(trace, checked.answer)
            except Exception as exc:
                if self.request_log is not None:
                    self.request_log.record(trace, None, error=f"{type(exc).__name__}: {exc}")
                raise

        return AnswerStream(pieces, trace=trace)

    def _condenser(self, spec: str) -> Condenser:
        with self._lock:
            if spec not in self._condensers:
                self._condensers[spec] = make_condenser(spec, self.settings)
            return self._condensers[spec]

    def _reranker(self, spec: str) -> tuple[Any, str | None]:
        with self._lock:
            if spec not in self._rerankers:
                from retrieval.rerankers import make_reranker

                self._rerankers[spec] = make_reranker(spec, self.settings)
            return self._rerankers[spec]

    def _answerer(self, spec: str, threshold: float) -> Answerer:
        with self._lock:
            if (spec, threshold) not in self._answerers:
                self._answerers[spec, threshold] = make_answerer(spec, self.settings, self.embedder, threshold)
            return self._answerers[spec, threshold]


def _count_condense(answer: Answer, condensed: Condensed) -> None:
    """The condense call's tokens and cost on the answer's account (an LLM rewrite costs too)."""
    if condensed.usage.input_tokens or condensed.usage.output_tokens or condensed.cost_usd:
        answer.usage = Usage(answer.usage.input_tokens + condensed.usage.input_tokens,
                             answer.usage.output_tokens + condensed.usage.output_tokens)
        answer.cost_usd += condensed.cost_usd


def make_answerer(spec: str, settings: Settings, embedder: Any, threshold: float | None = None) -> Answerer:
    """'extractive', or a provider chain such as 'openai,anthropic,extractive'. `threshold`: the
    extractive answerer's abstention threshold (None: the setting)."""
    from answer.extractive import ExtractiveAnswerer

    names = answerer_names(spec)
    extractive = ExtractiveAnswerer(
        embedder, threshold=settings.abstain_threshold if threshold is None else threshold)
    if names == [EXTRACTIVE]:
        engine: Answerer = extractive
    else:
        from llm.answerer import LLMAnswerer
        from llm.chain import ProviderChain

        chain = ProviderChain.from_spec(spec, settings, terminal=extractive.answer)
        engine = LLMAnswerer(chain, settings)
    return _check_answerer(engine, spec)


def _check_answerer(engine: Any, spec: str) -> Answerer:
    """The one capability check, where an answerer is built: name, answer() and stream()."""
    if not isinstance(engine, Answerer):
        raise TypeError(f"answerer {spec!r} ({type(engine).__name__}) does not implement the Answerer "
                        "protocol: it needs name, answer(question, sources) and stream(question, sources)")
    return engine
