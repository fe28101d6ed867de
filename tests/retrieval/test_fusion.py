"""Fusion of the dense and sparse lists, and the document-name boost."""

from __future__ import annotations

import math

import pytest

from core.types import ScoredChunk
from ingest.terms import document_terms
from retrieval.fusion import (
    adaptive_weights,
    asks_for_latest,
    boost_named_documents,
    boost_recent_documents,
    code_aliases,
    name_codes,
    name_scores,
    name_words,
    recency_scores,
    sparse_confidence,
    weighted_rrf,
)


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


def test_name_words_come_from_folders_and_file_stem_not_the_title():
    payload = {"source": "reports/2023 Q1 INTC.pdf", "title": "Form 10-Q Intel Corporation"}
    assert name_words(payload) == {"reports", "2023", "q1", "intc"}


def test_a_document_named_by_two_question_words_scores_highest():
    hits = [chunk("1", source="2023 Q3 INTC.pdf"), chunk("2", source="2023 Q1 INTC.pdf"),
            chunk("3", source="2022 Q3 INTC.pdf"), chunk("4", source="2023 Q1 AMZN.pdf")]
    scores = name_scores("What was Intel's R&D in Q1 2023?", hits)
    # Both Q1 filings share "q1" and "2023" with the question: the same IDF sum, the best score.
    assert scores["2023 Q1 INTC.pdf"] == 1.0 and scores["2023 Q1 AMZN.pdf"] == 1.0
    assert scores["2023 Q3 INTC.pdf"] == 0.0  # one shared word ("2023") is not a reference
    assert scores["2022 Q3 INTC.pdf"] == 0.0


def test_document_terms_are_the_most_frequent_capitalised_words_per_1000_words():
    text = "Intel reported revenue. Intel's Mobileye grew. The revenue of Intel fell. " + "word " * 89
    terms = document_terms(text, limit=2)
    assert list(terms) == ["intel", "mobileye"]  # ties keep their first appearance
    assert terms["intel"] == pytest.approx(1000 * 3 / 100)
    assert "revenue" not in document_terms(text)  # lower-case words are not names
    assert document_terms("") == {}


def test_name_codes_are_capitalised_letter_words_of_the_file_stem():
    assert name_codes({"source": "filings/2023 Q1 INTC.pdf"}) == {"intc"}
    assert name_codes({"source": "2023_Q1_NVDA-10q.PDF"}) == {"nvda"}
    assert name_codes({"source": "aurora-ahp9-manual.pdf"}) == set()
    assert name_codes({"source": "1545.txt"}) == set()


def filing(cid: str, source: str, terms: dict[str, float]) -> ScoredChunk:
    return ScoredChunk(id=cid, score=1.0, text=cid,
                       payload={"source": source, "document_id": source, "doc_terms": terms})


FILINGS = [
    filing("1", "2023 Q1 INTC.pdf", {"gaap": 9.0, "intel": 5.0, "income": 3.0, "the": 4.0, "inc": 2.0}),
    filing("2", "2023 Q2 INTC.pdf", {"gaap": 8.0, "intel": 4.0, "income": 3.5, "the": 4.2, "inc": 2.1}),
    filing("3", "2023 Q1 AMZN.pdf", {"the": 4.1, "amazon": 2.0, "aws": 9.0, "inc": 1.9}),
    filing("4", "2023 Q2 AMZN.pdf", {"the": 4.0, "amazon": 1.8, "inc": 2.0, "intel": 0.1}),
]


def test_codes_in_file_names_answer_to_the_words_their_documents_use_most():
    aliases = code_aliases({c.payload["source"]: c.payload for c in FILINGS})
    # "gaap" does not start like INTC, "inc" is as common elsewhere, "income" is used less.
    assert aliases["2023 Q1 INTC.pdf"] == aliases["2023 Q2 INTC.pdf"] == {"intel"}
    assert aliases["2023 Q2 AMZN.pdf"] == {"amazon"}  # "aws" is not in every AMZN filing
    # A code every candidate shares, or documents without stored terms, give no alias.
    assert code_aliases({"a": {"source": "INTC a.pdf", "doc_terms": {"intel": 1.0}},
                         "b": {"source": "INTC b.pdf", "doc_terms": {"intel": 1.0}}}) == {}
    assert code_aliases({"a": {"source": "INTC a.pdf"}, "b": {"source": "AMZN b.pdf"}}) == {}


def test_a_company_named_in_the_question_picks_its_coded_filing():
    scores = name_scores("What was Intel's R&D in Q1 2023?", FILINGS)
    assert scores["2023 Q1 INTC.pdf"] == 1.0
    # The Q1 Amazon filing matches "q1" and "2023", the Q2 Intel one "intel" and "2023": each a
    # share of the best sum, raised to the 4th power.
    share = (math.log(2) + math.log(3)) / (math.log(2) + 2 * math.log(3))
    assert scores["2023 Q1 AMZN.pdf"] == pytest.approx(share**4)
    assert scores["2023 Q2 INTC.pdf"] == pytest.approx(share**4)
    # One alias is enough on its own: the company alone names all its filings equally.
    alone = name_scores("Has Amazon bought back shares?", FILINGS)
    assert alone["2023 Q1 AMZN.pdf"] == alone["2023 Q2 AMZN.pdf"] == 1.0
    assert alone["2023 Q1 INTC.pdf"] == 0.0


