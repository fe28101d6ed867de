"""The typed stages of a request and the one answerer contract.

    Query -> Candidates -> Ranked -> Context -> Draft -> CheckedAnswer
     retrieve      rerank     select     answer     verify

Each stage's output is a small frozen record; each step is one function or one method
(answer/pipeline.py wires them). Timings, fusion weights and scores go on the request's
`Trace` (core/trace.py), never on the components, which requests share.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from core.language import searched_for
from core.settings import get_settings
from core.trace import Trace
from core.types import Answer, ScoredChunk


@dataclass(frozen=True)
class Query:
    """A question put to one collection, with this request's choices resolved."""

    text: str
    collection: str
    top_k: int
    fetch: int  # candidates to retrieve: more than top_k when a reranker picks among them
    filters: Mapping[str, Any] = field(default_factory=dict)
    mode: str | None = None  # hybrid | dense | sparse; None: the retriever's own
    weights: tuple[float, float] | None = None  # (dense, sparse) fusion weights; None: the retriever's own
    searched: str = ""  # the text searched and reranked: the question without its instructions to the
    # answerer, with the statements they name (core/language.py `searched_for`, in the settings'
    # language); empty: read from `text`

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValueError("Type a question first.")
        if not self.searched.strip():
            object.__setattr__(self, "searched", searched_for(self.text, get_settings().language))
        if self.top_k <= 0:
            raise ValueError(f"top_k must be > 0 (got {self.top_k})")
        if self.fetch < self.top_k:
            raise ValueError(f"fetch ({self.fetch}) must be at least top_k ({self.top_k})")


@dataclass(frozen=True)
class Candidates:
    """What search found for a query, best first."""

    query: Query
    chunks: tuple[ScoredChunk, ...]


@dataclass(frozen=True)
class Ranked:
    """The candidates re-ordered (or not) and cut to top_k; `reranker` names what ordered them."""

    query: Query
    chunks: tuple[ScoredChunk, ...]
    reranker: str = "none"
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Context:
    """The sources an answerer is given, numbered 1..n in this order, within the token budget."""

    ranked: Ranked
    sources: tuple[ScoredChunk, ...]

    @property
    def query(self) -> Query:
        return self.ranked.query


@dataclass(frozen=True)
class Draft:
    """An answerer's answer, before its citations are checked against the sources."""

    context: Context
    answer: Answer


@dataclass(frozen=True)
class CheckedAnswer:
    """The answer as the person gets it: citations checked, accounting filled in, with its trace."""

    answer: Answer
    context: Context
    trace: Trace


class AnswerStream:
    """The text of one answer as it arrives, then the Answer.

    Iterate for the text pieces; once the last one is out, `answer` holds the Answer. `result()`
    reads whatever is left and returns it. A stream is read once. `sources` are the chunks the
    answer is drawn from; `trace` is the request's trace when a pipeline runs the stream.
    """

    def __init__(
        self,
        pieces: Callable[[AnswerStream], Iterator[str]],
        *,
        sources: Sequence[ScoredChunk] = (),
        trace: Trace | None = None,
    ) -> None:
        self._pieces = pieces
        self._reading: Iterator[str] | None = None
        self.answer: Answer | None = None
        self.sources: tuple[ScoredChunk, ...] = tuple(sources)
        # What search found, best first (the pipeline sets it): evaluation ranks these.
        self.candidates: tuple[ScoredChunk, ...] = ()
        self.trace = trace

    def finish(self, answer: Answer) -> None:
        """Called by the producer once the last piece is out."""
        self.answer = answer

    def __iter__(self) -> Iterator[str]:
        if self._reading is not None:
            raise RuntimeError("This answer stream has been read already.")
        self._reading = self._pieces(self)
        return self._reading

    def result(self) -> Answer:
        """The Answer, after reading the pieces not read yet."""
        for _ in self._reading if self._reading is not None else self:
            pass
        if self.answer is None:
            raise RuntimeError("The answer stream ended without an answer.")
        return self.answer


_WORD_GROUP = re.compile(r"\S+\s*")


def word_pieces(text: str) -> list[str]:
    """A finished text cut into word groups, so it streams to a page like generated text."""
    return _WORD_GROUP.findall(text)


@runtime_checkable
class Answerer(Protocol):
    """Answers a question from numbered sources (1 = best ranked); checked once, where it is built."""

    @property
    def name(self) -> str:
        """Who answers, as the answer's `provider` names it."""
        ...

    def answer(self, question: str, sources: list[ScoredChunk]) -> Answer:
        """The whole answer at once."""
        ...

    def stream(self, question: str, sources: list[ScoredChunk]) -> AnswerStream:
        """The same answer as text pieces, then `.answer`."""
        ...
