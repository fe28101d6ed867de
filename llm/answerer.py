"""LLMAnswerer: an answer with validated citations from a provider chain, cached and costed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from core.citations import marker_numbers
from core.settings import Settings
from core.stages import AnswerStream
from core.types import NOT_FOUND_TEXT, Answer, Citation, ScoredChunk, Usage
from llm.base import LLMRequest, LLMResponse, Provider
from llm.cache import ResponseCache
from llm.chain import ProviderChain
from llm.errors import (
    AllProvidersFailedError,
    BudgetExceededError,
    InvalidOutputError,
    ProviderError,
    ProviderRequestError,
)
from llm.pricing import PriceTable
from llm.prompt import AnswerPayload, build_request, parse_reply, repair_request
from llm.tokens import context_window, count_tokens

MESSAGE_OVERHEAD_TOKENS = 8  # role markers and separators per message


@dataclass
class FittedPrompt:
    """A request that fits the model's window and the budget, and the sources it kept."""

    request: LLMRequest
    sources: list[ScoredChunk]
    input_tokens: int
    warnings: list[str] = field(default_factory=list)


@dataclass
class Generation:
    """One provider's validated reply, with accounting."""

    payload: AnswerPayload
    sources: list[ScoredChunk]
    usage: Usage
    cache_hit: bool
    warnings: list[str]


def request_tokens(request: LLMRequest) -> int:
    """Input tokens of a request, counted with cl100k_base."""
    parts = [request.system, *(m.content for m in request.messages)]
    parts += [f"{d.title}\n{d.text}" for d in request.documents]
    return sum(count_tokens(p) + MESSAGE_OVERHEAD_TOKENS for p in parts)


