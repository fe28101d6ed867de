"""The conversation store: per collection, titled by the first question, turns kept with their
answers and traces, renamed, deleted, exported as Markdown."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.trace import Trace
from core.types import Answer, Citation, Usage
from rag.conversations import TITLE_CHARS, ConversationStore

pytestmark = pytest.mark.unit


def _turn(question: str, text: str = "It makes 4.2 megawatts [1].") -> dict:
    citation = Citation(n=1, chunk_id="c1", document="turbines.pdf", page=2,
                        text="Wind farm section.\nThe Zephyr turbine produces 4.2 megawatts.", score=0.7,
                        supporting_sentence="The Zephyr turbine produces 4.2 megawatts.", support=0.9,
                        document_id="d1")
    answer = Answer(text=text, citations=[citation], usage=Usage(12, 3), request_id="r1", question=question)
    trace = Trace(question=question, collection="samples", standalone_question=question + "?",
                  weights=(0.6, 0.4), query_vector=[0.1] * 384)
    return {"question": question, "collection": "samples", "answer": answer, "trace": trace, "documents": []}


def test_conversations_keep_their_turns_per_collection(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "conversations.sqlite")
    first = store.create("samples")
    other = store.create("manuals", "Pump questions")
    assert store.add_turn(first.id, _turn("How much power does the Zephyr turbine produce?")) == 0
    assert store.add_turn(first.id, _turn("And its blades?")) == 1
    listed = store.list("samples")
    assert [c.id for c in listed] == [first.id] and listed[0].turns == 2
    assert listed[0].title == "How much power does the Zephyr turbine produce?"  # the first question
    assert [c.id for c in store.list("manuals")] == [other.id] and store.get(other.id).title == "Pump questions"

    again = ConversationStore(tmp_path / "conversations.sqlite")  # another process, a restart
    turns = again.turns(first.id)
    assert [t["question"] for t in turns] == ["How much power does the Zephyr turbine produce?", "And its blades?"]
    answer = turns[0]["answer"]
    assert isinstance(answer, Answer) and answer.citations[0] == _turn("x")["answer"].citations[0]
    assert answer.usage == Usage(12, 3)
    trace = turns[0]["trace"]
    assert isinstance(trace, Trace) and trace.weights == (0.6, 0.4) and trace.query_vector is None

    assert [t["position"] for t in turns] == [0, 1]  # where a later change (feedback) is stored
    turns[0]["feedback"] = True
    assert store.update_turn(first.id, turns[0]["position"], turns[0])
    assert store.turns(first.id)[0]["feedback"] is True


def test_rename_delete_and_long_titles(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite")
    conversation = store.create("samples")
    store.add_turn(conversation.id, _turn("word " * 40))
    title = store.get(conversation.id).title
    assert len(title) == TITLE_CHARS and title.endswith("…") and "  " not in title
    assert store.rename(conversation.id, "  Turbine\nnotes ")
    assert store.get(conversation.id).title == "Turbine notes"
    assert store.rename(conversation.id, "   ") and store.get(conversation.id).title == "Turbine notes"
    assert store.delete(conversation.id)
    assert store.get(conversation.id) is None and store.turns(conversation.id) == []
    assert not store.delete(conversation.id) and not store.rename(conversation.id, "x")


def test_export_markdown_has_questions_answers_and_quoted_citations(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite")
    conversation = store.create("samples")
    store.add_turn(conversation.id, _turn("How much power?"))
    store.add_turn(conversation.id, {"question": "And the crane?", "collection": "samples", "answer": None,
                                     "trace": None, "error": "The document store is busy."})
    markdown = store.export_markdown(conversation.id)
    assert markdown.startswith("# How much power?\n")
    assert "Collection: samples" in markdown
    assert "## Question 1\n\n> How much power?\n\n### Answer\n\nIt makes 4.2 megawatts [1].\n" in markdown
    assert ("**[1] turbines.pdf, page 2**\n\n> Wind farm section.\n> The Zephyr turbine produces 4.2 megawatts.\n"
            in markdown)
    assert "Supporting sentence: “The Zephyr turbine produces 4.2 megawatts.”" in markdown
    assert "## Question 2\n\n> And the crane?\n\n### Error\n\nThe document store is busy." in markdown
    with pytest.raises(KeyError):
        store.export_markdown("missing")
