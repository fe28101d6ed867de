"""Word (.docx) files: paragraphs and table rows in order, headings from paragraph styles."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from core.errors import ReaderError
from core.types import HeadingMark, Page
from ingest.readers.base import HeadingTrail, ReadResult

_HEADING_STYLE = re.compile(r"^Heading\s+([1-9])$", re.IGNORECASE)
# python-docx holds a whole package in memory: refuse one that unpacks beyond this.
MAX_UNPACKED_BYTES = 256 * 2**20
# Word's XML packs 5 to 30 times; a large part packed more than MAX_RATIO times is a zip bomb.
MAX_RATIO = 200
BOMB_MIN_BYTES = 16 * 2**20
NOT_DOCX_REASON = "not a Word .docx file (no Office Open XML document inside): re-save it as .docx"


def unpacked_size_reason(members: list[zipfile.ZipInfo]) -> str | None:
    """Why a .docx package is refused unread: it would unpack to more than MAX_UNPACKED_BYTES, or a
    large part is compressed like a zip bomb. None when it is safe to open.

    python-docx reads every part into memory, so this decides before it does. The sizes checked
    are the archive's own records, and Python's zipfile never unpacks more than a member records.
    """
    total = sum(member.file_size for member in members)
    if total > MAX_UNPACKED_BYTES:
        return (f"too large when unpacked: {total / 2**20:.0f} MB (the limit is "
                f"{MAX_UNPACKED_BYTES / 2**20:.0f} MB); is it a zip bomb? Re-save it, or split it")
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > BOMB_MIN_BYTES and ratio > MAX_RATIO:
            return (f"{member.filename} unpacks {ratio:.0f} times larger than it is packed "
                    f"({member.file_size / 2**20:.0f} MB): a zip bomb, not a Word document")
    return None


def heading_level(paragraph: Paragraph) -> int | None:
    """0 for the Title style, N for "Heading N", None for body text."""
    name = paragraph.style.name if paragraph.style is not None else ""
    if name == "Title":
        return 0
    match = _HEADING_STYLE.match(name or "")
    return int(match.group(1)) if match else None


def list_kind(paragraph: Paragraph) -> str | None:
    """"number" for a numbered list's paragraph (a "List Number" style), "bullet" for another list
    paragraph (a "List ..." style, or list numbering on the paragraph or its style), else None."""
    style = paragraph.style
    name = (style.name or "").lower() if style is not None else ""
    if name.startswith("list number"):
        return "number"
    own = paragraph._p.pPr is not None and paragraph._p.pPr.numPr is not None
    styled = style is not None and style.element.pPr is not None and style.element.pPr.numPr is not None
    return "bullet" if name.startswith("list") or own or styled else None


def table_rows(table: Table) -> list[str]:
    """Each row's cell texts joined by tabs; a merged cell counts once."""
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            # python-docx repeats a merged cell once per grid column it spans.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            rows.append("\t".join(cells))
    return rows


class DocxReader:
    """Reads a .docx file as one page: paragraphs and table rows, one per line."""

    def read(self, path: Path) -> list[Page]:
        """The document's text as page 1, with heading marks."""
        return self.load(path).pages

    def load(self, path: Path) -> ReadResult:
        """The document's text as page 1, its title and core properties."""
        if not zipfile.is_zipfile(path):
            raise ReaderError(str(path), NOT_DOCX_REASON)
        with zipfile.ZipFile(path) as archive:
            if "word/document.xml" not in archive.namelist():
                raise ReaderError(str(path), NOT_DOCX_REASON)
            bomb = unpacked_size_reason(archive.infolist())
            if bomb:
                raise ReaderError(str(path), bomb)
        try:
            document = docx.Document(str(path))
        except Exception as exc:  # python-docx raises many kinds on a damaged package
            raise ReaderError(
                str(path),
                f"corrupt .docx ({type(exc).__name__}: {exc}): open and re-save it in Word",
            ) from exc
        lines: list[str] = []
        marks: list[HeadingMark] = []
        trail = HeadingTrail()
        offset = 0
        heading_title: str | None = None
        number = 0  # the last item's number in a run of numbered list paragraphs
        for block in document.iter_inner_content():
            if isinstance(block, Paragraph):
                text = block.text.strip()
                if not text:
                    continue
                level = heading_level(block)
                kind = list_kind(block) if level is None else None
                number = number + 1 if kind == "number" else 0
                if level is not None:
                    marks.append(HeadingMark(offset=offset, path=trail.enter(level, text)))
                    heading_title = heading_title or text
                # A list paragraph keeps a marker, as in the document: "- Open Settings", "2. Choose Account";
                # a heading is written as Markdown writes it: "## Steps".
                marker = "#" * max(level, 1) + " " if level is not None else ""
                new_lines = [f"{number}. {text}" if kind == "number" else f"- {text}" if kind else marker + text]
            else:
                number = 0
                new_lines = table_rows(block)
            for line in new_lines:
                lines.append(line)
                offset += len(line) + 1
        props = document.core_properties
        metadata = {
            k: v for k, v in {"author": props.author, "subject": props.subject}.items() if v
        }
        if props.created is not None:
            metadata["created"] = props.created.date().isoformat()
        return ReadResult(
            pages=[Page(number=1, text="\n".join(lines), headings=marks)],
            title=(props.title or "").strip() or heading_title,
            metadata=metadata,
        )
