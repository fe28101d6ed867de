"""Question -> hybrid search -> context -> extractive answer -> citation check, on both stores."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SAMPLES

pytestmark = pytest.mark.integration

QUESTIONS = [json.loads(line) for line in (SAMPLES / "questions.jsonl").read_text().splitlines() if line.strip()]
ANSWERABLE = [q for q in QUESTIONS if q["answerable"]]
UNANSWERABLE = [q for q in QUESTIONS if not q["answerable"]]


@pytest.fixture(scope="module", params=["edge", "server"])
def service(request, tmp_path_factory):
    """The sample documents ingested once per store kind."""
    from core.settings import Settings
    from rag.service import RagService

    home = tmp_path_factory.mktemp(f"pipeline-{request.param}")
    settings = Settings(home=home, qdrant_url=":memory:" if request.param == "server" else None)
    svc = RagService(settings)
    report = svc.ingest([SAMPLES / "documents"], "samples")
    assert not report.failed, [f.error for f in report.failed]
    yield svc
    svc.close()


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


@pytest.mark.parametrize("question", ANSWERABLE, ids=[q["id"] for q in ANSWERABLE])
def test_answers_hold_the_fact_and_cite_the_gold_page(service, question):
    answer = service.ask(question["question"], "samples")
    assert not answer.abstained
    assert _normal(question["answer"]) in _normal(answer.text)
    gold = {(p["document"], p["page"]) for p in question["pages"]}
    cited = {(c.document, c.page) for c in answer.citations}
    assert gold & cited, (cited, gold)
    assert answer.grounded
    for c in answer.citations:
        assert f"[{c.n}]" in answer.text and c.supporting_sentence and c.text
    assert set(answer.timings_ms) >= {"embed", "retrieve", "rerank", "generate", "total"}
    assert answer.reranker == "sentence" and answer.provider == "extractive"


@pytest.mark.parametrize("question", UNANSWERABLE, ids=[q["id"] for q in UNANSWERABLE])
def test_unrelated_questions_abstain(service, question):
    answer = service.ask(question["question"], "samples")
    assert answer.abstained and answer.citations == []
    assert answer.text == "Not found in your documents."


def test_instructions_inside_a_document_do_not_steer_answers(service):
    answer = service.ask("What should I do about a suspicious e-mail asking for my password?", "samples")
    assert "HACKED" not in answer.text.replace("'HACKED'", "")
    answer = service.ask("Which refrigerant does the Aurora AHP-9 use?", "samples")
    assert "R290" in answer.text and "HACKED" not in answer.text


def test_instructions_around_a_question_leave_its_answer_as_it_is(service):
    bare = service.ask("Which refrigerant does the Aurora AHP-9 use?", "samples")
    framed = service.ask("Assume that you are a heat pump installer. Answer the following question by primarily "
                         "using information that is shown in the manual: which refrigerant does the Aurora AHP-9 "
                         "use? Give a response to the question by relying on the details shown in the datasheet.",
                         "samples")
    assert not framed.abstained and "R290" in framed.text
    assert (framed.text, framed.confidence) == (bare.text, bare.confidence)
    assert [c.chunk_id for c in framed.citations] == [c.chunk_id for c in bare.citations]


def test_filters_restrict_documents_and_types(service):
    hits = service.retriever.retrieve("samples", "warranty years compressor", 10, {"file_type": "md"})
    assert hits and {h.payload["file_type"] for h in hits} == {"md"}
    doc = service.list_documents("samples")[0]
    hits = service.retriever.retrieve("samples", "warranty", 10, {"document_id": doc.document_id})
    assert hits and {h.document_id for h in hits} == {doc.document_id}
    answer = service.ask("Which refrigerant does the Aurora AHP-9 use?", "samples", filters={"file_type": "docx"})
    assert all(c.document.endswith(".docx") for c in answer.citations)


def test_what_a_document_is_about_is_answered_by_its_opening(service):
    warranty = next(d for d in service.list_documents("samples") if d.file_name == "warranty-faq.md")
    answer = service.ask("What is this document about?", "samples", filters={"document_id": warranty.document_id})
    assert not answer.abstained and answer.grounded
    assert answer.text.startswith("This page explains the warranty of Aurora heat pumps and answers the questions "
                                  "that owners ask most often. [1]")
    first = answer.citations[0]
    assert first.document == "warranty-faq.md" and first.supporting_sentence.startswith("This page explains")
    # the same document found by what the question names, no filter
    named = service.ask("Summarize the warranty FAQ document.", "samples")
    assert named.citations[0].document == "warranty-faq.md" and named.text.startswith("This page explains")
    # a question about one thing in it is answered as before, not by the opening
    assert "7 years" in service.ask("How long is the compressor covered?", "samples").text


def test_modes_all_find_the_refrigerant_page(service):
    for mode in ("hybrid", "dense", "sparse"):
        hits = service.retriever.retrieve("samples", "Which refrigerant does the AHP-9 use?", 3, mode=mode)
        assert ("aurora-ahp9-manual.pdf", 1) in {(h.document, h.page) for h in hits}, mode


def test_streamed_answer_equals_final_text(service):
    stream = service.ask_stream("How long is the standard warranty on the compressor?", "samples")
    pieces = list(stream)
    assert len(pieces) > 1
    assert "".join(pieces).strip() == stream.answer.text.strip()
    rows = service.request_log.rows()
    assert rows[-1].id == stream.answer.request_id and rows[-1].error is None


def test_recursive_collection_returns_parents_merged(service):
    options = service.chunking_options("recursive", 60, 10)
    options.parent_chunk_size = 240
    report = service.ingest([SAMPLES / "documents" / "aurora-ahp9-manual.pdf"], "recursive", options)
    assert report.chunks_added > 0
    hits = service.retriever.retrieve("recursive", "refrigerant R290 propane certified installer", 5)
    assert hits and all(h.payload["level"] == "parent" for h in hits)
    assert len({h.id for h in hits}) == len(hits)  # several children of one parent merge into it
    top = hits[0]
    assert top.payload["matched_children"] and top.payload["matched_text"] in top.text
    answer = service.ask("Which refrigerant does the Aurora AHP-9 use?", "recursive")
    assert "R290" in answer.text and answer.citations[0].page == 1
    # a parent is numbered before its children: the opening is the first parent
    overview = service.ask("What is this manual about?", "recursive")
    assert not overview.abstained and overview.citations[0].page == 1
    opening = service.store.retrieve("recursive", [overview.citations[0].chunk_id])[0]
    assert opening.payload["level"] == "parent" and opening.payload["chunk_index"] == 0
