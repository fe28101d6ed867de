"""File readers: pick one by extension and read a file into a Document."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from core.errors import NoTextError, ReaderError
from core.types import Document
from ingest.readers.base import Reader, ReadResult
from ingest.readers.docx import DocxReader
from ingest.readers.html import HtmlReader
from ingest.readers.markdown import MarkdownReader
from ingest.readers.pdf import PdfReader
from ingest.readers.text import TextReader

SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".pdf": "pdf",
    ".txt": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".docx": "docx",
}

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "DocxReader",
    "HtmlReader",
    "MarkdownReader",
    "NoTextError",
    "PdfReader",
    "ReadResult",
    "Reader",
    "ReaderError",
    "TextReader",
    "file_type_of",
    "read_document",
    "reader_for",
    "size_limit_reason",
    "unsupported_in_folders",
]


def file_type_of(path: Path) -> str:
    """The file type for a path's extension; ReaderError listing the supported ones otherwise."""
    file_type = SUPPORTED_EXTENSIONS.get(Path(path).suffix.lower())
    if file_type is None:
        supported = ", ".join(SUPPORTED_EXTENSIONS)
        shown = Path(path).suffix or "(none)"
        raise ReaderError(str(path), f"unsupported file type {shown}: supported are {supported}")
    return file_type


def unsupported_in_folders(paths: Iterable[Path]) -> list[tuple[Path, str]]:
    """The files inside these folders that no reader takes, each with the reason, in walk order.

    Ingesting a folder takes only the supported types; these are what it leaves, so a report can
    list them as skipped instead of passing over them without a word (hidden files stay unlisted,
    as they stay unread).
    """
    left: list[tuple[Path, str]] = []
    for folder in paths:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for child in sorted(p for p in folder.rglob("*") if p.is_file()):
            if child.name.startswith(".") or child.suffix.lower() in SUPPORTED_EXTENSIONS:
                continue
            try:
                file_type_of(child)
            except ReaderError as exc:
                left.append((child, exc.reason))
    return left


def reader_for(file_type: str, *, password: str | None = None) -> Reader:
    """A reader for one file type ("pdf", "txt", "md", "html", "docx")."""
    if file_type == "pdf":
        return PdfReader(password=password)
    readers: dict[str, type[Reader]] = {
        "txt": TextReader,
        "md": MarkdownReader,
        "html": HtmlReader,
        "docx": DocxReader,
    }
    if file_type not in readers:
        raise ValueError(f"no reader for file type {file_type!r}")
    return readers[file_type]()


def _human_size(n_bytes: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes} bytes"


def size_limit_reason(size: int, max_bytes: int | None) -> str | None:
    """Why a file of `size` bytes is refused under a limit of `max_bytes`; None when it fits."""
    if max_bytes is None or size <= max_bytes:
        return None
    return (f"file too large: {_human_size(size)} ({size} bytes) is over the limit of "
            f"{_human_size(max_bytes)} ({max_bytes} bytes); split it or raise the limit")


def read_document(
    path: Path, *, password: str | None = None, max_bytes: int | None = None
) -> Document:
    """Read one file into a Document; raises ReaderError (or NoTextError) with a specific reason."""
    path = Path(path)
    file_type = file_type_of(path)
    if not path.is_file():
        raise ReaderError(str(path), "file not found: check the path")
    size = path.stat().st_size
    if size == 0:
        raise ReaderError(str(path), "empty file (0 bytes): nothing to read")
    too_large = size_limit_reason(size, max_bytes)
    if too_large:
        raise ReaderError(str(path), too_large)
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    result = reader_for(file_type, password=password).load(path)
    return Document(
        path=str(path),
        name=path.name,
        file_type=file_type,
        sha256=sha256,
        pages=result.pages,
        title=result.title,
        metadata=result.metadata,
    )
