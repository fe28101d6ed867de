"""Markdown files: the text exactly as written, with a heading path at each ATX heading."""

from __future__ import annotations

import re
from pathlib import Path

from core.types import HeadingMark, Page
from ingest.readers.base import HeadingTrail, ReadResult
from ingest.readers.text import decode_text

_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def markdown_headings(text: str) -> list[tuple[int, HeadingMark]]:
    """(level, HeadingMark) at each ATX heading line outside fenced code, with full paths."""
    marks: list[tuple[int, HeadingMark]] = []
    trail = HeadingTrail()
    fence: str | None = None
    offset = 0
    for line in text.splitlines(keepends=True):
        bare = line.rstrip("\r\n")
        opener = _FENCE.match(bare)
        if fence is not None:
            # A fence closes only with the same character, at least as long, and nothing after it.
            if (
                opener
                and opener.group(1)[0] == fence[0]
                and len(opener.group(1)) >= len(fence)
                and not bare.strip().strip(fence[0])
            ):
                fence = None
        elif opener:
            fence = opener.group(1)
        else:
            heading = _ATX_HEADING.match(bare)
            if heading and (heading.group(2) or "").strip():
                title = heading.group(2).strip()
                level = len(heading.group(1))
                path = trail.enter(level, title)
                marks.append((level, HeadingMark(offset=offset + bare.index("#"), path=path)))
        offset += len(line)
    return marks


class MarkdownReader:
    """Reads a .md file as one page whose text is the file's text, so spans map to the file."""

    def read(self, path: Path) -> list[Page]:
        """The file as page 1, with its heading marks."""
        return self.load(path).pages

    def load(self, path: Path) -> ReadResult:
        """The file as page 1; the title is the first level-1 heading."""
        text, encoding = decode_text(Path(path).read_bytes(), path)
        marks = markdown_headings(text)
        title = next((mark.path[-1] for level, mark in marks if level == 1), None)
        return ReadResult(
            pages=[Page(number=1, text=text, headings=[mark for _, mark in marks])],
            title=title,
            metadata={"encoding": encoding},
        )
