"""`rag ask` as a conversation and over chosen documents: --previous and --document."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rag.cli import app
from tests.conftest import SAMPLES

pytestmark = pytest.mark.integration

WARRANTY = "How long is the compressor covered by the standard warranty?"


@pytest.fixture(scope="module")
def runner(tmp_path_factory):  # noqa: ANN201
    """The sample documents ingested once into the collection "s" of one RAG_HOME."""
    home = tmp_path_factory.mktemp("ask_home")
    runner = CliRunner(env={"RAG_HOME": str(home)})
    result = runner.invoke(app, ["ingest", str(SAMPLES / "documents"), "--collection", "s", "--json"])
    assert result.exit_code == 0, result.stdout
    return runner


@pytest.fixture(autouse=True)
def rag_home():  # noqa: ANN201
    """The module's RAG_HOME (set by the runner) instead of one per test."""
    from core.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _ask(runner, *args: str) -> dict:  # noqa: ANN001
    result = runner.invoke(app, ["ask", *args, "--collection", "s", "--json"])
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.exit_code == (2 if "error" in data else 0), result.stdout
    return data


def test_document_keeps_the_answer_to_the_named_documents(runner) -> None:  # noqa: ANN001
    everywhere = _ask(runner, WARRANTY)
    assert "warranty-faq.md" in {c["document"] for c in everywhere["citations"]}

    only_faq = _ask(runner, WARRANTY, "--document", "warranty-faq.md")
    assert {c["document"] for c in only_faq["citations"]} == {"warranty-faq.md"}
    assert "7 years" in only_faq["answer"]

    only_manual = _ask(runner, WARRANTY, "-d", "aurora-ahp9-manual.pdf")
    assert {c["document"] for c in only_manual["citations"]} <= {"aurora-ahp9-manual.pdf"}
    assert "7 years" not in only_manual["answer"]

    two = _ask(runner, "What is the number of the winter emergency line?", "--document", "support-contact.txt",
               "--document", "aurora-ahp9-manual.pdf")
    assert {c["document"] for c in two["citations"]} <= {"support-contact.txt", "aurora-ahp9-manual.pdf"}
    assert "+358 3 555 0100" in two["answer"]


def test_document_takes_ids_and_names_a_missing_one(runner) -> None:  # noqa: ANN001
    listed = runner.invoke(app, ["docs", "list", "--collection", "s", "--json"])
    docs = json.loads(listed.stdout)
    docs = docs["documents"] if isinstance(docs, dict) else docs
    [faq] = [d for d in docs if d["file_name"] == "warranty-faq.md"]
    by_id = _ask(runner, WARRANTY, "--document", faq["document_id"])
    assert {c["document"] for c in by_id["citations"]} == {"warranty-faq.md"}

    missing = _ask(runner, WARRANTY, "--document", "no-such-file.pdf")
    assert "no-such-file.pdf" in missing["error"] and "rag docs list" in missing["error"]


def test_previous_questions_make_a_follow_up_stand_alone(runner) -> None:  # noqa: ANN001
    data = _ask(runner, "What about its warranty?", "--previous", "Which refrigerant does the Aurora AHP-9 use?")
    assert data["standalone_question"] == "What about Aurora AHP-9's warranty?"
    alone = _ask(runner, "Which refrigerant does the Aurora AHP-9 use?")
    assert alone["standalone_question"] == "Which refrigerant does the Aurora AHP-9 use?"
    assert "R290" in alone["answer"]

    chained = _ask(runner, "And its heating capacity at A7/W35?", "-p", "Which refrigerant does the Aurora AHP-9 use?",
                   "-p", "What about its warranty?")
    assert chained["standalone_question"] == "Aurora AHP-9's heating capacity at A7/W35?"
    assert "9.2 kW" in chained["answer"]

    text = runner.invoke(app, ["ask", "And the heating capacity at A7/W35?", "--collection", "s",
                               "--previous", "Which refrigerant does the Aurora AHP-9 use?"])
    assert text.exit_code == 0, text.stdout
    assert "Searched for: " in text.stdout and "AHP-9" in text.stdout


def test_a_question_with_instructions_is_searched_without_them(runner) -> None:  # noqa: ANN001
    question = "Which refrigerant does the Aurora AHP-9 use? Give a response to the question by relying on the datasheet."
    data = _ask(runner, question)
    assert data["standalone_question"] == question
    assert data["searched"] == "Which refrigerant does the Aurora AHP-9 use?" and "R290" in data["answer"]
    text = runner.invoke(app, ["ask", question, "--collection", "s"])
    assert text.exit_code == 0, text.stdout
    shown = " ".join(text.stdout.split())  # the console wraps long lines
    assert "Searched as: Which refrigerant does the Aurora AHP-9 use? (without the instructions" in shown
    assert "Searched for:" not in shown
