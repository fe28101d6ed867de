"""The contract every file reader meets, and what a reader hands back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from core.types import Page


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
