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


def test_a_question_with_instructions_is_searched_without_them(app, two_documents) -> None:  # noqa: ANN001
    at = app.run()
    at.chat_input[0].set_value("Assume that you are a wind farm engineer. How much power does the Zephyr turbine "
                               "produce? Round your answer to two decimal places.").run()
    assert not at.exception, at.exception
    answer = " ".join(_plain(m.value) for msg in at.chat_message if msg.name == "assistant" for m in msg.markdown)
    assert "4.2 megawatts" in answer
    captions = [_plain(c.value) for c in at.caption]
    assert "Searched as: **How much power does the Zephyr turbine produce?** (without the instructions to whoever " \
           "answers, fiscal years as years, with any statement they point to)" in captions, captions
    assert not [c for c in captions if c.startswith("Searched for:")]  # no follow-up was completed


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


def _conversation_buttons(at) -> list[str]:  # noqa: ANN001
    """The sidebar's saved conversations, as their buttons read: title, then date."""
    return [_plain(b.label) for b in at.sidebar.button if (b.key or "").startswith("conversation_")]


def _questions(at) -> list[str]:  # noqa: ANN001
    return [_plain(m.markdown[0].value) for m in at.chat_message if m.name == "user"]


def test_conversations_are_saved_reopened_renamed_exported_and_deleted(app, two_documents) -> None:  # noqa: ANN001
    from rag.web import get_conversations

    store = get_conversations()
    at = app.run()
    at.chat_input[0].set_value("How much power does the Zephyr turbine produce?").run()
    at.chat_input[0].set_value("What are its blades made of?").run()
    assert not at.exception, at.exception
    [first] = store.list("samples")
    assert first.title == "How much power does the Zephyr turbine produce?" and first.turns == 2
    assert at.query_params["conversation"] == first.id
    [label] = _conversation_buttons(at)
    assert re.fullmatch(r"How much power does the Zephyr turbine produce\?\s+\d{4}-\d{2}-\d{2} \d{2}:\d{2}", label)

    # A new conversation starts empty, and the first one stays listed.
    [new] = [b for b in at.sidebar.button if b.label == "New conversation"]
    new.click().run()
    assert _questions(at) == [] and "conversation" not in at.query_params
    at.chat_input[0].set_value("How often is the crane's gearbox inspected?").run()
    assert not at.exception, at.exception
    assert len(store.list("samples")) == 2
    assert [t.split("  ")[0].split("\n")[0] for t in _conversation_buttons(at)] == [
        "How often is the crane's gearbox inspected?", "How much power does the Zephyr turbine produce?"]

    # Reopen the first: its turns come back, answers and cards included.
    [reopen] = [b for b in at.sidebar.button if b.key == f"conversation_{first.id}"]
    reopen.click().run()
    assert not at.exception, at.exception
    assert _questions(at) == ["How much power does the Zephyr turbine produce?", "What are its blades made of?"]
    answers = [" ".join(_plain(m.value) for m in msg.markdown) for msg in at.chat_message if msg.name == "assistant"]
    assert "4.2 megawatts" in answers[0] and "carbon fibre" in answers[1]
    assert any(re.match(r"\[\d+\] zephyr\.txt, page 1", _plain(e.label)) for e in at.expander)
    # A follow-up in the reopened conversation is read against its earlier questions.
    assert at.session_state["history"][1]["trace"].standalone_question == "What are Zephyr's blades made of?"

    # Feedback on a reopened turn is stored with the conversation too.
    [helpful] = [b for b in at.button if b.key == "helpful_0"]
    helpful.click().run()
    assert store.turns(first.id)[0]["feedback"] is True

    # Rename it.
    at.sidebar.text_input(key=f"title_{first.id}").set_value("Turbine notes").run()
    [rename] = [b for b in at.sidebar.button if b.label == "Rename"]
    rename.click().run()
    assert store.get(first.id).title == "Turbine notes"
    assert any(label.startswith("Turbine notes") for label in _conversation_buttons(at))

    # Export: the questions, the answers and each citation with document, page and quoted passage.
    markdown = store.export_markdown(first.id)
    assert markdown.startswith("# Turbine notes\n")
    assert "## Question 1\n\n> How much power does the Zephyr turbine produce?" in markdown
    assert "## Question 2\n\n> What are its blades made of?" in markdown
    assert re.search(r"\*\*\[\d+\] zephyr\.txt, page 1\*\*\n\n(>.*\n)*> .*4\.2 megawatts", markdown), markdown
    assert "carbon fibre" in markdown.split("## Question 2")[1]

    # A new browser session with the conversation in its address (a reload) shows it again.
    from streamlit.testing.v1 import AppTest

    from tests.web.conftest import APP_FILE

    reloaded = AppTest.from_file(str(APP_FILE), default_timeout=180)
    reloaded.query_params["conversation"] = first.id
    reloaded.run()
    assert not reloaded.exception, reloaded.exception
    assert _questions(reloaded) == ["How much power does the Zephyr turbine produce?", "What are its blades made of?"]

    # Delete it: gone from the store and the sidebar, and the page starts afresh.
    [delete] = [b for b in at.sidebar.button if b.label == "Delete"]
    delete.click().run()
    assert not at.exception, at.exception
    assert store.get(first.id) is None and len(store.list("samples")) == 1
    assert _questions(at) == [] and "conversation" not in at.query_params
    assert not any(label.startswith("Turbine notes") for label in _conversation_buttons(at))


