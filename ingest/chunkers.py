"""Chunking strategies built on llama-index node parsers, with exact page spans.

Every chunk satisfies `page.text[chunk.start:chunk.end] == chunk.text` for the page whose
`number` is `chunk.page`: splitters return text, and this module maps it back to the page.
Spans never start or end with whitespace, as llama-index's splitters strip their chunks.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol, TypeVar, runtime_checkable

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.node_parser import (
    HierarchicalNodeParser,
    SemanticSplitterNodeParser,
    SentenceSplitter,
    TokenTextSplitter,
)
from llama_index.core.schema import Document as LlamaDocument

from core.tokens import ENCODING_NAME, count_tokens, encode
from core.types import Chunk, Document, Page

CHUNKER_NAMES = ("fixed", "sentence", "recursive", "semantic")

_AnySplitter = TypeVar("_AnySplitter", TokenTextSplitter, SentenceSplitter)

# Short pieces (words, sentences) recur across a corpus and are counted several times by the splitters.
_CACHED_PIECE_CHARS = 256


@lru_cache(maxsize=1 << 16)
def _cached_token_ids(text: str) -> list[int]:
    return encode(text)


def _splitter_tokenizer(text: str) -> list[int]:
    """Token ids for llama-index splitters, which only take len(); short pieces come from a cache."""
    if len(text) <= _CACHED_PIECE_CHARS:
        return _cached_token_ids(text)
    return encode(text)


_SPLITTER_PRIVATES = (
    "_tokenizer",
    "_split_fns",
    "_sub_sentence_split_fns",
    "_chunking_tokenizer_fn",
)


def _with_fast_privates(splitter: _AnySplitter) -> _AnySplitter:
    """Copy the splitter's private attributes into its instance dict, once.

    pydantic serves private attributes through `__getattr__` (about 3 us a lookup) and the
    splitters look their tokenizer up for every word: this makes fixed chunking 5-7x faster.
    """
    for name in _SPLITTER_PRIVATES:
        if splitter.__pydantic_private__ and name in splitter.__pydantic_private__:
            splitter.__dict__[name] = splitter.__pydantic_private__[name]
    return splitter


@runtime_checkable
class Chunker(Protocol):
    """Splits a document into chunks whose spans map back to the exact text of their pages."""

    name: str

    def settings(self) -> dict[str, Any]:
        """The chunker's name and settings, stored in each chunk's payload."""
        ...

    def split(self, doc: Document) -> list[Chunk]:
        """Chunks of every page, indexed in document order."""
        ...


def _check_sizes(chunk_size: int, chunk_overlap: int, size_name: str = "chunk_size") -> None:
    """Reject sizes the splitters cannot honour, saying which value to change."""
    if chunk_size <= 0:
        raise ValueError(
            f"{size_name} must be > 0 (got {chunk_size}); use a positive token count such as 200."
        )
    if chunk_overlap < 0:
        raise ValueError(f"chunk_overlap must be >= 0 (got {chunk_overlap}).")
    if chunk_overlap >= chunk_size:
        raise ValueError(
            f"chunk_overlap ({chunk_overlap}) must be smaller than {size_name} ({chunk_size}); "
            "lower the overlap or raise the size."
        )


class PageSpans:
    """Finds where a piece of splitter output lies in one page's text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._positions: list[int] | None = None
        self._solid: str = ""

    def locate(
        self,
        piece: str,
        previous: tuple[int, int] | None = None,
        *,
        hint: int | None = None,
        lower: int = 0,
        upper: int | None = None,
    ) -> tuple[int, int] | None:
        """The (start, end) of `piece` without its outer whitespace, or None for a blank piece.

        Pieces come in reading order inside [lower, upper); `previous` is the span of the one
        before. A piece starts at or after the previous one's start and no later than the first
        non-space character after its end (else text would be lost); within that window the
        last copy of the text is taken, so repeated text never pulls a span backwards.
        llama-index's own offsets (`hint`) come from a first-copy search and are used next;
        then a plain forward search; and if the splitter changed whitespace, the piece is
        aligned on its non-whitespace characters.
        """
        stripped = piece.strip()
        if not stripped:
            return None
        text = self.text
        upper = len(text) if upper is None else upper
        window_start = previous[0] if previous else lower
        limit = previous[1] if previous else lower
        while limit < upper and text[limit].isspace():
            limit += 1
        found = text.rfind(stripped, window_start, min(limit + len(stripped), upper))
        if found >= 0:
            return found, found + len(stripped)
        lead = len(piece) - len(piece.lstrip())
        if hint is not None and lower <= hint and hint + len(piece) <= upper:
            if text.startswith(piece, hint):
                return hint + lead, hint + lead + len(stripped)
        for start in (window_start, lower):
            found = text.find(stripped, start, upper)
            if found >= 0:
                return found, found + len(stripped)
        span = self._align(stripped, window_start, lower, upper)
        if span is None:
            raise ValueError(
                "A chunk's text could not be found in its page; this is a bug in the chunker, "
                "please report it with the document."
            )
        return span

    def _align(
        self, piece: str, search_from: int, lower: int, upper: int
    ) -> tuple[int, int] | None:
        """Match the piece's non-whitespace characters against the page's, then map back."""
        if self._positions is None:
            self._positions = [i for i, ch in enumerate(self.text) if not ch.isspace()]
            self._solid = "".join(self.text[i] for i in self._positions)
        solid_piece = "".join(ch for ch in piece if not ch.isspace())
        for start in (search_from, lower):
            k = self._solid.find(solid_piece, bisect.bisect_left(self._positions, start))
            if k >= 0:
                begin, end = self._positions[k], self._positions[k + len(solid_piece) - 1] + 1
                if end <= upper:
                    return begin, end
        return None


