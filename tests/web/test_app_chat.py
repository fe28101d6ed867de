"""The chat flows through AppTest: upload -> ask -> citations, not found, provider error, feedback."""

from __future__ import annotations

import re

import pytest

TURBINE = (
    "Zephyr turbine field notes.\n\n"
    "The Zephyr turbine produces 4.2 megawatts at a wind speed of twelve metres per second. "
    "Its blades are made of carbon fibre and measure sixty metres each. "
    "Maintenance crews inspect the gearbox every six months.\n\n"
    "The harbour crane lifts containers of forty tonnes. Its operators work in two shifts."
)


def _plain(text: str) -> str:
    """Markdown source without the backslash escapes the app adds."""
    return re.sub(r"\\(.)", r"\1", str(text))


def _upload_through_page(at, name: str, data: bytes, mime: str = "text/plain"):  # noqa: ANN001, ANN202
    at.switch_page("pages/documents.py").run()
    at.file_uploader[0].set_value([(name, data, mime)])
    [ingest] = [b for b in at.button if b.label == "Ingest"]
    ingest.click().run()
    assert not at.exception, at.exception
    return at


@pytest.mark.integration
def test_upload_then_ask_shows_cited_sources(app, service) -> None:  # noqa: ANN001
    at = _upload_through_page(app, "zephyr.txt", TURBINE.encode())
    [results] = [d.value for d in at.dataframe if "result" in d.value.columns]
    assert list(results["file"]) == ["zephyr.txt"]
    assert list(results["result"]) == ["ingested"]
    assert (service.settings.uploads_dir / "samples" / "zephyr.txt").read_bytes() == TURBINE.encode()
    [doc] = service.list_documents("samples")
    assert doc.source == "zephyr.txt"

    at.switch_page("pages/chat.py").run()
    assert not at.chat_input[0].disabled
    at.chat_input[0].set_value("How much power does the Zephyr turbine produce?").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    answer_text = " ".join(_plain(m.value) for m in at.chat_message[1].markdown)
    assert "4.2 megawatts" in answer_text
    assert re.search(r"\[\d+\]", answer_text), answer_text
    labels = [_plain(e.label) for e in at.expander]
    cards = [label for label in labels if re.match(r"\[\d+\] zephyr\.txt, page 1 \(score", label)]
    assert cards, labels
    assert any("Details" in label for label in labels)
    # The supporting sentence is highlighted inside the escaped chunk text.
    chunk_html = [h.proto.body for h in at.get("html")]
    assert any("<mark" in body and "4.2 megawatts" in body for body in chunk_html), chunk_html


@pytest.mark.integration
def test_feedback_is_recorded_with_the_request(app, service, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "zephyr.txt"
    path.write_text(TURBINE)
    service.ingest([path], "samples")
    at = app.run()
    at.chat_input[0].set_value("What are the Zephyr blades made of?").run()
    assert not at.exception, at.exception
    [helpful] = [b for b in at.button if b.label == "Helpful"]
    helpful.click().run()
    assert not at.exception, at.exception
    rows = service.request_log.rows()
    assert [r.feedback for r in rows] == [1]
    assert any("recorded as helpful" in c.value for c in at.caption)

    at.switch_page("pages/monitoring.py").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests"] == str(len(rows))
    assert metrics["Helpful"] == "1"


@pytest.mark.integration
def test_question_outside_the_documents_says_not_found(app, service, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "zephyr.txt"
    path.write_text(TURBINE)
    service.ingest([path], "samples")
    at = app.run()
    at.chat_input[0].set_value("Who won the 1954 football world cup final?").run()
    assert not at.exception, at.exception
    assert any("Not found in your documents" in i.value for i in at.info), [i.value for i in at.info]


@pytest.mark.integration
def test_provider_error_is_friendly_and_the_conversation_is_kept(app, service, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    path = tmp_path / "zephyr.txt"
    path.write_text(TURBINE)
    service.ingest([path], "samples")
    at = app.run()
    at.sidebar.selectbox(key="answerer").set_value("openai").run()
    assert "openai" in " ".join(c.value for c in at.sidebar.caption)  # the active answerer is shown
    at.chat_input[0].set_value("How much power does the Zephyr turbine produce?").run()
    assert not at.exception, at.exception
    [error] = [e.value for e in at.error]
    assert "OPENAI_API_KEY" in _plain(error)
    assert "extractive" in error  # says what to do next

    at.sidebar.selectbox(key="answerer").set_value("extractive").run()
    at.chat_input[0].set_value("What are the Zephyr blades made of?").run()
    assert not at.exception, at.exception
    users = [_plain(m.markdown[0].value) for m in at.chat_message if m.name == "user"]
    assert users == ["How much power does the Zephyr turbine produce?", "What are the Zephyr blades made of?"]
    assert len(at.error) == 1  # the first turn's error stays in the history
