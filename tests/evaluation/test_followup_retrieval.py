"""Follow-ups find their gold document as often as the questions they stand for.

Pairs come from the data sets' own questions (evaluation/followups.py): an opening question
that names its document, then a follow-up keeping only what changed ("And in Q2 2023?", "What
about NVIDIA?", the next question with "it"/"its" for its subject). The follow-up, rewritten
by the product's condense stage from the opening question, must hit its gold document in the
top 5 as often as its standalone version does, within MARGIN.

Always run: the pair builders on a small series, and a conversation over the sample documents.
Marked eval: every pair of docugami (filings named like `2023 Q1 INTC.pdf`) and a spread of
COVID-QA pairs, on the converted sets in RAG_EVAL_CONVERTED (a folder holding docugami/ and
covidqa/), else converted from the shared sets (RAG_EVAL_DATA); RAG_EVAL_HOME keeps ingestion.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from answer.condense import RuleCondenser
from evaluation.datasets import Dataset, Question, load_dataset, write_questions
from evaluation.followups import FollowUpPair, followup_pairs, measure_followups, spread_pairs
from tests.conftest import SAMPLES, eval_data_dir

MARGIN = 0.05  # follow-ups may find their gold this much less often than the standalone questions
COVIDQA_PAIRS = 150


def _series(tmp_path: Path) -> Dataset:
    """Four filings of two companies and questions naming a company and a quarter."""
    docs = tmp_path / "series" / "documents"
    docs.mkdir(parents=True)
    for name in ("2023 Q1 ACME.pdf", "2023 Q2 ACME.pdf", "2023 Q1 GLBX.pdf", "2023 Q2 GLBX.pdf"):
        (docs / name).write_bytes(b"%PDF-1.4")
    questions = [
        Question(id="a1", question="What was Acme's revenue in Q1 2023?", documents=["2023 Q1 ACME.pdf"]),
        Question(id="a2", question="In the first quarter of 2023, how much did Acme spend on research?",
                 documents=["2023 Q1 ACME.pdf"]),
        Question(id="g1", question="What legal issues were reported in Globex's Q2 2023 10-Q?",
                 documents=["2023 Q2 GLBX.pdf"]),
        Question(id="g2", question="How did Globex's margin change in Q1 2023?", documents=["2023 Q1 GLBX.pdf"]),
        Question(id="m", question="How did Acme and Globex compare in Q1 2023?",
                 documents=["2023 Q1 ACME.pdf", "2023 Q1 GLBX.pdf"]),
    ]
    write_questions(tmp_path / "series", questions)
    return load_dataset(tmp_path / "series")


@pytest.mark.unit
def test_series_pairs_keep_only_what_changed(tmp_path):
    pairs = followup_pairs(_series(tmp_path))
    by = {(p.kind, p.source): p for p in pairs}
    # Multi-document questions make no pairs; each single-filing question makes a period and a name pair.
    assert {p.source for p in pairs} == {"a1", "a2", "g1", "g2"}
    period = by["period", "a1"]
    assert (period.first, period.follow_up) == ("What was Acme's revenue in Q1 2023?", "And in Q2 2023?")
    assert period.standalone == "What was Acme's revenue in Q2 2023?" and period.gold == ("2023 Q2 ACME.pdf",)
    # The standalone question words the quarter as the data set's question does.
    assert by["period", "a2"].standalone == "In the second quarter of 2023, how much did Acme spend on research?"
    name = by["name", "g1"]
    assert name.follow_up == "What about Acme?" and name.gold == ("2023 Q2 ACME.pdf",)
    assert name.standalone == "What legal issues were reported in Acme's Q2 2023 10-Q?"
    # Subject: the next question on the same filing, its company as "it"/"its", its quarter gone.
    subject = by["subject", "a2"]
    assert subject.first == "What was Acme's revenue in Q1 2023?"
    assert subject.follow_up == "How much did it spend on research?"
    assert subject.standalone == "In the first quarter of 2023, how much did Acme spend on research?"
    assert by["subject", "a1"].follow_up == "What was its revenue?"


@pytest.mark.unit
def test_other_sets_pair_questions_of_one_document_sharing_a_name():
    pairs = followup_pairs(load_dataset(SAMPLES))
    assert [(p.kind, p.first, p.follow_up, p.gold) for p in pairs] == [
        ("subject", "Which refrigerant does the Aurora AHP-9 use?",
         "What is the rated heating capacity of it at A7/W35?", ("aurora-ahp9-manual.pdf",)),
    ]
    assert spread_pairs(pairs * 10, 3) == pairs * 3


# A conversation over the sample documents: follow-ups people type, and a question that stands alone.
SAMPLE_CONVERSATION = [
    FollowUpPair("subject", "Which refrigerant does the Aurora AHP-9 use?", "What about its warranty?",
                 "What is the warranty of the Aurora AHP-9 heat pump?", ("warranty-faq.md",), "warranty"),
    FollowUpPair("name", "What does error code E07 mean?", "And E11?", "What does error code E11 mean?",
                 ("aurora-ahp9-manual.pdf",), "e11"),
    FollowUpPair("subject", "How much does the Aurora Care Plus plan cost?", "How much notice is needed to cancel it?",
                 "How much notice is needed to cancel the Aurora Care Plus plan?",
                 ("aurora-care-service-agreement.docx",), "cancel"),
    FollowUpPair("subject", "When was firmware version 2.4.0 released?", "What did it change?",
                 "What did firmware version 2.4.0 change?", ("firmware-release-notes.html",), "changes"),
    FollowUpPair("subject", "Which refrigerant does the Aurora AHP-9 use?",
                 "What is the number of the winter emergency line?",
                 "What is the number of the winter emergency line?", ("support-contact.txt",), "alone"),
]


@pytest.mark.integration
def test_sample_conversation_finds_what_the_standalone_questions_find(tmp_path):
    from core.settings import Settings
    from rag.service import RagService

    service = RagService(Settings(home=tmp_path / "home"))
    try:
        report = service.ingest([SAMPLES / "documents"], "samples")
        assert not report.failed
        pairs = SAMPLE_CONVERSATION + followup_pairs(load_dataset(SAMPLES))
        result = measure_followups(service.retriever, RuleCondenser(), "samples", pairs)
    finally:
        service.close()
    rows = {row["source"]: row for row in result["rows"]}
    assert all(row["hit_follow_up"] for row in result["rows"]), [
        (r["follow_up"], r["searched"]) for r in result["rows"] if not r["hit_follow_up"]]
    overall = result["overall"]
    assert overall["hit@k_follow_up"] >= overall["hit@k_standalone"] - MARGIN, overall
    assert rows["alone"]["searched"] == "What is the number of the winter emergency line?"  # left as it was
    assert rows["warranty"]["searched"] == "What about Aurora AHP-9's warranty?"


# -- the visible sets (eval) -----------------------------------------------------------------


def _visible_sets(tmp_path_factory) -> dict[str, Dataset]:
    converted = os.environ.get("RAG_EVAL_CONVERTED")
    if converted and (Path(converted) / "docugami").is_dir():
        root = Path(converted)
        return {name: load_dataset(root / name) for name in ("docugami", "covidqa") if (root / name).is_dir()}
    shared = eval_data_dir()
    if shared is None or not (shared / "docugami_sec_10q").is_dir():
        pytest.skip("No docugami set: set RAG_EVAL_CONVERTED to a folder holding the converted docugami/ "
                    "(and covidqa/), or RAG_EVAL_DATA to the shared sets.")
    from evaluation.converters import convert

    work = tmp_path_factory.mktemp("followup_sets")
    sets = {"docugami": convert("docugami", shared / "docugami_sec_10q", work / "docugami")}
    if (shared / "covid_qa").is_dir():
        sets["covidqa"] = convert("covidqa", shared / "covid_qa", work / "covidqa")
    return sets


@pytest.mark.eval
@pytest.mark.slow
def test_visible_set_follow_ups_find_their_gold_as_often_as_standalone(tmp_path_factory):
    from core.settings import Settings
    from evaluation.collection_cache import CollectionCache
    from rag.service import RagService

    sets = _visible_sets(tmp_path_factory)
    home = Path(os.environ.get("RAG_EVAL_HOME") or tmp_path_factory.mktemp("followup_home"))
    service = RagService(Settings(home=home))
    results = {}
    try:
        for name, dataset in sets.items():
            pairs = followup_pairs(dataset)
            if name == "covidqa":
                pairs = spread_pairs(pairs, COVIDQA_PAIRS)
            collection = CollectionCache(service).ingest(dataset, service.chunking_options()).collection
            results[name] = measure_followups(service.retriever, RuleCondenser(), collection, pairs)
    finally:
        service.close()
    summary = {name: {key: r[key] for key in ("overall", "by_kind", "by_split")} for name, r in results.items()}
    print(json.dumps(summary, indent=1))
    assert results["docugami"]["pairs"] >= 200  # every single-filing question naming its company and quarter
    for name, result in results.items():
        overall = result["overall"]
        assert overall["hit@k_follow_up"] >= overall["hit@k_standalone"] - MARGIN, (name, summary[name])
