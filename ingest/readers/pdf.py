"""PDF files: page text from PDFium, encryption, metadata and outline from pypdf, each the other's fallback."""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pypdf
import pypdfium2 as pdfium
from pypdf.errors import FileNotDecryptedError, WrongPasswordError

from core.errors import NoTextError, ReaderError
from core.language import LINE_END_HYPHEN
from core.types import HeadingMark, Page
from ingest.readers.base import ReadResult, mend_characters
from ingest.readers.ocr import (
    OCR_FOUND_NOTHING_REASON,
    OCR_MISSING_REASON,
    ocr_page,
    tesseract_available,
)

NOT_PDF_REASON = "not a PDF (no %PDF- header): check the file, or rename it to its real type"
NO_PASSWORD_REASON = "encrypted: pass a password to open it"
WRONG_PASSWORD_REASON = "encrypted: pass a password (the one given did not open it)"
NO_TEXT_REASON = "no text found (scanned? run OCR first)"
_PDFIUM_PASSWORD_ERROR = 4  # FPDF_ERR_PASSWORD


@dataclass(frozen=True)
class OutlineEntry:
    """One bookmark: its title, 0-based page index and nesting path."""

    title: str
    page_index: int
    path: tuple[str, ...]


def _pypdf_outline(reader: pypdf.PdfReader) -> list[OutlineEntry]:
    """Walk pypdf's nested outline list; a list after an item holds that item's children."""
    entries: list[OutlineEntry] = []

    def walk(items: list[Any], parents: tuple[str, ...]) -> None:
        last: tuple[str, ...] = parents
        for item in items:
            if isinstance(item, list):
                walk(item, last)
                continue
            title = " ".join(str(item.title or "").split())
            last = parents + (title,)
            page = reader.get_destination_page_number(item)
            if title and page is not None and page >= 0:
                entries.append(OutlineEntry(title, page, last))

    # pypdf resolves every named destination before it reads the outline: skip that when there is none.
    outlines = reader.root_object.get("/Outlines")
    outlines = outlines.get_object() if outlines is not None else None
    if not isinstance(outlines, dict) or "/First" not in outlines:
        return entries
    walk(reader.outline, ())
    return entries


def _pdfium_outline(document: pdfium.PdfDocument) -> list[OutlineEntry]:
    """PDFium's flat bookmark walk, with levels turned back into paths."""
    entries: list[OutlineEntry] = []
    parents: list[str] = []
    for bookmark in document.get_toc():
        title = " ".join((bookmark.get_title() or "").split())
        del parents[bookmark.level :]
        parents.append(title)
        dest = bookmark.get_dest()
        index = dest.get_index() if dest is not None else None
        if title and index is not None:
            entries.append(OutlineEntry(title, index, tuple(parents)))
    return entries


def pdf_date(value: str | None) -> str | None:
    """A PDF date ("D:20230428161017+00'00'") as an ISO date ("2023-04-28"), or None."""
    match = re.match(r"\s*(?:D:)?(\d{4})(\d{2})(\d{2})", value or "")
    if not match:
        return None
    year, month, day = (int(g) for g in match.groups())
    if not (1900 <= year <= 2200 and 1 <= month <= 12 and 1 <= day <= 31):
        return None
    return f"{year:04d}-{month:02d}-{day:02d}"


def find_title_offset(page_text: str, title: str) -> int:
    """Where a heading's title starts in the page text (exact, then whitespace/case-insensitive), else 0."""
    at = page_text.find(title)
    if at >= 0:
        return at
    words = title.split()
    if not words:
        return 0
    found = re.search(r"\s+".join(map(re.escape, words)), page_text, re.IGNORECASE)
    return found.start() if found else 0


def attach_outline(pages: list[Page], outline: list[OutlineEntry]) -> None:
    """Add each outline entry as a HeadingMark on its page, in offset order."""
    for entry in outline:
        if 0 <= entry.page_index < len(pages):
            page = pages[entry.page_index]
            page.headings.append(HeadingMark(find_title_offset(page.text, entry.title), entry.path))
    for page in pages:
        page.headings.sort(key=lambda mark: mark.offset)  # stable: outline order kept on ties


# PDFium joins the two lines of a word broken at a line's end and marks the break with this
# character ("transmis\x02sion", "stock\x02based", "non\x02GAAP"): whether the hyphen is part of the
# word or only broke it, the page does not say.
_BROKEN_WORD = re.compile(rf"([^\W_]+)(?:[{LINE_END_HYPHEN}\ufffe]|-\n[ \t]*)([^\W_]+)")  # also pypdf's and OCR's "-\n"
_DOCUMENT_WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*")


