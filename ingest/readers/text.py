"""Plain text files, and the byte-to-text decoding the text formats share."""

from __future__ import annotations

import codecs
from pathlib import Path

from charset_normalizer import from_bytes

from core.errors import ReaderError
from core.types import Page
from ingest.readers.base import ReadResult

BINARY_REASON = "binary content, not text: check that the file really is a text file"

# UTF-16/32 text holds NUL bytes by design, so these byte-order marks are honoured first.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_text(data: bytes, path: Path) -> tuple[str, str]:
    """Decode a text file's bytes; returns (text, encoding) or raises ReaderError for binary."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                break
    if b"\x00" in data:
        raise ReaderError(str(path), BINARY_REASON)
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise ReaderError(str(path), BINARY_REASON)
    # Short Western text scores the same in several code pages; cp1252 is by far the most common.
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    best = next((m for m in tied if "cp1252" in m.could_be_from_charset), best)
    text = str(best)
    # Control characters other than tab/newline/form feed mean the bytes were not text.
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f")
    if controls > max(2, len(text) // 200):
        raise ReaderError(str(path), BINARY_REASON)
    return text, best.encoding


class TextReader:
    """Reads a .txt file as one page; the encoding is detected (UTF-8 first, then charset-normalizer)."""

    def read(self, path: Path) -> list[Page]:
        """The file's text as page 1."""
        return self.load(path).pages

    def load(self, path: Path) -> ReadResult:
        """The file's text as page 1, with the detected encoding in metadata."""
        text, encoding = decode_text(Path(path).read_bytes(), path)
        return ReadResult(pages=[Page(number=1, text=text)], metadata={"encoding": encoding})
