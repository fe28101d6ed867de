"""Passage-level retrieval metrics and the faithfulness metric that does not use the product's check."""

from __future__ import annotations

import pytest

from core.types import Answer, Citation, ScoredChunk
from evaluation.datasets import Question
from evaluation.metrics import (
    answer_correct,
    cited_sentences,
    containment_faithfulness,
    holds_passage,
    passage_metrics,
    sentence_support,
)

pytestmark = pytest.mark.unit

CHUNK = ("The incubation period of the virus ranges from 2 to 14 days,\nwith a median of 5.2 days. "
         "Most patients recover within two weeks.")


def test_a_chunk_holds_the_passage_by_the_answer_span_whitespace_and_case_normalised() -> None:
    assert holds_passage(CHUNK, "2 TO 14   days")
    assert holds_passage(CHUNK, "14 days, with a median")  # across the line break
    assert not holds_passage(CHUNK, "2 to 21 days")
    assert not holds_passage(CHUNK, None)
    assert not holds_passage(CHUNK, "")


def test_a_chunk_holds_the_passage_with_60_percent_of_the_evidence_words() -> None:
    evidence = "The incubation period ranges from 2 to 14 days with a median of 5.2 days in Wuhan cohorts."
    # 13 distinct words of 15 are in the chunk ("wuhan", "cohorts" are not): 0.87 >= 0.6
    assert holds_passage(CHUNK, None, [evidence])
    half = "incubation period median hospital ventilation mortality cohort wuhan"  # 3 of 8
    assert not holds_passage(CHUNK, None, [half])
    assert holds_passage(CHUNK, None, [half], share=0.3)
    assert holds_passage(CHUNK, None, [half, evidence])  # any of the evidence texts


def test_passage_metrics_rank_the_first_chunk_that_holds_it() -> None:
    assert passage_metrics([False, False, True, False]) == {
        "passage_hit@1": 0.0, "passage_hit@5": 1.0, "passage_mrr@10": pytest.approx(1 / 3)}
    assert passage_metrics([True]) == {"passage_hit@1": 1.0, "passage_hit@5": 1.0, "passage_mrr@10": 1.0}
    late = [False] * 6 + [True]
    assert passage_metrics(late) == {"passage_hit@1": 0.0, "passage_hit@5": 0.0, "passage_mrr@10": pytest.approx(1 / 7)}
    assert passage_metrics([False] * 12 + [True])["passage_mrr@10"] == 0.0
    # No passage gold: absent (None), never zero.
    assert passage_metrics(None) == {"passage_hit@1": None, "passage_hit@5": None, "passage_mrr@10": None}


def test_passage_gold_comes_from_spans_or_evidence_text_only() -> None:
    span = Question(id="a", question="q?", answer="2 to 14 days", answer_is_span=True, documents=["x.txt"])
    written = Question(id="b", question="q?", answer="About two weeks.", documents=["x.txt"])
    evidence = Question(id="c", question="q?", answer="About two weeks.", contexts=["ranges from 2 to 14 days"])
    assert span.has_passage_gold and evidence.has_passage_gold
    assert not written.has_passage_gold  # docugami-style written answers: the metric is absent


def test_runner_passage_flags_only_count_chunks_of_gold_documents() -> None:
    from evaluation.runner import passage_flags

    question = Question(id="a", question="q?", answer="2 to 14 days", answer_is_span=True, documents=["gold.txt"])
    chunks = [ScoredChunk("1", 1.0, CHUNK, {"source": "other.txt"}), ScoredChunk("2", 0.9, CHUNK, {"source": "gold.txt"})]
    assert passage_flags(question, chunks) == [False, True]
    assert passage_flags(Question(id="b", question="q?", documents=["gold.txt"]), chunks) is None


def test_cited_sentences_follow_the_markers() -> None:
    text = "It ranges from 2 to 14 days. The median is 5.2 days. [1] Most recover [2, 3]. Uncited tail."
    assert cited_sentences(text) == [
        ("It ranges from 2 to 14 days.", [1]),
        ("The median is 5.2 days.", [1]),
        ("Most recover", [2, 3]),
        ("Uncited tail.", []),
    ]


