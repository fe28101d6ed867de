"""Fusion of the dense and sparse lists, and the retriever running it with the document boosts."""

from __future__ import annotations

import pytest

from core.types import ScoredChunk
from retrieval.fusion import adaptive_weights, sparse_confidence, weighted_rrf


def chunk(cid: str, score: float = 1.0, source: str = "a.txt") -> ScoredChunk:
    return ScoredChunk(id=cid, score=score, text=cid, payload={"source": source, "document_id": source})


def test_weighted_rrf_sums_weight_over_k_plus_rank():
    dense = [chunk("a"), chunk("b"), chunk("c")]
    sparse = [chunk("c"), chunk("d")]
    fused = weighted_rrf([dense, sparse], (1.0, 2.0), k=5)
    scores = {c.id: c.score for c in fused}
    assert scores["a"] == pytest.approx(1 / 6)
    assert scores["c"] == pytest.approx(1 / 8 + 2 / 6)
    assert scores["d"] == pytest.approx(2 / 7)
    assert [c.id for c in fused] == ["c", "d", "a", "b"]


def test_weighted_rrf_needs_one_weight_per_list():
    with pytest.raises(ValueError, match="2 result lists but 1 weights"):
        weighted_rrf([[chunk("a")], [chunk("b")]], (1.0,), k=5)


def test_sparse_confidence_is_the_top_score_over_the_nth():
    hits = [chunk(str(i), score) for i, score in enumerate([9.0, 6.0, 4.0, 3.0])]
    assert sparse_confidence(hits, n=3) == pytest.approx(9.0 / 4.0)
    assert sparse_confidence(hits, n=20) == pytest.approx(9.0 / 3.0)  # fewer hits: the last one
    assert sparse_confidence(hits[:1]) == 1.0
    assert sparse_confidence([]) == 1.0


def test_adaptive_weights_follow_the_confidence_within_bounds():
    flat = [chunk(str(i), 10.0 - 0.01 * i) for i in range(20)]
    peaked = [chunk("0", 30.0)] + [chunk(str(i), 10.0) for i in range(1, 20)]
    assert adaptive_weights(flat, (1.0, 1.0), gain=2.0, pivot=1.1, ceiling=3.0) == (1.0, 0.0)
    dense_w, sparse_w = adaptive_weights(peaked, (1.0, 1.0), gain=2.0, pivot=1.1, ceiling=3.0)
    assert dense_w == 1.0 and sparse_w == 3.0  # 2 * (3.0 - 1.1) = 3.8, clipped
    mid = [chunk("0", 15.0)] + [chunk(str(i), 10.0) for i in range(1, 20)]
    assert adaptive_weights(mid, (1.0, 1.0), 2.0, 1.1, 3.0)[1] == pytest.approx(2 * (1.5 - 1.1))
    assert adaptive_weights(peaked, (2.0, 1.0), gain=0.0, pivot=1.1, ceiling=3.0) == (2.0, 1.0)


class _Encoder:
    """Query vectors chosen by the test, in place of the embedder and the BM25 encoder."""

    def __init__(self, dense, sparse) -> None:  # noqa: ANN001
        self.dense, self.sparse = dense, sparse

    def embed_query(self, text: str):  # noqa: ANN201
        import numpy as np

        return np.asarray(self.dense, dtype=float)

    def encode_query(self, text: str):  # noqa: ANN201
        return self.sparse