def join_broken_words(texts: list[str]) -> list[str]:
    """The pages' text with each word PDFium reports broken at a line end written as the document
    writes it: "transmission" when the break only split the word, "stock-based", "non-GAAP",
    "SARS-CoV" when the hyphen belongs to it.

    The document is its own dictionary. A part holding a capital after its first letter or a
    digit keeps the hyphen ("non-GAAP", "COVID-19"); else the form the document uses more often
    elsewhere wins ("research" or "re-search"); else a word whose two parts are both words of the
    document keeps it ("well-known"), and fragments ("transmis", "sion") are joined."""
    if not any(_BROKEN_WORD.search(text) for text in texts):
        return texts
    counts = Counter(
        word.lower() for text in texts for word in _DOCUMENT_WORD.findall(_BROKEN_WORD.sub(" ", text))
    )
    parts = Counter(part for word, n in counts.items() for part in word.split("-") for _ in range(n))

    def written(match: re.Match[str]) -> str:
        left, right = match.group(1), match.group(2)
        hyphenated, joined = f"{left}-{right}", left + right
        if any(ch.isdigit() for ch in joined) or any(ch.isupper() for ch in left[1:] + right):
            return hyphenated
        as_one, as_two = counts[joined.lower()], counts[hyphenated.lower()]
        if as_one != as_two:
            return joined if as_one > as_two else hyphenated
        return hyphenated if parts[left.lower()] and parts[right.lower()] else joined

    return [_BROKEN_WORD.sub(written, text) for text in texts]


_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a zip archive (a Word or other Office file?)"),
    (b"%!PS", "a PostScript file"),
    (b"{\\rtf", "an RTF document"),
)