def test_boost_lifts_the_named_documents_chunks_and_leaves_unnamed_lists_alone():
    ranked = [chunk("a", source="2023 Q3 NVDA.pdf"), chunk("b", source="2023 Q2 NVDA.pdf"),
              chunk("c", source="2022 Q3 NVDA.pdf"), chunk("d", source="2023 Q1 NVDA.pdf")]
    boosted = boost_named_documents("NVIDIA's Q1 2023 net income?", ranked, boost=2.0, k=5)
    assert boosted[0].id == "d"
    assert [c.id for c in boosted[1:]] == ["a", "b", "c"]
    numbered = [chunk("x", source="1545.txt"), chunk("y", source="1546.txt")]
    assert boost_named_documents("What is MERS?", numbered, 2.0, 5) == numbered
    assert boost_named_documents("NVIDIA's Q1 2023 net income?", ranked, 0.0, 5) == ranked


def dated(cid: str, source: str, created: str | None) -> ScoredChunk:
    return ScoredChunk(id=cid, score=1.0, text=cid, payload={"source": source, "document_id": source,
                                                              "created": created})


def test_questions_asking_for_the_latest():
    assert asks_for_latest("What was the gross margin in the latest 10-Q?")
    assert asks_for_latest("In the MOST RECENT report, what changed?")
    assert not asks_for_latest("What was the gross margin in Q1 2023?")
    assert not asks_for_latest("Which is the lateststyle widget?")


def test_recency_ranks_dated_documents_oldest_0_newest_1():
    chunks = [dated("a", "old.pdf", "2022-07-29"), dated("b", "mid.pdf", "2023-02-03"),
              dated("c", "new.pdf", "2023-08-04"), dated("d", "new.pdf", "2023-08-04"),
              dated("e", "notes.txt", None)]
    assert recency_scores(chunks) == {"old.pdf": 0.0, "mid.pdf": 0.5, "new.pdf": 1.0}
    assert recency_scores([dated("a", "x.pdf", "2023-01-01"), dated("b", "y.pdf", "2023-01-01")]) == {}


def test_recency_boost_only_when_the_question_asks_for_the_latest():
    ranked = [dated("a", "2022.pdf", "2022-07-29"), dated("b", "2023a.pdf", "2023-02-03"),
              dated("c", "2023b.pdf", "2023-08-04")]
    latest = boost_recent_documents("What did the latest filing say about debt?", ranked, 1.0, 5)
    assert [c.id for c in latest] == ["c", "b", "a"]  # 2/8 > 1.5/7 > 1/6
    plain = boost_recent_documents("What did the filing say about debt?", ranked, 1.0, 5)
    assert plain == ranked
    assert boost_recent_documents("the latest filing", ranked, 0.0, 5) == ranked


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
    retriever = HybridRetriever(store, query, query, candidates=12, weights=(1.0, 1.0), rrf_k=5,
                                sparse_gain=2.0, sparse_pivot=1.1, sparse_ceiling=3.0, name_boost=0.0)
    hits = retriever.retrieve("c", "anything", 12)
    dense = store.query("c", QuerySpec(dense=[1.0, 0.0], mode="dense", top_k=12))
    sparse = store.query("c", QuerySpec(sparse=SparseVec([7], [1.0]), mode="sparse", top_k=12))
    weights = adaptive_weights(sparse, (1.0, 1.0), 2.0, 1.1, 3.0)
    assert retriever.last_weights == weights and weights[1] > 0
    assert [h.id for h in hits] == [h.id for h in weighted_rrf([dense, sparse], weights, 5)][:12]
    # The question names "2023 Q2": that file's chunks come first once the boost is on.
    retriever.name_boost = 2.0
    boosted = retriever.retrieve("c", "What changed in the 2023 Q2 report?", 3)
    assert {h.payload["source"] for h in boosted} == {"2023 Q2 ACME.txt"}
    # A question for the latest report: with the recency boost on, the newest dated file leads.
    retriever.name_boost, retriever.recency_boost = 0.0, 5.0
    latest = retriever.retrieve("c", "What does the most recent report say?", 3)
    assert latest[0].payload["source"] == "2023 Q2 ACME.txt"
    retriever.recency_boost = 0.0
    assert retriever.retrieve("c", "What does the most recent report say?", 12) == hits


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
        hits = service.retriever.retrieve("filings", "What revenue did Globex report for the quarter?", top_k=4)
        revenue = [h.payload["source"] for h in hits if "Revenue for the quarter" in h.text]
        assert revenue and revenue[0] == "2023 Q1 GLBX.txt", revenue
    finally:
        service.close()