def test_the_retriever_fuses_both_store_lists_with_adaptive_weights_and_boosts_named_files(store):
    from core.trace import Trace
    from retrieval.boosts import build_boosts
    from retrieval.retriever import HybridRetriever
    from store.base import Point, QuerySpec, SparseVec

    store.create_collection("c", 2)
    names = ["2023 Q1 ACME.txt", "2023 Q2 ACME.txt", "2022 Q3 ACME.txt", "notes.txt"]
    DATES = dict(zip(names, ["2023-04-28", "2023-07-28", "2022-10-28", None], strict=True))  # noqa: N806
    points = []
    for i in range(12):
        source = names[i % 4]
        angle = i / 12
        points.append(Point(
            id=f"00000000-0000-0000-0000-{i:012d}",
            payload={"source": source, "document_id": source, "text": f"chunk {i}", "page": 1, "position": i,
                     "created": DATES[source]},
            dense=[1.0 - angle, angle],
            sparse=SparseVec(indices=[7, 100 + i], values=[1.0 + (3.0 if i == 5 else 0.1 * i), 1.0]),
        ))
    store.upsert("c", points)
    query = _Encoder([1.0, 0.0], SparseVec(indices=[7], values=[1.0]))
    options = dict(candidates=12, weights=(1.0, 1.0), rrf_k=5, sparse_gain=2.0, sparse_pivot=1.1, sparse_ceiling=3.0)
    retriever = HybridRetriever(store, query, query, **options)  # no boosts
    trace = Trace()
    hits = retriever.retrieve("c", "anything", 12, trace=trace)
    dense = store.query("c", QuerySpec(dense=[1.0, 0.0], mode="dense", top_k=12))
    sparse = store.query("c", QuerySpec(sparse=SparseVec([7], [1.0]), mode="sparse", top_k=12))
    weights = adaptive_weights(sparse, (1.0, 1.0), 2.0, 1.1, 3.0)
    assert trace.weights == weights and weights[1] > 0
    assert [h.id for h in hits] == [h.id for h in weighted_rrf([dense, sparse], weights, 5)][:12]
    # The question names "2023 Q2": that file's chunks come first once the name boost is on.
    named = HybridRetriever(store, query, query, **options,
                            boosts=build_boosts(["names"], name_boost=2.0, recency_boost=0.0))
    boosted = named.retrieve("c", "What changed in the 2023 Q2 report?", 3)
    assert {h.payload["source"] for h in boosted} == {"2023 Q2 ACME.txt"}
    # A question for the latest report: with the recency boost on, the newest dated file leads.
    recent = HybridRetriever(store, query, query, **options,
                             boosts=build_boosts(["recency"], name_boost=0.0, recency_boost=5.0))
    latest = recent.retrieve("c", "What does the most recent report say?", 3)
    assert latest[0].payload["source"] == "2023 Q2 ACME.txt"
    assert retriever.retrieve("c", "What does the most recent report say?", 12) == hits


def test_the_retriever_runs_the_boosts_the_settings_name():
    from core.settings import Settings
    from retrieval.boosts import CodeAliases, FileNameWords, NameBoost, RecencyBoost
    from retrieval.retriever import HybridRetriever

    def boosts(**settings: object) -> tuple:
        return HybridRetriever.from_settings(None, None, None, Settings(**settings)).boosts  # type: ignore[arg-type]

    assert boosts() == (NameBoost(3.0, (FileNameWords(), CodeAliases())), RecencyBoost(1.0))
    assert boosts(retrieval_boosts="recency,names", name_boost=2.0) == (
        RecencyBoost(1.0), NameBoost(2.0, (FileNameWords(),)))
    assert boosts(retrieval_boosts="none") == ()


@pytest.mark.integration
def test_a_company_named_in_a_question_finds_its_ticker_file(tmp_path):
    """Ingested for real: two filings alike but for the company, named by ticker only."""
    from core.settings import Settings
    from rag.service import RagService

    filler = " ".join(f"Paragraph {i} describes the quarter in general terms." for i in range(40))
    folder = tmp_path / "filings"
    folder.mkdir()
    for ticker, company in (("ACME", "Acme"), ("GLBX", "Globex")):
        intro = f"{company} Corporation files this quarterly report. {company} sells tools. " * 4
        (folder / f"2023 Q1 {ticker}.txt").write_text(
            f"{intro}\n\n{filler}\n\nRevenue for the quarter was 41 million dollars, up from 38 million.\n")
    service = RagService(Settings(home=tmp_path / "home"))
    try:
        assert not service.ingest([folder], "filings").failed
        first = service.store.scroll("filings", {"position": 0})
        assert {p.payload["source"]: "globex" in p.payload["doc_terms"] for p in first} == {
            "2023 Q1 ACME.txt": False, "2023 Q1 GLBX.txt": True}
        assert all(p.payload["doc_codes"] == [] for p in first)  # no code used three times
        hits = service.retriever.retrieve("filings", "What revenue did Globex report for the quarter?", top_k=4)
        revenue = [h.payload["source"] for h in hits if "Revenue for the quarter" in h.text]
        assert revenue and revenue[0] == "2023 Q1 GLBX.txt", revenue
    finally:
        service.close()