def sniff_kind(head: bytes) -> str | None:
    """What a file that is not a PDF is, from its first bytes, when that is plain to see."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html")) or b"<body" in text:
        return "an HTML page"
    return None


def _truncation_hint(path: Path) -> str:
    """" (truncated: ...)" when the file does not end with the %%EOF marker a whole PDF ends with."""
    with path.open("rb") as handle:
        handle.seek(max(path.stat().st_size - 1024, 0))
        tail = handle.read()
    return "" if b"%%EOF" in tail else " (truncated: no %%EOF marker at its end, download or copy it again)"


class PdfReader:
    """Reads a PDF into one Page per page (empty pages kept), headings from its outline."""

    def __init__(self, password: str | None = None) -> None:
        self.password = password

    def read(self, path: Path) -> list[Page]:
        """The PDF's pages, 1-based."""
        return self.load(path).pages

    def load(self, path: Path) -> ReadResult:
        """Pages, title and metadata; raises ReaderError or NoTextError with the reason."""
        path = Path(path)
        with path.open("rb") as handle:
            head = handle.read(1024)
        if b"%PDF-" not in head:
            kind = sniff_kind(head)
            raise ReaderError(str(path), NOT_PDF_REASON if kind is None else
                              f"not a PDF: it is {kind} (no %PDF- header); rename it to its real type")
        reader, pypdf_error = self._open_pypdf(path)
        pdfium_doc: pdfium.PdfDocument | None = None
        try:
            texts, pdfium_error, pdfium_doc = self._pdfium_texts(path)
            if texts is None and reader is not None:
                texts, pypdf_error = self._pypdf_texts(reader)
            if texts is None:
                raise ReaderError(
                    str(path),
                    f"corrupt PDF{_truncation_hint(path)}: neither PDFium ({pdfium_error}) nor pypdf"
                    f" ({pypdf_error}) could read it; re-export or repair the file",
                )
            pages = [Page(number=i + 1, text=text) for i, text in enumerate(texts)]
            ocr_pages = self._ocr_blank_pages(path, pages, pdfium_doc)
            mended = join_broken_words([mend_characters(page.text) for page in pages])
            for page, text in zip(pages, mended, strict=True):
                page.text = text
            if not any(page.text.strip() for page in pages):
                if pdfium_doc is not None and ocr_pages is None:
                    raise NoTextError(str(path), OCR_MISSING_REASON)
                raise NoTextError(str(path), OCR_FOUND_NOTHING_REASON if ocr_pages is not None else NO_TEXT_REASON)
            title, metadata, outline = self._describe(reader, pdfium_doc)
        finally:
            if pdfium_doc is not None:
                pdfium_doc.close()
            if reader is not None:
                reader.close()
        attach_outline(pages, outline)
        metadata["pdf_text_engine"] = "pdfium" if pdfium_error is None else "pypdf"
        if ocr_pages:
            metadata["ocr_pages"] = ocr_pages
        elif ocr_pages is None and any(not page.text.strip() for page in pages):
            metadata["pages_without_text"] = [page.number for page in pages if not page.text.strip()]
        return ReadResult(pages=pages, title=title, metadata=metadata)

    def _ocr_blank_pages(
        self, path: Path, pages: list[Page], document: pdfium.PdfDocument | None
    ) -> list[int] | None:
        """OCR every page without a text layer in place; the numbers of the pages OCR read, or None
        when OCR could not run (no Tesseract, or no PDFium document to render)."""
        blank = [page for page in pages if not page.text.strip()]
        if not blank:
            return []
        if document is None or not tesseract_available():
            return None
        read: list[int] = []
        for page in blank:
            pdf_page = document[page.number - 1]
            try:
                page.text = ocr_page(pdf_page)
            except Exception as exc:  # pytesseract raises RuntimeError on its timeout, TesseractError otherwise
                raise ReaderError(
                    str(path), f"OCR of page {page.number} failed ({type(exc).__name__}: {exc})"
                ) from exc
            finally:
                pdf_page.close()
            if page.text.strip():
                read.append(page.number)
        return read

    def _open_pypdf(self, path: Path) -> tuple[pypdf.PdfReader | None, str | None]:
        """pypdf's reader, decrypted; encryption errors are raised, other failures returned."""
        try:
            reader = pypdf.PdfReader(path, password=self.password)
            if reader.is_encrypted and not self._decrypted(reader):
                reader.close()
                raise ReaderError(str(path), NO_PASSWORD_REASON)
            return reader, None
        except WrongPasswordError as exc:
            raise ReaderError(str(path), WRONG_PASSWORD_REASON) from exc
        except ReaderError:
            raise
        except (
            Exception
        ) as exc:  # pypdf fails in many ways on damaged files; PDFium may still read them
            return None, f"{type(exc).__name__}: {exc}"

    @staticmethod
    def _decrypted(reader: pypdf.PdfReader) -> bool:
        """True when pypdf can read the (empty-password or given-password) encrypted file."""
        try:
            len(reader.pages)
            return True
        except FileNotDecryptedError:
            return False

    def _pdfium_texts(
        self, path: Path
    ) -> tuple[list[str] | None, str | None, pdfium.PdfDocument | None]:
        """Page texts from PDFium, its error if it failed, and the open document for metadata."""
        try:
            document = pdfium.PdfDocument(path, password=self.password)
        except pdfium.PdfiumError as exc:
            if exc.err_code == _PDFIUM_PASSWORD_ERROR:
                path_str = str(path)
                raise ReaderError(
                    path_str, WRONG_PASSWORD_REASON if self.password else NO_PASSWORD_REASON
                ) from exc
            return None, f"PdfiumError: {exc}", None
        try:
            texts = []
            for index in range(len(document)):
                page = document[index]
                textpage = page.get_textpage()
                # PDFium ends lines with CRLF; the rest of the pipeline expects "\n".
                texts.append(textpage.get_text_bounded().replace("\r\n", "\n").replace("\r", "\n"))
                textpage.close()
                page.close()
            return texts, None, document
        except pdfium.PdfiumError as exc:
            document.close()
            return None, f"PdfiumError: {exc}", None

    @staticmethod
    def _pypdf_texts(reader: pypdf.PdfReader) -> tuple[list[str] | None, str | None]:
        """Page texts from pypdf, or None and the reason when it cannot extract them."""
        try:
            return [page.extract_text() or "" for page in reader.pages], None
        except Exception as exc:  # any pypdf failure here means neither engine read the file
            return None, f"{type(exc).__name__}: {exc}"

    @staticmethod
    def _describe(
        reader: pypdf.PdfReader | None, document: pdfium.PdfDocument | None
    ) -> tuple[str | None, dict[str, Any], list[OutlineEntry]]:
        """Title, metadata and outline from pypdf, else from PDFium."""
        title: str | None = None
        metadata: dict[str, Any] = {}
        outline: list[OutlineEntry] | None = None
        if reader is not None:
            try:
                info = reader.metadata or {}
                for key in ("/Title", "/Author", "/Subject", "/Creator", "/Producer", "/CreationDate"):
                    value = info.get(key)
                    if value:
                        metadata[key[1:].lower()] = " ".join(str(value).split())
                outline = _pypdf_outline(reader)
            except Exception:  # pypdf could not parse these parts; PDFium is asked below
                logging.getLogger(__name__).debug(
                    "pypdf could not read metadata/outline", exc_info=True
                )
        if document is not None:
            try:
                if not metadata:
                    for key, value in document.get_metadata_dict(skip_empty=True).items():
                        metadata[key.lower()] = " ".join(str(value).split())
                if outline is None:
                    outline = _pdfium_outline(document)
            except pdfium.PdfiumError:
                logging.getLogger(__name__).debug(
                    "PDFium could not read metadata/outline", exc_info=True
                )
        title = metadata.pop("title", None) or None
        created = pdf_date(metadata.pop("creationdate", None))
        if created:
            metadata["created"] = created
        return title, metadata, outline or []
