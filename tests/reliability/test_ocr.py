"""Scanned PDFs: pages without a text layer are read by Tesseract, page numbers kept; without
Tesseract the file fails with what to install, never stored empty."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont
from typer.testing import CliRunner

from core.errors import NoTextError
from ingest.readers import ocr as ocr_module
from ingest.readers import read_document
from ingest.readers.ocr import OCR_MISSING_REASON, tesseract_available
from rag.cli import app

PAGES = [
    ["Scanned service letter", "The defrost cycle runs every 45 minutes."],
    ["Second page of the scan", "The compressor warranty lasts ten years."],
]

needs_tesseract = pytest.mark.skipif(not tesseract_available(),
                                     reason="tesseract-ocr is not installed (apt-get install tesseract-ocr)")


def scanned_pdf(path: Path, pages: list[list[str]] = PAGES) -> Path:
    """A PDF made of page images only: each page's lines drawn into a picture, no text layer."""
    font = ImageFont.load_default(size=44)
    images = []
    for lines in pages:
        image = Image.new("L", (1700, 2200), 255)  # A4-ish at 200 dpi
        draw = ImageDraw.Draw(image)
        for row, line in enumerate(lines):
            draw.text((160, 220 + 90 * row), line, fill=0, font=font)
        images.append(image)
    images[0].save(path, save_all=True, append_images=images[1:], resolution=200)
    return path


@pytest.fixture
def no_tesseract(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tesseract missing, as on a machine without the package: its command names no program."""
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    ocr_module.tesseract_available.cache_clear()
    yield
    ocr_module.tesseract_available.cache_clear()


@pytest.mark.unit
def test_the_scan_has_no_text_layer(tmp_path: Path) -> None:
    import pypdfium2

    document = pypdfium2.PdfDocument(scanned_pdf(tmp_path / "scan.pdf"))
    assert len(document) == 2
    assert all(not document[i].get_textpage().get_text_bounded().strip() for i in range(2))
    document.close()


@needs_tesseract
@pytest.mark.integration
def test_scanned_pages_are_read_by_ocr_with_their_page_numbers(tmp_path: Path) -> None:
    document = read_document(scanned_pdf(tmp_path / "scan.pdf"))
    assert [page.number for page in document.pages] == [1, 2]
    assert "defrost cycle runs every 45 minutes" in " ".join(document.pages[0].text.split())
    assert "compressor warranty lasts ten years" in " ".join(document.pages[1].text.split())
    assert "compressor" not in document.pages[0].text
    assert document.metadata["ocr_pages"] == [1, 2]


@needs_tesseract
@pytest.mark.integration
def test_a_scanned_pdf_is_ingested_and_answers_with_its_page(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    scanned_pdf(folder / "service-letter.pdf")
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(folder), "--collection", "scans", "--json"])
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.exit_code == 0 and report["files"][0]["status"] == "ingested", report
    assert report["files"][0]["pages"] == 2
    result = runner.invoke(app, ["ask", "How long does the compressor warranty last?", "--collection", "scans",
                                 "--json"])
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert "ten years" in answer["answer"], answer
    assert {(c["document"], c["page"]) for c in answer["citations"]} == {("service-letter.pdf", 2)}


@pytest.mark.integration
def test_without_tesseract_a_scan_fails_with_what_to_install(tmp_path: Path, no_tesseract: None) -> None:
    assert not tesseract_available()
    path = scanned_pdf(tmp_path / "scan.pdf")
    with pytest.raises(NoTextError) as caught:
        read_document(path)
    assert caught.value.reason == OCR_MISSING_REASON == "no text layer: install tesseract-ocr to read scanned PDFs"

    folder = tmp_path / "docs"
    folder.mkdir()
    path.rename(folder / "scan.pdf")
    (folder / "note.txt").write_text("A note with text is ingested beside it.")
    result = CliRunner().invoke(app, ["ingest", str(folder), "--collection", "scans", "--json"])
    report = {Path(f["path"]).name: f for f in json.loads(result.stdout.strip().splitlines()[-1])["files"]}
    assert result.exit_code == 1
    assert report["scan.pdf"]["status"] == "failed" and report["scan.pdf"]["error"] == OCR_MISSING_REASON
    assert report["note.txt"]["status"] == "ingested"
    listing = json.loads(CliRunner().invoke(app, ["docs", "list", "-c", "scans", "--json"]).stdout)
    assert [d["source"] for d in listing["documents"]] == ["note.txt"]  # nothing stored empty
