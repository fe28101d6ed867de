"""Metric definitions: hand-checked examples and property tests of their invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evaluation.metrics import (
    abstention_accuracy,
    aggregate,
    citation_page_accuracy,
    citation_precision,
    exact_match,
    faithfulness,
    hit_at_k,
    latency_summary,
    mrr_at_k,
    ndcg_at_k,
    normalize_answer,
    percentile,
    recall_at_k,
    retrieval_metrics,
    semantic_similarity,
    token_f1,
)

# ---------------------------------------------------------------- retrieval, by hand

RANKED = ["c", "a", "c", "d", "b"]  # "c" repeats: counts once, at rank 1
GOLD = {"a", "b"}


@pytest.mark.unit
def test_retrieval_examples_checked_by_hand() -> None:
    assert hit_at_k(RANKED, GOLD, 1) == 0.0
    assert hit_at_k(RANKED, GOLD, 2) == 1.0
    assert recall_at_k(RANKED, GOLD, 2) == 0.5
    # distinct ranking is c, a, d, b: b sits at rank 4
    assert recall_at_k(RANKED, GOLD, 4) == 1.0
    assert mrr_at_k(RANKED, GOLD, 10) == 0.5
    assert mrr_at_k(RANKED, GOLD, 1) == 0.0
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3)
    assert ndcg_at_k(RANKED, GOLD, 10) == pytest.approx(dcg / idcg)


@pytest.mark.unit
def test_duplicates_do_not_inflate_recall_or_ndcg() -> None:
    assert recall_at_k(["a", "a", "a"], {"a", "b"}, 3) == 0.5
    assert ndcg_at_k(["a", "a"], {"a", "b"}, 2) == pytest.approx(1 / (1 + 1 / math.log2(3)))


@pytest.mark.unit
def test_undefined_inputs_raise() -> None:
    with pytest.raises(ValueError, match="gold set is empty"):
        hit_at_k(["a"], set(), 1)
    with pytest.raises(ValueError, match="k must be > 0"):
        recall_at_k(["a"], {"a"}, 0)


@pytest.mark.unit
def test_retrieval_metrics_names_and_page_level() -> None:
    doc_only = retrieval_metrics(["x.pdf", "y.pdf"], {"y.pdf"})
    assert list(doc_only) == ["hit@1", "hit@5", "recall@10", "MRR@10", "nDCG@10"]
    assert doc_only["hit@1"] == 0.0 and doc_only["MRR@10"] == 0.5

    pages = retrieval_metrics(
        ["y.pdf"], {"y.pdf"}, ranked_pages=[("y.pdf", 3), ("y.pdf", 4)], gold_pages={("y.pdf", 4)}
    )
    assert set(pages) == set(doc_only) | {
        "page_hit@1",
        "page_hit@5",
        "page_recall@10",
        "page_MRR@10",
        "page_nDCG@10",
    }
    assert pages["hit@1"] == 1.0 and pages["page_hit@1"] == 0.0 and pages["page_MRR@10"] == 0.5

    unanswerable = retrieval_metrics(
        ["x.pdf"], set(), ranked_pages=[("x.pdf", 1)], gold_pages=set()
    )
    assert all(value is None for value in unanswerable.values()) and len(unanswerable) == 10


# ---------------------------------------------------------------- retrieval, properties

keys = st.integers(min_value=0, max_value=15)
rankings = st.lists(keys, max_size=25)
gold_sets = st.sets(keys, min_size=1, max_size=8)
ks = st.integers(min_value=1, max_value=20)


@pytest.mark.unit
@given(rankings, gold_sets, ks)
def test_every_metric_lies_in_unit_interval(ranked: list[int], gold: set[int], k: int) -> None:
    for metric in (hit_at_k, recall_at_k, mrr_at_k, ndcg_at_k):
        assert 0.0 <= metric(ranked, gold, k) <= 1.0 + 1e-12


@pytest.mark.unit
@given(rankings, gold_sets)
def test_hit_at_1_never_exceeds_hit_at_5(ranked: list[int], gold: set[int]) -> None:
    assert hit_at_k(ranked, gold, 1) <= hit_at_k(ranked, gold, 5)


@pytest.mark.unit
@given(rankings, gold_sets, ks, ks)
def test_recall_and_hit_grow_with_k(ranked: list[int], gold: set[int], k1: int, k2: int) -> None:
    small, large = sorted((k1, k2))
    assert recall_at_k(ranked, gold, small) <= recall_at_k(ranked, gold, large)
    assert hit_at_k(ranked, gold, small) <= hit_at_k(ranked, gold, large)
    assert mrr_at_k(ranked, gold, small) <= mrr_at_k(ranked, gold, large)


@pytest.mark.unit
@given(gold_sets, st.lists(st.integers(min_value=100, max_value=120), max_size=5), ks)
def test_perfect_ranking_scores_one(gold: set[int], tail: list[int], k: int) -> None:
    ranked = sorted(gold) + tail  # every gold key first, then non-relevant ones
    assert hit_at_k(ranked, gold, k) == 1.0
    assert mrr_at_k(ranked, gold, k) == 1.0
    assert ndcg_at_k(ranked, gold, k) == pytest.approx(1.0)
    if k >= len(gold):
        assert recall_at_k(ranked, gold, k) == 1.0


@pytest.mark.unit
@given(rankings, gold_sets)
def test_mrr_is_reciprocal_rank_of_first_relevant(ranked: list[int], gold: set[int]) -> None:
    distinct = list(dict.fromkeys(ranked))
    ranks = [i + 1 for i, key in enumerate(distinct) if key in gold]
    expected = 1.0 / ranks[0] if ranks and ranks[0] <= 10 else 0.0
    assert mrr_at_k(ranked, gold, 10) == expected


@pytest.mark.unit
@given(rankings, gold_sets, ks)
def test_repeating_a_ranking_changes_nothing(ranked: list[int], gold: set[int], k: int) -> None:
    doubled = [key for key in ranked for _ in range(2)]
    for metric in (hit_at_k, recall_at_k, mrr_at_k, ndcg_at_k):
        assert metric(doubled, gold, k) == metric(ranked, gold, k)


# ---------------------------------------------------------------- answers


@pytest.mark.unit
def test_squad_normalisation_and_exact_match() -> None:
    assert normalize_answer("  The Cat, sat!  ") == "cat sat"
    assert exact_match("the cat sat.", "Cat sat") == 1.0
    assert exact_match("a cat", "the dog") == 0.0


@pytest.mark.unit
def test_token_f1_by_hand() -> None:
    # prediction tokens: mother child transmission; reference: mother to child
    # common 2 -> precision 2/3, recall 2/3
    assert token_f1("Mother child transmission", "mother to child") == pytest.approx(2 / 3)
    assert token_f1("the", "a") == 1.0  # both empty after normalisation
    assert token_f1("", "answer") == 0.0
    assert token_f1("x y", "z") == 0.0
    # repeated tokens count as often as they appear in both
    assert token_f1("x b b", "b b c") == pytest.approx(2 / 3)


@pytest.mark.unit
@given(st.text(max_size=40), st.text(max_size=40))
def test_token_f1_is_symmetric_and_bounded(a: str, b: str) -> None:
    assert 0.0 <= token_f1(a, b) <= 1.0
    assert token_f1(a, b) == pytest.approx(token_f1(b, a))
    if exact_match(a, b) == 1.0:
        assert token_f1(a, b) == 1.0
    if normalize_answer(a):
        assert token_f1(a, a) == 1.0


@pytest.mark.unit
def test_semantic_similarity_is_the_cosine_of_the_embeddings() -> None:
    vectors = {"north": [0.0, 2.0], "north-east": [1.0, 1.0], "zero": [0.0, 0.0]}

    def embed(texts: list[str]) -> np.ndarray:
        return np.array([vectors[t] for t in texts])

    assert semantic_similarity("north", "north", embed) == pytest.approx(1.0)
    assert semantic_similarity("north", "north-east", embed) == pytest.approx(math.sqrt(0.5))
    assert semantic_similarity("north", "zero", embed) == 0.0


@pytest.mark.unit
def test_support_shares() -> None:
    assert faithfulness([True, False, True, True]) == 0.75
    assert faithfulness([]) is None
    assert citation_precision([True, False]) == 0.5
    assert citation_precision([]) is None
    gold = {("a.pdf", 3)}
    assert citation_page_accuracy(
        [("a.pdf", 3), ("a.pdf", 4), ("b.pdf", 3)], gold
    ) == pytest.approx(1 / 3)
    assert citation_page_accuracy([], gold) is None
    assert citation_page_accuracy([("a.pdf", 3)], None) is None


@pytest.mark.unit
def test_abstention_accuracy() -> None:
    rows = [
        {"answerable": False, "abstained": True},
        {"answerable": False, "abstained": False},
        {"answerable": False, "abstained": True},
        {"answerable": True, "abstained": True},
        {"abstained": False},  # answerable by default
    ]
    assert abstention_accuracy(rows) == pytest.approx(2 / 3)
    assert abstention_accuracy(rows, include_answerable=True) == pytest.approx(3 / 5)
    assert abstention_accuracy([{"answerable": True, "abstained": False}]) is None


# ---------------------------------------------------------------- latency and aggregation


@pytest.mark.unit
def test_percentile_interpolates_linearly() -> None:
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile(range(1, 101), 95) == pytest.approx(95.05)
    assert percentile([7], 95) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1], 101)


@pytest.mark.unit
@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=50))
def test_percentiles_are_ordered_within_range(values: list[float]) -> None:
    p50, p95 = percentile(values, 50), percentile(values, 95)
    assert min(values) <= p50 <= p95 <= max(values)


@pytest.mark.unit
def test_latency_summary_per_stage() -> None:
    rows = [
        {"retrieve": 10.0, "answer": 100.0},
        {"retrieve": 30.0, "answer": None},
        {"retrieve": 20.0, "rerank": 5.0},
    ]
    summary = latency_summary(rows)
    assert list(summary) == ["retrieve", "answer", "rerank"]
    assert summary["retrieve"] == {"p50": 20.0, "p95": pytest.approx(29.0)}
    assert summary["answer"] == {"p50": 100.0, "p95": 100.0}


@pytest.mark.unit
def test_aggregate_skips_metrics_that_do_not_apply() -> None:
    rows = [
        {"hit@1": 1.0, "token_f1": 0.5, "page_hit@1": None},
        {"hit@1": 0.0, "token_f1": None, "page_hit@1": None},
        {"hit@1": 1.0, "token_f1": 1.0, "exact_match": 1.0},
    ]
    assert aggregate(rows) == {
        "hit@1": pytest.approx(2 / 3),
        "token_f1": 0.75,
        "page_hit@1": None,
        "exact_match": 1.0,
    }
    assert aggregate([]) == {}
