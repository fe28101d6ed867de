"""Markdown files: the text as written, with a heading path at each heading; a front matter
block (YAML between "---" lines, TOML between "+++" lines) is read as the document's title and
metadata, not as its text, and HTML comments read as blank space."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from core.markup import readable, setext_level
from core.types import HeadingMark, Page
from ingest.readers.base import HeadingTrail, ReadResult
from ingest.readers.text import decode_text

_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_FRONT_MATTER = re.compile(r"\A(---|\+\+\+)[ \t]*\r?\n(.*?)^\1[ \t]*(?:\r?\n|\Z)", re.DOTALL | re.MULTILINE)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)  # "<!-- TODO: new screenshot -->": for writers, not readers


def _blanked(match: re.Match[str]) -> str:
    """A comment as spaces (its line breaks kept), so every offset after it still points into the file."""
    return re.sub(r"[^\n]", " ", match.group(0))


_DATE_KEYS = ("date", "updated", "last_updated", "lastmod", "modified", "created")
_FIELD_CHARS = 500  # a front matter value kept in the metadata: a title, a category, a date


def front_matter(text: str) -> tuple[dict[str, str], int]:
    """The scalar fields of a leading front matter block and where the text after it starts;
    ({}, 0) without one. A block that does not parse still ends where its closing line is."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        return {}, 0
    try:
        fields: Any = (yaml.safe_load(match.group(2)) if match.group(1) == "---"
                       else tomllib.loads(match.group(2)))
    except (yaml.YAMLError, tomllib.TOMLDecodeError):
        fields = None
    if not isinstance(fields, dict):
        return {}, match.end()
    return {str(key).lower(): str(value)[:_FIELD_CHARS] for key, value in fields.items()
            if isinstance(value, str | int | float | dt.date) and not isinstance(value, bool)}, match.end()


def _iso_date(value: str | None) -> str | None:
    try:
        return dt.date.fromisoformat(value[:10]).isoformat() if value else None
    except ValueError:
        return None


def markdown_headings(text: str) -> list[tuple[int, HeadingMark]]:
    """(level, HeadingMark) at each heading outside fenced code, with full paths: ATX ("## Steps")
    and setext (a line underlined with "=====" or "-----", as markdownify writes them), each title
    as read ("**Star your docs**" is "Star your docs")."""
    marks: list[tuple[int, HeadingMark]] = []
    trail = HeadingTrail()
    fence: str | None = None
    offset = 0
    above, above_offset = "", 0  # the line before, where an underline ("=====", "-----") makes it a heading
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
            underlined = setext_level(bare, above) if not _ATX_HEADING.match(above) else 0
            if heading and (heading.group(2) or "").strip():
                title = " ".join(readable(heading.group(2)).split())
                level = len(heading.group(1))
                path = trail.enter(level, title)
                marks.append((level, HeadingMark(offset=offset + bare.index("#"), path=path)))
            elif underlined and readable(above).strip(" *_"):
                title = " ".join(readable(above).strip(" *_").split())
                path = trail.enter(underlined, title)
                start = above_offset + len(above) - len(above.lstrip())
                marks.append((underlined, HeadingMark(offset=start, path=path)))
        above, above_offset = ("", 0) if fence is not None else (bare, offset)
        offset += len(line)
    return marks


class MarkdownReader:
    """Reads a .md file as one page whose text is the file's text after its front matter, so a span
    plus the metadata's `body_offset` (when there is front matter) is a span of the file."""

    def read(self, path: Path) -> list[Page]:
        """The file as page 1, with its heading marks."""
        return self.load(path).pages

    def load(self, path: Path) -> ReadResult:
        """The file as page 1; the title is the front matter's, else the first level-1 heading."""
        text, encoding = decode_text(Path(path).read_bytes(), path)
        fields, body = front_matter(text)
        text = _COMMENT.sub(_blanked, text[body:])
        marks = markdown_headings(text)
        title = fields.get("title") or next((mark.path[-1] for level, mark in marks if level == 1), None)
        metadata: dict[str, Any] = {"encoding": encoding}
        if body:
            metadata.update(front_matter=fields, body_offset=body)
            created = next((_iso_date(fields.get(key)) for key in _DATE_KEYS if _iso_date(fields.get(key))), None)
            if created:
                metadata["created"] = created
        return ReadResult(
            pages=[Page(number=1, text=text, headings=[mark for _, mark in marks])],
            title=title,
            metadata=metadata,
        )