@dataclass
class _Span:
    """A chunk span on one page before it gets its document-wide index."""

    start: int
    end: int
    level: str = "leaf"
    parent: int | None = None  # position of the parent span in the same page's list


def _spans_in_order(
    finder: PageSpans, pieces: Sequence[str], lower: int = 0, upper: int | None = None
) -> list[_Span]:
    """Map consecutive splitter pieces to spans, each placed after the one before."""
    spans: list[_Span] = []
    previous: tuple[int, int] | None = None
    for piece in pieces:
        located = finder.locate(piece, previous, lower=lower, upper=upper)
        if located is None:
            continue
        spans.append(_Span(*located))
        previous = located
    return spans


class _PageChunker:
    """Shared loop: split each page on its own, then number chunks across the document."""

    name = ""

    def _split_page(self, page: Page) -> list[_Span]:
        raise NotImplementedError

    def split(self, doc: Document) -> list[Chunk]:
        """Chunks of every page in page order, with a running index over the document."""
        chunks: list[Chunk] = []
        for page in doc.pages:
            if not page.text.strip():
                continue
            offset = len(chunks)
            for span in self._split_page(page):
                text = page.text[span.start : span.end]
                chunks.append(
                    Chunk(
                        text=text,
                        page=page.number,
                        start=span.start,
                        end=span.end,
                        index=len(chunks),
                        heading_path=page.heading_path_at(span.start),
                        token_count=count_tokens(text),
                        level=span.level,
                        parent_index=None if span.parent is None else offset + span.parent,
                    )
                )
        return chunks


_TOO_SMALL = "exceeded chunk size"  # llama-index's message when one character outgrows the size


def _too_small_error(chunk_size: int) -> ValueError:
    return ValueError(
        f"chunk_size {chunk_size} is too small: a single character takes more tokens; "
        "use a chunk size of at least 8."
    )


def _run_splitter(splitter: Callable[[str], list[str]], text: str, chunk_size: int) -> list[str]:
    """Call a llama-index splitter, turning its too-small-size failure into advice."""
    try:
        return splitter(text)
    except ValueError as exc:
        if _TOO_SMALL in str(exc):
            raise _too_small_error(chunk_size) from exc
        raise


