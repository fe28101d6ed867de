"""In headless Chromium: a cited PDF page shows the passage highlighted where PDFium puts the sentence,
`[1]` opens its card, the original downloads byte for byte, a reload keeps the conversation, Export
gives its Markdown, and nothing is fetched from outside the app."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.pages_render import Box
from tests.web.test_browser_app import make_pdf, upload

SENTENCE = "The Zephyr turbine produces 4.2 megawatts at a wind speed of twelve metres per second."
PAGES = [
    "Harbour operations report. The harbour crane lifts containers of forty tonnes. "
    "Its operators work in two shifts and the quay is three hundred metres long. " * 3,
    "Wind farm section. The site lies on a ridge north of the harbour and was opened in spring. "
    "The access road is gravel and closed in winter. " + SENTENCE + " Its blades are made of carbon "
    "fibre and measure sixty metres each. The control room is staffed during the day.",
    "Staff canteen. Lunch is served from noon until two o'clock. The menu changes every Monday "
    "and vegetarian dishes are always available.",
]
QUESTION = "How much power does the Zephyr turbine produce?"


def sentence_box(pdf: Path, page_number: int, sentence: str) -> Box:
    """Where PDFium's own search finds the sentence's first words on the page, as fractions of the page."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(str(pdf))
    try:
        page = document[page_number - 1]
        width, height = page.get_size()
        textpage = page.get_textpage()
        found = textpage.search(sentence[:40], match_case=True).get_next()
        assert found is not None, "the sentence is not on the page"
        start, count = found
        boxes = [textpage.get_charbox(i) for i in range(start, start + count)]
        boxes = [b for b in boxes if b[2] > b[0]]
        left, right = min(b[0] for b in boxes), max(b[2] for b in boxes)
        bottom, top = min(b[1] for b in boxes), max(b[3] for b in boxes)
    finally:
        document.close()
    return Box(left / width, (height - top) / height, (right - left) / width, (top - bottom) / height)


def dom_boxes(card, selector: str) -> list[Box]:  # noqa: ANN001
    """The highlight boxes drawn over the page picture, as fractions of the picture."""
    image = card.locator(".rag-page-image").bounding_box()
    assert image and image["width"] > 0
    found = []
    for handle in card.locator(selector).all():
        b = handle.bounding_box()
        found.append(Box((b["x"] - image["x"]) / image["width"], (b["y"] - image["y"]) / image["height"],
                         b["width"] / image["width"], b["height"] / image["height"]))
    return found


@pytest.mark.browser
@pytest.mark.slow
def test_cited_pdf_page_download_reload_and_export(browser_page, streamlit_server, tmp_path, test_output_dir) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    page = browser_page
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    pdf = make_pdf(tmp_path / "turbines.pdf", PAGES)
    upload(page, streamlit_server.url, pdf)

    page.goto(streamlit_server.url)
    box = page.get_by_test_id("stChatInputTextArea")
    box.wait_for()
    box.fill(QUESTION)
    box.press("Enter")
    page.get_by_text("Details: search, timings, tokens, cost").wait_for()
    assistant = page.get_by_test_id("stChatMessage").nth(1)
    assert "4.2 megawatts" in assistant.inner_text()

    # [1] is a link; clicking it opens source 1's card and brings it into view.
    link = assistant.locator('a[href^="#source-"]', has_text=re.compile(r"^1$")).first
    anchor = link.get_attribute("href")[1:]
    link.click()
    card = page.locator(f".st-key-{anchor}")
    expect(card).to_contain_text("turbines.pdf, page 2")
    image = card.locator(".rag-page-image")
    image.wait_for()
    page.wait_for_timeout(1600)  # the link scrolls again once the card's content has grown
    expect(image).to_be_in_viewport()
    rendered = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert rendered[0] >= 800, rendered  # a readable width

    # The highlight sits where PDFium says the sentence is.
    expected = sentence_box(pdf, 2, SENTENCE)
    passage = dom_boxes(card, ".rag-box-passage")
    framed = dom_boxes(card, ".rag-box-sentence")
    assert passage and any(b.overlaps(expected) for b in passage), (expected, passage)
    assert framed and any(b.overlaps(expected) for b in framed), (expected, framed)
    assert not any(b.overlaps(Box(0, 0.6, 1, 0.4)) for b in framed)  # nothing far below the text
    page.screenshot(path=str(test_output_dir / "browser_cited_pdf_page.png"))

    # Download gives the uploaded file itself.
    with page.expect_download() as download:
        card.get_by_role("button", name="Download").click()
    assert Path(download.value.path()).read_bytes() == pdf.read_bytes()

    # A reload of the tab keeps the conversation (its id is in the address).
    assert "conversation=" in page.url
    page.reload()
    page.get_by_text("Details: search, timings, tokens, cost").wait_for()
    messages = page.get_by_test_id("stChatMessage")
    assert QUESTION in messages.nth(0).inner_text()
    assert "4.2 megawatts" in messages.nth(1).inner_text()
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar).to_contain_text(QUESTION)  # listed by its first question

    # Export: the conversation as Markdown with the citation's document, page and passage.
    with page.expect_download() as exported:
        sidebar.get_by_role("button", name="Export").click()
    markdown = Path(exported.value.path()).read_text(encoding="utf-8")
    assert markdown.startswith(f"# {QUESTION}")
    assert "## Question 1" in markdown and f"> {QUESTION}" in markdown
    assert re.search(r"\*\*\[1\] turbines\.pdf, page 2\*\*", markdown), markdown
    quoted = " ".join(line[2:] for line in markdown.splitlines() if line.startswith("> "))
    assert "4.2 megawatts" in " ".join(quoted.split())

    # Everything came from the app itself: no font host, no remote icon.
    outside = [u for u in requested if not u.startswith((streamlit_server.url, "data:", "blob:"))
               and not u.startswith(streamlit_server.url.replace("http", "ws"))]
    assert not outside, outside
    icons = page.evaluate("Array.from(document.querySelectorAll('link[rel~=icon]')).map(l => l.href)")
    assert icons and all(i.startswith((streamlit_server.url, "data:")) for i in icons), icons