class LLMAnswerer:
    """Answers a question from numbered sources through a ProviderChain.

    Sources arrive best first; when the prompt exceeds the model's window or the per-request
    budget, the lowest-ranked are dropped first. Replies are validated (JSON with citations among
    the given sources); an invalid reply gets one repair attempt, then the next provider answers.
    """

    def __init__(
        self,
        chain: ProviderChain,
        settings: Settings,
        cache: ResponseCache | None = None,
        use_cache: bool = True,
        max_tokens: int = 512,
    ) -> None:
        self.chain = chain
        self.settings = settings
        self.prices = PriceTable(settings.price_overrides)
        self.budget_usd = settings.max_cost_per_request_usd
        self.max_tokens = max_tokens
        self.cache = (
            cache
            or ResponseCache(settings.cache_dir / "llm_responses.sqlite", settings.llm_cache_ttl_s)
            if use_cache
            else None
        )

    @property
    def name(self) -> str:
        return ",".join(self.chain.names)

    # -- prompt fitting ----------------------------------------------------------------------

    def estimate_cost(self, model: str, input_tokens: int, max_output_tokens: int) -> float:
        """USD before the call: the counted input plus the most output the request allows."""
        return self.prices.cost(model, Usage(input_tokens, max_output_tokens))

    def fit(
        self, provider: Provider, question: str, sources: list[ScoredChunk], json_output: bool
    ) -> FittedPrompt:
        """The request with as many of the best-ranked sources as the window and budget allow."""
        window = context_window(provider.model)
        kept = list(sources)
        warnings: list[str] = []
        reason = ""
        while kept:
            request = build_request(
                question, kept, json_output, provider.supports_citations, self.max_tokens
            )
            tokens = request_tokens(request)
            if tokens + self.max_tokens > window:
                reason = f"the context window of {provider.model} ({window} tokens)"
            elif (
                self.budget_usd is not None
                and self.estimate_cost(provider.model, tokens, self.max_tokens) > self.budget_usd
            ):
                reason = f"the budget of ${self.budget_usd:.4f} per request"
            else:
                if len(kept) < len(sources):
                    warnings.append(
                        f"{provider.label}: kept {len(kept)} of {len(sources)} sources to fit {reason}"
                    )
                return FittedPrompt(request, kept, tokens, warnings)
            kept.pop()  # the lowest-ranked source goes first
        if "budget" in reason:
            one = build_request(
                question, sources[:1], json_output, provider.supports_citations, self.max_tokens
            )
            estimate = self.estimate_cost(provider.model, request_tokens(one), self.max_tokens)
            raise BudgetExceededError(
                f"even one source would cost about ${estimate:.4f}, over the budget of "
                f"${self.budget_usd:.4f} per request: raise RAG_MAX_COST_PER_REQUEST_USD or use a cheaper model",
                provider.label,
            )
        raise ProviderRequestError(
            f"the question and one source do not fit {reason}: shorten the question or use smaller chunks",
            provider.label,
        )

    # -- one provider ------------------------------------------------------------------------

    def _cached_or_call(
        self, provider: Provider, request: LLMRequest
    ) -> tuple[LLMResponse, bool, str | None]:
        key = ResponseCache.key(provider.name, provider.model, request) if self.cache else None
        if self.cache and key:
            hit = self.cache.get(key)
            if hit is not None:
                return hit, True, key
        return provider.complete(request), False, key

    def _counted(self, response: LLMResponse, request: LLMRequest) -> Usage:
        # Some local servers report no usage: count it ourselves then.
        usage = response.usage
        return Usage(
            usage.input_tokens or request_tokens(request),
            usage.output_tokens or count_tokens(response.text),
        )

    def generate(self, provider: Provider, question: str, sources: list[ScoredChunk]) -> Generation:
        """Ask one provider, validate, repair once; raises ProviderError for the chain to move on."""
        json_output = not provider.supports_citations
        fitted = self.fit(provider, question, sources, json_output)
        count = len(fitted.sources)
        response, hit, key = self._cached_or_call(provider, fitted.request)
        usage = Usage() if hit else self._counted(response, fitted.request)
        warnings = list(fitted.warnings)
        try:
            payload = parse_reply(response.text, count, json_output, response.cited_sources)
        except InvalidOutputError as problem:
            warnings.append(f"{provider.label}: invalid reply ({problem}); asked for a repair")
            retry = repair_request(fitted.request, response.text, str(problem).split(": ", 1)[-1])
            response = provider.complete(retry)
            repaired = self._counted(response, retry)
            usage = Usage(
                usage.input_tokens + repaired.input_tokens,
                usage.output_tokens + repaired.output_tokens,
            )
            try:
                payload = parse_reply(response.text, count, json_output, response.cited_sources)
            except InvalidOutputError as again:
                raise InvalidOutputError(
                    f"invalid reply after one repair: {again}", provider.label
                ) from None
            hit = False
        if self.cache and key and not hit:
            self.cache.put(key, response)
        return Generation(payload, fitted.sources, usage, hit, warnings)

    # -- results -----------------------------------------------------------------------------

    def _answer(
        self, provider: Provider, generation: Generation, warnings: list[str], started: float
    ) -> Answer:
        payload = generation.payload
        citations = (
            []
            if payload.abstained
            else [
                Citation(
                    n=n,
                    chunk_id=chunk.id,
                    document=chunk.document,
                    page=chunk.page,
                    text=chunk.text,
                    score=chunk.score,
                    document_id=chunk.document_id,
                )
                for n in sorted(payload.citations)
                for chunk in [generation.sources[n - 1]]
            ]
        )
        return Answer(
            text=NOT_FOUND_TEXT if payload.abstained else payload.answer,
            citations=citations,
            abstained=payload.abstained,
            usage=generation.usage,
            cost_usd=0.0
            if generation.cache_hit
            else self.prices.cost(provider.model, generation.usage),
            provider=provider.label,
            cache_hit=generation.cache_hit,
            timings_ms={"generate": (time.perf_counter() - started) * 1000},
            warnings=[*warnings, *generation.warnings, *self._price_warning(provider)],
        )

    def _price_warning(self, provider: Provider) -> list[str]:
        if provider.runs_locally or self.prices.price(provider.model) is not None:
            return []
        return [
            f"{provider.label}: no price known for this model, cost shown as 0 (set RAG_PRICE_OVERRIDES)"
        ]

    def _fallback(
        self, question: str, sources: list[ScoredChunk], failure: ProviderError, started: float
    ) -> Answer:
        failures = failure.failures if isinstance(failure, AllProvidersFailedError) else [failure]
        if self.chain.terminal is None:
            raise failure
        answer = self.chain.terminal(question, sources)
        answer.warnings = [*(str(f) for f in failures), *answer.warnings]
        answer.timings_ms.setdefault("generate", (time.perf_counter() - started) * 1000)
        return answer

    def answer(self, question: str, sources: list[ScoredChunk]) -> Answer:
        """The answer to `question` from `sources` (best first), with the cited sources filled in."""
        started = time.perf_counter()
        if not sources:
            return Answer(
                text=NOT_FOUND_TEXT, abstained=True, provider="none", timings_ms={"generate": 0.0}
            )
        try:
            result = self.chain.run(lambda provider: self.generate(provider, question, sources))
        except ProviderError as failure:
            return self._fallback(question, sources, failure, started)
        return self._answer(result.provider, result.value, result.warnings, started)

    # -- streaming ---------------------------------------------------------------------------

    def stream(self, question: str, sources: list[ScoredChunk]) -> AnswerStream:
        """Text pieces as they arrive; after the last one, `.answer` has the Answer.

        Streams ask for plain text with [n] markers; a provider that fails before its first piece
        hands over to the next; cited numbers that do not exist are dropped with a warning.
        """
        return AnswerStream(lambda holder: self._stream_pieces(question, sources, holder), sources=sources)

    def _stream_pieces(
        self, question: str, sources: list[ScoredChunk], holder: AnswerStream
    ) -> Iterator[str]:
        started = time.perf_counter()
        if not sources:
            yield NOT_FOUND_TEXT
            holder.finish(Answer(text=NOT_FOUND_TEXT, abstained=True, provider="none"))
            return
        failures: list[ProviderError] = list(self.chain.skipped)
        for provider in self.chain.providers:
            try:
                fitted = self.fit(provider, question, sources, json_output=False)
                key = (
                    ResponseCache.key(provider.name, provider.model, fitted.request)
                    if self.cache
                    else None
                )
                cached = self.cache.get(key) if self.cache and key else None
                if cached is None:
                    live = provider.stream(fitted.request)
                    pieces = iter(live)
                    first = next(
                        pieces, ""
                    )  # a failure before the first piece lets the next provider try
            except ProviderError as error:
                failures.append(error)
                continue
            if cached is not None:
                yield cached.text
                response, usage = cached, Usage()
            else:
                yield first
                yield from pieces  # once text is shown, a failure is raised, not papered over
                response = LLMResponse(text=live.text, usage=live.usage)
                usage = self._counted(response, fitted.request)
            warnings = [str(f) for f in failures] + fitted.warnings
            payload = self._stream_payload(response, len(fitted.sources), provider, warnings)
            if self.cache and key and cached is None and not any("dropped" in w for w in warnings):
                self.cache.put(key, response)
            generation = Generation(payload, fitted.sources, usage, cached is not None, [])
            holder.finish(self._answer(provider, generation, warnings, started))
            return
        failure: ProviderError = (
            failures[0] if len(failures) == 1 else AllProvidersFailedError(failures)
        )
        answer = self._fallback(question, sources, failure, started)
        yield answer.text
        holder.finish(answer)

    def _stream_payload(
        self, response: LLMResponse, count: int, provider: Provider, warnings: list[str]
    ) -> AnswerPayload:
        try:
            return parse_reply(response.text, count, False, response.cited_sources)
        except InvalidOutputError as problem:
            # The text is already shown, so no repair: keep the citations that exist.
            warnings.append(
                f"{provider.label}: {problem}; dropped the citations to missing sources"
            )
            numbers = [n for n in (response.cited_sources or []) if 1 <= n <= count]
            numbers += [n for n in marker_numbers(response.text) if 1 <= n <= count]
            return AnswerPayload(
                answer=response.text.strip(), citations=list(dict.fromkeys(numbers))
            )
