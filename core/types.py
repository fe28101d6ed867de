"""Result types passed between ingestion, retrieval, answering and evaluation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class HeadingMark:
    """A heading that starts at `offset` in a page's text; `path` is its full heading path."""

    offset: int
    path: tuple[str, ...]


@dataclass
class Page:
    """The text of one page (1-based `number`); formats without pages have a single page 1."""

    number: int
    text: str
    headings: list[HeadingMark] = field(default_factory=list)

    def heading_path_at(self, offset: int) -> tuple[str, ...]:
        """The heading path in force at a character offset of this page."""
        path: tuple[str, ...] = ()
        for mark in self.headings:
            if mark.offset <= offset:
                path = mark.path
            else:
                break
        return path


@dataclass
class Document:
    """A file read into pages, before chunking."""

    path: str
    name: str
    file_type: str
    sha256: str
    pages: list[Page]
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def text_chars(self) -> int:
        return sum(len(p.text) for p in self.pages)


@dataclass
class Chunk:
    """A piece of one page's text: `page_text[start:end] == text`."""

    text: str
    page: int
    start: int
    end: int
    index: int = 0
    heading_path: tuple[str, ...] = ()
    token_count: int = 0
    level: str = "leaf"  # "leaf" (flat chunkers), "child" or "parent" (recursive)
    parent_index: int | None = None
    id: str = ""
    parent_id: str | None = None


@dataclass
class ScoredChunk:
    """A stored chunk returned by a search, with its payload and score."""

    id: str
    score: float
    text: str
    payload: dict[str, Any]

    @property
    def document(self) -> str:
        return str(self.payload.get("file_name", ""))

    @property
    def document_id(self) -> str:
        return str(self.payload.get("document_id", ""))

    @property
    def page(self) -> int:
        return int(self.payload.get("page", 0))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Citation:
    """One numbered source of an answer, with the evidence that supports it."""

    n: int
    chunk_id: str
    document: str
    page: int
    text: str
    score: float
    supporting_sentence: str = ""
    support: float = 0.0
    document_id: str = ""


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class Answer:
    """What an answerer returns: text with [n] markers, checked citations, and accounting."""

    text: str
    citations: list[Citation] = field(default_factory=list)
    abstained: bool = False
    # How strongly the sources support the answer, on the answerer's own scale (extractive: its
    # best sentence's score). Abstention compares it to a threshold; calibration sweeps that.
    confidence: float | None = None
    grounded: bool = True
    unsupported_sentences: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    provider: str = "extractive"
    reranker: str = "none"
    cache_hit: bool = False
    timings_ms: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    request_id: str = ""
    question: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


NOT_FOUND_TEXT = "Not found in your documents."
