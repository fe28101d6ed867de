"""Drift on real questions through the real pipeline and request log: questions of another data set
fire it, a held-out part of the same set does not.

The shared sets (docugami, COVID-QA; RAG_EVAL_DATA or ../shared/eval) are converted into a temp
folder; without them the test says so and skips. The sample-set variant always runs: the shipped
questions (dev half as reference, test half held out) against off-topic questions. The `slow`
variant asks three times as many questions of more COVID-QA articles.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from core.settings import Settings
from evaluation.datasets import Dataset, load_dataset
from monitoring.drift import CENTROID_SIGNAL
from rag.service import RagService
from tests.conftest import SAMPLES, eval_data_dir

pytestmark = pytest.mark.integration

# Questions no document of any set holds; the sample variant's "other data set".
OFF_TOPIC = [
    "Who painted the ceiling of the Sistine Chapel?",
    "What is the boiling point of water at sea level in Fahrenheit?",
    "How many players are on a cricket team?",
    "What is the capital city of Australia?",
    "Which planet has the most moons?",
    "How do you keep a sourdough starter alive?",
    "When did the Berlin Wall fall?",
    "What is the tallest mountain in Africa?",
    "Who wrote the novel War and Peace?",
    "How long should a soft-boiled egg cook?",
    "What currency is used in Japan?",
    "Which ocean is the largest on Earth?",
    "What language do people speak in Brazil?",
    "How many bones does an adult human body have?",
    "What is the chemical symbol for gold?",
]


def _service(home: Path, reference: int, current: int, minimum: int) -> RagService:
    settings = Settings(home=home, drift_reference_requests=reference, drift_current_requests=current,
                        drift_min_requests=minimum)
    return RagService(settings, source="eval")


def _ask(service: RagService, collection: str, questions: list[str]) -> None:
    for question in questions:
        service.ask(question, collection)


def _drift(service: RagService, collection: str):  # noqa: ANN202
    report = service.monitoring("all", collection=collection)
    [drift] = report.drift
    return report, drift, {c.signal: c for c in drift.checks}


def _covid_subset(covid: Dataset, articles: int) -> tuple[list[Path], Dataset]:
    """The COVID-QA articles with the most questions per byte, and their questions."""
    documents = covid.root / "documents"
    counts = Counter(d for q in covid.questions for d in q.gold_documents)
    chosen = sorted(counts, key=lambda d: -counts[d] / (documents / d).stat().st_size)[:articles]
    kept = [q for q in covid.questions if q.gold_documents and q.gold_documents <= set(chosen)]
    return [documents / d for d in chosen], covid.with_questions(kept)


@pytest.fixture(scope="module")
def shared_sets(tmp_path_factory) -> dict[str, Dataset]:
    """COVID-QA and docugami, converted from the shared folder (skip without it)."""
    root = eval_data_dir()
    if root is None:
        pytest.skip("The shared evaluation sets are not here: set RAG_EVAL_DATA to the folder holding "
                    "covid_qa/ and docugami_sec_10q/ to run drift on them (the sample-set variant still runs).")
    from evaluation.converters import convert

    work = tmp_path_factory.mktemp("drift_sets")
    return {"covidqa": convert("covidqa", root / "covid_qa", work / "covidqa"),
            "docugami": convert("docugami", root / "docugami_sec_10q", work / "docugami")}


def _check_held_out_quiet_then_foreign_fires(service: RagService, collection: str, reference: list[str],
                                              held_out: list[str], foreign: list[str]) -> None:
    _ask(service, collection, reference + held_out)
    report, drift, checks = _drift(service, collection)
    assert drift.windows.n_reference == len(reference) and drift.windows.n_current == len(held_out)
    assert set(report.sources) == {"eval"}
    assert checks[CENTROID_SIGNAL].enough_data and checks["top-1 retrieval score (dense cosine)"].enough_data
    assert drift.level == "ok", [(c.signal, c.detail) for c in drift.checks if c.level != "ok"]
    assert not [a for a in report.alerts if a.metric == "drift_psi"]

    _ask(service, collection, foreign)
    report, drift, checks = _drift(service, collection)
    assert drift.windows.n_current == len(foreign)  # the last N requests: the foreign ones
    fired = {c.signal for c in drift.checks if c.level == "critical"}
    assert {CENTROID_SIGNAL, "top-1 retrieval score (dense cosine)", "abstention"} <= fired, drift.checks
    [alert] = [a for a in report.alerts if a.metric == "drift_psi"]
    assert alert.level == "critical" and alert.collection == collection and alert.value > 0.2
    assert alert.action.startswith("Evaluate on recent questions") and "re-index" in alert.action
    assert report.status == "critical"


def test_sample_set_held_out_is_quiet_and_off_topic_questions_drift(tmp_path):
    samples = load_dataset(SAMPLES)
    reference = [q.question for q in samples.split("dev").questions]
    held_out = [q.question for q in samples.split("test").questions]
    assert len(reference) >= 10 and len(held_out) >= 10
    service = _service(tmp_path / "home", len(reference), len(OFF_TOPIC), minimum=10)
    try:
        service.ingest([SAMPLES / "documents"], "samples")
        _check_held_out_quiet_then_foreign_fires(service, "samples", reference, held_out, OFF_TOPIC)
    finally:
        service.close()


def test_covidqa_held_out_is_quiet_and_docugami_questions_drift(shared_sets, tmp_path):
    """Four COVID-QA articles (the most questions per byte): 50 dev questions as the reference,
    50 test questions held out, then 50 docugami questions."""
    files, covid = _covid_subset(shared_sets["covidqa"], 4)
    reference = [q.question for q in covid.split("dev").questions][:50]
    held_out = [q.question for q in covid.split("test").questions][:50]
    foreign = [q.question for q in shared_sets["docugami"].questions][:50]
    assert len(reference) == len(held_out) == len(foreign) == 50
    service = _service(tmp_path / "home", 50, 50, minimum=40)
    try:
        service.ingest(files, "covid")
        _check_held_out_quiet_then_foreign_fires(service, "covid", reference, held_out, foreign)
    finally:
        service.close()


@pytest.mark.slow
def test_covidqa_larger_windows(shared_sets, tmp_path):
    """Twelve articles, 150 questions per window, the default 50 as the least a window needs."""
    files, covid = _covid_subset(shared_sets["covidqa"], 12)
    reference = [q.question for q in covid.split("dev").questions][:150]
    held_out = [q.question for q in covid.split("test").questions][:150]
    foreign = [q.question for q in shared_sets["docugami"].questions][:150]
    assert len(reference) == len(held_out) == len(foreign) == 150
    service = _service(tmp_path / "home", 150, 150, minimum=50)
    try:
        service.ingest(files, "covid")
        _check_held_out_quiet_then_foreign_fires(service, "covid", reference, held_out, foreign)
    finally:
        service.close()
