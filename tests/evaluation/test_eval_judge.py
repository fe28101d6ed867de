"""RAGAS-style LLM-judged metrics over real HTTP to a stub speaking OpenAI's API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from evaluation.datasets import Question, load_dataset, write_questions
from tests.llm.vendor_stub import VendorStub, ok

OPENAI = "openai"


def statements(*items: str) -> str:
    return json.dumps({"statements": list(items)})


def verdicts(*flags: int) -> str:
    return json.dumps({"verdicts": [{"statement": f"s{i}", "reason": "r", "verdict": f} for i, f in enumerate(flags)]})


def generated(*questions: str, noncommittal: int = 0) -> str:
    return json.dumps({"questions": list(questions), "noncommittal": noncommittal})


def bag_of_words(texts: list[str]) -> np.ndarray:
    """A tiny deterministic embedder: word counts over a fixed vocabulary."""
    vocab = ["train", "leave", "when", "kessel", "apples", "ripen", "colour", "what"]
    return np.array([[t.lower().count(w) for w in vocab] for t in texts], dtype=float)


@pytest.fixture
def stub() -> Iterator[VendorStub]:
    server = VendorStub().start()
    yield server
    server.stop()


@pytest.fixture
def judge(stub, monkeypatch):
    from core.settings import Settings
    from evaluation.llm_judge import RagasJudge

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    settings = Settings(openai_base_url=f"{stub.url}/v1", llm_timeout_s=2.0, llm_max_retries=0)
    return RagasJudge.from_spec(OPENAI, settings, bag_of_words)


def test_faithfulness_is_the_share_of_statements_inferred_from_the_context(judge, stub):
    stub.queue(OPENAI, ok(statements("The train leaves at 22:40.", "It is always late.")), ok(verdicts(1, 0)),
               ok(generated("When does the train leave?", "When does the Kessel train leave?",
                            "What time does the train leave?")))
    scores = judge.score("When does the train leave?", "It leaves at 22:40 and is always late.",
                         ["The night train to Kessel leaves at 22:40."])
    assert scores.llm_faithfulness == 0.5
    assert scores.verdicts == [1, 0]
    # The verdict request carried the context and both numbered statements.
    sent = stub.bodies(OPENAI)[1]["messages"][-1]["content"]
    assert "The night train to Kessel leaves at 22:40." in sent
    assert "1. The train leaves at 22:40." in sent and "2. It is always late." in sent
    # Relevancy: mean cosine of the generated questions to the real one (bag of words here).
    vectors = bag_of_words(["When does the train leave?", *scores.generated_questions])
    unit = vectors / np.linalg.norm(vectors, axis=1)[:, None]
    assert scores.answer_relevancy == pytest.approx(float(np.mean(unit[1:] @ unit[0])))
    assert 0.5 < scores.answer_relevancy < 1.0
    assert scores.usage.input_tokens == 3 * 1200 and scores.cost_usd > 0


def test_a_noncommittal_answer_has_zero_relevancy(judge, stub):
    stub.queue(OPENAI, ok(statements("The answer is unknown.")), ok(verdicts(0)),
               ok(generated("When does the train leave?", noncommittal=1)))
    scores = judge.score("When does the train leave?", "I don't know.", ["The train leaves at 22:40."])
    assert scores.answer_relevancy == 0.0
    assert scores.llm_faithfulness == 0.0


def test_an_invalid_reply_is_asked_again_once_with_the_problem(judge, stub):
    stub.queue(OPENAI, ok("Sure! Here are the statements: none"), ok(statements("Apples ripen in September.")),
               ok(verdicts(1)), ok(generated("When do apples ripen?")))
    scores = judge.score("When do apples ripen?", "In September.", ["Apples ripen in late September."])
    assert scores.llm_faithfulness == 1.0
    assert stub.count(OPENAI) == 4
    repair = stub.bodies(OPENAI)[1]["messages"]
    assert "invalid" in repair[-1]["content"] and repair[-2]["content"].startswith("Sure!")


def test_a_judge_that_never_validates_fails_with_a_clear_error(judge, stub):
    from llm.errors import InvalidOutputError

    stub.queue(OPENAI, ok(statements("A.", "B.")), ok(verdicts(1)), ok(verdicts(1)))
    with pytest.raises(InvalidOutputError, match="verdicts for 2 statements"):
        judge.score("q", "A. B.", ["ctx"])


def test_the_extractive_answerer_cannot_judge():
    from core.settings import Settings
    from evaluation.llm_judge import RagasJudge

    with pytest.raises(ValueError, match="must be an LLM provider"):
        RagasJudge.from_spec("extractive", Settings(), bag_of_words)


@pytest.fixture
def small_set(tmp_path) -> Path:
    root = tmp_path / "set"
    (root / "documents").mkdir(parents=True)
    (root / "documents" / "trains.txt").write_text(
        "The night train to Kessel leaves platform 3 at 22:40 and arrives at 06:15. "
        "Sleeper cabins hold two berths and must be reserved.", encoding="utf-8")
    write_questions(root, [
        Question(id="train", question="What time does the night train to Kessel leave?", answer="22:40",
                 documents=["trains.txt"]),
        Question(id="neg", question="Who won the 1954 chess olympiad?", answerable=False),
    ])
    return root


def test_the_runner_adds_judged_metrics_and_their_cost(small_set, stub, monkeypatch, tmp_path):
    from core.settings import Settings
    from evaluation.runner import EvalConfig, EvaluationRunner
    from rag.service import RagService

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    service = RagService(Settings(home=tmp_path / "home", openai_base_url=f"{stub.url}/v1", llm_max_retries=0))
    stub.queue(OPENAI, ok(statements("The train leaves at 22:40.")), ok(verdicts(1)),
               ok(generated("What time does the night train to Kessel leave?")))
    try:
        run = EvaluationRunner(service).run(load_dataset(small_set), EvalConfig(chunk_size=64, chunk_overlap=8,
                                                                                judge=OPENAI), starter=False)
    finally:
        service.close()
    rows = {r["id"]: r for r in run.ours.rows}
    assert rows["train"]["abstained"] is False
    assert rows["train"]["judge"]["verdicts"] == [1]
    assert "judge" not in rows["neg"]  # abstentions are not judged
    assert run.metrics["llm_faithfulness"] == 1.0
    assert run.metrics["answer_relevancy"] == pytest.approx(1.0, abs=1e-4)
    assert run.metrics["judge_cost_usd"] > 0 and run.metrics["judge_errors"] == 0
    assert any("RAGAS faithfulness" in n for n in run.ours.notes)
    # The statement-splitting request carried the extractive answer.
    assert "22:40" in stub.bodies(OPENAI)[0]["messages"][-1]["content"]


def test_rag_eval_with_a_judge_but_no_key_stops_before_ingesting(small_set, monkeypatch):
    from rag.cli import app

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["eval", str(small_set), "--judge", OPENAI, "--json"])
    assert result.exit_code == 2  # the CLI's exit code for bad options
    assert json.loads(result.output) == {"error": "openai: no API key found: set OPENAI_API_KEY"}
