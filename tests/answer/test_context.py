"""Context selection: best first, overlapping chunks de-duplicated, token budget."""

from __future__ import annotations

import pytest

from answer.context import overlaps, select_context
from core.types import ScoredChunk

pytestmark = pytest.mark.unit


def chunk(cid: str, score: float, start: int, end: int, doc: str = "d1", page: int = 1, text: str = "") -> ScoredChunk:
    return ScoredChunk(
        id=cid,
        score=score,
        text=text or f"text of {cid} " * 3,
        payload={"document_id": doc, "file_name": f"{doc}.pdf", "page": page, "start": start, "end": end},
    )


def words(text: str) -> int:
    return len(text.split())


def test_sources_come_best_first_whatever_the_input_order():
    chunks = [chunk("a", 0.2, 0, 10), chunk("b", 0.9, 100, 110), chunk("c", 0.5, 200, 210)]
    assert [c.id for c in select_context(chunks, 1000, words)] == ["b", "c", "a"]


def test_overlap_of_more_than_half_keeps_the_better_scored():
    worse = chunk("worse", 0.3, 0, 100)
    better = chunk("better", 0.8, 40, 140)  # shares 60 of 100 characters
    assert overlaps(worse, better)
    assert [c.id for c in select_context([worse, better], 1000, words)] == ["better"]


def test_overlap_of_half_or_less_keeps_both():
    first = chunk("first", 0.8, 0, 100)
    second = chunk("second", 0.7, 50, 150)  # exactly half: not a duplicate
    assert not overlaps(first, second)
    assert len(select_context([first, second], 1000, words)) == 2


def test_a_child_inside_its_parent_is_a_duplicate():
    parent = chunk("parent", 0.9, 0, 800)
    child = chunk("child", 0.5, 100, 300)
    assert [c.id for c in select_context([child, parent], 1000, words)] == ["parent"]


@pytest.mark.parametrize("other", [{"page": 2}, {"doc": "d2"}])
def test_same_span_on_another_page_or_document_is_not_a_duplicate(other):
    first = chunk("first", 0.9, 0, 100)
    second = chunk("second", 0.8, 0, 100, **other)
    assert len(select_context([first, second], 1000, words)) == 2


def test_chunks_without_spans_dedupe_on_contained_text():
    a = ScoredChunk("a", 0.9, "The filter is emptied once a year. Check it.", {"document_id": "d", "page": 1})
    b = ScoredChunk("b", 0.5, "The filter is emptied once a year.", {"document_id": "d", "page": 1})
    assert [c.id for c in select_context([a, b], 1000, words)] == ["a"]


def test_the_same_chunk_twice_is_kept_once():
    a = chunk("same", 0.9, 0, 10)
    assert len(select_context([a, chunk("same", 0.9, 0, 10)], 1000, words)) == 1


def test_selection_stops_when_the_budget_is_full():
    chunks = [chunk(f"c{i}", 1.0 - i / 10, i * 100, i * 100 + 50, text="w " * 40) for i in range(5)]
    selected = select_context(chunks, 100, words)  # 40 words each: two fit, the third would not
    assert [c.id for c in selected] == ["c0", "c1"]
    assert sum(words(c.text) for c in selected) <= 100


def test_the_best_chunk_is_kept_even_over_budget():
    big = chunk("big", 0.9, 0, 10, text="w " * 500)
    small = chunk("small", 0.5, 100, 110, text="w")
    assert [c.id for c in select_context([big, small], 10, words)] == ["big"]


def test_default_token_count_is_cl100k():
    text = "Leave at least 300 mm between the back of the outdoor unit and the wall."
    from core.tokens import count_tokens

    tokens = count_tokens(text)
    one = chunk("one", 0.9, 0, 10, text=text)
    two = chunk("two", 0.8, 100, 110, text=text)
    assert len(select_context([one, two], 2 * tokens)) == 2
    assert len(select_context([one, two], 2 * tokens - 1)) == 1


def test_budget_must_be_positive():
    with pytest.raises(ValueError, match="budget_tokens"):
        select_context([], 0, words)
