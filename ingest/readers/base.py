"""The contract every file reader meets, and what a reader hands back."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from core.types import Page

# Characters that print as letters or nothing but match no word: typographic ligatures (PDF text
# of LaTeX papers gives "signiﬁcant", "inﬂuenza"), soft hyphens (HTML's &shy;) and zero-width
# spaces and joiners. Read as the letters they show, or dropped.
_INVISIBLE = {"\u00ad": "", "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": ""}
_LIGATURES = {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
              "\ufb05": "st", "\ufb06": "st"}
_MENDED = str.maketrans(_INVISIBLE | _LIGATURES)
_TO_MEND = re.compile("[" + "".join(_INVISIBLE | _LIGATURES) + "]")


def mend_characters(text: str) -> str:
    """Text with ligatures spelled out and invisible characters dropped ("signiﬁ\u00adcant" -> "significant")."""
    return text.translate(_MENDED) if _TO_MEND.search(text) else text


@dataclass
class ReadResult:
    """Pages read from one file, with the title and metadata the format carries."""

    pages: list[Page]
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class Reader(Protocol):
    """Reads one kind of file into pages; raises ReaderError with a specific reason."""

    def read(self, path: Path) -> list[Page]:
        """The file's pages, 1-based, in order."""
        ...

    def load(self, path: Path) -> ReadResult:
        """The file's pages plus its title and metadata."""
        ...


class HeadingTrail:
    """Keeps the open headings by level so each new heading gets its full path."""

    def __init__(self) -> None:
        self._open: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> tuple[str, ...]:
        """Close headings at `level` or deeper, open this one, and return its path."""
        while self._open and self._open[-1][0] >= level:
            self._open.pop()
        self._open.append((level, title))
        return tuple(t for _, t in self._open)
