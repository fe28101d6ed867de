"""The chat page as a conversation: a follow-up is searched as a standalone question (shown in the
details), and the sidebar keeps a question to the documents chosen there."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.integration

TURBINE = (
    "Zephyr turbine field notes.\n\n"
    "The Zephyr turbine produces 4.2 megawatts at a wind speed of twelve metres per second. "
    "Its blades are made of carbon fibre and measure sixty metres each. "
    "Maintenance crews inspect the gearbox every six months.\n"
)
CRANE = (
    "Harbour crane handbook.\n\n"
    "The harbour crane lifts containers of forty tonnes. Its operators work in two shifts. "
    "The crane's gearbox is inspected every three months by the port engineers.\n"
)


def _plain(text: str) -> str:
    """Markdown source without the backslash escapes the app adds."""
    return re.sub(r"\\(.)", r"\1", str(text))


def _cards(at) -> list[str]:  # noqa: ANN001
    """The labels of the citation cards on the page."""
    return [_plain(e.label) for e in at.expander if re.match(r"\[\d+\] ", _plain(e.label))]


@pytest.fixture
def two_documents(service, tmp_path):  # noqa: ANN001, ANN201
    for name, text in (("zephyr.txt", TURBINE), ("crane.txt", CRANE)):
        (tmp_path / name).write_text(text)
    report = service.ingest([tmp_path / "zephyr.txt", tmp_path / "crane.txt"], "samples")
    assert not report.failed
    return service


def test_a_follow_up_is_searched_as_a_standalone_question(app, two_documents) -> None:  # noqa: ANN001
    at = app.run()
    at.chat_input[0].set_value("How much power does the Zephyr turbine produce?").run()
    at.chat_input[0].set_value("What are its blades made of?").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    answers = [" ".join(_plain(m.value) for m in msg.markdown) for msg in at.chat_message if msg.name == "assistant"]
    assert "carbon fibre" in answers[1]
    captions = [_plain(c.value) for c in at.caption]
    searched = [c for c in captions if c.startswith("Searched for:")]
    # Only the follow-up was rewritten, from the question before it.
    assert searched == ["Searched for: **What are Zephyr's blades made of?** "
                        "(the follow-up completed from the earlier questions)"], captions
    [trace] = [t for t in [at.session_state["history"][1]["trace"]]]
    assert trace.question == "What are its blades made of?"
    assert trace.standalone_question == "What are Zephyr's blades made of?"

    # A cleared conversation has nothing to lean on: the question is searched as asked.
    [clear] = [b for b in at.sidebar.button if b.label == "New conversation"]
    clear.click().run()
    at.chat_input[0].set_value("What are its blades made of?").run()
    assert not at.exception, at.exception
    assert at.session_state["history"][0]["trace"].standalone_question == "What are its blades made of?"


def test_the_sidebar_keeps_questions_to_the_chosen_documents(app, two_documents) -> None:  # noqa: ANN001
    at = app.run()
    [choice] = at.sidebar.multiselect
    assert choice.label == "Ask only these documents"
    assert sorted(choice.options) == ["crane.txt", "zephyr.txt"] and choice.value == []

    at.chat_input[0].set_value("How often is the gearbox inspected?").run()
    assert not at.exception, at.exception
    # Without a choice the other document is searched too.
    assert "zephyr.txt" in {c.split(",")[0].split("] ")[1] for c in _cards(at)}

    at.sidebar.multiselect[0].set_value(["crane.txt"]).run()
    assert any("only crane.txt" in _plain(c.value) for c in at.caption)
    at.chat_input[0].set_value("How often is the gearbox inspected?").run()
    assert not at.exception, at.exception
    turn = at.session_state["history"][-1]
    assert turn["documents"] == ["crane.txt"]
    cited = {c.document for c in turn["answer"].citations}
    assert cited == {"crane.txt"}, cited
    assert "three months" in turn["answer"].text
    assert any("Only these documents: crane.txt" in _plain(c.value) for c in at.caption)

    # A question only the other document answers finds nothing in the chosen one.
    at.chat_input[0].set_value("How much power does the Zephyr turbine produce?").run()
    assert not at.exception, at.exception
    turn = at.session_state["history"][-1]
    assert all(c.document == "crane.txt" for c in turn["answer"].citations)
    assert "4.2 megawatts" not in turn["answer"].text
