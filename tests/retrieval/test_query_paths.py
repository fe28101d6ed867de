"""The faster search paths give what the plain ones gave: `query_many` against one `query` per spec,
the retriever's batched hybrid search against two separate searches fused the same way, and Edge's
`optimize` (its HNSW index) leaving the results of a small collection as they were. On the sample
documents, ingested for real into both stores (a hash embedder stands in for the model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.types import ScoredChunk
from evaluation.datasets import load_dataset
from ingest.pipeline import ChunkingOptions, IngestionPipeline
from retrieval.boosts import apply_boosts, build_boosts
from retrieval.fusion import adaptive_weights, weighted_rrf
from retrieval.retriever import HybridRetriever
from retrieval.sparse import Bm25Encoder
from store.base import QuerySpec, SparseVec, VectorStore
from tests.ingest.test_pipeline import HashEmbedder

DATA = Path(__file__).resolve().parents[2] / "data"
COLLECTION = "samples"


@pytest.fixture
def samples(store: VectorStore) -> VectorStore:
    # Small chunks under parents: enough candidates to rank, and children that merge into parents.
    options = ChunkingOptions(chunker="recursive", chunk_size=60, chunk_overlap=0, parent_chunk_size=240)
    IngestionPipeline(store, HashEmbedder(), Bm25Encoder()).ingest([DATA / "documents"], COLLECTION, options)
    assert store.count(COLLECTION, {"level": "child"}) > 30
    return store


def questions() -> list[str]:
    return [q.question for q in load_dataset(DATA).questions]


def assert_same_ranking(got: list[ScoredChunk], expected: list[ScoredChunk], what: str = "") -> None:
    """The same scores rank by rank and the same ids in the same order, but for the order of ids
    whose scores tie (the engine orders ties as it goes). A tie at the end of the list may have
    been cut anywhere among its members: there the scores are compared, and its ids are distinct."""
    assert len(got) == len(expected), what
    assert [h.score for h in got] == pytest.approx([h.score for h in expected], abs=1e-6), what
    start = 0
    while start < len(got):
        end = start + 1
        while end < len(got) and abs(got[end].score - got[start].score) <= 1e-6:
            end += 1
        if end == len(got):  # the last tie: both lists hold the same number of tied hits
            assert len({h.id for h in got[start:end]}) == end - start, what
        else:
            assert {h.id for h in got[start:end]} == {h.id for h in expected[start:end]}, what
        start = end


def specs(question: str) -> list[QuerySpec]:
    dense = HashEmbedder().embed([question])[0].tolist()
    sparse = Bm25Encoder().encode_query(question)
    only_pdf = {"file_type": ["pdf"]}
    return [
        QuerySpec(dense=dense, mode="dense", top_k=30),
        QuerySpec(sparse=sparse, mode="sparse", top_k=30),
        QuerySpec(dense=dense, sparse=sparse, mode="hybrid", top_k=10, candidates=30),
        QuerySpec(dense=dense, mode="dense", top_k=10, filters=only_pdf),
        QuerySpec(sparse=SparseVec([], []), mode="sparse", top_k=10),  # no known word: nothing
    ]


def test_query_many_answers_each_spec_as_query_does(samples: VectorStore) -> None:
    for question in questions()[:8]:
        batch = specs(question)
        together = samples.query_many(COLLECTION, batch)
        assert len(together) == len(batch)
        for hits, spec in zip(together, batch, strict=True):
            assert_same_ranking(hits, samples.query(COLLECTION, spec), f"{question} {spec.mode}")
        assert together[0] and together[1] and not together[-1]


def separate_searches(retriever: HybridRetriever, question: str, top_k: int, filters: dict | None) -> list[ScoredChunk]:
    """The retriever's search before batching: two store queries, then fusion, boosts and parents."""
    store, limit = retriever.store, top_k * 3
    candidates = max(retriever.candidates, limit)
    base = {"filters": dict(filters or {}), "rrf_k": retriever.rrf_k}
    dense = retriever.embedder_for(COLLECTION).embed([question])[0].tolist()
    dense_hits = store.query(COLLECTION, QuerySpec(dense=dense, mode="dense", top_k=candidates, **base))
    sparse_hits = store.query(COLLECTION, QuerySpec(sparse=retriever.sparse.encode_query(question), mode="sparse",
                                                    top_k=candidates, **base))
    weights = adaptive_weights(sparse_hits, retriever.weights, retriever.sparse_gain, retriever.sparse_pivot,
                               retriever.sparse_ceiling)
    fused = weighted_rrf([dense_hits, sparse_hits], weights, retriever.rrf_k)[:candidates]  # boosts see them all
    boosted = apply_boosts(question, fused, retriever.boosts, retriever.rrf_k)[:limit]
    return retriever._merge_parents(COLLECTION, boosted)[:top_k]


def comparable(payload: dict) -> dict:
    """A payload but for the children a parent matched: which of several children of tied scores
    make the cut before merging is the engine's choice."""
    return {k: v for k, v in payload.items() if k not in ("matched_children", "matched_text")}


class _QueryEmbedder(HashEmbedder):
    def embed_query(self, text: str):  # noqa: ANN201
        return self.embed([text])[0]


def test_batched_hybrid_search_ranks_as_two_searches_did(samples: VectorStore) -> None:
    boosts = build_boosts(("names", "codes", "recency"), name_boost=3.0, recency_boost=1.0)
    retriever = HybridRetriever(samples, _QueryEmbedder(), Bm25Encoder(), candidates=30, sparse_gain=2.0,
                                sparse_pivot=1.1, boosts=boosts)
    compared = 0
    for question in questions():
        for filters in (None, {"file_type": ["pdf", "md"]}):
            got = retriever.retrieve(COLLECTION, question, 5, filters)
            expected = separate_searches(retriever, question, 5, filters)
            assert_same_ranking(got, expected, question)
            by_id = {h.id: h for h in expected}
            for h in got:
                assert h.text == by_id[h.id].text, question
                assert comparable(h.payload) == comparable(by_id[h.id].payload), question
                children = samples.retrieve(COLLECTION, h.payload.get("matched_children") or [])
                assert all(c.payload["parent_id"] == h.id for c in children), question
            compared += bool(got)
    assert compared >= len(questions())


def test_optimize_keeps_what_a_search_finds(samples: VectorStore) -> None:
    before = [samples.query_many(COLLECTION, specs(q)) for q in questions()[:5]]
    assert isinstance(samples.optimize(COLLECTION), bool)
    assert samples.optimize(COLLECTION) is False  # nothing left to build
    after = [samples.query_many(COLLECTION, specs(q)) for q in questions()[:5]]
    for old, new in zip(before, after, strict=True):
        for old_hits, new_hits in zip(old, new, strict=True):
            assert_same_ranking(new_hits, old_hits)