class _TextSplitterChunker(_PageChunker):
    """A flat chunker around one llama-index text splitter, built once."""

    def __init__(
        self, splitter: TokenTextSplitter | SentenceSplitter, chunk_size: int, chunk_overlap: int
    ) -> None:
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._splitter = splitter

    def settings(self) -> dict[str, Any]:
        """Name, sizes in tokens and the tokenizer."""
        return {
            "name": self.name,
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "tokenizer": ENCODING_NAME,
        }

    def _split_page(self, page: Page) -> list[_Span]:
        pieces = _run_splitter(self._splitter.split_text, page.text, self.chunk_size)
        return _spans_in_order(PageSpans(page.text), pieces)


class FixedChunker(_TextSplitterChunker):
    """Token windows of `chunk_size` with `chunk_overlap` tokens shared by neighbours (TokenTextSplitter).

    TokenTextSplitter counts each word with its leading space and then strips the chunk, so a
    chunk that starts mid-text can take a token or two more than `chunk_size` ("respectively"
    is two tokens, " respectively" one).
    """

    name = "fixed"

    def __init__(self, chunk_size: int = 200, chunk_overlap: int = 20) -> None:
        _check_sizes(chunk_size, chunk_overlap)
        splitter = TokenTextSplitter(
            chunk_size=chunk_size, chunk_overlap=chunk_overlap, tokenizer=_splitter_tokenizer
        )
        _with_fast_privates(splitter)
        super().__init__(splitter, chunk_size, chunk_overlap)


class SentenceChunker(_TextSplitterChunker):
    """Chunks of whole sentences where possible, up to `chunk_size` tokens, with overlap (SentenceSplitter)."""

    name = "sentence"

    def __init__(self, chunk_size: int = 200, chunk_overlap: int = 20) -> None:
        _check_sizes(chunk_size, chunk_overlap)
        super().__init__(_sentence_splitter(chunk_size, chunk_overlap), chunk_size, chunk_overlap)

    def settings(self) -> dict[str, Any]:
        """Name, sizes in tokens, the tokenizer and where a long sentence is cut."""
        return {**super().settings(), "splits": _SPLITS}


class _PlainSentenceSplitter(SentenceSplitter):
    """A SentenceSplitter that splits node text alone: our nodes carry no metadata.

    The metadata-aware path prints a warning to stdout for sizes under 50 tokens, which would
    corrupt the command line's JSON output.
    """

    @classmethod
    def class_name(cls) -> str:
        return "PlainSentenceSplitter"

    def split_text_metadata_aware(self, text: str, metadata_str: str) -> list[str]:
        return self.split_text(text)


# What SentenceSplitter cuts a sentence too long for a chunk into: lines (then words). Its default
# cuts at every comma and period, so a table (one long "sentence" to the sentence tokenizer: no
# full stops) was cut inside its numbers ("113,599" into "113," and "599"), chunks began and
# ended mid-row and the overlap carried half rows. Every character belongs to one line piece, as
# with the default: the pieces join back into the text.
_LINES = r"[^\n]*\n+|[^\n]+"
# Recorded in the chunker's settings: chunks made before the change differ, so a document is
# chunked again when it is ingested again.
_SPLITS = "lines"


def _sentence_splitter(chunk_size: int, chunk_overlap: int) -> SentenceSplitter:
    splitter = _PlainSentenceSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        tokenizer=_splitter_tokenizer,
        secondary_chunking_regex=_LINES,
    )
    return _with_fast_privates(splitter)


