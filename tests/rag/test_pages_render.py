"""Cited PDF pages: rendered once per (document hash, page, width), the passage and its sentence
located from PDFium's characters, whitespace and line breaks notwithstanding."""

from __future__ import annotations

import hashlib
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from rag.pages_render import Box, PageRenderer, page_image_path, render_page_view

pytestmark = pytest.mark.unit

FILLER = "Harbour operations report. The harbour crane lifts containers of forty tonnes. " * 4
PASSAGE = ("Wind farm section. The Zephyr turbine produces 4.2 megawatts at a wind speed of twelve metres per "
           "second. Its blades are made of carbon fibre and measure sixty metres each.")
SENTENCE = "Its blades are made of carbon fibre and measure sixty metres each."


def make_pdf(path: Path, pages: list[str], rotate: int = 0) -> tuple[Path, str]:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    if rotate:
        import pypdf

        reader, writer = pypdf.PdfReader(path), pypdf.PdfWriter()
        for page in reader.pages:
            writer.add_page(page.rotate(rotate))
        writer.write(path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def pdfium_box(pdf: Path, page: int, text: str) -> Box:
    """The text's box by PDFium's own search, as fractions of the (unrotated) page."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(str(pdf))
    handle = document[page - 1]
    width, height = handle.get_size()
    textpage = handle.get_textpage()
    start, count = textpage.search(text[:30], match_case=True).get_next()
    boxes = [textpage.get_charbox(i) for i in range(start, start + count)]
    left, right = min(b[0] for b in boxes), max(b[2] for b in boxes)
    bottom, top = min(b[1] for b in boxes), max(b[3] for b in boxes)
    document.close()
    return Box(left / width, (height - top) / height, (right - left) / width, (top - bottom) / height)


def page_text(pdf: Path, page: int) -> str:
    """The page's text as the PDF reader stores it (lines end with "\\n")."""
    from ingest.readers.pdf import PdfReader

    return PdfReader().read(pdf)[page - 1].text


def test_passage_and_sentence_are_boxed_where_pdfium_puts_them(tmp_path: Path) -> None:
    pdf, sha = make_pdf(tmp_path / "doc.pdf", [FILLER, FILLER + "\n" + PASSAGE])
    text = page_text(pdf, 2)
    start = text.index("Wind farm")
    stored = text[start:start + len(PASSAGE) + 5]  # the chunk as stored: PDF line breaks inside
    assert "\n" in stored
    view = render_page_view(pdf, sha, 2, tmp_path / "cache", 600, stored, start, SENTENCE)
    assert view.located and view.width == 600 and view.height > 600
    assert view.image == page_image_path(tmp_path / "cache", sha, 2, 600) and view.image.is_file()
    sentence = pdfium_box(pdf, 2, SENTENCE)
    filler = pdfium_box(pdf, 2, "Harbour operations report.")
    assert any(b.overlaps(sentence) for b in view.sentence), (sentence, view.sentence)
    assert any(b.overlaps(pdfium_box(pdf, 2, "Wind farm section.")) for b in view.passage)
    assert not any(b.overlaps(filler) for b in view.passage + view.sentence)
    # The sentence lies inside the passage's boxes, one box per line.
    assert all(any(s.overlaps(p) for p in view.passage) for s in view.sentence)
    assert len(view.passage) >= 2 and all(0 <= b.left and b.left + b.width <= 1 for b in view.passage)


def test_the_occurrence_nearest_the_stored_offset_is_chosen(tmp_path: Path) -> None:
    repeated = "The pump is serviced every spring by the harbour engineers."
    pdf, sha = make_pdf(tmp_path / "twice.pdf", [repeated + " " + FILLER + " " + repeated])
    text = page_text(pdf, 1)
    late = text.rindex("The pump")
    early = render_page_view(pdf, sha, 1, tmp_path / "cache", 400, repeated, 0)
    later = render_page_view(pdf, sha, 1, tmp_path / "cache", 400, repeated, late)
    assert early.located and later.located
    assert early.passage[0].top < later.passage[0].top


def test_a_passage_stored_a_little_differently_is_still_located(tmp_path: Path) -> None:
    pdf, sha = make_pdf(tmp_path / "doc.pdf", [FILLER + "\n" + PASSAGE])
    # As a reader that rewrites a table or a ligature might store it: a few characters differ.
    stored = PASSAGE.replace("Wind farm section.", "| Wind farm | section |").replace("fibre", "ﬁbre")
    view = render_page_view(pdf, sha, 1, tmp_path / "cache", 500, stored, 0, SENTENCE)
    assert view.located
    assert any(b.overlaps(pdfium_box(pdf, 1, "Wind farm section.")) for b in view.passage)
    assert not any(b.overlaps(pdfium_box(pdf, 1, "Harbour operations report.")) for b in view.passage)


def test_text_not_on_the_page_is_not_located(tmp_path: Path) -> None:
    pdf, sha = make_pdf(tmp_path / "doc.pdf", [FILLER])
    view = render_page_view(pdf, sha, 1, tmp_path / "cache", 400, "Nothing like this is written there.", 0)
    assert not view.located and view.image.is_file()  # the card falls back to the text view


def test_rotated_pages_map_boxes_to_the_rendered_picture(tmp_path: Path) -> None:
    pdf, sha = make_pdf(tmp_path / "turned.pdf", [PASSAGE], rotate=90)
    stored = page_text(pdf, 1)  # PDFium's reading order of the turned page, as ingestion stores it
    view = render_page_view(pdf, sha, 1, tmp_path / "cache", 500, stored, 0, SENTENCE)
    assert view.height < view.width  # a portrait page turned a quarter is landscape
    assert view.located
    # Text lines of a page turned 90 degrees clockwise run top to bottom: boxes taller than wide.
    assert all(b.height > b.width for b in view.passage)
    assert all(0 <= b.left <= 1 and 0 <= b.top <= 1 for b in view.passage)


def test_pictures_are_cached_per_hash_page_and_width(tmp_path: Path) -> None:
    pdf, sha = make_pdf(tmp_path / "doc.pdf", [FILLER, PASSAGE])
    cache = tmp_path / "cache"
    first = render_page_view(pdf, sha, 2, cache, 500)
    stamp = first.image.stat().st_mtime_ns
    again = render_page_view(pdf, sha, 2, cache, 500)
    assert again.image == first.image and again.image.stat().st_mtime_ns == stamp  # not rendered again
    wider = render_page_view(pdf, sha, 2, cache, 800)
    other_page = render_page_view(pdf, sha, 1, cache, 500)
    assert len({first.image, wider.image, other_page.image}) == 3
    assert wider.width == 800
    with pytest.raises(ValueError):
        page_image_path(cache, "../../etc", 1, 500)  # only a hash names a cache folder
    with pytest.raises(ValueError):
        render_page_view(pdf, sha, 3, cache, 500)


def test_the_renderer_works_in_its_own_process(tmp_path: Path) -> None:
    pdf, sha = make_pdf(tmp_path / "doc.pdf", [FILLER, PASSAGE])
    renderer = PageRenderer(tmp_path / "cache", width=500)
    try:
        future = renderer.submit(pdf, sha, 2, PASSAGE, 0, SENTENCE)
        assert renderer.submit(pdf, sha, 2, PASSAGE, 0, SENTENCE) is future or future.done()
        view = future.result(timeout=120)
        assert view.located and view.sentence and view.image.is_file()
        assert view.image.parent == tmp_path / "cache" / "pages" / sha
        # A worker that dies (PDFium crashing on a bad file) is replaced on the next request.
        import os
        import signal

        for process in list(renderer._pool._processes.values()):
            os.kill(process.pid, signal.SIGKILL)
        try:  # a request made before the pool noticed fails with the pool; none after it
            renderer.submit(pdf, sha, 1, FILLER, 0).result(timeout=60)
        except BrokenProcessPool:
            pass
        assert renderer.submit(pdf, sha, 1, FILLER, 0).result(timeout=120).located
    finally:
        renderer.close()
