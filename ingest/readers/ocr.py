"""Text of scanned pages by OCR: PDFium renders the page, Tesseract (through pytesseract) reads it."""

from __future__ import annotations

import shutil
from functools import lru_cache
from typing import Any

OCR_MISSING_REASON = "no text layer: install tesseract-ocr to read scanned PDFs"
OCR_FOUND_NOTHING_REASON = "no text found (scanned? run OCR first): Tesseract found no text on its pages either"
OCR_DPI = 300  # Tesseract reads body text best at about 300 dots per inch
OCR_PAGE_TIMEOUT_S = 120.0  # one page; a stuck Tesseract must not hold an ingest forever
OCR_LANGUAGES = "eng"


@lru_cache(maxsize=1)
def tesseract_available() -> bool:
    """Whether the tesseract program runs here (Debian: apt-get install tesseract-ocr)."""
    if shutil.which(_tesseract_cmd()) is None:
        return False
    import pytesseract

    try:
        pytesseract.get_tesseract_version()
    except (pytesseract.TesseractNotFoundError, OSError):
        return False
    return True


def _tesseract_cmd() -> str:
    import pytesseract

    return str(pytesseract.pytesseract.tesseract_cmd)


def ocr_page(page: Any, *, languages: str = OCR_LANGUAGES, dpi: int = OCR_DPI) -> str:
    """The text Tesseract reads on one PDFium page rendered at `dpi` (lines joined by "\\n")."""
    import pytesseract

    bitmap = page.render(scale=dpi / 72, grayscale=True)
    try:
        image = bitmap.to_pil()
        text = pytesseract.image_to_string(image, lang=languages, timeout=OCR_PAGE_TIMEOUT_S)
    finally:
        bitmap.close()
    lines = [line.rstrip() for line in text.replace("\f", "").splitlines()]
    return "\n".join(lines).strip()
