"""Context selection: the best chunks, without near-duplicates, under a token budget.

The returned list is the numbered source list of an answer: source [1] is its first item,
[2] the second, and so on.
"""

from __future__ import annotations

from collections.abc import Callable

from core.types import ScoredChunk

MIN_OVERLAP_SHARE = 0.5  # chunks sharing more than half of the shorter span say the same thing


def _count_tokens(text: str) -> int:
    from core.tokens import count_tokens

    return count_tokens(text)


def _span(chunk: ScoredChunk) -> tuple[int, int] | None:
    start, end = chunk.payload.get("start"), chunk.payload.get("end")
    if isinstance(start, int) and isinstance(end, int) and end > start:
        return start, end
    return None


def _same_place(a: ScoredChunk, b: ScoredChunk) -> bool:
    doc_a = a.payload.get("document_id") or a.payload.get("file_name")
    doc_b = b.payload.get("document_id") or b.payload.get("file_name")
    return bool(doc_a) and doc_a == doc_b and a.page == b.page


def overlaps(a: ScoredChunk, b: ScoredChunk) -> bool:
    """True when two chunks repeat each other: same id, or same document and page with spans
    overlapping by more than half of the shorter one (without spans: one text holds the other)."""
    if a.id and a.id == b.id:
        return True
    if not _same_place(a, b):
        return False
    span_a, span_b = _span(a), _span(b)
    if span_a is None or span_b is None:
        shorter, longer = sorted((a.text.strip(), b.text.strip()), key=len)
        return bool(shorter) and shorter in longer
    shared = min(span_a[1], span_b[1]) - max(span_a[0], span_b[0])
    shorter_len = min(span_a[1] - span_a[0], span_b[1] - span_b[0])
    return shared > MIN_OVERLAP_SHARE * shorter_len


def select_context(
    chunks: list[ScoredChunk],
    budget_tokens: int,
    count_tokens: Callable[[str], int] | None = None,
) -> list[ScoredChunk]:
    """The sources of an answer, best first, numbered 1..n in the returned order.

    Chunks are taken by score (ties keep the given order); a chunk that overlaps a better one
    already taken is dropped; selection stops at the first chunk that would overflow
    `budget_tokens` (cl100k tokens of the chunk texts). The best chunk is always kept, even
    when alone it is over the budget: an answer needs at least one source, and the LLM layer
    truncates prompts to its model's window anyway.
    """
    if budget_tokens <= 0:
        raise ValueError(f"budget_tokens must be > 0 (got {budget_tokens})")
    count = count_tokens or _count_tokens
    ranked = sorted(chunks, key=lambda c: c.score, reverse=True)
    selected: list[ScoredChunk] = []
    used = 0
    for chunk in ranked:
        if any(overlaps(chunk, kept) for kept in selected):
            continue
        tokens = count(chunk.text)
        if selected and used + tokens > budget_tokens:
            break
        selected.append(chunk)
        used += tokens
    return selected