class RecursiveChunker(_PageChunker):
    """Parent chunks for context and child chunks inside them for search (HierarchicalNodeParser).

    `chunk_sizes` run from largest to smallest. With more than two sizes the larger levels only
    shape the tree: the returned parents are the second-smallest level, the children the leaves.
    """

    name = "recursive"

    def __init__(self, chunk_sizes: Sequence[int] = (800, 200), chunk_overlap: int = 20) -> None:
        sizes = tuple(int(s) for s in chunk_sizes)
        if len(sizes) < 2:
            raise ValueError(
                f"chunk_sizes needs a parent and a child size (got {list(sizes)}), e.g. (800, 200)."
            )
        for size in sizes:
            _check_sizes(size, chunk_overlap)
        for parent, child in zip(sizes, sizes[1:], strict=False):
            if parent <= child:
                raise ValueError(
                    f"The parent chunk size ({parent}) must be larger than the child chunk size ({child}); "
                    "raise the parent size or lower the chunk size."
                )
        self.chunk_sizes = sizes
        self.chunk_overlap = chunk_overlap
        ids = [f"chunk_size_{size}" for size in sizes]
        self._parser = HierarchicalNodeParser.from_defaults(
            node_parser_ids=ids,
            node_parser_map={
                pid: _sentence_splitter(size, chunk_overlap)
                for pid, size in zip(ids, sizes, strict=True)
            },
            include_prev_next_rel=False,
        )

    def settings(self) -> dict[str, Any]:
        """Name, child size, parent size(s), overlap and the tokenizer."""
        return {
            "name": self.name,
            "chunk_size": self.chunk_sizes[-1],
            "parent_chunk_size": self.chunk_sizes[-2],
            "chunk_sizes": list(self.chunk_sizes),
            "chunk_overlap": self.chunk_overlap,
            "tokenizer": ENCODING_NAME,
            "splits": _SPLITS,
        }

    def _split_page(self, page: Page) -> list[_Span]:
        try:
            nodes = self._parser.get_nodes_from_documents([LlamaDocument(text=page.text)])
        except ValueError as exc:
            if _TOO_SMALL in str(exc):
                raise _too_small_error(self.chunk_sizes[-1]) from exc
            raise
        finder = PageSpans(page.text)
        depth: dict[str, int] = {}
        span_of: dict[str, tuple[int, int] | None] = {}
        children: dict[str, list[str]] = {}
        previous: dict[str | None, tuple[int, int]] = {}  # the last sibling's span, per parent
        for node in nodes:  # llama-index lists each level after the one above it
            parent_id = node.parent_node.node_id if node.parent_node is not None else None
            depth[node.node_id] = 0 if parent_id is None else depth[parent_id] + 1
            if parent_id is not None:
                children.setdefault(parent_id, []).append(node.node_id)
            # A child's offsets are relative to its parent's text.
            lower, upper = (span_of[parent_id] if parent_id else None) or (0, len(page.text))
            hint = None if node.start_char_idx is None else lower + node.start_char_idx
            span = finder.locate(
                node.get_content(),
                previous.get(parent_id),
                hint=hint,
                lower=lower,
                upper=upper,
            )
            span_of[node.node_id] = span
            if span is not None:
                previous[parent_id] = span
        parent_depth = len(self.chunk_sizes) - 2
        spans: list[_Span] = []
        for node in nodes:
            span = span_of[node.node_id]
            if depth[node.node_id] != parent_depth or span is None:
                continue
            parent_position = len(spans)
            spans.append(_Span(*span, level="parent"))
            for child_id in children.get(node.node_id, []):
                child_span = span_of[child_id]
                if child_span is not None:
                    spans.append(_Span(*child_span, level="child", parent=parent_position))
        return spans