def test_faithfulness_counts_content_words_in_the_cited_raw_text() -> None:
    sources = [CHUNK, "Vaccines were tested in 2021."]
    faithful, precise = containment_faithfulness("The incubation period ranges from 2 to 14 days [1].", sources)
    assert (faithful, precise) == (1.0, 1.0)
    # Words found: 5 of 6 ("incubation period ranges 2 21 days") is over 80 %, but one number is
    # wrong, and a wrong number is never supported.
    assert containment_faithfulness("The incubation period ranges from 2 to 21 days [1].", sources)[0] == 0.0
    assert containment_faithfulness("The incubation period typically ranges from 2 to 14 days [1].",
                                    sources)[0] == 1.0  # 6 of 7 words, numbers right
    # Citing the wrong source: the sentence is unsupported by what it cites.
    assert containment_faithfulness("The incubation period ranges from 2 to 14 days [2].", sources) == (0.0, 0.0)
    # No citation: unsupported; a marker naming no source counts as none.
    assert containment_faithfulness("The incubation period ranges from 2 to 14 days.", sources) == (0.0, None)
    assert sentence_support("Median 5.2 days [7].", sources) == [("Median 5.2 days", [], False)]
    # Two sentences, one supported: 0.5; the precise citation pairs: ([1], ok), ([2], not).
    both = "Most patients recover within two weeks [1]. Most patients recover within two weeks [2]."
    assert containment_faithfulness(both, sources) == (0.5, 0.5)
    # A PDF's line-end hyphen (PDFium's "\x02") is read as the hyphen an answer quotes.
    hyphen = ["The shedding was well\x02documented."]
    assert containment_faithfulness("The shedding was well-documented [1].", hyphen) == (1.0, 1.0)


def test_faithfulness_is_independent_of_the_products_citation_check(monkeypatch) -> None:
    """The runner grades an answer without calling verify and without reading its verdicts."""
    import answer.grounding as grounding
    from evaluation.config import EvalConfig
    from evaluation.runner import EvaluationRunner

    def forbidden(*args, **kwargs):
        raise AssertionError("the evaluation must not call the product's citation check")

    monkeypatch.setattr(grounding, "verify", forbidden)
    monkeypatch.setattr(grounding, "claim_support", forbidden)
    source = ScoredChunk("c1", 0.9, CHUNK, {"source": "gold.txt", "page": 1})
    # The product's check called this answer unsupported with zero support: the metric does not care.
    answer = Answer(text="The incubation period ranges from 2 to 14 days [1].", confidence=0.8,
                    citations=[Citation(1, "c1", "gold.txt", 1, CHUNK, 0.9, support=0.0)],
                    unsupported_sentences=["The incubation period ranges from 2 to 14 days."], grounded=False)
    question = Question(id="a", question="How long is the incubation period?", documents=["gold.txt"])

    class NoEmbedder:
        def embed(self, texts):
            raise AssertionError("no reference answer: nothing to embed")

    class Service:
        embedder = NoEmbedder()

    runner = EvaluationRunner.__new__(EvaluationRunner)
    runner.service = Service()
    fields = runner._answer_fields(question, answer, [source], EvalConfig(abstain_threshold=0.5))
    assert fields["answer_metrics"]["faithfulness"] == 1.0
    assert fields["answer_metrics"]["citation_precision"] == 1.0
    assert fields["citations"][0]["document"] == "gold.txt"  # from the answer's own sources, not the store
    assert fields["confidence"] == 0.8 and fields["abstained_by"] is None


def test_an_answer_is_correct_by_f1_or_similarity() -> None:
    assert answer_correct(0.5, 0.1) is True
    assert answer_correct(0.2, 0.7) is True
    assert answer_correct(0.49, 0.69) is False
    assert answer_correct(None, None) is None


def test_the_runner_says_whether_an_answer_cites_the_passage_that_holds_the_evidence() -> None:
    from evaluation.config import EvalConfig
    from evaluation.runner import EvaluationRunner

    class Service:
        class embedder:  # noqa: N801 - the metric embedder's interface
            @staticmethod
            def embed(texts):
                import numpy as np

                return np.ones((len(texts), 3), dtype=np.float32) / np.sqrt(3)

    runner = EvaluationRunner.__new__(EvaluationRunner)
    runner.service = Service()
    gold = ScoredChunk("g", 0.8, CHUNK, {"source": "gold.txt", "page": 1})
    other = ScoredChunk("o", 0.9, "Most patients recover within two weeks of rest.", {"source": "gold.txt", "page": 2})
    question = Question(id="a", question="How long is the incubation period?", answer="2 to 14 days",
                        answer_is_span=True, documents=["gold.txt"])

    def rate(cited: ScoredChunk, sources: list[ScoredChunk]) -> float | None:
        answer = Answer(text=f"{cited.text} [1]", confidence=0.8,
                        citations=[Citation(1, cited.id, "gold.txt", 1, cited.text, 0.9, support=1.0)])
        return runner._answer_fields(question, answer, sources, EvalConfig(abstain_threshold=0.5))[
            "answer_metrics"].get("cited_passage_rate")

    assert rate(gold, [other, gold]) == 1.0
    assert rate(other, [other, gold]) == 0.0  # the evidence was there; the answer quoted another passage
    assert rate(other, [other]) is None  # no source held it: retrieval's miss, not the answer's
