"""The evaluation runner on a tiny data set written here: rows, metrics, cache, reports, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evaluation.datasets import Question, load_dataset, write_questions
from evaluation.metrics import hit_at_k, mrr_at_k

DOCS = {
    "fruit/apples.txt": "Apples from the Vale orchard ripen in late September. The orchard grows the "
                        "Redwing variety, which keeps for five months in cold storage.",
    "boats.md": "# Harbour rules\n\nBoats longer than twelve metres must book a berth two days ahead. "
                "The harbour master answers the radio on channel 14.",
    "trains.txt": "The night train to Kessel leaves platform 3 at 22:40 and arrives at 06:15. "
                  "Sleeper cabins hold two berths and must be reserved.",
}


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    for name, text in DOCS.items():
        path = root / "documents" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    write_questions(root, [
        Question(id="apples", question="When do Vale orchard apples ripen?", answer="late September",
                 documents=["fruit/apples.txt"], pages=[{"document": "fruit/apples.txt", "page": 1}]),
        Question(id="radio", question="Which radio channel does the harbour master answer on?",
                 answer="channel 14", documents=["boats.md"]),
        Question(id="train", question="What time does the night train to Kessel leave?", answer="22:40",
                 documents=["trains.txt"]),
        Question(id="neg-1", question="Who won the 1954 chess olympiad?", answerable=False),
    ])
    return root


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from core.settings import Settings
    from rag.service import RagService

    svc = RagService(Settings(home=tmp_path_factory.mktemp("runner_home")))
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def first_run(tiny_dataset, service):
    """One full run (answers and the starter), shared by the tests that read it."""
    from evaluation.runner import EvalConfig, EvaluationRunner

    seen: list[tuple[int, int]] = []
    run = EvaluationRunner(service).run(load_dataset(tiny_dataset), EvalConfig(chunk_size=64, chunk_overlap=8),
                                        progress=lambda d, t: seen.append((d, t)))
    return run, seen


@pytest.mark.integration
def test_run_rows_metrics_and_cache(tiny_dataset, service, first_run):
    from evaluation.runner import EvalConfig, EvaluationRunner

    dataset = load_dataset(tiny_dataset)
    runner = EvaluationRunner(service)
    run, seen = first_run

    assert run.questions == 4
    assert seen[-1] == (8, 8)  # ours and the starter, 4 questions each
    rows = {r["id"]: r for r in run.ours.rows}
    # Documents are named by their path relative to documents/, subfolders included.
    assert {h["document"] for r in rows.values() for h in r["retrieved"]} <= set(DOCS)
    assert rows["apples"]["retrieved"][0]["document"] == "fruit/apples.txt"
    for r in rows.values():
        assert {"id", "retrieved", "answer", "citations", "abstained", "timings_ms"} <= set(r)
        assert all({"document", "page", "chunk_id", "score"} <= set(h) for h in r["retrieved"])
    # The metrics can be recomputed from the rows.
    answerable = [r for r in run.ours.rows if r["answerable"]]
    ranked = [list(dict.fromkeys(h["document"] for h in r["retrieved"])) for r in answerable]
    expected_hit5 = sum(hit_at_k(d, set(r["gold_documents"]), 5) for d, r in zip(ranked, answerable, strict=True)) / 3
    expected_mrr = sum(mrr_at_k(d, set(r["gold_documents"]), 10) for d, r in zip(ranked, answerable, strict=True)) / 3
    assert run.metrics["hit@5"] == pytest.approx(expected_hit5, abs=1e-4)
    assert run.metrics["MRR@10"] == pytest.approx(expected_mrr, abs=1e-4)
    assert "page_hit@5" in run.metrics  # one question has gold pages
    assert run.metrics["unanswerable_questions"] == 1
    assert 0.0 <= run.metrics["abstention_accuracy"] <= 1.0
    for name in ("token_f1", "semantic_similarity", "faithfulness"):
        assert name in run.metrics
    # The starter ran on its own chunking (1024 tokens) and dense search, without answers.
    assert run.starter is not None
    assert run.starter.settings["chunk_size"] == 1024 and run.starter.settings["retrieval"] == "dense"
    assert run.starter.rows[0]["answer"] is None
    assert not run.ours.ingestion["reused"]

    # A second run with the same chunking reuses the ingested collection.
    again = runner.run(dataset, EvalConfig(chunk_size=64, chunk_overlap=8, answers=False), starter=False)
    assert again.ours.ingestion["reused"]
    assert again.ours.ingestion["collection"] == run.ours.ingestion["collection"]
    assert again.metrics["hit@5"] == run.metrics["hit@5"]
    # Another chunk size is another collection.
    other = runner.run(dataset, EvalConfig(chunk_size=48, chunk_overlap=8, answers=False), starter=False)
    assert other.ours.ingestion["collection"] != run.ours.ingestion["collection"]


@pytest.mark.integration
def test_reports_and_run_store(service, first_run, tmp_path):
    from evaluation.report import write_reports
    from evaluation.run_store import RunStore

    run = first_run[0]
    json_path, md_path = write_reports(run, tmp_path / "out")
    report = json.loads(json_path.read_text())
    assert {"dataset", "questions", "settings", "metrics", "seconds", "definitions", "rows"} <= set(report)
    assert report["metrics"]["starter"]["hit@5"] == run.starter.metrics["hit@5"]
    assert len(report["rows"]) == 4
    text = md_path.read_text()
    assert "LlamaIndex starter" in text and "faithfulness" in text and "hit@5" in text

    store = RunStore(tmp_path / "runs.sqlite")
    run_id = store.save(run)
    listed = store.list()
    assert listed[0]["id"] == run_id
    assert listed[0]["metrics"]["hit@5"] == run.metrics["hit@5"]
    assert len(listed[0]["questions"]) == 4
    store.close()
    # The service lists the runs the CLI stores under RAG_HOME.
    RunStore(service.settings.logs_dir / "evaluation.sqlite").save(run)
    assert service.evaluation_runs()[0]["dataset"] == run.dataset


@pytest.mark.integration
def test_cli_eval_json_grid_and_convert(tiny_dataset, tmp_path):
    from rag.cli import app

    cli = CliRunner()
    result = cli.invoke(app, ["eval", str(tiny_dataset), "--chunk-size", "64", "--chunk-overlap", "8",
                              "--no-answers", "--json", "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"dataset", "questions", "settings", "metrics", "seconds"}
    assert data["questions"] == 4 and "starter" in data["metrics"]
    assert (tmp_path / "rep" / "report.md").is_file()

    grid = cli.invoke(app, ["eval", str(tiny_dataset), "--grid", "--grid-chunkers", "fixed",
                            "--chunk-size", "64", "--chunk-overlap", "8", "--json"])
    assert grid.exit_code == 0, grid.output
    cells = json.loads(grid.stdout)["grid"]
    # Starter + fixed x 3 modes x reranker off/on (the default sentence reranker needs no model).
    modes = ("hybrid", "dense alone", "sparse alone")
    assert [c["label"] for c in cells][0] == "llamaindex-starter"
    assert {c["label"] for c in cells[1:]} == {f"fixed {m} rerank={s}" for m in modes for s in ("off", "on")}
    # A reranker that cannot load: the "on" cells are left out with a note saying why.
    grid = cli.invoke(app, ["eval", str(tiny_dataset), "--grid", "--grid-chunkers", "fixed", "--reranker",
                            "cross-encoder:/no/such/model", "--chunk-size", "64", "--chunk-overlap", "8", "--json"])
    assert grid.exit_code == 0, grid.output
    cells = json.loads(grid.stdout)["grid"]
    assert {c["label"] for c in cells[1:]} == {f"fixed {m} rerank=off" for m in modes}
    assert any("not available" in c["note"] for c in cells)

    squad = {"data": [{"title": "t", "paragraphs": [{"document_id": 7, "context": "The sky is blue today.",
                                                      "qas": [{"id": "q1", "question": "What colour is the sky?",
                                                               "answers": [{"text": "blue", "answer_start": 11}]}]}]}]}
    (tmp_path / "squad.json").write_text(json.dumps(squad))
    converted = cli.invoke(app, ["eval", "convert", "covidqa", str(tmp_path / "squad.json"), str(tmp_path / "ds"), "--json"])
    assert converted.exit_code == 0, converted.output
    assert json.loads(converted.stdout)["questions"] == 1
    assert load_dataset(tmp_path / "ds").questions[0].answer == "blue"

    bad = cli.invoke(app, ["eval", str(tmp_path / "nowhere"), "--json"])
    assert bad.exit_code == 2 and "questions.jsonl" in bad.stdout


def test_single_retrievers_alone_have_no_name_boost_and_no_reranker():
    from core.settings import Settings
    from evaluation.runner import EvalConfig, alone

    settings = Settings(name_boost=2.0, reranker="cohere")
    ours = EvalConfig().resolved(settings)
    dense = alone(EvalConfig(), "dense").resolved(settings)
    assert ours.name_boost == 2.0 and ours.retrieval == "hybrid" and ours.reranker == "cohere"
    assert (dense.retrieval, dense.name_boost, dense.reranker, dense.answers) == ("dense", 0.0, "none", False)


@pytest.mark.integration
def test_hard_negatives_leave_their_gold_documents_out_and_every_report_shows_abstention(
        tiny_dataset, service, tmp_path):
    from evaluation.datasets import with_hard_negatives, with_unanswerable
    from evaluation.report import markdown_report
    from evaluation.runner import EvalConfig, EvaluationRunner

    dataset = load_dataset(tiny_dataset)
    hard = with_hard_negatives(dataset, 2)
    assert [q.id for q in hard] == ["hard-apples", "hard-radio"]
    assert hard[0].exclude_documents == ["fruit/apples.txt"] and hard[0].negative == "hard"
    other = dataset.with_questions([Question(id="volcano", question="How tall is the Etna volcano?")])
    foreign = with_unanswerable(dataset, other, 1)
    asked = dataset.with_questions(dataset.questions + hard + foreign)
    run = EvaluationRunner(service).run(asked, EvalConfig(chunk_size=64, chunk_overlap=8), starter=False)

    rows = {r["id"]: r for r in run.ours.rows}
    hard_apples = rows["hard-apples"]
    assert hard_apples["negative"] == "hard" and hard_apples["excluded_documents"] == ["fruit/apples.txt"]
    # The gold document is filtered out of the search; the other documents are still there.
    assert hard_apples["retrieved"] and "fruit/apples.txt" not in {h["document"] for h in hard_apples["retrieved"]}
    assert all(c["document"] != "fruit/apples.txt" for c in hard_apples["citations"])
    assert rows["apples"]["retrieved"][0]["document"] == "fruit/apples.txt"  # asked plainly, it is found
    assert rows["neg-volcano"]["negative"] == "foreign"
    assert rows["neg-1"]["negative"] == "hard"  # the set's own unanswerable question asks about its subject
    assert "negative" not in rows["apples"]
    for r in run.ours.rows:
        assert r["confidence"] is None or 0.0 <= r["confidence"] <= 1.2
        assert r["abstained_by"] in (None, "threshold", "other")

    metrics = run.metrics
    hard_rows = [r for r in run.ours.rows if r.get("negative") == "hard"]
    assert metrics["hard_negatives"] == 3 and metrics["foreign_negatives"] == 1
    assert metrics["refusal_rate_hard"] == pytest.approx(sum(r["abstained"] for r in hard_rows) / 3, abs=1e-4)
    assert metrics["refusal_rate_foreign"] == (1.0 if rows["neg-volcano"]["abstained"] else 0.0)
    found = [r for r in run.ours.rows if r["answerable"] and r["metrics"]["hit@5"] == 1.0]
    assert metrics["answered_rate_gold_in_top5"] == pytest.approx(
        sum(not r["abstained"] for r in found) / len(found), abs=1e-4)
    curve = metrics["abstention_curve"]
    assert {"threshold", "answered_rate", "refusal_rate_foreign", "refusal_rate_hard"} == set(curve[0])
    now = next(p for p in curve if p["threshold"] == run.settings["abstain_threshold"])
    assert now["answered_rate"] == metrics["answered_rate_gold_in_top5"]  # the curve agrees with the run
    assert now["refusal_rate_hard"] == metrics["refusal_rate_hard"]
    text = markdown_report(run)
    assert "## Abstention" in text and "refusal_rate_hard" in text and "answered_rate_gold_in_top5" in text


@pytest.mark.integration
def test_cli_calibrate_writes_the_threshold_the_answers_then_use(tiny_dataset, tmp_path):
    from core.collection_settings import load_collection_settings
    from core.settings import get_settings
    from rag.cli import app

    cli = CliRunner()
    created = cli.invoke(app, ["collections", "create", "notes"])
    assert created.exit_code == 0, created.output
    result = cli.invoke(app, ["calibrate", str(tiny_dataset), "--split", "all", "--hard-negatives", "2",
                              "--collection", "notes", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["questions"] == {"answerable": 3, "foreign": 0, "hard": 3}  # 2 asked without gold + its own
    assert data["curve"] and data["split"] == "all"
    # Every answerable question's document is found and answered well above where the hard ones stop.
    assert data["chosen"]["answered_rate"] == 1.0 and data["chosen"]["refusal_rate_hard"] >= 0.6
    own = load_collection_settings(get_settings().home, "notes")
    assert own.abstain_threshold == data["chosen"]["threshold"]
    assert own.calibration["split"] == "all" and data["written_to"].endswith("notes.json")

    missing = cli.invoke(app, ["calibrate", str(tiny_dataset), "--collection", "nowhere", "--json"])
    assert missing.exit_code == 2 and "nowhere" in missing.stdout


@pytest.mark.integration
def test_each_question_runs_the_pipeline_once_and_its_metrics_read_that_run(tiny_dataset, service, monkeypatch):
    from evaluation.runner import EvalConfig, EvaluationRunner
    from retrieval.retriever import HybridRetriever

    searches: list[str] = []
    search = HybridRetriever.retrieve

    def counted(self, collection, query, *args, **kwargs):
        searches.append(query)
        return search(self, collection, query, *args, **kwargs)

    monkeypatch.setattr(HybridRetriever, "retrieve", counted)
    monkeypatch.setattr(type(service.store), "retrieve", lambda *a, **k: pytest.fail("no re-reading from the store"))
    dataset = load_dataset(tiny_dataset)
    run = EvaluationRunner(service).run(dataset, EvalConfig(chunk_size=64, chunk_overlap=8), starter=False)
    assert searches == [q.question for q in dataset.questions]  # one search per question
    for row in run.ours.rows:
        # The answer's sources are the first of the chunks the ranking metrics read.
        first = {h["chunk_id"] for h in row["retrieved"][:5]}
        assert {c["chunk_id"] for c in row["citations"]} <= first
        assert {"embed", "retrieve", "generate", "total"} <= set(row["answer_timings_ms"])