class LlamaIndexEmbedding(BaseEmbedding):
    """Presents an embedder with `embed(texts) -> array` and `model_name` as a llama-index BaseEmbedding.

    The one adapter: the semantic chunker and the LlamaIndex starter pipeline (evaluation) use it.
    `embed_batch_size` is how many texts LlamaIndex hands over per call.
    """

    _embedder: Any = PrivateAttr()

    def __init__(self, embedder: Any, embed_batch_size: int = 256, **kwargs: Any) -> None:
        super().__init__(
            model_name=str(getattr(embedder, "model_name", "unknown")),
            embed_batch_size=embed_batch_size,
            **kwargs,
        )
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "LlamaIndexEmbedding"

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [row.tolist() for row in self._embedder.embed(list(texts))]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embedding(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embedding(query)


class SemanticChunker(_PageChunker):
    """Chunks that end where the embedder sees the topic change (SemanticSplitterNodeParser).

    A chunk longer than `max_chunk_size` tokens is split again with the sentence splitter, so
    every chunk fits the embedder's window.
    """

    name = "semantic"

    def __init__(
        self,
        embedder: Any,
        buffer_size: int = 1,
        breakpoint_percentile: int = 95,
        max_chunk_size: int = 200,
        chunk_overlap: int = 0,
    ) -> None:
        if embedder is None or not callable(getattr(embedder, "embed", None)):
            raise ValueError(
                "The semantic chunker needs an embedder with embed(texts); pass embedder=..."
            )
        _check_sizes(max_chunk_size, chunk_overlap, "max_chunk_size")
        if buffer_size < 0:
            raise ValueError(f"buffer_size must be >= 0 (got {buffer_size}).")
        if not 0 < breakpoint_percentile <= 100:
            raise ValueError(
                f"breakpoint_percentile must be in (0, 100] (got {breakpoint_percentile})."
            )
        self.embedder = embedder
        self.buffer_size = buffer_size
        self.breakpoint_percentile = breakpoint_percentile
        self.max_chunk_size = max_chunk_size
        self.chunk_overlap = chunk_overlap
        self._parser = SemanticSplitterNodeParser.from_defaults(
            embed_model=LlamaIndexEmbedding(embedder),
            buffer_size=buffer_size,
            breakpoint_percentile_threshold=breakpoint_percentile,
            include_prev_next_rel=False,
        )
        self._resplitter = _sentence_splitter(max_chunk_size, chunk_overlap)

    def settings(self) -> dict[str, Any]:
        """Name, breakpoint settings, size cap, the embedding model and the tokenizer."""
        return {
            "name": self.name,
            "chunk_size": self.max_chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "buffer_size": self.buffer_size,
            "breakpoint_percentile": self.breakpoint_percentile,
            "embedding_model": str(getattr(self.embedder, "model_name", "unknown")),
            "tokenizer": ENCODING_NAME,
        }

    def _split_page(self, page: Page) -> list[_Span]:
        finder = PageSpans(page.text)
        nodes = self._parser.get_nodes_from_documents([LlamaDocument(text=page.text)])
        spans: list[_Span] = []
        previous: tuple[int, int] | None = None
        for node in nodes:
            located = finder.locate(node.get_content(), previous, hint=node.start_char_idx)
            if located is None:
                continue
            previous = located
            start, end = located
            if count_tokens(page.text[start:end]) <= self.max_chunk_size:
                spans.append(_Span(start, end))
                continue
            pieces = _run_splitter(
                self._resplitter.split_text, page.text[start:end], self.max_chunk_size
            )
            spans.extend(_spans_in_order(finder, pieces, lower=start, upper=end))
        return spans


def make_chunker(
    name: str,
    chunk_size: int,
    chunk_overlap: int,
    *,
    parent_chunk_size: int = 800,
    embedder: Any = None,
) -> Chunker:
    """The chunker called `name` ("fixed", "sentence", "recursive" or "semantic") with these sizes."""
    key = name.strip().lower()
    if key == "fixed":
        return FixedChunker(chunk_size, chunk_overlap)
    if key == "sentence":
        return SentenceChunker(chunk_size, chunk_overlap)
    if key == "recursive":
        return RecursiveChunker((parent_chunk_size, chunk_size), chunk_overlap)
    if key == "semantic":
        if embedder is None:
            raise ValueError(
                "The semantic chunker needs an embedder; pass embedder=... or choose another chunker."
            )
        return SemanticChunker(embedder, max_chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    raise ValueError(f"Unknown chunker {name!r}; choose one of: {', '.join(CHUNKER_NAMES)}.")
