"""A fallback chain of providers: the next one answers when one fails after its retries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from core.errors import ConfigError
from core.settings import Settings
from core.types import Answer, ScoredChunk
from llm.base import LLMRequest, LLMResponse, Provider
from llm.errors import AllProvidersFailedError, ProviderError
from llm.registry import EXTRACTIVE, answerer_names, make_provider
from llm.retry import RetryPolicy

T = TypeVar("T")
Terminal = Callable[[str, list[ScoredChunk]], Answer]
# Said after the providers' failures, so a person knows whose answer they are reading.
FALLBACK_NOTE = f"No LLM could answer: this answer is {EXTRACTIVE}, built from the sources' own sentences."


def noted(terminal: Terminal) -> Terminal:
    """The terminal answerer, its answer opening its warnings with FALLBACK_NOTE."""

    def answer(question: str, sources: list[ScoredChunk]) -> Answer:
        result = terminal(question, sources)
        result.warnings = [FALLBACK_NOTE, *result.warnings]
        return result

    return answer


@dataclass
class ChainResult(Generic[T]):
    """What the first provider that succeeded returned, who it was, and who failed before it."""

    value: T
    provider: Provider
    failures: list[ProviderError] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        return [str(f) for f in self.failures]


class ProviderChain:
    """Providers tried in order. `terminal` (the extractive answerer, supplied by the caller)
    answers when every provider fails; `skipped` holds providers that could not even start
    (a missing key), reported as warnings."""

    def __init__(
        self,
        providers: list[Provider],
        terminal: Terminal | None = None,
        skipped: list[ProviderError] | None = None,
    ) -> None:
        self.providers = list(providers)
        self.terminal = noted(terminal) if terminal is not None else None
        self.skipped = list(skipped or [])
        if not self.providers and terminal is None:
            if len(self.skipped) == 1:
                raise self.skipped[0]
            raise AllProvidersFailedError(self.skipped)

    @classmethod
    def from_spec(
        cls,
        spec: str,
        settings: Settings,
        terminal: Terminal | None = None,
        retry: RetryPolicy | None = None,
    ) -> ProviderChain:
        """Build from a string such as "cohere,openai,extractive"; "extractive" must come last
        and needs `terminal`. A provider without its key is skipped with a warning."""
        names = answerer_names(spec)
        providers: list[Provider] = []
        skipped: list[ProviderError] = []
        use_terminal = False
        for position, name in enumerate(names):
            if name.lower() == EXTRACTIVE:
                if position != len(names) - 1:
                    raise ConfigError(
                        f"'{EXTRACTIVE}' answers last: put it at the end of {spec!r}"
                    )
                if terminal is None:
                    raise ConfigError(
                        f"{spec!r} ends with '{EXTRACTIVE}': pass the extractive answerer as terminal"
                    )
                use_terminal = True
                continue
            try:
                providers.append(make_provider(name, settings, retry))
            except ProviderError as error:
                skipped.append(error)
        return cls(providers, terminal if use_terminal else None, skipped)

    @property
    def names(self) -> list[str]:
        """Provider labels in order, then the terminal's name."""
        return [p.label for p in self.providers] + ([EXTRACTIVE] if self.terminal else [])

    def run(self, attempt: Callable[[Provider], T]) -> ChainResult[T]:
        """attempt(provider) for each provider in turn until one returns.

        Raises the single failure when there was one, else AllProvidersFailedError listing all.
        """
        failures = list(self.skipped)
        for provider in self.providers:
            try:
                return ChainResult(attempt(provider), provider, failures)
            except ProviderError as error:
                failures.append(error)
        if len(failures) == 1:
            raise failures[0]
        raise AllProvidersFailedError(failures)

    def complete(self, request: LLMRequest) -> ChainResult[LLMResponse]:
        """One request through the chain (no terminal: that one needs a question and sources)."""
        return self.run(lambda provider: provider.complete(request))