def _card_key(at, number: int = 1, turn: int = 0) -> str:  # noqa: ANN001
    """The key of a turn's citation card `number` in the open conversation."""
    from rag.web import source_anchor

    return source_anchor(f"{at.query_params['conversation']}-{turn}", number)


def test_an_opened_card_shows_the_pdf_page_with_boxes_and_offers_the_file(app, service, tmp_path) -> None:  # noqa: ANN001
    from rag.uploads import save_upload
    from tests.web.test_browser_app import make_pdf

    pdf = make_pdf(tmp_path / "zephyr.pdf", ["Harbour notes. The crane lifts forty tonnes.", TURBINE])
    kept = save_upload(service.settings.uploads_dir, "samples", "zephyr.pdf", pdf.read_bytes())
    (tmp_path / "crane.txt").write_text(CRANE)
    kept_txt = save_upload(service.settings.uploads_dir, "samples", "crane.txt", CRANE.encode())
    assert not service.ingest([kept, kept_txt], "samples", sources={kept: "zephyr.pdf", kept_txt: "crane.txt"}).failed
    at = app.run()
    at.chat_input[0].set_value("How much power does the Zephyr turbine produce?").run()
    assert not at.exception, at.exception
    labels = _cards(at)
    assert labels[0].startswith("[1] zephyr.pdf, page 2"), labels
    assert not [h for h in at.get("html") if "rag-page-image" in h.proto.body]  # closed cards render nothing
    at.session_state[_card_key(at)] = True  # the card opened
    at.run()
    assert not at.exception, at.exception
    [picture] = [h.proto.body for h in at.get("html") if "rag-page-image" in h.proto.body]
    assert 'src="data:image/png;base64,' in picture
    assert "rag-box-passage" in picture and "rag-box-sentence" in picture
    downloads = [d for d in at.get("download_button") if d.proto.label == "Download"]
    assert len(downloads) == 1
    assert list((service.settings.cache_dir / "pages").rglob("p2-w900.png"))  # cached for the next opening

    # A text source: no picture, the highlighted text stays, and its file is offered too.
    at.chat_input[0].set_value("How heavy are the containers the harbour crane lifts?").run()
    assert not at.exception, at.exception
    [crane] = [c for c in _cards(at)[len(labels):] if "crane.txt" in c][:1]
    number = int(re.match(r"\[(\d+)\]", crane).group(1))
    at.session_state[_card_key(at, number, turn=1)] = True
    at.run()
    assert not at.exception, at.exception
    assert len([h for h in at.get("html") if "rag-page-image" in h.proto.body]) == 1
    assert len([d for d in at.get("download_button") if d.proto.label == "Download"]) == 2
