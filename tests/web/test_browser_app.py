"""The whole app in headless Chromium: upload a PDF, ask, check the cited page; HTML in documents stays text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGES = [
    "Harbour operations report. The harbour crane lifts containers of forty tonnes. "
    "Its operators work in two shifts and the quay is three hundred metres long.",
    "Wind farm section. The Zephyr turbine produces 4.2 megawatts at a wind speed of twelve metres "
    "per second. Its blades are made of carbon fibre and measure sixty metres each.",
    "Staff canteen. Lunch is served from noon until two o'clock. The menu changes every Monday "
    "and vegetarian dishes are always available.",
]
HOSTILE = (
    "Security notes. The secret code is <b>XYZZY-42</b> and must stay private.\n"
    "<script>window.__pwned = 1;</script> A line with <img src=x onerror=\"window.__pwned = 2\"> inside.\n"
    "Some *stars* and a [link](http://127.0.0.1:9/) that must not render."
)


def make_pdf(path: Path, pages: list[str]) -> Path:
    """A small PDF with one paragraph per page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def upload(page, url: str, path: Path) -> None:  # noqa: ANN001
    """Upload one file on the Documents page and wait until it is ingested."""
    page.goto(f"{url}/documents")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(path))
    page.get_by_role("button", name="Ingest").click()
    page.get_by_text("1 ingested").wait_for()


def ask(page, url: str, question: str) -> None:  # noqa: ANN001
    """Ask on the Chat page and wait for the answer's sources."""
    page.goto(url)
    box = page.get_by_test_id("stChatInputTextArea")
    box.wait_for()
    box.fill(question)
    box.press("Enter")
    page.get_by_text("Details: search, timings, tokens, cost").wait_for()


@pytest.mark.browser
def test_upload_pdf_ask_and_open_the_cited_page(browser_page, streamlit_server, tmp_path, test_output_dir) -> None:  # noqa: ANN001
    page = browser_page
    pdf = make_pdf(tmp_path / "operations.pdf", PAGES)
    upload(page, streamlit_server.url, pdf)
    ask(page, streamlit_server.url, "How much power does the Zephyr turbine produce?")

    assistant = page.get_by_test_id("stChatMessage").nth(1)
    assert "4.2 megawatts" in assistant.inner_text()
    assert re.search(r"\[\d+\]", assistant.inner_text())
    summaries = page.get_by_test_id("stExpander").locator("summary")
    labels = summaries.all_text_contents()  # not laid-out text, which can read "[1] o..."
    cited = [i for i, label in enumerate(labels) if re.search(r"\[\d+\] operations\.pdf, page 2 ", label)]
    assert cited, labels
    summaries.nth(cited[0]).click()
    chunk = page.get_by_test_id("stExpander").nth(cited[0]).locator(".rag-chunk")
    chunk.wait_for()
    assert "4.2 megawatts" in chunk.inner_text()
    assert "4.2 megawatts" in chunk.locator("mark").inner_text()
    page.get_by_test_id("stExpander").nth(cited[0]).get_by_text("Highlighted:").wait_for()
    page.wait_for_timeout(500)  # let the expander's opening animation finish before the screenshot
    page.screenshot(path=str(test_output_dir / "browser_cited_page.png"), full_page=True)


@pytest.mark.browser
def test_html_inside_a_document_is_shown_as_text(browser_page, streamlit_server, tmp_path, test_output_dir) -> None:  # noqa: ANN001
    page = browser_page
    doc = tmp_path / "hostile.txt"
    doc.write_text(HOSTILE)
    upload(page, streamlit_server.url, doc)
    ask(page, streamlit_server.url, "What is the secret code?")

    # The cards' labels can be read while still laid out ("[1] h..."), so the card is found by its
    # text content and opened, and the test waits until its passage is shown.
    card = page.get_by_test_id("stExpander").locator("summary").filter(has_text="hostile.txt").first
    card.click()
    chunks = page.locator(".rag-chunk")
    chunks.filter(has_text="XYZZY-42").first.wait_for(state="visible")
    shown = "\n".join(chunks.all_inner_texts()) + page.get_by_test_id("stChatMessage").nth(1).inner_text()
    assert "<b>XYZZY-42</b>" in shown
    assert "<script>" in shown
    assert page.evaluate("window.__pwned") is None
    assert page.locator("b", has_text="XYZZY-42").count() == 0
    assert page.locator("a[href^='http://127.0.0.1:9']").count() == 0
    assert page.locator(".rag-chunk img").count() == 0
    page.screenshot(path=str(test_output_dir / "browser_html_as_text.png"), full_page=True)
